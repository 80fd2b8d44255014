import { EffnetError } from '@effnet/core';

/**
 * A COCO annotations or results file (or object) that cannot be used as given. Names the source (a file name, or
 * `ground truth` / `detections` for in-memory objects), the entry at fault and what would fix it.
 */
export class CocoFormatError extends EffnetError {
  override name = 'CocoFormatError';
  constructor(
    /** The file (or a name for an in-memory object). */
    readonly source: string,
    /** The entry at fault, e.g. `annotations[12] (id 57)`; empty for the whole file. */
    readonly entry: string,
    readonly reason: string,
  ) {
    super(`${source}: ${entry ? `${entry}: ` : ''}${reason}`);
  }
}

/** A detection dataset directory (annotations plus images) that cannot be read. Names the path and what would fix it. */
export class DetectionDatasetError extends EffnetError {
  override name = 'DetectionDatasetError';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`detection dataset "${path}": ${reason}`);
  }
}
