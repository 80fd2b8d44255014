/** Calibration for int8 export: the float32 model run on representative inputs, every quantized activation observed. */
import type { Graph, Tensor, TensorMap } from '@effnet/core';
import { compileToOnnx } from './compile.js';
import { openSession, ort } from './ort.js';
import { type CalibrationMethod, RangeCollector } from './quantize.js';

export interface CalibrationOptions {
  method?: CalibrationMethod;
  /** For 'percentile': the share of |x| kept inside the range (default 99.999). */
  percentile?: number;
  threads?: number;
  /** After each batch of each pass. */
  onBatch?: (batch: number, pass: number, passes: number) => void;
}

/**
 * The [min, max] of every activation int8 quantization needs (compileToOnnx's `int8.ranges`): `batches` is called
 * once per pass and yields preprocessed float32 NCHW batches (the model's own preprocessing, done by the caller).
 */
export async function calibrateInt8(graph: Graph, weights: TensorMap, batches: () => AsyncIterable<Tensor> | Iterable<Tensor>, o: CalibrationOptions = {}): Promise<Record<string, [number, number]>> {
  const compiled = compileToOnnx(graph, weights, { calibrationOutputs: true });
  const { Tensor: OrtTensor } = await ort();
  const { session } = await openSession(compiled.model, { device: 'cpu', ...(o.threads ? { threads: o.threads } : {}) });
  const collector = new RangeCollector(o.method ?? 'minmax', o.percentile);
  const input = compiled.inputName;
  try {
    for (let pass = 0; pass < collector.passes; pass++) {
      let i = 0;
      for await (const x of batches()) {
        collector.observe(input, x.data as Float32Array, pass);
        const out = await session.run({ [input]: new OrtTensor('float32', x.data as Float32Array, x.shape) });
        for (const [name, t] of Object.entries(out)) collector.observe(name, t.data as Float32Array, pass);
        o.onBatch?.(++i, pass, collector.passes);
      }
    }
  } finally {
    await session.release();
  }
  return collector.ranges();
}
