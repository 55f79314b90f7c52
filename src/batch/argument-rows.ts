import { RepeatedText } from './bytes.js';
import { unescapeCopyText } from './copy-text.js';

/** What one row of an argument query asks for. */
export interface ArgumentRow {
  target: string | null;
  /**
   * The input: text, the JSON array of model inputs, or their CSV line. NULL:
   * the call answers NULL itself. With ArgumentLayout.keyBytes it is not
   * decoded ('' stands for any non-NULL input): see keyStart/keyEnd.
   */
  key: string | null;
  /** Where the key's COPY text is in the payload (ArgumentLayout.keyBytes). */
  keyStart: number;
  keyEnd: number;
  /** max_rows_per_batch given per row (NULL or no such column: undefined). */
  batch: number | undefined;
  /** The table row (its file, ctid block and offset, xmin), for groups stored per row. */
  file: number;
  block: number;
  offset: number;
  xmin: number;
}

export interface ArgumentLayout {
  /** One converter per model input column to its CSV field; undefined when the key is one column. */
  inputs?: ((value: string | null) => string)[];
  /** Every input column is a number: its COPY text is already its CSV field (`\N` aside). */
  numericInputs?: boolean;
  batchColumn: boolean;
  rowIdentity: boolean;
  /** A one-column key is left as bytes (keyStart/keyEnd; decodeKey on demand), for callers that tell inputs apart by their bytes. */
  keyBytes?: boolean;
}

const TAB = 0x09;
const BACKSLASH = 0x5c;

function digits(payload: Buffer, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) value = value * 10 + (payload[i] - 0x30);
  return value;
}

/**
 * `1.5<TAB>\N<TAB>-2` → `1.5,,-2`, rewriting the bytes in place (the payload
 * is read once): NULL is the only escape the text of a number can carry.
 */
function numbersAsCsv(payload: Buffer, start: number, end: number): string {
  let write = start;
  for (let read = start; read < end; read++) {
    const c = payload[read];
    if (c === TAB) payload[write++] = 0x2c;
    else if (c === BACKSLASH)
      read += 1; // \N
    else payload[write++] = c;
  }
  return payload.toString('latin1', start, write);
}

/**
 * Reads argument query rows: `target, key | input1 … inputN [, batch] [, ctid, xmin]`.
 * COPY rows are read straight from their bytes: a row of a million-row
 * statement should cost a few short strings, not an array of fields.
 */
export class ArgumentRowReader {
  private readonly row: ArgumentRow = {
    target: null,
    key: null,
    keyStart: 0,
    keyEnd: 0,
    batch: undefined,
    file: 0,
    block: 0,
    offset: 0,
    xmin: 0,
  };
  private readonly keyColumns: number;
  private readonly starts: number[];
  private readonly ends: number[];
  /** The target is the same on most rows. */
  private readonly targets = new RepeatedText<string | null>(fieldText);

  constructor(private readonly layout: ArgumentLayout) {
    this.keyColumns = layout.inputs?.length ?? 1;
    const fields = 1 + this.keyColumns + (layout.batchColumn ? 1 : 0) + (layout.rowIdentity ? 3 : 0);
    this.starts = new Array(fields).fill(0);
    this.ends = new Array(fields).fill(0);
  }

