/** Test helpers: a server on 127.0.0.1:0 with the embedded effnet-shapes model, and small request helpers. */
import { getBackend, type Runner } from '@effnet/core';
import { generateShape, loadModelWeights } from '@effnet/tasks';
import sharp from 'sharp';
import { InferenceServer, type LogRecord, loadServedModel, ServedModel, type ServerOptions } from '../src/index.js';
import type { BatchingOptions } from '../src/model.js';

export interface TestServer {
  server: InferenceServer;
  model: ServedModel;
  url: string;
  logs: LogRecord[];
}

/**
 * Serves effnet-shapes as "shapes" (offline: the model ships with @effnet/zoo). `wrap` replaces the runner by one
 * around it (to hold batches, slow them down or count them).
 */
export async function startShapesServer(o: Partial<BatchingOptions> & ServerOptions & { wrap?: (r: Runner) => Runner } = {}): Promise<TestServer> {
  const logs: LogRecord[] = [];
  let server: InferenceServer | undefined;
  const batching = { maxBatch: o.maxBatch ?? 8, maxDelayMs: o.maxDelayMs ?? 2, maxQueue: o.maxQueue ?? 64, timeoutMs: o.timeoutMs ?? 60_000, onBatch: (m: string, b: { rows: number; ms: number }) => server?.observeBatch(m, b) };
  let model: ServedModel;
  if (o.wrap) {
    const m = await loadModelWeights('effnet-shapes');
    const runner = await (await getBackend('onnx')).load(m.graph, m.weights, { threads: 1 });
    model = new ServedModel('shapes', 'effnet-shapes', m, o.wrap(runner), 'onnxruntime_onnx', batching);
  } else model = await loadServedModel({ name: 'shapes', model: 'effnet-shapes' }, { ...batching, threads: 1 });
  server = new InferenceServer([model], { host: '127.0.0.1', port: 0, log: (r) => logs.push(r), version: 'test', ...o });
  const { url } = await server.listen();
  return { server, model, url, logs };
}

export async function stopServer(t: TestServer | undefined): Promise<void> {
  if (!t) return;
  await t.server.close();
  await t.model.dispose();
}

/** A deterministic NCHW batch for the shapes model. */
export function randomRows(n: number, seed = 1): Float32Array {
  const x = new Float32Array(n * 3 * 48 * 48);
  let s = seed >>> 0;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = (s / 2 ** 32) * 4 - 2;
  }
  return x;
}

/** A PNG of the synthetic shape `index` (its class is SHAPE_CLASSES[index % 6]). */
export async function shapePng(index: number, seed = 7): Promise<Buffer> {
  const img = generateShape(seed, index, { size: 48 });
  return sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), { raw: { width: img.width, height: img.height, channels: 3 } })
    .png()
    .toBuffer();
}

export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  }
  return diff / Math.max(scale, 1e-12);
}

/** A runner that holds each batch until `release()` and counts the rows it ran. */
export function gatedRunner(inner: Runner) {
  let open = false;
  let waiting: (() => void)[] = [];
  const state = { batches: [] as number[], started: 0 };
  const runner: Runner = {
    device: inner.device,
    notes: inner.notes,
    async run(x) {
      state.started++;
      if (!open) await new Promise<void>((r) => waiting.push(r));
      state.batches.push(x.shape[0]!);
      return inner.run(x);
    },
    dispose: () => inner.dispose(),
  };
  const release = () => {
    open = true;
    for (const w of waiting) w();
    waiting = [];
  };
  return { runner, state, release };
}

/** Resolves when `cond` holds (polled on the event loop; tests bound it with their own timeout). */
export async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

/** startShapesServer with a gatedRunner around the model's runner. */
export async function startGatedServer(o: Partial<BatchingOptions> & ServerOptions = {}): Promise<{ t: TestServer; gate: ReturnType<typeof gatedRunner> }> {
  let gate: ReturnType<typeof gatedRunner> | undefined;
  const t = await startShapesServer({ ...o, wrap: (inner) => (gate = gatedRunner(inner)).runner });
  return { t, gate: gate! };
}
