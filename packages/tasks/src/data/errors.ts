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

/** Files that could not be written are core's OutputFileError (one class for every package). */
export { OutputFileError } from '@effnet/core';