  /** One COPY text row (a CopyData payload). The returned object is reused by the next call. */
  fromCopy(payload: Buffer): ArgumentRow {
    const { starts, ends, keyColumns } = this;
    let end = payload.length;
    if (end > 0 && payload[end - 1] === 0x0a) end -= 1;
    // Few searches per row (each is a call into the runtime): the target up to the
    // first tab, the fields after the inputs from the end, the inputs in between.
    const first = payload.indexOf(TAB);
    starts[0] = 0;
    ends[0] = first;
    let fieldEnd = end;
    for (let i = starts.length - 1; i > keyColumns; i--) {
      const tab = payload.lastIndexOf(TAB, fieldEnd - 1);
      starts[i] = tab + 1;
      ends[i] = fieldEnd;
      fieldEnd = tab;
    }
    starts[1] = first + 1;
    ends[keyColumns] = fieldEnd;
    if (this.layout.inputs && !this.layout.numericInputs) {
      for (let i = 1; i < keyColumns; i++) {
        const tab = payload.indexOf(TAB, starts[i]);
        ends[i] = tab;
        starts[i + 1] = tab + 1;
      }
    }
    const row = this.row;
    row.target = this.target(payload);
    const { inputs, numericInputs } = this.layout;
    if (numericInputs) {
      row.key = numbersAsCsv(payload, starts[1], ends[keyColumns]);
    } else if (inputs) {
      let line = inputs[0](this.field(payload, 1));
      for (let i = 1; i < inputs.length; i++) line += `,${inputs[i](this.field(payload, 1 + i))}`;
      row.key = line;
    } else if (this.layout.keyBytes) {
      row.keyStart = starts[1];
      row.keyEnd = ends[1];
      row.key = this.isNull(payload, 1) ? null : '';
    } else {
      row.key = this.field(payload, 1);
    }
    let next = 1 + this.keyColumns;
    if (this.layout.batchColumn) {
      const batch = this.field(payload, next);
      row.batch = batch === null ? undefined : Number(batch);
      next += 1;
    }
    if (this.layout.rowIdentity) {
      // ctid `(block,offset)`, then xmin and the table's file: digits only.
      const tidEnd = ends[next];
      let i = starts[next] + 1;
      let block = 0;
      for (; i < tidEnd && payload[i] !== 0x2c; i++) block = block * 10 + (payload[i] - 0x30);
      let offset = 0;
      for (i += 1; i < tidEnd && payload[i] !== 0x29; i++) offset = offset * 10 + (payload[i] - 0x30);
      row.block = block;
      row.offset = offset;
      row.xmin = digits(payload, starts[next + 1], ends[next + 1]);
      row.file = digits(payload, starts[next + 2], ends[next + 2]);
    }
    return row;
  }

  /** One row as text values (extended protocol). The returned object is reused by the next call. */
  fromValues(values: (string | null)[]): ArgumentRow {
    const row = this.row;
    row.target = values[0];
    const inputs = this.layout.inputs;
    if (inputs) {
      let line = inputs[0](values[1]);
      for (let i = 1; i < inputs.length; i++) line += `,${inputs[i](values[1 + i])}`;
      row.key = line;
    } else {
      row.key = values[1];
    }
    let next = 1 + this.keyColumns;
    if (this.layout.batchColumn) {
      row.batch = values[next] === null ? undefined : Number(values[next]);
      next += 1;
    }
    if (this.layout.rowIdentity) {
      const [block, offset] = (values[next] ?? '(0,0)').slice(1, -1).split(',');
      row.block = Number(block);
      row.offset = Number(offset);
      row.xmin = Number(values[next + 1]);
      row.file = Number(values[next + 2]);
    }
    return row;
  }

  /** The key of the row `fromCopy` just read (ArgumentLayout.keyBytes), decoded. */
  decodeKey(payload: Buffer): string | null {
    return this.field(payload, 1);
  }

  private isNull(payload: Buffer, i: number): boolean {
    return isNullField(payload, this.starts[i], this.ends[i]);
  }

  private field(payload: Buffer, i: number): string | null {
    return fieldText(payload, this.starts[i], this.ends[i]);
  }

  private target(payload: Buffer): string | null {
    return this.targets.of(payload, this.starts[0], this.ends[0]);
  }
}

const isNullField = (payload: Buffer, start: number, end: number) =>
  end - start === 2 && payload[start] === BACKSLASH && payload[start + 1] === 0x4e; /* \N */

/** One COPY text field's value: NULL, or its text with the escapes resolved. */
function fieldText(payload: Buffer, start: number, end: number): string | null {
  if (isNullField(payload, start, end)) return null;
  const text = payload.toString('utf8', start, end);
  const backslash = payload.indexOf(BACKSLASH, start);
  return backslash !== -1 && backslash < end ? unescapeCopyText(text) : text;
}
