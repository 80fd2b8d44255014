/** Graphs for tests shared by the backends. */
import { float32Tensor, type Graph, GraphBuilder, randomWeights, seededNormal, seededRandom, type Tensor, type TensorMap } from '@effnet/core';

/** A graph that uses every node kind, as detection and segmentation heads will. */
export function everyKind(): Graph {
  const g = new GraphBuilder('every_kind', [{ name: 'input', channels: 3, height: null, width: null }]);
  let x = g.conv('stem', 'input', { inChannels: 3, outChannels: 8, kernel: 3, stride: 2, padding: { mode: 'same' } });
  x = g.batchNorm('stem_bn', x, 8, 1e-3, 0.01);
  x = g.activation('stem_act', x, 'silu');
  const p = g.maxPool('pool', x, 3, 2, { mode: 'same' });
  let y = g.conv('lateral', p, { inChannels: 8, outChannels: 8, kernel: 1, padding: { mode: 'symmetric' }, bias: true });
  y = g.activation('gelu', y, 'gelu');
  const up = g.resize('up', y, 'nearest', { like: x });
  const up2 = g.resize('up2', g.activation('hs', p, 'hardSwish'), 'bilinear', { scale: 2 });
  const fused = g.weightedSum('fuse', [x, up, g.activation('r6', up, 'relu6')]);
  const se = g.mul('gate', fused, g.activation('hsig', g.globalAvgPool('gap', fused, true), 'hardSigmoid'));
  const sum = g.add('sum3', [se, g.activation('tanh', fused, 'tanh'), g.activation('relu', fused, 'relu')]);
  const drop = g.dropPath('dp', g.dropout('do', sum, 0.1), 0.1);
  const cat = g.concat('cat', [g.groupNorm('gn', drop, 2, 8), g.activation('sig', drop, 'sigmoid')]);
  const deconv = g.convTranspose('deconv', cat, { inChannels: 16, outChannels: 4, kernel: 2, stride: 2, bias: true });
  const soft = g.softmax('probs', deconv, 1);
  const vec = g.dense('head', g.flatten('flat', g.globalAvgPool('gap2', soft, true)), 4, 5);
  // Several outputs, so that every kind reaches one: the class vector, the segmentation-style map, the upsampled map.
  return g.build([vec, soft, up2]);
}


/** A float32 tensor of seeded N(0, 1) values. */
export function randomInput(shape: number[], seed = 7): Tensor {
  const n = seededNormal(seed);
  const t = float32Tensor(shape);
  const d = t.data as Float32Array;
  for (let i = 0; i < d.length; i++) d[i] = n();
  return t;
}

/** Random weights with BN statistics far from identity, so folding and eps matter. */
export function nontrivialWeights(g: Graph, seed = 3): TensorMap {
  const w = randomWeights(g, seed);
  const n = seededNormal(seed + 1);
  for (const [name, t] of w) {
    const d = t.data as Float32Array;
    if (name.endsWith('running_var')) for (let i = 0; i < d.length; i++) d[i] = 0.5 + Math.abs(n());
    else if (/running_mean$|bn\d\.bias$|\.bias$/.test(name)) for (let i = 0; i < d.length; i++) d[i] = 0.1 * n();
    else if (/bn\d\.weight$/.test(name)) for (let i = 0; i < d.length; i++) d[i] = 1 + 0.2 * n();
  }
  return w;
}


/**
 * A detection-style head on five levels: one separable conv and one prediction conv read by every level (shared
 * parameters), a BatchNorm per level. The shared pointwise conv is large, so storing it once is visible in file sizes.
 * `shared: false` gives the same network with a copy of the head per level (`head<level>.*`), for comparisons.
 */
export function sharedHead(channels = 256, shared = true): Graph {
  const g = new GraphBuilder('shared_head', [{ name: 'input', channels: 3, height: null, width: null }]);
  let x = g.conv('stem', 'input', { inChannels: 3, outChannels: channels, kernel: 3, stride: 2, padding: { mode: 'same' } });
  const outputs: string[] = [];
  for (let level = 0; level < 5; level++) {
    const head = shared ? 'head' : `head${level}`;
    if (level > 0) x = g.maxPool(`down${level}`, x, 3, 2, { mode: 'same' });
    let y = g.conv(`level${level}.conv_dw`, x, { inChannels: channels, outChannels: channels, kernel: 3, groups: channels, padding: { mode: 'same' }, params: `${head}.conv_dw`, shared });
    y = g.conv(`level${level}.conv_pw`, y, { inChannels: channels, outChannels: channels, kernel: 1, padding: { mode: 'same' }, bias: true, params: `${head}.conv_pw`, shared });
    y = g.activation(`level${level}.act`, g.batchNorm(`head.bn.${level}`, y, channels, 1e-3, 0.01), 'silu');
    outputs.push(g.conv(`out_P${level}`, y, { inChannels: channels, outChannels: 6, kernel: 3, padding: { mode: 'same' }, bias: true, params: `${head}.predict`, shared }));
  }
  return g.build(outputs);
}

/**
 * A learnable toy problem for trainers: four textures (horizontal stripes, vertical stripes, checkerboard, centre
 * blob) with random phase, colour and noise, `res` px, labels in [0, classes) (classes <= 4).
 */
export function textureBatch(n: number, seed: number, res: number, classes = 4): { x: Tensor; labels: Int32Array } {
  const rnd = seededRandom(seed);
  const x = float32Tensor([n, 3, res, res]);
  const d = x.data as Float32Array;
  const labels = new Int32Array(n);
  for (let b = 0; b < n; b++) {
    const k = Math.floor(rnd() * classes);
    labels[b] = k;
    const period = 6 + Math.floor(rnd() * 6);
    const phase = rnd() * period;
    const colour = [rnd(), rnd(), rnd()];
    for (let i = 0; i < res; i++)
      for (let j = 0; j < res; j++) {
        const s =
          k === 0 ? Math.sin((2 * Math.PI * (i + phase)) / period)
          : k === 1 ? Math.sin((2 * Math.PI * (j + phase)) / period)
          : k === 2 ? Math.sign(Math.sin((2 * Math.PI * (i + phase)) / period) * Math.sin((2 * Math.PI * (j + phase)) / period))
          : Math.exp(-((i - res / 2) ** 2 + (j - res / 2) ** 2) / (2 * (period * 1.5) ** 2)) * 2 - 0.5;
        for (let c = 0; c < 3; c++) d[((b * 3 + c) * res + i) * res + j] = s * (0.5 + colour[c]!) + 0.3 * (rnd() - 0.5);
      }
  }
  return { x, labels };
}

/** How many rows of [n, classes] logits have their largest value at the label. */
export function countCorrect(logits: Float32Array, labels: Int32Array, classes: number): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const row = Array.from(logits.slice(i * classes, (i + 1) * classes));
    if (row.indexOf(Math.max(...row)) === labels[i]) correct++;
  }
  return correct;
}
