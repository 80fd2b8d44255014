import { assertNever, InvalidSpecError, type LossSpec, type LossTerm } from '@effnet/core';
import { DataType } from '../onnx-proto.js';
import type { TrainingEmitter } from './emitter.js';

/** A loss in the graph: the scalar total and its gradient with respect to each graph output it reads. */
export interface EmittedLoss {
  loss: string;
  outputGrads: Map<string, string>;
}

interface TermResult {
  value: string;
  grad: string;
}

/** Emits every term of `spec` (targets are graph inputs named as in the spec) and their weighted sum. */
export function emitLoss(e: TrainingEmitter, spec: LossSpec): EmittedLoss {
  const values: string[] = [];
  const outputGrads = new Map<string, string[]>();
  spec.terms.forEach((term, i) => {
    const h = `loss/${i}:${term.kind}`;
    const r = emitTerm(e, term, h);
    const w = term.weight ?? 1;
    values.push(w === 1 ? r.value : e.mul(r.value, e.floatConst([w]), `${h}/weighted`, []));
    const g = w === 1 ? r.grad : e.mul(r.grad, e.floatConst([w]), `${h}/grad_weighted`, e.shape(term.output));
    outputGrads.set(term.output, [...(outputGrads.get(term.output) ?? []), g]);
  });
  const loss = e.sum(values, 'loss/total');
  return { loss, outputGrads: new Map([...outputGrads].map(([k, v]) => [k, e.sum(v, `loss/grad:${k}`)])) };
}

function emitTerm(e: TrainingEmitter, term: LossTerm, h: string): TermResult {
  switch (term.kind) {
    case 'softmaxCrossEntropy':
      return softmaxCrossEntropy(e, term, h);
    case 'sigmoidFocal':
      return sigmoidFocal(e, term, h);
    case 'huber':
      return huber(e, term, h);
    case 'dice':
      return dice(e, term, h);
    default:
      return assertNever(term, 'loss term');
  }
}

/**
 * PyTorch's CrossEntropyLoss(label_smoothing, ignore_index), mean over the counted positions. The smoothed target
 * is (1 - s) * onehot + s / C; the gradient with respect to the logits is (softmax - target) / count.
 */
function softmaxCrossEntropy(e: TrainingEmitter, t: Extract<LossTerm, { kind: 'softmaxCrossEntropy' }>, h: string): TermResult {
  const dims = e.shape(t.output);
  const labelDims = e.shape(t.target);
  const c = dims[1]!;
  const wantLabels = [dims[0]!, ...dims.slice(2)];
  if (labelDims.length !== wantLabels.length || labelDims.some((d, i) => d !== wantLabels[i]))
    throw new InvalidSpecError(`target "${t.target}" shape`, labelDims, `[${wantLabels.join(', ')}]: one class index per position of output "${t.output}"`);
  const s = t.labelSmoothing ?? 0;
  const logp = e.t('LogSoftmax', [t.output], { axis: 1 }, `${h}/log_p`, dims);
  let labels = t.target;
  let valid: string | undefined;
  let count: string | number = labelDims.reduce((a, b) => a * b, 1);
  if (t.ignoreIndex !== undefined) {
    const kept = e.t('Not', [e.t('Equal', [t.target, e.int64Const([t.ignoreIndex])], undefined, `${h}/ignored`)], undefined, `${h}/kept`);
    labels = e.t('Where', [kept, t.target, e.int64Const([0])], undefined, `${h}/labels`, labelDims);
    valid = e.t('Cast', [kept], { to: DataType.FLOAT }, `${h}/valid`, labelDims);
    // Every position ignored: a zero loss rather than PyTorch's 0/0.
    count = e.t('Max', [e.reduceSum(valid, labelDims.map((_, i) => i), false, `${h}/count`), e.floatConst([1])], undefined, `${h}/count_1`, []);
  }
  const target = e.t('OneHot', [labels, e.int64Const([c]), e.floatConst([s / c, 1 - s + s / c], [2])], { axis: 1 }, `${h}/target`, dims);
  let perPosition = e.reduceSum(e.mul(target, logp, `${h}/t_logp`, dims), [1], false, `${h}/sum_c`);
  if (valid) perPosition = e.mul(perPosition, valid, `${h}/masked`, labelDims);
  const total = e.reduceSum(perPosition, labelDims.map((_, i) => i), false, `${h}/sum`);
  const scale = typeof count === 'number' ? e.floatConst([-1 / count]) : e.t('Neg', [e.t('Reciprocal', [count], undefined, `${h}/inv_count`)], undefined, `${h}/scale`);
  const value = e.mul(total, scale, `${h}/value`, []);
  let grad = e.sub(e.t('Exp', [logp], undefined, `${h}/p`, dims), target, `${h}/p_minus_t`, dims);
  grad = e.mul(grad, typeof count === 'number' ? e.floatConst([1 / count]) : e.t('Reciprocal', [count], undefined, `${h}/inv_count2`), `${h}/grad_mean`, dims);
  if (valid) grad = e.mul(grad, e.t('Unsqueeze', [valid, e.int64Const([1])], undefined, `${h}/valid_c`), `${h}/grad`, dims);
  return { value, grad };
}

