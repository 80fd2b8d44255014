/** `POST /v2/models/{name}/classify`: an image (JPEG, PNG or WebP) in the body, the top-k labels out (`?topk=5`). */
import { InvalidSpecError, parseNumber } from '@effnet/core';
import type { ModelWeights } from '@effnet/tasks';
import { BadRequestError, UnsupportedMediaTypeError } from '../errors.js';
import type { ServedModel } from '../model.js';
import type { TaskHandler } from '../tasks.js';

const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'application/octet-stream'];

const labelCache = new WeakMap<ServedModel, readonly string[]>();

/** Class names: a checkpoint's own, the zoo entry's label set when effnet knows it, else "class i". */
function labelsOf(model: ServedModel, labelsOrIndices: (set: string, n: number) => readonly string[]): readonly string[] {
  let labels = labelCache.get(model);
  if (!labels) {
    const classes = model.outputs[0]!.shape[1]!;
    const w: ModelWeights = model.weights;
    labels = w.classes?.length === classes ? w.classes : labelsOrIndices(w.labels ?? '', classes);
    labelCache.set(model, labels);
  }
  return labels;
}

/** An image endpoint's body: an image content type (or none, or octet-stream) and some bytes. */
export function checkImageBody(task: string, body: Uint8Array, contentType: string | undefined): void {
  const type = contentType?.split(';')[0]!.trim().toLowerCase();
  if (type && !IMAGE_TYPES.includes(type)) throw new UnsupportedMediaTypeError(`the ${task} endpoint reads an image body (${IMAGE_TYPES.join(', ')}), got Content-Type ${type}`);
  if (body.length === 0) throw new BadRequestError(`the ${task} endpoint needs an image (JPEG, PNG or WebP) as the request body; the body is empty`);
}

export const classifyHandler: TaskHandler = {
  task: 'classify',
  async handle({ model, body, query, contentType, signal }) {
    // Imported here: importing @effnet/serve (for its defaults, by the CLI) stays light.
    const { ImageDecodeError, labelsOrIndices, preprocessBatch, softmax, topK } = await import('@effnet/tasks');
    const labels = labelsOf(model, labelsOrIndices);
    checkImageBody('classify', body, contentType);
    let k = 5;
    const topk = query.get('topk');
    try {
      if (topk !== null) k = parseNumber('topk', topk, { integer: true, min: 1, max: labels.length });
    } catch (e) {
      if (e instanceof InvalidSpecError) throw new BadRequestError(`query parameter ${e.message}`);
      throw e;
    }
    let batch;
    try {
      batch = await preprocessBatch([{ source: body, name: 'the request body' }], model.weights.preprocessing);
    } catch (e) {
      if (e instanceof ImageDecodeError) throw new BadRequestError(e.message);
      throw e;
    }
    const t = batch.tensor;
    const out = await model.infer({ shape: t.shape, data: t.data as Float32Array }, signal);
    const logits = out[model.outputs[0]!.name]!;
    const probs = softmax(logits.data, labels.length);
    const top = topK(probs, k, { labels })[0]!;
    return { model_name: model.name, model_version: model.version, top: top.map((e) => ({ label: e.label, index: e.index, prob: e.prob })) };
  },
};
