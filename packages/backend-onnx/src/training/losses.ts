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
    case 'huber':
    case 'dice':
      throw new InvalidSpecError(`loss term ${term.kind}`, term.kind, 'softmaxCrossEntropy (the ONNX trainer has no other loss yet)');
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
