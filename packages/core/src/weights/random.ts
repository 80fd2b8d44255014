import type { Graph } from '../graph.js';
import { float32Tensor, type TensorMap } from '../tensor.js';

/** mulberry32: a small, fast, seedable PRNG with uniform output in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples from a uniform source (Box-Muller). */
export function seededNormal(seed: number): () => number {
  const u = seededRandom(seed);
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let a = 0;
    while (a === 0) a = u();
    const r = Math.sqrt(-2 * Math.log(a));
    const t = 2 * Math.PI * u();
    spare = r * Math.sin(t);
    return r * Math.cos(t);
  };
}

/** Fresh weights for every declared parameter, following each one's init (timm's), reproducible from `seed`. */
export function randomWeights(graph: Graph, seed = 0): TensorMap {
  const normal = seededNormal(seed);
  const uniform = seededRandom(seed ^ 0x5bd1e995);
  const out: TensorMap = new Map();
  for (const p of graph.parameters) {
    const t = float32Tensor([...p.shape]);
    const d = t.data as Float32Array;
    const init = p.init;
    switch (init.kind) {
      case 'normal':
        for (let i = 0; i < d.length; i++) d[i] = normal() * init.std;
        break;
      case 'uniform':
        for (let i = 0; i < d.length; i++) d[i] = (2 * uniform() - 1) * init.limit;
        break;
      case 'constant':
        d.fill(init.value);
        break;
    }
    out.set(p.name, t);
  }
  return out;
}
