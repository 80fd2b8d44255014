import { EffnetError } from '@effnet/core';

/** The image formats `decodeImage` reads. */
export const SUPPORTED_IMAGE_FORMATS = ['jpeg', 'png', 'webp'] as const;
export type ImageFormat = (typeof SUPPORTED_IMAGE_FORMATS)[number];

/**
 * Why an image could not be decoded:
 * - `unreadable`: the file could not be read (missing, a directory, no permission);
 * - `unsupported`: the bytes are not JPEG, PNG or WebP;
 * - `corrupt`: a JPEG, PNG or WebP that is truncated or damaged;
 * - `too-large`: more pixels than the decoder's safety limit.
 */
export type ImageDecodeFailure = 'unreadable' | 'unsupported' | 'corrupt' | 'too-large';

/** An image that cannot be turned into RGB pixels. Names the file, says what was wrong and what would fix it. */
export class ImageDecodeError extends EffnetError {
  override name = 'ImageDecodeError';
  constructor(
    /** The path, or the name given for in-memory bytes. */
    readonly file: string,
    readonly failure: ImageDecodeFailure,
    /** What went wrong, in words (the decoder's own message where there is one). */
    readonly detail: string,
    /** The format recognised from the file's first bytes, when there is one. */
    readonly format?: string,
  ) {
    super(`cannot decode image ${file}: ${detail}; ${ImageDecodeError.fix(failure)}`);
  }

  private static fix(failure: ImageDecodeFailure): string {
    switch (failure) {
      case 'unreadable':
        return 'check the path and its permissions';
      case 'unsupported':
        return `supported formats are ${SUPPORTED_IMAGE_FORMATS.map((f) => f.toUpperCase()).join(', ').replace('WEBP', 'WebP')}; convert the file to one of them`;
      case 'corrupt':
        return 'the file is truncated or damaged: download or export it again (supported formats are JPEG, PNG, WebP)';
      case 'too-large':
        return 'downscale it before classifying (the limit is 268402689 pixels, 0x3FFF x 0x3FFF)';
    }
  }
}
