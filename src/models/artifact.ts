/**
 * Model artifacts as SageMaker stores them: either the model file itself, or a
 * `model.tar.gz` whose files are what the container sees in /opt/ml/model
 * (for the XGBoost algorithm a single file named `xgboost-model`).
 *
 * The tar reader is small on purpose: regular files only, ustar names with their
 * prefix, pax `path` records and GNU long names, which covers what Python's
 * tarfile, GNU tar and bsdtar write.
 */
import { gunzipSync } from 'node:zlib';
import { ModelFormatError } from './types.js';

export interface ArtifactFile {
  readonly name: string;
  readonly bytes: Buffer;
}

/** Guards against a tiny archive that inflates without bound. */
const MAX_UNPACKED_BYTES = 2 ** 31 - 1;
const BLOCK = 512;

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

export function isTar(bytes: Uint8Array): boolean {
  return bytes.length >= BLOCK && readString(bytes, 257, 5) === 'ustar';
}

/**
 * The files inside an artifact: the files of a (gzipped) tar, the inflated file of
 * a plain .gz, or the artifact itself. Hidden files and macOS `._` companions are left out.
 */
export function artifactFiles(artifact: { fileName: string; bytes: Buffer }): ArtifactFile[] {
  let bytes = artifact.bytes;
  let name = baseName(artifact.fileName);
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: MAX_UNPACKED_BYTES });
    } catch (error) {
      throw new ModelFormatError(`cannot decompress ${artifact.fileName}: ${(error as Error).message}`);
    }
    name = name.replace(/\.t?gz$/i, (m) => (m.toLowerCase() === '.tgz' ? '.tar' : ''));
  }
  if (isTar(bytes)) return readTar(bytes).filter((file) => !isHidden(file.name));
  return [{ name, bytes }];
}

/**
 * The one file a loader should read: the first of `preferredNames` present
 * (matched on the base name), else the only file, else a clear error.
 */
export function pickModelFile(files: ArtifactFile[], preferredNames: readonly string[], what: string): ArtifactFile {
  for (const preferred of preferredNames) {
    const match = files.find((f) => baseName(f.name) === preferred);
    if (match) return match;
  }
  if (files.length === 1) return files[0];
  if (files.length === 0) throw new ModelFormatError(`the ${what} artifact contains no files`);
  throw new ModelFormatError(
    `the ${what} artifact holds several files (${files.map((f) => f.name).join(', ')}) and none is named ${preferredNames.join(' or ')}`,
  );
}

export function readTar(bytes: Buffer): ArtifactFile[] {
  const files: ArtifactFile[] = [];
  let pos = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  while (pos + BLOCK <= bytes.length) {
    const header = bytes.subarray(pos, pos + BLOCK);
    if (header.every((b) => b === 0)) break;
    if (!checksumMatches(header)) throw new ModelFormatError(`corrupt tar header at byte ${pos}`);
    const size = readSize(header);
    const type = String.fromCharCode(header[156] || 0x30);
    const dataStart = pos + BLOCK;
    if (dataStart + size > bytes.length) throw new ModelFormatError('truncated tar archive');
    const data = bytes.subarray(dataStart, dataStart + size);
    pos = dataStart + Math.ceil(size / BLOCK) * BLOCK;

    if (type === 'L') {
      longName = readString(data, 0, data.length);
      continue;
    }
    if (type === 'x') {
      paxPath = paxRecord(data, 'path') ?? paxPath;
      continue;
    }
    if (type === 'g') continue;
    const prefix = readString(header, 345, 155);
    const headerName = readString(header, 0, 100);
    const name = paxPath ?? longName ?? (prefix ? `${prefix}/${headerName}` : headerName);
    longName = undefined;
    paxPath = undefined;
    // '0' and NUL are regular files ('7' contiguous files too); directories, links, devices are skipped.
    if (type === '0' || type === '7') files.push({ name: name.replace(/^\.\//, ''), bytes: Buffer.from(data) });
  }
  return files;
}

function readSize(header: Buffer): number {
  // GNU base-256 encoding for sizes of 8 GiB and more.
  if (header[124] & 0x80) {
    let size = 0;
    for (let i = 125; i < 136; i++) size = size * 256 + header[i];
    return size;
  }
  const text = readString(header, 124, 12).trim();
  const size = text === '' ? 0 : Number.parseInt(text, 8);
  if (!Number.isFinite(size) || size < 0) throw new ModelFormatError('corrupt tar header (size)');
  return size;
}

function checksumMatches(header: Buffer): boolean {
  const stored = Number.parseInt(readString(header, 148, 8).trim(), 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
  return stored === sum;
}

function paxRecord(data: Buffer, key: string): string | undefined {
  const text = data.toString('utf8');
  let pos = 0;
  while (pos < text.length) {
    const space = text.indexOf(' ', pos);
    if (space < 0) break;
    const length = Number.parseInt(text.slice(pos, space), 10);
    if (!(length > 0)) break;
    const record = text.slice(space + 1, pos + length - 1);
    const eq = record.indexOf('=');
    if (record.slice(0, eq) === key) return record.slice(eq + 1);
    pos += length;
  }
  return undefined;
}

function readString(bytes: Uint8Array, start: number, length: number): string {
  let end = start;
  while (end < start + length && end < bytes.length && bytes[end] !== 0) end++;
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('utf8');
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function isHidden(path: string): boolean {
  const name = baseName(path);
  return name.startsWith('.') || name === '';
}
