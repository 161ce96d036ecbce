// The check `pocovid cv` runs before training: the dataset's folds are audited (src/data/audit.ts)
// and a leaking dataset is refused, since every number cv reports would be optimistic. With
// --allow-leakage it runs anyway, says so loudly on stderr, and <run>/audit.json keeps the record.
import { join } from 'node:path';
import { auditDataset, formatAudit } from '../data/audit.js';
import { PocovidError } from '../errors.js';
import { writeJsonAtomicSync } from '../util/atomic.js';

export async function auditBeforeCrossValidation(data: string, out: string, allowLeakage: boolean, quiet = false): Promise<void> {
  const report = await auditDataset(data, { quiet });
  writeJsonAtomicSync(join(out, 'audit.json'), { ...report, allowLeakage });
  if (!report.leaking) return;
  const findings = formatAudit(report, 10);
  if (!allowLeakage) {
    throw new PocovidError(
      `${data}: the folds leak, so cross-validation would report optimistic results.\n${findings}\n` +
        'Rebuild the dataset grouped by patient and remove the copies, or pass --allow-leakage to run anyway (recorded in <run>/audit.json).',
    );
  }
  const rule = '!'.repeat(78);
  console.error(`${rule}\nWARNING: --allow-leakage: the folds of ${data} LEAK; every result of this run is optimistic.\n${findings}\nRecorded in ${join(out, 'audit.json')}.\n${rule}`);
}
