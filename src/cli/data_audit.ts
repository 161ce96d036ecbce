// `pocovid data audit <dataset>`: parse options, run the audit (src/data/audit.ts), save and print it.
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { auditDataset, DEFAULT_MAX_DISTANCE, DEFAULT_SIMILAR_DISTANCE, DEFAULT_SIMILAR_SHARE, formatAudit } from '../data/audit.js';
import { writeJsonAtomicSync } from '../util/atomic.js';

const bits = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new InvalidArgumentError(`"${value}" is not an integer in 0..255`);
  return n;
};
const share = (value: string): number => {
  const n = Number(value);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError(`"${value}" is not a share in (0, 1]`);
  return n;
};

export function registerAudit(data: Command): void {
  data
    .command('audit')
    .description(
      'look for leakage across the folds of a dataset: patients in two folds, the same file under two names, near-duplicate frames ' +
        '(perceptual hash), unreadable frames; counts classes, sources and patients per fold. Exit code 1 when the folds leak',
    )
    .argument('<dataset>', 'dataset folder written by `pocovid data build`')
    .option('--out <file>', 'JSON report (default <dataset>/audit.json)')
    .option('--source <dir>', "the folder the dataset was built from, for the same-file check (default: dataset.json's, when found)")
    .option('--max-distance <bits>', 'frames at most this many of 255 hash bits apart are near-duplicates', bits, DEFAULT_MAX_DISTANCE)
    .option('--similar-distance <bits>', 'looser distance for reporting similar sources', bits, DEFAULT_SIMILAR_DISTANCE)
    .option('--similar-share <f>', "share of the shorter source's frames that must have a similar partner", share, DEFAULT_SIMILAR_SHARE)
    .option('--json', 'print the JSON report instead of text')
    .option('--quiet', 'no progress output')
    .action(async (dataset: string, o: { out?: string; source?: string; maxDistance: number; similarDistance: number; similarShare: number; json?: boolean; quiet?: boolean }) => {
      const report = await auditDataset(dataset, { maxDistance: o.maxDistance, similarDistance: o.similarDistance, similarShare: o.similarShare, quiet: o.quiet, ...(o.source !== undefined ? { source: o.source } : {}) });
      const out = o.out ?? join(dataset, 'audit.json');
      writeJsonAtomicSync(out, report);
      console.log(o.json ? JSON.stringify(report, null, 2) : `${formatAudit(report)}\nreport: ${out}`);
      process.exitCode = report.leaking ? 1 : 0;
    });
}
