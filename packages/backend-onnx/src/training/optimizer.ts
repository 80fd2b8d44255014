import type { OptimizerConfig, ParamSpec } from '@effnet/core';
import type { TrainingEmitter } from './emitter.js';
import type { TrainingIo } from './training-graph.js';

/** An optimizer applied inside the training graph; per-step scalars (learning rate, bias corrections) are inputs. */
export interface OptimizerPlan {
  config: OptimizerConfig;
  /** Clip the global gradient norm to this (PyTorch's clip_grad_norm_). */
  clipGradNorm?: number;
}

/** Optimizer state slots per parameter, PyTorch's names. */
export function stateSlots(config: OptimizerConfig): string[] {
  if (config.kind === 'sgd') return (config.momentum ?? 0) > 0 ? ['momentum_buffer'] : [];
  return ['exp_avg', 'exp_avg_sq'];
}

/** Per-step scalar inputs of the in-graph optimizer, computed by the trainer from the learning rate and step. */
export function hyperValues(config: OptimizerConfig, lr: number, step: number): Record<string, number> {
  switch (config.kind) {
    case 'sgd':
      return { 'hyper:lr': lr };
    case 'adam':
    case 'adamw': {
      const t = step + 1;
      const bc1 = 1 - (config.beta1 ?? 0.9) ** t;
      const bc2 = 1 - (config.beta2 ?? 0.999) ** t;
      return { 'hyper:step_size': lr / bc1, 'hyper:bc2_sqrt': Math.sqrt(bc2), 'hyper:decay': config.kind === 'adamw' ? 1 - lr * (config.weightDecay ?? 0) : 1 };
    }
  }
}

/**
 * PyTorch's update rules (torch.optim 1.13, single-tensor path) on every parameter with a gradient, after optional
 * global-norm clipping. Returns the inputs (state, per-step scalars) and outputs (new weights, new state, norm).
 */
export function emitOptimizer(
  e: TrainingEmitter,
  plan: OptimizerPlan,
  grads: Map<string, string>,
  params: Map<string, ParamSpec>,
): { inputs: TrainingIo[]; outputs: TrainingIo[] } {
  const c = plan.config;
  const inputs: TrainingIo[] = Object.keys(hyperValues(c, 1, 0)).map((name) => ({ name, role: 'hyper' as const, dims: [], dtype: 'float32' as const }));
  const outputs: TrainingIo[] = [];
  // Global L2 norm of every gradient, as clip_grad_norm_ computes it; the trainer reports it either way.
  const squares = [...grads.values()].map((g) => e.t('ReduceSumSquare', [g], { keepdims: 0 }, 'opt/sq', []));
  const norm = e.t('Sqrt', [e.sum(squares, 'opt/sum_sq')], undefined, 'opt/norm', []);
  e.op('Identity', 'grad_norm', [norm], ['grad_norm']);
  outputs.push({ name: 'grad_norm', role: 'norm', dims: [], dtype: 'float32' });
  let clip: string | undefined;
  if (plan.clipGradNorm !== undefined) {
    const coef = e.t('Div', [e.floatConst([plan.clipGradNorm]), e.add(norm, e.floatConst([1e-6]), 'opt/norm_eps', [])], undefined, 'opt/clip_coef', []);
    clip = e.t('Min', [coef, e.floatConst([1])], undefined, 'opt/clip', []);
  }
  const slots = stateSlots(c);
  for (const [p, g0] of grads) {
    const dims = params.get(p)!.shape;
    const h = `opt/${p}`;
    const state = (slot: string) => {
      const name = `state:${slot}:${p}`;
      inputs.push({ name, role: 'state', dims, dtype: 'float32', of: p });
      outputs.push({ name: `new:${name}`, role: 'state', dims, dtype: 'float32', of: p });
      return name;
    };
    const out = (t: string, name: string) => e.op('Identity', name, [t], [name]);
    let g = clip ? e.mul(g0, clip, `${h}/clipped`, dims) : g0;
    const wd = c.weightDecay ?? 0;
    if (c.kind !== 'adamw' && wd) g = e.add(g, e.mul(p, e.floatConst([wd]), `${h}/wd`, dims), `${h}/g_wd`, dims);
    let next: string;
    if (c.kind === 'sgd') {
      const mom = c.momentum ?? 0;
      let d = g;
      if (mom > 0) {
        // buf = momentum * buf + g; zero state makes the first step's buf = g, as PyTorch's clone.
        const bufName = state(slots[0]!);
        const buf = e.add(e.mul(bufName, e.floatConst([mom]), `${h}/buf_m`, dims), g, `${h}/buf`, dims);
        out(buf, `new:${bufName}`);
        d = c.nesterov ? e.add(g, e.mul(buf, e.floatConst([mom]), `${h}/nesterov`, dims), `${h}/d`, dims) : buf;
      }
      next = e.sub(p, e.mul(d, 'hyper:lr', `${h}/step`, dims), `${h}/next`, dims);
    } else {
      const b1 = c.beta1 ?? 0.9;
      const b2 = c.beta2 ?? 0.999;
      const mName = state(slots[0]!);
      const vName = state(slots[1]!);
      const m = e.add(e.mul(mName, e.floatConst([b1]), `${h}/m_b1`, dims), e.mul(g, e.floatConst([1 - b1]), `${h}/g_b1`, dims), `${h}/m`, dims);
      const v = e.add(e.mul(vName, e.floatConst([b2]), `${h}/v_b2`, dims), e.mul(e.mul(g, g, `${h}/g2`, dims), e.floatConst([1 - b2]), `${h}/g2_b2`, dims), `${h}/v`, dims);
      out(m, `new:${mName}`);
      out(v, `new:${vName}`);
      const denom = e.add(e.t('Div', [e.t('Sqrt', [v], undefined, `${h}/sqrt_v`, dims), 'hyper:bc2_sqrt'], undefined, `${h}/v_hat`, dims), e.floatConst([c.eps ?? 1e-8]), `${h}/denom`, dims);
      const update = e.mul(e.t('Div', [m, denom], undefined, `${h}/ratio`, dims), 'hyper:step_size', `${h}/update`, dims);
      const decayed = c.kind === 'adamw' && wd ? e.mul(p, 'hyper:decay', `${h}/decayed`, dims) : p;
      next = e.sub(decayed, update, `${h}/next`, dims);
    }
    out(next, `new:${p}`);
    outputs.push({ name: `new:${p}`, role: 'weight', dims, dtype: 'float32', of: p });
  }
  return { inputs, outputs };
}
