// `pocovid data build | audit | refold | phantom | fetch`: parse options, call src/data, print a summary.
import { refoldDataset } from '../data/refold.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { buildDataset, type GroupBy } from '../data/build.js';
import { parseClassMap } from '../data/layouts.js';
import { registerAudit } from './data_audit.js';
import { DEFAULT_POCUS_URL, fetchPocusData } from '../data/fetch.js';
import { writePhantom } from '../data/phantom.js';
import { subsetDataset } from '../data/subset.js';
import type { Probe } from '../data/sources.js';
import type { ClassName } from '../data/types.js';

const list = (value: string): string[] => value.split(',').map((s) => s.trim()).filter(Boolean);
const int = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new Error(`not an integer: ${value}`);
  return n;
};

function registerBuild(data: Command): void {
  data
    .command('build')
    .description(
      'decode a source folder into PNG frames, manifest.csv and patient-grouped folds. Layouts: the POCUS repository data/ folder ' +
        '(pocus_videos/, pocus_images/, dataset_metadata.csv, crop.json); DIR/<class>/<files>; DIR/<class>/<patient>/<files>. ' +
        'Images, videos and DICOM files (recognised by their bytes, whatever the name); a DICOM Patient ID groups files as a salted hash, never in clear',
    )
    .requiredOption('--source <dir>', 'the POCUS data/ folder, or a folder with one sub-folder per class (and optionally per patient)')
    .requiredOption('--out <dir>', 'dataset folder to write (re-runs reuse finished sources)')
    .option('--fps <n>', 'frames per second kept from videos', Number, 3)
    .option('--max-frames <n>', 'at most this many frames per video', int, 30)
    .option('--size <n>', 'frame side in pixels', int, 224)
    .option('--probes <list>', 'POCUS layout: convex, linear or both', list, ['convex'])
    .option('--classes <list>', 'classes to take (covid, pneumonia, regular, viral)', list, ['covid', 'pneumonia', 'regular'])
    .option('--class-map <map>', 'class-folder layouts: folder names of the classes, e.g. covid=COVID-19,regular=Healthy (default: the class names, any case)')
    .option('--patient-salt <file>', 'secret salt for DICOM Patient ID pseudonyms (created if missing; default <out>/patient-salt; reuse it to rebuild with the same groups)')
    .option('--folds <k>', 'number of folds', int, 5)
    .option('--seed <n>', 'seed of the fold assignment', int, 0)
    .addOption(new Option('--group-by <what>', 'keep each patient (honest) or each video (original protocol) in one fold').choices(['patient', 'video']).default('patient'))
    .option('--crop <file>', 'crop.json (default: <source>/crop.json when present)')
    .option('--concurrency <n>', 'sources decoded at once', int, 2)
    .option('--quiet', 'no progress output')
    .action(async (o: { source: string; out: string; fps: number; maxFrames: number; size: number; probes: string[]; classes: string[]; classMap?: string; patientSalt?: string; folds: number; seed: number; groupBy: string; crop?: string; concurrency: number; quiet?: boolean }) => {
      const classes = o.classes as ClassName[];
      const result = await buildDataset({
        source: o.source,
        out: o.out,
        fps: o.fps,
        maxFrames: o.maxFrames,
        size: o.size,
        probes: o.probes as Probe[],
        classes,
        ...(o.classMap !== undefined ? { classMap: parseClassMap(o.classMap, classes) } : {}),
        ...(o.patientSalt !== undefined ? { patientSalt: o.patientSalt } : {}),
        folds: o.folds,
        seed: o.seed,
        groupBy: o.groupBy as GroupBy,
        crop: o.crop,
        concurrency: o.concurrency,
        quiet: o.quiet,
      });
      const { info } = result;
      console.log(`wrote ${result.rows.length} frames to ${o.out} (${result.decoded.length} sources decoded, ${result.reused.length} reused, ${info.skipped.length} skipped) in ${info.elapsedSeconds} s`);
      console.log(`fold  ${info.classes.map((c) => c.padStart(10)).join('')}`);
      for (const [fold, counts] of Object.entries(info.counts.perFold)) {
        console.log(`${fold.padStart(4)}  ${info.classes.map((c) => String(counts[c] ?? 0).padStart(10)).join('')}`);
      }
      console.log(`all   ${info.classes.map((c) => String(info.counts.perClass[c] ?? 0).padStart(10)).join('')}`);
      for (const s of info.skipped) console.log(`skipped ${s.source}: ${s.reason}`);
      for (const w of info.warnings ?? []) console.warn(`warning: ${w}`);
      if (info.patientPseudonyms) {
        console.log(`patients of ${info.patientPseudonyms.sources} DICOM file(s) from their Patient ID as salted hashes (salt: ${info.patientPseudonyms.saltFile}, fingerprint ${info.patientPseudonyms.saltFingerprint}; keep it private)`);
      }
    });
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`"${value}" is not a number > 0`);
  return n;
}

