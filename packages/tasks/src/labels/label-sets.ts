import { EffnetError } from '@effnet/core';
import { SCENE_CLASSES } from '../data/scenes.js';
import { SHAPE_CLASSES } from '../data/shapes.js';
import { COCO_90_LABELS } from './coco-90.js';
import { IMAGENET_LABELS } from './imagenet-1k.js';

export { COCO_90_LABELS, IMAGENET_LABELS };

/** Label sets known by name (a registry entry's `labels` field). */
export const LABEL_SETS: Readonly<Record<string, readonly string[]>> = Object.freeze({ 'imagenet-1k': IMAGENET_LABELS, 'effnet-shapes': SHAPE_CLASSES, 'effnet-shapes-seg': SCENE_CLASSES, 'coco-90': COCO_90_LABELS });

/** A label set name effnet has no class names for. */
export class UnknownLabelSetError extends EffnetError {
  override name = 'UnknownLabelSetError';
  constructor(readonly labelSet: string) {
    super(
      `no class names for label set "${labelSet}" (known: ${Object.keys(LABEL_SETS).join(', ')}); ` +
        'pass the class names yourself as an array of strings, in class-index order',
    );
  }
}

/**
 * Class names for a label set: a known name (`'imagenet-1k'`) or your own list, returned as is.
 *
 * @throws UnknownLabelSetError for a name with no built-in list (e.g. `'imagenet-12k'`)
 */
export function labelsFor(set: 'imagenet-1k' | (string & {}) | readonly string[]): readonly string[] {
  if (typeof set !== 'string') return set;
  if (!Object.hasOwn(LABEL_SETS, set)) throw new UnknownLabelSetError(set);
  return LABEL_SETS[set]!;
}
