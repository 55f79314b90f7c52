import { SqlError, SqlState } from '../util/errors.js';
import { RepeatedText } from './bytes.js';

/**
 * Argument rows of endpoint calls whose model inputs are all numbers, read
 * from `COPY (…) TO STDOUT (FORMAT binary)`: PostgreSQL sends each number as
 * its 2, 4 or 8 bytes instead of printing it (printing twelve float8 columns
 * is half of such an argument query's cost), and the gateway hands the
 * numbers on as they are. The values are exactly those the text path would
 * give the model: PostgreSQL prints a float8 in the shortest form that reads
 * back as the same number.
 *
 * Columns: `target, input1 … inputN, ctid, xmin, file`.
 */

/** Input types read here: int8, int2, int4, float8 (float4 and numeric keep the text path). */
const INPUT_TYPES = new Set([20, 21, 23, 701]);
const TEXT_TYPES = new Set([25 /* text */, 1043 /* varchar */]);

/**
 * Whether an argument query with these column types (target, inputs…) can be
 * read in binary, giving the model what the CSV text of the values would:
 * - float8 only where it prints exactly (extra_float_digits ≥ 1, the default);
 * - two inputs or more: a single NULL input would be an empty CSV line, which
 *   the endpoint drops rather than reads as a missing value.
 */
export function binaryReadable(targetType: number, inputTypes: number[], exactFloatText: boolean): boolean {
  return (
    TEXT_TYPES.has(targetType) &&
    inputTypes.length >= 2 &&
    inputTypes.every((t) => INPUT_TYPES.has(t) && (exactFloatText || t !== 701))
  );
}

/** One row as the reader hands it on; the model inputs were written to `values` at the given offset. */
export interface BinaryArgumentRow {
  target: string | null;
  file: number;
  block: number;
  offset: number;
  xmin: number;
}

export interface BinaryRowHandler {
  /** Where the next row's inputs go: an array and the offset of the row's first value. */
  place(target: string | null): { values: Float64Array; start: number };
  /** The row is read (its inputs are in place). */
  row(row: BinaryArgumentRow): void;
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const TWO_32 = 2 ** 32;

export class BinaryArgumentReader {
  private pending: Buffer | undefined;
  private headerRead = false;
  private done = false;
  private readonly fields: number;
  private readonly row: BinaryArgumentRow = { target: null, file: 0, block: 0, offset: 0, xmin: 0 };
  /** The target is the same on most rows. */
  private readonly targets = new RepeatedText((bytes, start, end) => bytes.toString('utf8', start, end));
  private view: DataView | undefined;
  private viewOf: ArrayBufferLike | undefined;

  constructor(
    private readonly inputTypes: number[],
    private readonly handler: BinaryRowHandler,
  ) {
    this.fields = 1 + inputTypes.length + 3;
  }

  /** One CopyData payload; rows may straddle payloads. */
  feed(payload: Buffer): void {
    let bytes = payload;
    if (this.pending) {
      bytes = Buffer.concat([this.pending, payload]);
      this.pending = undefined;
    }
    let at = 0;
    if (!this.headerRead) {
      const end = this.headerEnd(bytes);
      if (end === -1) {
        this.pending = Buffer.from(bytes);
        return;
      }
      at = end;
      this.headerRead = true;
    }
    while (at < bytes.length && !this.done) {
      const end = this.tuple(bytes, at);
      if (end === -1) {
        this.pending = Buffer.from(bytes.subarray(at));
        return;
      }
      at = end;
    }
  }

  /** Every row was read and the trailer seen. */
  finish(): void {
    if (!this.done || this.pending) throw malformed('the binary COPY data ended early');
  }

  private headerEnd(bytes: Buffer): number {
    if (bytes.length < 19) return -1;
    if (!bytes.subarray(0, 11).equals(SIGNATURE)) throw malformed('the binary COPY signature is missing');
    const extension = bytes.readUInt32BE(15);
    return bytes.length < 19 + extension ? -1 : 19 + extension;
  }

  /** Reads the tuple at `at`; returns where the next one starts, or -1 when it is not all here yet. */
  private tuple(bytes: Buffer, at: number): number {
    if (at + 2 > bytes.length) return -1;
    // A DataView per socket chunk, not per row: reading through it is what keeps a row cheap.
    if (bytes.buffer !== this.viewOf) {
      this.viewOf = bytes.buffer;
      this.view = new DataView(bytes.buffer);
    }
    const view = this.view!;
    const base = bytes.byteOffset;
    const count = view.getInt16(base + at);
    if (count === -1) {
      this.done = true;
      return at + 2;
    }
    if (count !== this.fields) throw malformed(`a row has ${count} columns, expected ${this.fields}`);
    // Find the end first, so that a row is decoded only once it is whole.
    let end = at + 2;
    for (let i = 0; i < count; i++) {
      if (end + 4 > bytes.length) return -1;
      const length = view.getInt32(base + end);
      end += 4 + Math.max(0, length);
    }
    if (end > bytes.length) return -1;

    let pos = base + at + 2;
    const targetLength = view.getInt32(pos);
    pos += 4;
    const target = targetLength === -1 ? null : this.targets.of(bytes, pos - base, pos - base + targetLength);
    pos += Math.max(0, targetLength);
    const types = this.inputTypes;
    const { values, start } = this.handler.place(target);
    for (let i = 0; i < types.length; i++) {
      const length = view.getInt32(pos);
      pos += 4;
      if (length === -1) {
        values[start + i] = Number.NaN; // NULL: an empty CSV field, a missing value
        continue;
      }
      switch (types[i]) {
        case 701:
          values[start + i] = view.getFloat64(pos);
          break;
        case 20:
          // One rounding, as reading the digits would round: high * 2^32 is exact, and so is the low word.
          values[start + i] = view.getInt32(pos) * TWO_32 + view.getUint32(pos + 4);
          break;
        case 23:
          values[start + i] = view.getInt32(pos);
          break;
        default:
          values[start + i] = view.getInt16(pos);
      }
      pos += length;
    }
    const row = this.row;
    row.target = target;
    // ctid (block uint32, offset uint16), xmin (xid), the table's file (oid): each after its length.
    row.block = view.getUint32(pos + 4);
    row.offset = view.getUint16(pos + 8);
    row.xmin = view.getUint32(pos + 14);
    row.file = view.getUint32(pos + 22);
    this.handler.row(row);
    return end;
  }
}

function malformed(message: string): SqlError {
  return new SqlError(SqlState.internalError, `batch mode could not read an argument query: ${message}`);
}
