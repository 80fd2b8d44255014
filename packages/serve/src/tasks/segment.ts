/**
 * `POST /v2/models/{name}/segment`: an image (JPEG, PNG or WebP) in the body; out, the class of every pixel at the
 * image's own size as a grey index PNG (base64), the classes in index order and the area each covers. The image is
 * resized and normalised as `Segmenter.segment` does (the same `predictMasks`), its rows going through the model's
 * batcher so that concurrent requests share batches.
 */
import { float32Tensor } from '@effnet/core';
import { BadRequestError } from '../errors.js';
import type { TaskHandler } from '../tasks.js';
import { checkImageBody } from './classify.js';

export const segmentHandler: TaskHandler = {
  task: 'segment',
  async handle({ model, body, contentType, signal }) {
    const { decodeImage, encodeIndexPng, ImageDecodeError, maskAreas, predictMasks, segmenterClasses } = await import('@effnet/tasks');
    checkImageBody('segment', body, contentType);
    let image;
    try {
      image = await decodeImage(body, 'the request body');
    } catch (e) {
      if (e instanceof ImageDecodeError) throw new BadRequestError(e.message);
      throw e;
    }
    const w = model.weights;
    const size = w.graph.inputs[0]!.height ?? w.preprocessing.inputSize;
    const run = async (x: { shape: number[]; data: unknown }) => {
      const out = await model.infer({ shape: x.shape, data: x.data as Float32Array }, signal);
      return Object.fromEntries(Object.entries(out).map(([name, r]) => [name, float32Tensor(r.shape, r.data)]));
    };
    const [mask] = await predictMasks(run, [image], { preprocessing: w.preprocessing, size, batchSize: 1 });
    const classes = segmenterClasses(w);
    return {
      model_name: model.name,
      model_version: model.version,
      width: image.width,
      height: image.height,
      classes,
      areas: maskAreas(mask!, classes),
      mask_png: encodeIndexPng({ data: mask!, width: image.width, height: image.height }).toString('base64'),
    };
  },
};
