/**
 * Classification metrics with scikit-learn's conventions (`confusion_matrix`, `classification_report` with
 * `labels=range(numClasses)` and `zero_division=0`): rows of the confusion matrix are true classes, columns
 * predicted ones; a ratio whose denominator is zero is 0; every class counts in the macro and weighted
 * averages, including classes absent from both yTrue and yPred (pass only the classes you want averaged).
 */
import { MetricsInputError } from './errors.js';

export interface ClassMetrics {
  class: string;
  precision: number;
  recall: number;
  f1: number;
  /** Number of true samples of the class. */
  support: number;
}

export interface AveragedMetrics {
  precision: number;
  recall: number;
  f1: number;
}

export interface ClassificationReport {
  /** Correct predictions over all predictions (trace / total of the confusion matrix). */
  accuracy: number;
  perClass: ClassMetrics[];
  /** Unweighted mean over classes. */
  macro: AveragedMetrics;
  /** Mean over classes weighted by support. */
  weighted: AveragedMetrics;
  /** confusion[t][p]: samples of true class t predicted as p. */
  confusion: number[][];
  /** Number of samples. */
  total: number;
}

function checkLabels(name: string, labels: ArrayLike<number>, numClasses: number): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
      throw new MetricsInputError(
        name,
        `element ${i} is ${v}, not a class index in [0, ${numClasses}); pass integer class indices (argmax of the logits), ` +
          'and as many class names as the model has outputs',
      );
    }
  }
}

/** confusion[t][p] = number of samples with true class t and predicted class p, for classes 0..numClasses-1. */
export function confusionMatrix(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, numClasses: number): number[][] {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new MetricsInputError('numClasses', `${numClasses} is not a positive integer`);
  }
  if (yTrue.length !== yPred.length) {
    throw new MetricsInputError(
      'yPred',
      `has ${yPred.length} labels but yTrue has ${yTrue.length}; pass one prediction per true label`,
    );
  }
  checkLabels('yTrue', yTrue, numClasses);
  checkLabels('yPred', yPred, numClasses);
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < yTrue.length; i++) m[yTrue[i]!]![yPred[i]!]! += 1;
  return m;
}

/** a / b, or 0 when b is 0 (scikit-learn's zero_division=0). */
function ratio(a: number, b: number): number {
  return b === 0 ? 0 : a / b;
}

/** Precision, recall, F1 and support per class, their macro and weighted means, accuracy and the confusion matrix. */
export function classificationReport(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  classNames: readonly string[],
): ClassificationReport {
  const k = classNames.length;
  if (k === 0) throw new MetricsInputError('classNames', 'is empty; pass one name per class');
  if (yTrue.length === 0) throw new MetricsInputError('yTrue', 'is empty; metrics need at least one sample');
  const confusion = confusionMatrix(yTrue, yPred, k);
  const total = yTrue.length;
  let correct = 0;
  const perClass: ClassMetrics[] = [];
  for (let c = 0; c < k; c++) {
    const row = confusion[c]!;
    const tp = row[c]!;
    correct += tp;
    const support = row.reduce((s, v) => s + v, 0);
    let predicted = 0;
    for (let t = 0; t < k; t++) predicted += confusion[t]![c]!;
    const fp = predicted - tp;
    const fn = support - tp;
    perClass.push({
      class: classNames[c]!,
      precision: ratio(tp, predicted),
      recall: ratio(tp, support),
      // 2tp / (2tp + fp + fn): the harmonic mean of precision and recall, and 0 where both are 0.
      f1: ratio(2 * tp, 2 * tp + fp + fn),
      support,
    });
  }
  const mean = (key: keyof AveragedMetrics): number => perClass.reduce((s, m) => s + m[key], 0) / k;
  const weightedMean = (key: keyof AveragedMetrics): number => ratio(perClass.reduce((s, m) => s + m[key] * m.support, 0), total);
  return {
    accuracy: correct / total,
    perClass,
    macro: { precision: mean('precision'), recall: mean('recall'), f1: mean('f1') },
    weighted: { precision: weightedMean('precision'), recall: weightedMean('recall'), f1: weightedMean('f1') },
    confusion,
    total,
  };
}
