import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { buildEfficientNet, checkLoss, classificationLoss, InvalidSpecError, learningRate, specFor } from './index.js';

describe('learningRate', () => {
  it('schedules: warmup + cosine, step, constant', () => {
    const cos = { kind: 'cosine', totalSteps: 100, warmupSteps: 10, minLr: 0 } as const;
    expect(learningRate(1, cos, 0)).toBeCloseTo(0.1);
    expect(learningRate(1, cos, 9)).toBeCloseTo(1);
    expect(learningRate(1, cos, 55)).toBeCloseTo(0.5);
    expect(learningRate(1, cos, 100)).toBeCloseTo(0);
    expect(learningRate(1, { kind: 'step', stepSize: 10, gamma: 0.5 }, 25)).toBeCloseTo(0.25);
    expect(learningRate(0.3, { kind: 'constant' }, 1e6)).toBe(0.3);
  });

  test.prop([fc.double({ min: 1e-6, max: 1, noNaN: true }), fc.integer({ min: 1, max: 500 }), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 1000 })])(
    'cosine never leaves [minLr, base] and ends at minLr',
    (base, total, warm, step) => {
      const s = { kind: 'cosine', totalSteps: total + warm, warmupSteps: warm, minLr: base / 10 } as const;
      const lr = learningRate(base, s, step);
      expect(lr).toBeLessThanOrEqual(base * (1 + 1e-12));
      if (step >= warm) expect(lr).toBeGreaterThanOrEqual((base / 10) * (1 - 1e-12));
      expect(learningRate(base, s, total + warm)).toBeCloseTo(base / 10, 12);
    },
  );
});

describe('loss specs', () => {
  const g = buildEfficientNet(specFor('efficientnet_phi-3'), { numClasses: 4, inputResolution: 32 });
  it('classification reads the first output and int64 labels', () => {
    const loss = classificationLoss(g, { labelSmoothing: 0.1 });
    expect(loss.terms).toEqual([{ kind: 'softmaxCrossEntropy', output: g.outputs[0], target: 'labels', labelSmoothing: 0.1 }]);
    expect(() => checkLoss(g, loss)).not.toThrow();
  });
  it('names an unknown output, an undeclared target and a bad smoothing', () => {
    expect(() => checkLoss(g, { targets: [], terms: [{ kind: 'softmaxCrossEntropy', output: 'nope', target: 'labels' }] })).toThrow(/nope/);
    expect(() => checkLoss(g, { targets: [], terms: [{ kind: 'softmaxCrossEntropy', output: g.outputs[0]!, target: 'labels' }] })).toThrow(/labels/);
    expect(() => classificationLoss(g, { labelSmoothing: 1 })).toThrow(InvalidSpecError);
  });
});
