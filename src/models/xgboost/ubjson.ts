/**
 * Decoder for Universal Binary JSON (UBJSON, https://ubjson.org), the binary
 * format XGBoost writes for `save_model("model.ubj")` and, from 2.1 on, by default.
 *
 * XGBoost stores every per-node vector as a strongly typed container
 * (`[$d#L<n>` …), so those decode straight into typed arrays instead of
 * millions of boxed numbers; a model of a few hundred trees then loads in
 * milliseconds. All multi-byte values are big-endian.
 */
import { ModelFormatError } from '../types.js';

export type UbjsonValue =
  | null
  | boolean
  | number
  | string
  | UbjsonValue[]
  | Int8Array
  | Uint8Array
  | Int16Array
  | Int32Array
  | Float32Array
  | Float64Array
  | { [key: string]: UbjsonValue };

export function decodeUbjson(bytes: Uint8Array): UbjsonValue {
  const reader = new UbjsonReader(bytes);
  const value = reader.value();
  return value;
}

class UbjsonReader {
  private readonly view: DataView;
  private pos = 0;
  private readonly text = new TextDecoder('utf-8', { fatal: false });

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  value(): UbjsonValue {
    let marker = this.marker();
    while (marker === 0x4e /* N: no-op */) marker = this.marker();
    return this.valueOfType(marker);
  }

  private valueOfType(marker: number): UbjsonValue {
    switch (marker) {
      case 0x5a /* Z */:
        return null;
      case 0x54 /* T */:
        return true;
      case 0x46 /* F */:
        return false;
      case 0x53 /* S */:
      case 0x48 /* H: high-precision number, carried as a string */:
        return this.string();
      case 0x43 /* C */:
        return String.fromCharCode(this.take(1)[0]);
      case 0x5b /* [ */:
        return this.array();
      case 0x7b /* { */:
        return this.object();
      default:
        return this.number(marker);
    }
  }

  private number(marker: number): number {
    const { view } = this;
    const at = this.pos;
    switch (marker) {
      case 0x69 /* i */:
        this.advance(1);
        return view.getInt8(at);
      case 0x55 /* U */:
        this.advance(1);
        return view.getUint8(at);
      case 0x49 /* I */:
        this.advance(2);
        return view.getInt16(at);
      case 0x6c /* l */:
        this.advance(4);
        return view.getInt32(at);
      case 0x4c /* L */:
        this.advance(8);
        return Number(view.getBigInt64(at));
      case 0x64 /* d */:
        this.advance(4);
        return view.getFloat32(at);
      case 0x44 /* D */:
        this.advance(8);
        return view.getFloat64(at);
      default:
        throw new ModelFormatError(`UBJSON: unknown type marker 0x${marker.toString(16)} at byte ${this.pos - 1}`);
    }
  }

  private string(): string {
    const length = this.length();
    return this.text.decode(this.take(length));
  }

  private length(): number {
    const n = this.number(this.marker());
    if (!Number.isInteger(n) || n < 0) throw new ModelFormatError(`UBJSON: invalid length ${n}`);
    return n;
  }

  private containerHeader(): { type: number | undefined; count: number | undefined } {
    let type: number | undefined;
    let count: number | undefined;
    if (this.peek() === 0x24 /* $ */) {
      this.advance(1);
      type = this.marker();
      if (this.peek() !== 0x23) throw new ModelFormatError('UBJSON: a typed container must give its count');
    }
    if (this.peek() === 0x23 /* # */) {
      this.advance(1);
      count = this.length();
    }
    return { type, count };
  }

  private array(): UbjsonValue {
    const { type, count } = this.containerHeader();
    if (type !== undefined && count !== undefined) {
      const typed = this.typedArray(type, count);
      if (typed) return typed;
      const items: UbjsonValue[] = new Array(count);
      for (let i = 0; i < count; i++) items[i] = this.valueOfType(type);
      return items;
    }
    const items: UbjsonValue[] = [];
    if (count !== undefined) {
      for (let i = 0; i < count; i++) items.push(this.value());
      return items;
    }
    while (this.peekSkippingNoop() !== 0x5d /* ] */) items.push(this.value());
    this.advance(1);
    return items;
  }

  /** Big-endian element runs copied into native typed arrays. */
  private typedArray(type: number, count: number): UbjsonValue | undefined {
    const { view } = this;
    const start = this.pos;
    switch (type) {
      case 0x55 /* U */:
        return this.take(count).slice();
      case 0x69 /* i */:
        {
          const out = new Int8Array(count);
          for (let i = 0; i < count; i++) out[i] = view.getInt8(start + i);
          this.advance(count);
          return out;
        }
      case 0x49 /* I */:
        {
          this.advance(count * 2);
          const out = new Int16Array(count);
          for (let i = 0; i < count; i++) out[i] = view.getInt16(start + i * 2);
          return out;
        }
      case 0x6c /* l */:
        {
          this.advance(count * 4);
          const out = new Int32Array(count);
          for (let i = 0; i < count; i++) out[i] = view.getInt32(start + i * 4);
          return out;
        }
      case 0x64 /* d */:
        {
          this.advance(count * 4);
          const out = new Float32Array(count);
          for (let i = 0; i < count; i++) out[i] = view.getFloat32(start + i * 4);
          return out;
        }
      case 0x44 /* D */:
        {
          this.advance(count * 8);
          const out = new Float64Array(count);
          for (let i = 0; i < count; i++) out[i] = view.getFloat64(start + i * 8);
          return out;
        }
      case 0x4c /* L */:
        {
          this.advance(count * 8);
          // int64 node ids never exceed 2^53 in practice; plain numbers keep callers simple.
          const out = new Float64Array(count);
          for (let i = 0; i < count; i++) out[i] = Number(view.getBigInt64(start + i * 8));
          return out;
        }
      default:
        return undefined;
    }
  }

  private object(): UbjsonValue {
    const { type, count } = this.containerHeader();
    const out: { [key: string]: UbjsonValue } = {};
    const readEntry = () => {
      const key = this.string();
      out[key] = type === undefined ? this.value() : this.valueOfType(type);
    };
    if (count !== undefined) {
      for (let i = 0; i < count; i++) readEntry();
      return out;
    }
    while (this.peekSkippingNoop() !== 0x7d /* } */) readEntry();
    this.advance(1);
    return out;
  }

  private peekSkippingNoop(): number {
    while (this.peek() === 0x4e) this.advance(1);
    return this.peek();
  }

  private peek(): number {
    if (this.pos >= this.bytes.length) throw new ModelFormatError('UBJSON: unexpected end of data');
    return this.bytes[this.pos];
  }

  private marker(): number {
    const m = this.peek();
    this.pos++;
    return m;
  }

  private advance(n: number): void {
    if (this.pos + n > this.bytes.length) throw new ModelFormatError('UBJSON: unexpected end of data');
    this.pos += n;
  }

  private take(n: number): Uint8Array {
    const start = this.pos;
    this.advance(n);
    return this.bytes.subarray(start, start + n);
  }
}
