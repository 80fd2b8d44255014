import { EffnetError } from '@effnet/core';

/** An ImageFolder tree that cannot be read as `root/<class>/<image>`. Names the path and what would fix it. */
export class ImageFolderError extends EffnetError {
  override name = 'ImageFolderError';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`image folder "${path}": ${reason}`);
  }
}

/** A file that could not be written (dataset image, rendered picture). Names the file and the cause. */
export class OutputFileError extends EffnetError {
  override name = 'OutputFileError';
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`cannot write "${file}": ${reason}`);
  }
}
