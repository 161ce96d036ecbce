// What an input file must be to be decoded, whoever reads it (`data build`, predict, serve, export's
// calibration frames): its type is taken from its bytes (sniffFile in sniff.ts), never from its
// name, and an image larger than MAX_IMAGE_PIXELS is refused before it is decoded. One rule, so
// that a file a dataset was built from is a file predict accepts, and the other way round.
import { BadInputError } from '../errors.js';

/**
 * The largest still image decoded (8192×8192, 64 Mpx, ~200 MB as 8-bit RGB). Video frames and
 * DICOM frames (a single-frame DICOM file included): DEFAULT_LIMITS.maxPixels, in ffmpeg.ts and
 * dicom.ts, the same for every reader too.
 */
export const MAX_IMAGE_PIXELS = 8192 * 8192;

/** Throws a BadInputError naming `name` when a width×height image is over MAX_IMAGE_PIXELS. */
export function checkImagePixels(name: string, width: number, height: number): void {
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new BadInputError(name, `image of ${width}×${height} pixels is over the limit of ${MAX_IMAGE_PIXELS.toLocaleString('en')} pixels (8192×8192)`);
  }
}
