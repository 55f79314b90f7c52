/**
 * The `model.tar.gz` a training job leaves in S3, in SageMaker's layout: the
 * files of /opt/ml/model at the root of a gzipped ustar archive (for XGBoost a
 * single `xgboost-model`), which CreateModel's ModelDataUrl then points at.
 * The tar writer is the counterpart of the reader in src/models/artifact.ts:
 * regular files with short names, which is all a model directory holds here.
 */
import { gzipSync } from 'node:zlib';

const BLOCK = 512;

export interface ArchiveFile {
  readonly name: string;
  readonly bytes: Uint8Array;
}

export function modelTarGz(files: readonly ArchiveFile[], mtimeSeconds = Math.floor(Date.now() / 1000)): Buffer {
  const parts: Buffer[] = [];
  for (const file of files) {
    parts.push(header(file.name, file.bytes.length, mtimeSeconds));
    parts.push(Buffer.from(file.bytes.buffer, file.bytes.byteOffset, file.bytes.byteLength));
    const padding = (BLOCK - (file.bytes.length % BLOCK)) % BLOCK;
    if (padding) parts.push(Buffer.alloc(padding));
  }
  parts.push(Buffer.alloc(BLOCK * 2)); // end-of-archive marker
  return gzipSync(Buffer.concat(parts));
}

function header(name: string, size: number, mtime: number): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length > 100) throw new Error(`tar entry name too long: ${name}`);
  const block = Buffer.alloc(BLOCK);
  nameBytes.copy(block, 0);
  octal(block, 100, 8, 0o644); // mode
  octal(block, 108, 8, 0); // uid
  octal(block, 116, 8, 0); // gid
  octal(block, 124, 12, size);
  octal(block, 136, 12, mtime);
  block.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  block[156] = 0x30; // '0': regular file
  block.write('ustar\u000000', 257, 'latin1');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i];
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return block;
}

function octal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\u0000`, offset, 'latin1');
}
