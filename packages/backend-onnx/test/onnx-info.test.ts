import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseOnnxInfo, readOnnxFileInfo } from '@effnet/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DataType, encodeModel } from '../src/onnx-proto.js';

const name = fc.string({ minLength: 1, maxLength: 12 });

describe("core's ONNX metadata reader", () => {
  it('reads back what the writer encodes: metadata_props, producer, opset, inputs (not initializers) and outputs', () => {
    fc.assert(
      fc.property(
        fc.dictionary(name, fc.string({ maxLength: 200 }), { maxKeys: 8 }),
        fc.integer({ min: 13, max: 21 }),
        fc.array(fc.oneof(fc.integer({ min: 1, max: 4096 }), fc.constantFrom('batch', 'height')), { minLength: 1, maxLength: 4 }),
        fc.uint8Array({ maxLength: 64 }),
        (metadata, opset, dims, raw) => {
          const bytes = encodeModel({
            irVersion: 8,
            opset,
            producerName: 'effnet',
            producerVersion: '0.1.0',
            docString: 'd',
            graphName: 'g',
            nodes: [{ opType: 'Identity', name: 'n', inputs: ['x'], outputs: ['y'] }],
            initializers: [{ name: 'w', dataType: DataType.FLOAT, dims: [raw.length >> 2], raw: raw.subarray(0, (raw.length >> 2) * 4) }],
            inputs: [
              { name: 'x', elemType: DataType.FLOAT, shape: dims },
              { name: 'w', elemType: DataType.FLOAT, shape: [raw.length >> 2] },
            ],
            outputs: [{ name: 'y', elemType: DataType.FLOAT16, shape: dims }],
            metadata,
          });
          const info = parseOnnxInfo(bytes);
          expect(info.metadata).toEqual(metadata);
          expect(info).toMatchObject({ producerName: 'effnet', producerVersion: '0.1.0', opset });
          expect(info.inputs).toEqual([{ name: 'x', elemType: DataType.FLOAT, dims }]);
          expect(info.outputs).toEqual([{ name: 'y', elemType: DataType.FLOAT16, dims }]);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('reading a file a page at a time gives what parsing all its bytes gives, for models of any size', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'effnet-onnx-info-'));
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(name, fc.string({ maxLength: 5000 }), { maxKeys: 4 }),
        fc.array(fc.integer({ min: 0, max: 6000 }), { maxLength: 6 }),
        async (metadata, sizes) => {
          const bytes = encodeModel({
            irVersion: 8,
            opset: 17,
            producerName: 'effnet',
            producerVersion: '0.1.0',
            docString: '',
            graphName: 'g',
            nodes: [{ opType: 'Identity', name: 'n', inputs: ['x'], outputs: ['y'] }],
            // Initializers of 0-24 KB put the headers the reader needs on every side of its 4 KB page boundaries.
            initializers: sizes.map((n, i) => ({ name: `w${i}`, dataType: DataType.FLOAT, dims: [n], raw: new Uint8Array(4 * n).fill(i + 1) })),
            inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: [1, 3] }, ...sizes.map((n, i) => ({ name: `w${i}`, elemType: DataType.FLOAT, shape: [n] }))],
            outputs: [{ name: 'y', elemType: DataType.FLOAT, shape: [1, 3] }],
            metadata,
          });
          const file = join(dir, 'm.onnx');
          writeFileSync(file, bytes);
          const { size, info } = await readOnnxFileInfo(file);
          expect(size).toBe(bytes.length);
          expect(info).toEqual(parseOnnxInfo(bytes));
          expect(info.inputs.map((i) => i.name)).toEqual(['x']);
        },
      ),
      { numRuns: 40 },
    );
    writeFileSync(join(dir, 'cut.onnx'), encodeModel({ irVersion: 8, opset: 17, producerName: 'p', producerVersion: '', docString: '', graphName: 'g', nodes: [], initializers: [], inputs: [], outputs: [], metadata: { k: 'v'.repeat(9000) } }).subarray(0, 5000));
    await expect(readOnnxFileInfo(join(dir, 'cut.onnx'))).rejects.toThrow(/cut\.onnx: not an ONNX model/);
    await expect(readOnnxFileInfo(join(dir, 'missing.onnx'))).rejects.toThrow(/missing\.onnx: cannot read the file/);
  });

  it('a metadata key named like an Object property is data', () => {
    const metadata = JSON.parse('{"__proto__": "p", "constructor": "c"}') as Record<string, string>;
    const bytes = encodeModel({ irVersion: 8, opset: 17, producerName: 'p', producerVersion: '', docString: '', graphName: 'g', nodes: [], initializers: [], inputs: [], outputs: [], metadata });
    const info = parseOnnxInfo(bytes);
    expect(Object.keys(info.metadata)).toEqual(['__proto__', 'constructor']);
    expect(Object.getPrototypeOf(info.metadata)).toBe(Object.prototype);
  });

  it('a truncated model is an error naming the file, never a partial answer', () => {
    const bytes = encodeModel({ irVersion: 8, opset: 17, producerName: 'p', producerVersion: '', docString: '', graphName: 'g', nodes: [], initializers: [], inputs: [], outputs: [], metadata: { k: 'v'.repeat(100) } });
    expect(() => parseOnnxInfo(bytes.subarray(0, bytes.length - 20), 'cut.onnx')).toThrow(/cut\.onnx: not an ONNX model/);
  });
});
