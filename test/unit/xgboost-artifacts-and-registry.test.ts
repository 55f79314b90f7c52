import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { artifactFiles, pickModelFile } from '../../src/models/artifact.js';
import { algorithmFromImage, loadPredictor } from '../../src/models/registry.js';
import { ModelFormatError } from '../../src/models/types.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'models', 'xgboost');

/** Minimal ustar writer, enough to build the archives these tests need. */
function tar(entries: Array<{ name: string; body?: string; type?: string }>): Buffer {
  const blocks: Buffer[] = [];
  for (const { name, body = '', type = '0' } of entries) {
    const data = Buffer.from(body);
    const header = Buffer.alloc(512);
    header.write(name.slice(0, 100), 0);
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
    header.write('00000000000\0', 136);
    header.write(type, 156);
    header.write('ustar\u000000', 257);
    header.fill(0x20, 148, 156);
    const sum = header.reduce((a, b) => a + b, 0);
    header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const pax = (path: string) => {
  const record = ` path=${path}\n`;
  let length = record.length;
  while (String(length).length + record.length !== length) length = String(length).length + record.length;
  return `${length}${record}`;
};

describe('algorithmFromImage', () => {
  it('recognises the SageMaker built-in images and ONNX', () => {
    expect(algorithmFromImage('683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1')).toBe('xgboost');
    expect(algorithmFromImage('382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1')).toBe('linear-learner');
    expect(algorithmFromImage('382416733822.dkr.ecr.us-east-1.amazonaws.com/randomcutforest:1')).toBe(
      'randomcutforest',
    );
    expect(algorithmFromImage('pgsage/onnx-runtime:latest')).toBe('onnx');
    expect(algorithmFromImage('763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1')).toBeUndefined();
  });
});

describe('model artifacts', () => {
  it('unpacks a model.tar.gz written by Python tarfile', () => {
    const files = artifactFiles({
      fileName: 'model.tar.gz',
      bytes: readFileSync(join(DIR, 'binary_logistic.json.model.tar.gz')),
    });
    expect(files.map((f) => f.name)).toEqual(['xgboost-model']);
    expect(files[0].bytes.toString('utf8', 0, 10)).toBe('{"learner"');
  });

  it('passes a raw model file through, and inflates a plain .gz', () => {
    const raw = Buffer.from('{"a":1}');
    expect(artifactFiles({ fileName: 'xgboost-model', bytes: raw })).toEqual([{ name: 'xgboost-model', bytes: raw }]);
    const [inflated] = artifactFiles({ fileName: 'model.json.gz', bytes: gzipSync(raw) });
    expect(inflated.name).toBe('model.json');
    expect(inflated.bytes.equals(raw)).toBe(true);
  });

  it('reads prefixes, pax and GNU long names, skips directories and hidden files', () => {
    const longName = `${'d'.repeat(120)}/model.json`;
    const archive = tar([
      { name: 'model/', type: '5' },
      { name: 'model/._xgboost-model', body: 'apple double' },
      { name: 'PaxHeader', type: 'x', body: pax(longName) },
      { name: 'truncated', body: 'pax named' },
      { name: '././@LongLink', type: 'L', body: `${'g'.repeat(150)}/other.json\0` },
      { name: 'short', body: 'gnu named' },
      { name: './xgboost-model', body: 'the model' },
    ]);
    const files = artifactFiles({ fileName: 'model.tar.gz', bytes: gzipSync(archive) });
    expect(files.map((f) => [f.name, f.bytes.toString()])).toEqual([
      [longName, 'pax named'],
      [`${'g'.repeat(150)}/other.json`, 'gnu named'],
      ['xgboost-model', 'the model'],
    ]);
    expect(pickModelFile(files, ['xgboost-model'], 'XGBoost').bytes.toString()).toBe('the model');
    expect(() => pickModelFile(files, ['nothing'], 'XGBoost')).toThrow(/several files/);
  });

  it('refuses corrupt archives with ModelFormatError', () => {
    const archive = tar([{ name: 'xgboost-model', body: 'x'.repeat(600) }]);
    archive[148] = 0x37; // checksum digit
    expect(() => artifactFiles({ fileName: 'model.tar', bytes: archive })).toThrow(ModelFormatError);
    expect(() => artifactFiles({ fileName: 'model.tar.gz', bytes: Buffer.from([0x1f, 0x8b, 1, 2, 3]) })).toThrow(
      ModelFormatError,
    );
  });
});

describe('ONNX without onnxruntime-node', () => {
  it('says how to install the optional package', async () => {
    let installed = true;
    try {
      // A variable specifier keeps TypeScript from resolving the optional package.
      const name = 'onnxruntime-node';
      await import(name);
    } catch {
      installed = false;
    }
    const attempt = loadPredictor('onnx', { fileName: 'model.onnx', bytes: Buffer.from('not really onnx') });
    if (installed) {
      await expect(attempt).rejects.toThrow(/cannot load the ONNX model/);
    } else {
      await expect(attempt).rejects.toThrow(/npm install onnxruntime-node/);
      await expect(attempt).rejects.toBeInstanceOf(ModelFormatError);
    }
  });
});
