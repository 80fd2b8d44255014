import type { Graph } from '../graph.js';
import { seededNormal, seededRandom } from '../random.js';
import { float32Tensor, type TensorMap } from '../tensor.js';

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
