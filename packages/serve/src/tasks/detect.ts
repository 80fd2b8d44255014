/**
 * `POST /v2/models/{name}/detect`: an image (JPEG, PNG or WebP) in the body, boxes out (`?score=0.4&max=100&nms=hard`).
 * The image is letterboxed and the boxes post-processed exactly as `effnet detect` and `Detector.detect` do: the
 * handler is a Detector whose runner is the served model's batcher, so concurrent requests share batches.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { InvalidSpecError, parseNumber, type Runner } from '@effnet/core';
import type { Detector } from '@effnet/tasks';
import { BadRequestError } from '../errors.js';
import type { ServedModel } from '../model.js';
import type { TaskHandler } from '../tasks.js';
import { checkImageBody } from './classify.js';

const detectors = new WeakMap<ServedModel, Detector>();
/** The abort signal of the request being handled, wherever its awaits lead (one Detector serves every request). */
const requestSignal = new AsyncLocalStorage<AbortSignal>();

/** The model's batcher as a Runner: a request's rows go in, this request's rows of every output come out. */
function batcherRunner(model: ServedModel): Runner {
  return {
    device: 'served',
    notes: [],
    async run(input) {
      const out = await model.infer({ shape: input.shape, data: input.data as Float32Array }, requestSignal.getStore());
      return Object.fromEntries(Object.entries(out).map(([name, r]) => [name, { dtype: 'float32' as const, shape: r.shape, data: r.data }]));
    },
    dispose() {},
  };
}

function queryNumber(query: URLSearchParams, name: string, rule: Parameters<typeof parseNumber>[2]): number | undefined {
  const v = query.get(name);
  if (v === null) return undefined;
  try {
    return parseNumber(name, v, rule);
  } catch (e) {
    if (e instanceof InvalidSpecError) throw new BadRequestError(`query parameter ${e.message}`);
    throw e;
  }
}

export const detectHandler: TaskHandler = {
  task: 'detect',
  async handle({ model, body, query, contentType, signal }) {
    const { Detector, detectorLabels, ImageDecodeError } = await import('@effnet/tasks');
    checkImageBody('detect', body, contentType);
    const score = queryNumber(query, 'score', { min: 0, max: 1 }) ?? 0.4;
    const maxDetections = queryNumber(query, 'max', { integer: true, min: 1, max: 10_000 }) ?? 100;
    const nms = query.get('nms') ?? 'hard';
    if (nms !== 'hard' && nms !== 'soft') throw new BadRequestError(`query parameter nms: "${nms}" is not hard or soft`);
    let detector = detectors.get(model);
    if (!detector) {
      detector = new Detector(batcherRunner(model), model.weights, detectorLabels(model.weights, undefined), () => {});
      detectors.set(model, detector);
    }
    const d = detector;
    try {
      const { results } = await requestSignal.run(signal, () => d.detect([{ source: body, name: 'the request body' }], { score, maxDetections, nms, batchSize: 1 }));
      const r = results[0]!;
      return { model_name: model.name, model_version: model.version, width: r.width, height: r.height, detections: r.detections };
    } catch (e) {
      if (e instanceof ImageDecodeError) throw new BadRequestError(e.message);
      throw e;
    }
  },
};
