// Times one ONNX model on onnxruntime-node in a process of its own, so that peak RSS is its own.
// Usage: node bench/onnx-worker.mjs <model.onnx> <batch> <resolution> <iterations> <threads>
import { readFileSync } from 'node:fs';
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
for (let i = 0; i < 3; i++) await session.run({ [name]: input });
const latencies = [];
for (let i = 0; i < Number(iters); i++) {
  const t = process.hrtime.bigint();
  await session.run({ [name]: input });
  latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
}
process.stdout.write(JSON.stringify({ latencies, peakRssMB: process.resourceUsage().maxRSS / 1024 }) + '\n');
