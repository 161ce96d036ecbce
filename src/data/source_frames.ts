// One source file of `data build` → its frames, whatever its bytes say it is (the type sniffed in
// layouts.ts): a video (ffmpeg), a still image (sharp; BMP through ffmpeg, as predict reads it) or
// a DICOM file (our decoder; a single image or a cine loop, sampled like a video).
// For DICOM it also gives the Patient ID's pseudonym (never the ID) and what the header says
// about timing and burned-in text, for the build's warnings.
import type { CropSpec } from './crop.js';
import { decodeImage } from './image.js';
import type { LimitOptions } from '../media/ffmpeg.js';
import { decodeDicomFrames, type DicomInfo } from '../media/dicom_frames.js';
import type { SniffedType } from '../media/sniff.js';
import { decodeVideoFrames } from '../media/video.js';

export interface SourceFrame {
  rgb: Uint8Array;
  width: number;
  height: number;
  /** Native frame number (0 for images). */
  frame: number;
  /** Seconds from the start (0 for images). */
  time: number;
}

export interface SourceFrames {
  kind: 'video' | 'image';
  frames: SourceFrame[];
  /** DICOM only: the header facts the build reports (pseudonym included when asked for). */
  dicom?: Pick<DicomInfo, 'fpsSource' | 'burnedInAnnotation' | 'frameCount' | 'transferSyntax'> & { patient?: string };
}

export interface SourceDecodeOptions extends LimitOptions {
  fps: number;
  maxFrames: number;
  size: number;
  crop?: CropSpec;
  /** DICOM: the salted hash for the Patient ID; absent when the patient is already known. */
  pseudonymize?: (issuerAndId: string) => string;
}

export async function decodeSourceFrames(path: string, type: SniffedType, options: SourceDecodeOptions): Promise<SourceFrames> {
  const { fps, maxFrames, size, crop } = options;
  const limits = { timeoutMs: options.timeoutMs, maxBytes: options.maxBytes };
  if (type.format === 'dicom') {
    const { info, frames } = await decodeDicomFrames(path, { fps, maxFrames, size, crop, maxPixels: options.maxPixels, ...(options.pseudonymize ? { pseudonymize: options.pseudonymize } : {}) });
    return {
      kind: info.frameCount > 1 ? 'video' : 'image',
      frames: frames.map((f) => ({ rgb: f.rgb, width: f.width, height: f.height, frame: f.sourceFrame, time: info.frameCount > 1 ? f.time : 0 })),
      dicom: {
        fpsSource: info.fpsSource,
        burnedInAnnotation: info.burnedInAnnotation,
        frameCount: info.frameCount,
        transferSyntax: info.transferSyntax,
        ...(info.patient !== undefined ? { patient: info.patient } : {}),
      },
    };
  }
  if (type.kind === 'video') {
    const { frames } = await decodeVideoFrames(path, { fps, maxFrames, size, crop, type, ...limits });
    return { kind: 'video', frames: frames.map((f) => ({ rgb: f.rgb, width: f.width, height: f.height, frame: f.sourceFrame, time: f.time })) };
  }
  // BMP is decoded by ffmpeg (sharp cannot read it), as predict decodes it.
  const image = type.demuxer ? (await decodeVideoFrames(path, { fps: 1, maxFrames: 1, size, crop, type, ...limits })).frames[0]! : await decodeImage(path, size, crop);
  return { kind: 'image', frames: [{ rgb: image.rgb, width: image.width, height: image.height, frame: 0, time: 0 }] };
}
