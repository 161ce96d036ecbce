// The dataset on disk, as written by `pocovid data build` and read by training and evaluation.

export type ClassName = 'covid' | 'pneumonia' | 'regular' | 'viral';
export const ALL_CLASSES: readonly ClassName[] = ['covid', 'pneumonia', 'regular', 'viral'];

/** One row of <dataset>/manifest.csv: one frame. */
export interface ManifestRow {
  /** PNG path relative to the dataset folder. */
  path: string;
  label: ClassName;
  /** Source video or image, relative to the source folder (e.g. pocus_videos/convex/Cov_x.mp4). */
  source: string;
  /** Patient id from dataset_metadata.csv, else the source itself. */
  patient: string;
  /** Probe folder of the POCUS layout; 'unknown' for sources from class folders. */
  probe: 'convex' | 'linear' | 'unknown';
  kind: 'video' | 'image';
  /** Frame index within the source (0 for images). */
  frame: number;
  /** Time in seconds within the source (0 for images). */
  time: number;
  /** Fold index 0..k-1. */
  fold: number;
}

/** <dataset>/dataset.json */
export interface DatasetInfo {
  /** Resolved options of the build (source, fps, maxFrames, size, probes, classes, folds, seed, groupBy, crop). */
  options: Record<string, unknown>;
  classes: ClassName[];
  folds: number;
  counts: { perClass: Record<string, number>; perFold: Record<string, Record<string, number>> };
  tools: Record<string, string>;
  skipped: { source: string; reason: string }[];
  /** True when built from the synthetic phantom (never real patients). */
  synthetic?: boolean;
  /** Sources (videos/images) per class and per fold, and groups (patients or videos) per fold. */
  sourceCounts?: {
    perClass: Record<string, number>;
    perFold: Record<string, Record<string, number>>;
    groupsPerFold: Record<string, number>;
  };
  /** Problems that did not skip a source (e.g. an ignored crop.json entry). */
  warnings?: string[];
  /** Wall time of the build run that wrote this file. */
  elapsedSeconds?: number;
  /** Which source layout was read (layouts.ts). */
  layout?: 'pocus' | 'class-folders';
  /** How DICOM Patient IDs became the `patient` column (patient_key.ts): never the IDs or the salt. */
  patientPseudonyms?: { method: string; saltFile: string; saltFingerprint: string; sources: number };
}
