// Times one ONNX model on onnxruntime-node in a process of its own, so that peak RSS is its own; the timing code is
// effnet bench's (@effnet/tasks/bench).
// Usage: node bench/onnx-worker.mjs <model.onnx> <batch> <resolution> <iterations> <threads>
import { readFileSync } from 'node:fs';
import { peakRssMB, timeRuns } from '@effnet/tasks/bench';
import ort from 'onnxruntime-node';

const [file, batch, res, iters, threads] = process.argv.slice(2);
const b = Number(batch);
const r = Number(res);
const session = await ort.InferenceSession.create(readFileSync(file), {
  executionProviders: ['cpu'],
  intraOpNumThreads: Number(threads),
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
});
const data = new Float32Array(b * 3 * r * r);
for (let i = 0; i < data.length; i++) data[i] = Math.sin(i) * 0.5;
const input = new ort.Tensor('float32', data, [b, 3, r, r]);
const name = session.inputNames[0];
const latencies = await timeRuns(() => session.run({ [name]: input }), { warmup: 3, iterations: Number(iters) });
process.stdout.write(JSON.stringify({ latencies, peakRssMB: peakRssMB() }) + '\n');
