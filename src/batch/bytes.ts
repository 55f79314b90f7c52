/** Small byte-range helpers for reading rows without a string or a runtime call per row. */

/** Buffer.copy costs a call into the runtime; most inputs are a few dozen bytes, cheaper to copy here. */
export function copyBytes(from: Buffer, start: number, end: number, to: Buffer, at: number): void {
  if (end - start > 64) {
    from.copy(to, at, start, end);
    return;
  }
  for (let i = start; i < end; i++) to[at++] = from[i];
}

/** Whether from[start, end) holds the same bytes as `other` (short ones compared here, for the same reason). */
export function sameBytes(from: Buffer, start: number, end: number, other: Buffer): boolean {
  const length = end - start;
  if (length !== other.length) return false;
  if (length > 64) return from.compare(other, 0, length, start, end) === 0;
  for (let i = 0; i < length; i++) if (from[start + i] !== other[i]) return false;
  return true;
}

/**
 * The text of a value that is the same on most rows (a call's target): its
 * bytes are compared with the previous row's rather than decoded each time.
 */
export class RepeatedText<T extends string | null> {
  private last: { bytes: Buffer; text: T } | undefined;

  constructor(private readonly decode: (bytes: Buffer, start: number, end: number) => T) {}

  of(bytes: Buffer, start: number, end: number): T {
    const last = this.last;
    if (last && sameBytes(bytes, start, end, last.bytes)) return last.text;
    const text = this.decode(bytes, start, end);
    this.last = { bytes: Buffer.from(bytes.subarray(start, end)), text };
    return text;
  }
}

/**
 * The SQL function answers NULL for sentiment text that `btrim` empties
 * (spaces only), without calling the service.
 */
export function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) !== 32) return false;
  return true;
}

/** isBlank on the COPY text of a value (a space is written as itself). */
export function isBlankBytes(bytes: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0x20) return false;
  return true;
}