function sameShape(e: TrainingEmitter, output: string, target: string): number[] {
  const dims = e.shape(output);
  const t = e.shape(target);
  if (t.length !== dims.length || t.some((d, i) => d !== dims[i])) throw new InvalidSpecError(`target "${target}" shape`, t, `[${dims.join(', ')}], the shape of output "${output}"`);
  return dims;
}

/** 1 / normalizer, the normalizer being a scalar float32 target ([] or [1]). */
function inverse(e: TrainingEmitter, normalizer: string, h: string): string {
  if (e.shape(normalizer).reduce((a, b) => a * b, 1) !== 1) throw new InvalidSpecError(`target "${normalizer}" shape`, e.shape(normalizer), 'a scalar ([] or [1])');
  return e.t('Reciprocal', [e.reshape(normalizer, [], `${h}/normalizer`)], undefined, `${h}/inv_normalizer`, []);
}

/**
 * effdet's new_focal_loss: alpha_t (1 - p_t)^gamma BCE(x, t) / normalizer, with p = sigmoid(x), p_t = t p + (1 - t)(1 - p)
 * and alpha_t = t alpha + (1 - t)(1 - alpha). For t in {0, 1}:
 * dL/dx = alpha_t (1 - p_t)^(gamma - 1) [(1 - p_t)(p - t) - gamma (2t - 1) p (1 - p) BCE] / normalizer.
 */
function sigmoidFocal(e: TrainingEmitter, term: Extract<LossTerm, { kind: 'sigmoidFocal' }>, h: string): TermResult {
  const dims = sameShape(e, term.output, term.target);
  const alpha = term.alpha ?? 0.25;
  const gamma = term.gamma ?? 1.5;
  const x = term.output;
  const all = dims.map((_, i) => i);
  const valid = e.t('Cast', [e.t('Not', [e.t('Equal', [term.target, e.floatConst([term.ignoreValue ?? -2])], undefined, `${h}/ignored`)], undefined, `${h}/kept`)], { to: DataType.FLOAT }, `${h}/valid`, dims);
  const t = e.mul(term.target, valid, `${h}/t`, dims);
  const one = e.floatConst([1]);
  const p = e.t('Sigmoid', [x], undefined, `${h}/p`, dims);
  const twoTm1 = e.sub(e.add(t, t, `${h}/2t`, dims), one, `${h}/2t_1`, dims);
  // 1 - p_t = t + p - 2 t p = t + p (1 - 2t); alpha_t = (1 - alpha) + t (2 alpha - 1).
  const oneMinusPt = e.sub(t, e.mul(p, twoTm1, `${h}/p_2t_1`, dims), `${h}/1_pt`, dims);
  const alphaT = e.add(e.mul(t, e.floatConst([2 * alpha - 1]), `${h}/t_alpha`, dims), e.floatConst([1 - alpha]), `${h}/alpha_t`, dims);
  // BCE with logits, stably: softplus(x) - x t.
  const bce = e.sub(e.t('Softplus', [x], undefined, `${h}/softplus`, dims), e.mul(x, t, `${h}/x_t`, dims), `${h}/bce`, dims);
  const modHalf = e.t('Pow', [oneMinusPt, e.floatConst([gamma - 1])], undefined, `${h}/mod_1`, dims);
  const weight = e.mul(e.mul(alphaT, valid, `${h}/alpha_valid`, dims), modHalf, `${h}/w`, dims);
  const perElement = e.mul(e.mul(weight, oneMinusPt, `${h}/w_mod`, dims), bce, `${h}/loss`, dims);
  const inv = inverse(e, term.normalizer, h);
  const value = e.mul(e.reduceSum(perElement, all, false, `${h}/sum`), inv, `${h}/value`, []);
  const pq = e.mul(p, e.sub(one, p, `${h}/1_p`, dims), `${h}/p_1_p`, dims);
  const modTerm = e.mul(e.mul(twoTm1, pq, `${h}/s_pq`, dims), e.mul(bce, e.floatConst([gamma]), `${h}/g_bce`, dims), `${h}/mod_term`, dims);
  const ceTerm = e.mul(oneMinusPt, e.sub(p, t, `${h}/p_t`, dims), `${h}/ce_term`, dims);
  const grad = e.mul(e.mul(weight, e.sub(ceTerm, modTerm, `${h}/bracket`, dims), `${h}/grad_sum`, dims), inv, `${h}/grad`, dims);
  return { value, grad };
}

