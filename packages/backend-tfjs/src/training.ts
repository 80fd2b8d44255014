import { EffnetError, InvalidSpecError, learningRate, type StepResult, type TensorMap, type TrainerOptions, writeSafetensors } from '@effnet/core';
import { TfjsModel } from './model.js';
import { tf } from './tf.js';

type T = ReturnType<typeof tf.tensor>;
type T4 = ReturnType<typeof tf.tensor4d>;

/** Mean softmax cross-entropy with label smoothing (PyTorch's CrossEntropyLoss(label_smoothing)). */
export function crossEntropy(logits: T, labels: T, numClasses: number, smoothing = 0): T {
  const logp = tf.logSoftmax(logits);
  // float32 one-hot: mixing int32 and float32 makes tfjs insert a Cast on the gradient path that it cannot backprop.
  const onehot = tf.cast(tf.oneHot(labels as ReturnType<typeof tf.tensor1d>, numClasses), 'float32');
  const target = smoothing > 0 ? tf.add(tf.mul(onehot, 1 - smoothing), smoothing / numClasses) : onehot;
  return tf.neg(tf.mean(tf.sum(tf.mul(target, logp), -1)));
}

/** One optimiser, its state and its schedule, over a model's selected parameters. */
export class Trainer {
  private step = 0;
  private readonly state = new Map<string, tf.Variable[]>();
  private readonly names: string[];

  constructor(
    readonly model: TfjsModel,
    readonly options: TrainerOptions,
  ) {
    const { optimizer, labelSmoothing = 0 } = options;
    if (!(optimizer.lr > 0)) throw new InvalidSpecError('optimizer.lr', optimizer.lr, 'a positive learning rate');
    if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw new InvalidSpecError('labelSmoothing', labelSmoothing, 'a number in [0, 1)');
    this.names = options.trainable ?? model.trainableNames();
    this.step = options.startStep ?? 0;
    const unknown = this.names.filter((n) => !model.variables.get(n)?.trainable);
    if (unknown.length) throw new InvalidSpecError('trainable', unknown.slice(0, 5), 'names of trainable parameters of the model');
  }

  get steps(): number {
    return this.step;
  }

  get currentLr(): number {
    return learningRate(this.options.optimizer.lr, this.options.schedule ?? { kind: 'constant' }, this.step);
  }

  /** One optimisation step on an NHWC batch with integer labels. */
  trainStep(x: T4, labels: Int32Array): StepResult {
    const lr = this.currentLr;
    const vars = this.names.map((n) => this.model.variables.get(n)!);
    let bnUpdates: [tf.Variable, T][] = [];
    let logits: T | undefined;
    const { loss, gradNorm } = tf.tidy(() => {
      const y = tf.tensor1d(labels, 'int32');
      const { value, grads } = tf.variableGrads(() => {
        const r = this.model.forward(x, { training: true, freezeBatchNorm: this.options.freezeBatchNorm, seed: (this.options.seed ?? 0) * 1_000_003 + this.step * 7919 });
        bnUpdates = r.bnUpdates;
        // Kept for the accuracy, which must stay off the gradient tape.
        logits = tf.keep(Object.values(r.outputs)[0]!);
        return crossEntropy(logits, y, logits.shape[1]!, this.options.labelSmoothing ?? 0) as ReturnType<typeof tf.scalar>;
      }, vars);
      const gs = this.names.map((n) => grads[this.model.variables.get(n)!.name]!);
      const norm = tf.sqrt(tf.addN(gs.map((g) => tf.sum(tf.square(g))))).dataSync()[0]!;
      const clip = this.options.clipGradNorm;
      const scale = clip && norm > clip ? clip / (norm + 1e-6) : 1;
      this.apply(gs.map((g) => (scale === 1 ? g : tf.mul(g, scale))), lr);
      return { loss: value.dataSync()[0]!, gradNorm: norm };
    });
    TfjsModel.applyBatchNormUpdates(bnUpdates);
    const correct = tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits!, -1), tf.tensor1d(labels, 'int32')), 'int32')).dataSync()[0]!);
    logits!.dispose();
    this.step++;
    return { loss, accuracy: correct / labels.length, lr, gradNorm };
  }

  private slots(name: string, count: number, like: tf.Variable): tf.Variable[] {
    let s = this.state.get(name);
    if (!s) {
      s = Array.from({ length: count }, () => tf.variable(tf.zerosLike(like), false));
      this.state.set(name, s);
    }
    return s;
  }

  private apply(grads: T[], lr: number): void {
    const o = this.options.optimizer;
    const t = this.step + 1;
    this.names.forEach((name, i) => {
      const w = this.model.variables.get(name)!;
      let g = grads[i]!;
      const wd = o.weightDecay ?? 0;
      switch (o.kind) {
        case 'sgd': {
          if (wd) g = tf.add(g, tf.mul(w, wd));
          const mom = o.momentum ?? 0;
          if (mom === 0) {
            w.assign(tf.sub(w, tf.mul(g, lr)));
            return;
          }
          const fresh = !this.state.has(name);
          const [buf] = this.slots(name, 1, w);
          // PyTorch: the first step's buffer is the gradient itself.
          buf!.assign(fresh ? g : tf.add(tf.mul(buf!, mom), g));
          const d = o.nesterov ? tf.add(g, tf.mul(buf!, mom)) : buf!;
          w.assign(tf.sub(w, tf.mul(d, lr)));
          return;
        }
        case 'adam':
        case 'adamw': {
          const b1 = o.beta1 ?? 0.9;
          const b2 = o.beta2 ?? 0.999;
          const eps = o.eps ?? 1e-8;
          if (o.kind === 'adam' && wd) g = tf.add(g, tf.mul(w, wd));
          const [m, v] = this.slots(name, 2, w);
          m!.assign(tf.add(tf.mul(m!, b1), tf.mul(g, 1 - b1)));
          v!.assign(tf.add(tf.mul(v!, b2), tf.mul(tf.square(g), 1 - b2)));
          const mhat = tf.div(m!, 1 - b1 ** t);
          const vhat = tf.div(v!, 1 - b2 ** t);
          let next = tf.sub(w, tf.mul(tf.div(mhat, tf.add(tf.sqrt(vhat), eps)), lr));
          if (o.kind === 'adamw' && wd) next = tf.sub(next, tf.mul(w, lr * wd));
          w.assign(next);
          return;
        }
        default:
          throw new EffnetError(`unknown optimizer ${(o as { kind: string }).kind}; use sgd, adam or adamw`);
      }
    });
  }

  dispose(): void {
    for (const s of this.state.values()) for (const v of s) v.dispose();
    this.state.clear();
  }
}

/** Writes every parameter and BatchNorm statistic under canonical names (safetensors), loadable by any backend. */
export async function saveWeights(model: TfjsModel, path: string, metadata: Record<string, string> = {}): Promise<TensorMap> {
  const weights = model.exportWeights();
  await writeSafetensors(path, weights, { format: 'pt', producer: 'effnet', ...metadata });
  return weights;
}