function registerPhantom(data: Command): void {
  data
    .command('phantom')
    .description('write a SYNTHETIC lung-ultrasound set (convex sector, speckle; A-lines / B-lines / consolidation) in the POCUS folder layout')
    .requiredOption('--out <dir>', 'folder to write (pocus_videos/, pocus_images/, dataset_metadata.csv, crop.json)')
    .option('--per-class <n>', 'videos per class', int, 6)
    .option('--images-per-class <n>', 'still images per class', int, 2)
    .option('--size <n>', 'frame side in pixels', int, 160)
    .option('--frames <n>', 'frames per video', int, 10)
    .option('--seed <n>', 'seed', int, 0)
    .option('--gain <factor>', 'another site: multiply every scene\'s gain', positiveNumber)
    .option('--sector <degrees>', 'another site: sector half-angle in degrees (default random 28–40)', positiveNumber)
    .option('--apex <sides>', 'another site: virtual apex this many frame sides above the image (default random 0.15–0.35; larger looks more linear)', positiveNumber)
    .option('--quiet', 'no progress output')
    .action(async (o: { out: string; perClass: number; imagesPerClass: number; size: number; frames: number; seed: number; gain?: number; sector?: number; apex?: number; quiet?: boolean }) => {
      const site = o.gain === undefined && o.sector === undefined && o.apex === undefined ? undefined : { gain: o.gain, sectorDegrees: o.sector, apex: o.apex };
      const result = await writePhantom({ out: o.out, perClass: o.perClass, imagesPerClass: o.imagesPerClass, size: o.size, frames: o.frames, seed: o.seed, site, quiet: o.quiet });
      console.log(`wrote a SYNTHETIC phantom to ${o.out}: ${result.videos.length} videos, ${result.images.length} images, ${result.patients} synthetic patients`);
    });
}

function registerSubset(data: Command): void {
  data
    .command('subset')
    .description('some folds of a built dataset as a dataset of their own (frames hard-linked), optionally re-split into new folds by patient: a simulated new site')
    .requiredOption('--data <dataset>', 'dataset folder written by `pocovid data build`')
    .requiredOption('--folds <list>', 'folds to keep, comma-separated')
    .requiredOption('--out <dir>', 'new dataset folder')
    .option('--refold <k>', 'split the kept rows into k new folds (grouped like the source, stratified by class); default: keep the folds, renumbered from 0', int)
    .option('--seed <n>', 'seed of --refold', int, 0)
    .action((o: { data: string; folds: string; out: string; refold?: number; seed: number }) => {
      const folds = o.folds.split(',').map((f) => int(f.trim()));
      const { info, rows } = subsetDataset({ data: o.data, folds, out: o.out, refold: o.refold, seed: o.seed });
      console.log(`wrote ${o.out}: ${rows.length} frames in ${info.folds} folds (${Object.entries(info.counts.perFold).map(([f, c]) => `fold ${f}: ${Object.values(c).reduce((a, b) => a + b, 0)}`).join(', ')})`);
    });
}

function registerFetch(data: Command): void {
  data
    .command('fetch')
    .description('download the public POCUS repository archive and extract its data/ folder')
    .requiredOption('--out <dir>', 'folder to receive the contents of data/')
    .option('--url <url>', 'archive URL (zip)', DEFAULT_POCUS_URL)
    .option('--archive <file>', 'use a local zip instead of downloading')
    .option('--keep-archive', 'keep the downloaded zip in <out>')
    .option('--quiet', 'no progress output')
    .action(async (o: { out: string; url: string; archive?: string; keepArchive?: boolean; quiet?: boolean }) => {
      const result = await fetchPocusData({ out: o.out, url: o.url, archive: o.archive, keepArchive: o.keepArchive, quiet: o.quiet });
      console.log(`extracted ${result.files} files (${(result.bytes / 2 ** 20).toFixed(1)} MiB) to ${result.out}; next: pocovid data build --source ${result.out} --out <dataset>`);
    });
}

function registerRefold(data: Command): void {
  data
    .command('refold')
    .description('the same frames in other folds (same grouping and fold count, another seed); frames are linked, not copied')
    .argument('<dataset>', 'dataset folder written by data build')
    .requiredOption('--out <dir>', 'folder to write (manifest.csv, dataset.json, frames → the original frames)')
    .requiredOption('--seed <n>', 'fold seed', int)
    .action((dataset: string, o: { out: string; seed: number }) => {
      const { info } = refoldDataset(dataset, o.out, o.seed);
      const perFold = Object.entries(info.counts.perFold).map(([f, c]) => `${f}: ${Object.values(c).reduce((a, b) => a + b, 0)}`);
      console.log(`wrote ${o.out}: ${info.folds} folds with seed ${o.seed} (frames per fold ${perFold.join(', ')})`);
    });
}

export function register(program: Command): void {
  const data = program.command('data').description('datasets: build frames and folds from videos, images and DICOM, audit folds for leakage, write the synthetic phantom, fetch the public POCUS data');
  registerBuild(data);
  registerPhantom(data);
  registerSubset(data);
  registerFetch(data);
  registerRefold(data);
  registerAudit(data);
}