/** effdet's huber_loss(delta, weights=mask, sum) / normalizer; dL/do = mask * clip(o - t, -delta, delta) / normalizer. */
function huber(e: TrainingEmitter, term: Extract<LossTerm, { kind: 'huber' }>, h: string): TermResult {
  const dims = sameShape(e, term.output, term.target);
  sameShape(e, term.output, term.mask);
  const delta = term.delta ?? 0.1;
  const err = e.sub(term.output, term.target, `${h}/err`, dims);
  const abs = e.t('Abs', [err], undefined, `${h}/abs`, dims);
  const quadratic = e.t('Min', [abs, e.floatConst([delta])], undefined, `${h}/quadratic`, dims);
  const linear = e.sub(abs, quadratic, `${h}/linear`, dims);
  const perElement = e.add(e.mul(e.mul(quadratic, quadratic, `${h}/q2`, dims), e.floatConst([0.5]), `${h}/half_q2`, dims), e.mul(linear, e.floatConst([delta]), `${h}/d_lin`, dims), `${h}/huber`, dims);
  const inv = inverse(e, term.normalizer, h);
  const value = e.mul(e.reduceSum(e.mul(perElement, term.mask, `${h}/masked`, dims), dims.map((_, i) => i), false, `${h}/sum`), inv, `${h}/value`, []);
  const clipped = e.t('Clip', [err, e.floatConst([-delta]), e.floatConst([delta])], undefined, `${h}/clipped`, dims);
  const grad = e.mul(e.mul(clipped, term.mask, `${h}/grad_masked`, dims), inv, `${h}/grad`, dims);
  return { value, grad };
}

/**
 * smp's multiclass DiceLoss from logits. Per class c over the batch: I = sum p t, S = (sum p + sum t) / 2 + smooth,
 * loss_c = present_c (1 - (I + smooth) / max(S, eps)); loss = mean_c loss_c. dL/dp = present_c / C * (-t / S' +
 * (I + smooth) / (2 S'^2) [S > eps]), masked, then back through the softmax.
 */
