import { tf } from '../src/tf.js';
import type * as TF from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { fc, test } from '@fast-check/vitest';
import { beforeAll, describe, expect } from 'vitest';
import { registerWasmGradients } from '../src/wasm-gradients.js';

/** Gradients of a conv on wasm (our kernels) against the JS cpu backend's own kernels. */
async function gradsOn(backend: string, f: (x: TF.Tensor4D, w: TF.Tensor4D) => TF.Tensor, x: number[], xs: number[], w: number[], ws: number[]) {
  await tf.setBackend(backend);
  // A fixed, position-dependent cotangent, so every output element's gradient path is checked.
  const g = tf.grads((a: TF.Tensor, b: TF.Tensor) => {
    const y = f(a as TF.Tensor4D, b as TF.Tensor4D);
    return tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size), y.shape))));
  });
  const [dx, dw] = g([tf.tensor4d(x, xs as [number, number, number, number]), tf.tensor4d(w, ws as [number, number, number, number])]);
  return [await dx!.data(), await dw!.data()];
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!)));
  return m;
};

describe('wasm gradient kernels match the JS cpu backend', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
    registerWasmGradients();
  });
  const arb = fc.record({
    n: fc.integer({ min: 1, max: 2 }),
    h: fc.integer({ min: 3, max: 9 }),
    w: fc.integer({ min: 3, max: 9 }),
    c: fc.integer({ min: 1, max: 4 }),
    co: fc.integer({ min: 1, max: 3 }),
    k: fc.constantFrom(1, 3, 5),
    s: fc.constantFrom(1, 2),
    pad: fc.constantFrom('same', 'valid', 1, 2),
    seed: fc.integer(),
  });
  const rand = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(seed + i * 12.9898) * 0.5);

  test.prop([arb], { numRuns: 60 })('conv2d and depthwiseConv2d: dx and dw', async ({ n, h, w, c, co, k, s, pad, seed }) => {
    if (pad === 'valid' && (k > h || k > w)) return;
    const x = rand(n * h * w * c, seed);
    const conv = (a: TF.Tensor4D, b: TF.Tensor4D) => tf.conv2d(a, b, s, pad as 'same');
    const wc = rand(k * k * c * co, seed + 1);
    const [cpuDx, cpuDw] = await gradsOn('cpu', conv, x, [n, h, w, c], wc, [k, k, c, co]);
    const [wasmDx, wasmDw] = await gradsOn('wasm', conv, x, [n, h, w, c], wc, [k, k, c, co]);
    expect(close(wasmDx!, cpuDx!)).toBeLessThan(1e-4);
    expect(close(wasmDw!, cpuDw!)).toBeLessThan(1e-4);
    const dw = (a: TF.Tensor4D, b: TF.Tensor4D) => tf.depthwiseConv2d(a, b, s, pad as 'same');
    const wd = rand(k * k * c, seed + 2);
    const [cpuDx2, cpuDw2] = await gradsOn('cpu', dw, x, [n, h, w, c], wd, [k, k, c, 1]);
    const [wasmDx2, wasmDw2] = await gradsOn('wasm', dw, x, [n, h, w, c], wd, [k, k, c, 1]);
    expect(close(wasmDx2!, cpuDx2!)).toBeLessThan(1e-4);
    expect(close(wasmDw2!, cpuDw2!)).toBeLessThan(1e-4);
  });
});
