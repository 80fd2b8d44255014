// Times training steps of one backend in a process of its own, so that peak RSS is its own.
// Usage: node bench/train-worker.mjs <onnx|onnx-standard|tfjs> <model> <batch> <resolution> <steps> <threads>
// Prints {"latencies": [ms per step after two warm-up steps], "peakRssMB", "notes"}.
import { OnnxBackend } from '@effnet/backend-onnx';
import { buildEfficientNet, float32Tensor, randomWeights, specFor } from '@effnet/core';

const [backend, model, batch, res, steps, threads] = process.argv.slice(2);
const B = Number(batch);
const R = Number(res);
const graph = buildEfficientNet(specFor(model, { family: 'torchvision' }), { numClasses: 10, inputResolution: R });
const weights = randomWeights(graph, 0);
const options = { optimizer: { kind: 'adamw', lr: 1e-3, weightDecay: 0.01 }, labelSmoothing: 0.1, threads: Number(threads), seed: 1 };
let session;
if (backend === 'tfjs') {
  const { TfjsBackend } = await import('@effnet/backend-tfjs');
  session = await new TfjsBackend().createTrainer(graph, weights, { ...options, device: 'wasm' });
} else session = await new OnnxBackend().createTrainer(graph, weights, { ...options, nchwc: backend === 'onnx' ? 'auto' : false });
const x = float32Tensor([B, 3, R, R]);
for (let i = 0; i < x.data.length; i++) x.data[i] = Math.sin(i) * 0.5;
const labels = Int32Array.from({ length: B }, (_, i) => i % 10);
for (let i = 0; i < 2; i++) await session.step(x, labels);
const latencies = [];
for (let i = 0; i < Number(steps); i++) {
  const t = process.hrtime.bigint();
  await session.step(x, labels);
  latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
}
process.stdout.write(JSON.stringify({ latencies, peakRssMB: process.resourceUsage().maxRSS / 1024, notes: session.notes }) + '\n');