function dice(e: TrainingEmitter, term: Extract<LossTerm, { kind: 'dice' }>, h: string): TermResult {
  const dims = e.shape(term.output);
  const labelDims = e.shape(term.target);
  const [n, c] = dims as [number, number];
  const want = [n, ...dims.slice(2)];
  if (labelDims.length !== want.length || labelDims.some((d, i) => d !== want[i]))
    throw new InvalidSpecError(`target "${term.target}" shape`, labelDims, `[${want.join(', ')}]: one class index per pixel of output "${term.output}"`);
  const smooth = term.smooth ?? 0;
  const eps = term.eps ?? 1e-7;
  const axes = dims.map((_, i) => i).filter((i) => i !== 1);
  const stat = dims.map((d, i) => (i === 1 ? d : 1));
  let labels = term.target;
  let mask: string | undefined;
  if (term.ignoreIndex !== undefined) {
    const kept = e.t('Not', [e.t('Equal', [term.target, e.int64Const([term.ignoreIndex])], undefined, `${h}/ignored`)], undefined, `${h}/kept`);
    labels = e.t('Where', [kept, term.target, e.int64Const([0])], undefined, `${h}/labels`, labelDims);
    mask = e.t('Unsqueeze', [e.t('Cast', [kept], { to: DataType.FLOAT }, `${h}/valid`, labelDims), e.int64Const([1])], undefined, `${h}/mask`, want.slice(0, 1).concat([1], want.slice(1)));
  }
  const soft = e.t('Softmax', [term.output], { axis: 1 }, `${h}/softmax`, dims);
  let t = e.t('OneHot', [labels, e.int64Const([c]), e.floatConst([0, 1], [2])], { axis: 1 }, `${h}/onehot`, dims);
  let p = soft;
  if (mask) {
    p = e.mul(soft, mask, `${h}/p_masked`, dims);
    t = e.mul(t, mask, `${h}/t_masked`, dims);
  }
  const inter = e.reduceSum(e.mul(p, t, `${h}/p_t`, dims), axes, true, `${h}/intersection`);
  const sumP = e.reduceSum(p, axes, true, `${h}/sum_p`);
  const sumT = e.reduceSum(t, axes, true, `${h}/sum_t`);
  const half = e.add(e.mul(e.add(sumP, sumT, `${h}/sum_pt`, stat), e.floatConst([0.5]), `${h}/half`, stat), e.floatConst([smooth]), `${h}/denominator_raw`, stat);
  const denom = e.t('Max', [half, e.floatConst([eps])], undefined, `${h}/denominator`, stat);
  const num = e.add(inter, e.floatConst([smooth]), `${h}/numerator`, stat);
  const present = e.t('Cast', [e.t('Greater', [sumT, e.floatConst([0])], undefined, `${h}/present_b`)], { to: DataType.FLOAT }, `${h}/present`, stat);
  const score = e.t('Div', [num, denom], undefined, `${h}/score`, stat);
  const perClass = e.mul(e.sub(e.floatConst([1]), score, `${h}/one_minus`, stat), present, `${h}/per_class`, stat);
  const value = e.mul(e.reduceSum(perClass, dims.map((_, i) => i), false, `${h}/sum`), e.floatConst([1 / c]), `${h}/value`, []);
  // dscore/dp = t / S - num / S^2 * dS/dp (dS/dp = 1/2 where the clamp is inactive).
  const weight = e.mul(present, e.floatConst([1 / c]), `${h}/class_weight`, stat);
  const active = e.t('Cast', [e.t('Greater', [half, e.floatConst([eps])], undefined, `${h}/active_b`)], { to: DataType.FLOAT }, `${h}/active`, stat);
  const a = e.t('Div', [weight, denom], undefined, `${h}/a`, stat);
  const b = e.mul(e.mul(e.t('Div', [e.mul(num, weight, `${h}/num_w`, stat), e.mul(denom, denom, `${h}/denom2`, stat)], undefined, `${h}/b_raw`, stat), e.floatConst([0.5]), `${h}/b_half`, stat), active, `${h}/b`, stat);
  let dp = e.sub(b, e.mul(t, a, `${h}/t_a`, dims), `${h}/dp`, dims);
  if (mask) dp = e.mul(dp, mask, `${h}/dp_masked`, dims);
  // Back through the softmax.
  const dot = e.reduceSum(e.mul(dp, soft, `${h}/dp_s`, dims), [1], true, `${h}/dot`);
  const grad = e.mul(soft, e.sub(dp, dot, `${h}/dp_centred`, dims), `${h}/grad`, dims);
  return { value, grad };
}
