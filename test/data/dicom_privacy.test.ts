// DICOM from end to end, with identifying tags in every file: `data build` (frames, frame rate,
// grouping by the salted Patient ID, the same groups on a rebuild), `data audit`, `predict` and
// the server; then every file written and every answer is searched for the identifying values.
import { createHmac } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { openDataset } from '../../src/data/dataset.js';
import type { DatasetInfo, ManifestRow } from '../../src/data/types.js';
import { initEngine } from '../../src/engine/index.js';
import { saveModelDir } from '../../src/infer/model_dir.js';
import { createServer, type PocovidServer } from '../../src/serve/server.js';
import { IDENTIFYING, timing, writeDicom, type DicomSpec } from '../helpers/dicom_writer.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../infer/tiny_model.js';
import { tempDir } from './helpers.js';

const SIZE = 32;
const PIXELS = SIZE * SIZE;
const PATIENT_IDS = { A: 'MRN-77341902', B: 'MRN-55510001', C: 'MRN-55510002', D: 'MRN-55510003', E: 'MRN-55510004' } as const;
/** Every value that must never come out: the identifying tags, each Patient ID, and the name's parts. */
const SECRETS = [...Object.values(IDENTIFYING), ...Object.values(PATIENT_IDS), 'Elsewhere', 'Wallaby', 'Gregory'];

const greyFrame = (k: number) => Uint8Array.from({ length: PIXELS }, (_, i) => (i * 5 + k * 37 + (i % SIZE) * 3) % 256);

let root: string;
let cleanup: () => void;
let source: string;
let server: PocovidServer | undefined;
/** Everything printed or answered, to be searched at the end. */
const answers: string[] = [];

async function dicom(path: string, spec: Partial<DicomSpec> & Pick<DicomSpec, 'syntax' | 'frames'>, patient?: keyof typeof PATIENT_IDS): Promise<Uint8Array> {
  const bytes = await writeDicom({ rows: SIZE, columns: SIZE, identifying: patient ? { PatientID: PATIENT_IDS[patient] } : { PatientID: undefined as never }, ...spec });
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, bytes);
  return bytes;
}

async function cli(args: string[]): Promise<{ out: string; err: string; code: number }> {
  const out: string[] = [];
  const err: string[] = [];
  const spies = [
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' '))),
    vi.spyOn(console, 'warn').mockImplementation((...a: unknown[]) => void err.push(a.join(' '))),
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' '))),
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true)),
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (err.push(String(chunk)), true)),
  ];
  try {
    process.exitCode = 0;
    await main(['node', 'pocovid', ...args]);
    answers.push(...out, ...err);
    return { out: out.join('\n'), err: err.join('\n'), code: Number(process.exitCode ?? 0) };
  } finally {
    for (const spy of spies) spy.mockRestore();
    process.exitCode = 0;
  }
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => join(dir, f)).filter((f) => statSync(f).isFile());
}

function expectNoSecrets(what: string, text: string | Buffer): void {
  const haystack = typeof text === 'string' ? text : text.toString('latin1');
  for (const secret of SECRETS) {
    if (haystack.toLowerCase().includes(secret.toLowerCase())) throw new Error(`${what} contains the identifying value "${secret}"`);
  }
}

beforeAll(async () => {
  ({ dir: root, cleanup } = tempDir('dicom-privacy'));
  source = join(root, 'export');
  const frames20 = Array.from({ length: 20 }, (_, k) => greyFrame(k));
  // Patient A: a cine loop without an extension, a JPEG loop, and a follow-up under "regular".
  await dicom(join(source, 'covid', 'IM0001'), { syntax: 'explicit-le', frames: frames20, extra: [timing.frameTime(100)] }, 'A');
  await dicom(join(source, 'covid', 'IM0002.dcm'), { syntax: 'jpeg', frames: frames20.slice(0, 6), extra: [timing.cineRate(6)] }, 'A');
  await dicom(join(source, 'regular', 'IM0004'), { syntax: 'rle', frames: [greyFrame(50)] }, 'A');
  // Other patients, one file each; one file without a Patient ID.
  await dicom(join(source, 'covid', 'IM0010'), { syntax: 'implicit-le', frames: frames20.slice(0, 4), extra: [timing.frameTimeVector([0, 250, 250, 250])] }, 'B');
  await dicom(join(source, 'regular', 'IM0003'), { syntax: 'rle', frames: [greyFrame(7)], extra: [{ tag: [0x0028, 0x0301], vr: 'CS', value: 'YES' }] }, 'C');
  await dicom(join(source, 'regular', 'IM0005'), { syntax: 'explicit-le', frames: [greyFrame(8)] });
  await dicom(join(source, 'pneumonia', 'IM0006'), { syntax: 'deflated', frames: frames20.slice(0, 3) }, 'D');
  await dicom(join(source, 'pneumonia', 'IM0007'), { syntax: 'explicit-be', frames: [greyFrame(9)] }, 'E');
  // Things a PACS export holds that are not images, and broken files.
  await dicom(join(source, 'pneumonia', 'DICOMDIR'), { syntax: 'explicit-le', frames: [new Uint8Array(PIXELS)], sopClass: '1.2.840.10008.1.3.10' }, 'D');
  const whole = await dicom(join(source, 'covid', 'IM0008'), { syntax: 'explicit-le', frames: frames20.slice(0, 5) }, 'B');
  writeFileSync(join(source, 'covid', 'IM0008'), whole.subarray(0, whole.length - 1500));
  const j2k = Buffer.from(await writeDicom({ syntax: 'jpeg', rows: SIZE, columns: SIZE, frames: [greyFrame(1)], identifying: { PatientID: PATIENT_IDS.C } }));
  j2k.write('1.2.840.10008.1.2.4.91', j2k.indexOf('1.2.840.10008.1.2.4.50'), 'latin1');
  writeFileSync(join(source, 'regular', 'IM0009'), j2k);
  await initEngine();
});

afterAll(async () => {
  await server?.close();
  cleanup();
});

describe('DICOM sources', () => {
  let rows: ManifestRow[];
  let info: DatasetInfo;
  const out = () => join(root, 'ds');

  it('data build: frames sampled by the video rule, patients from salted Patient IDs, broken files skipped with reasons', async () => {
    const run = await cli(['data', 'build', '--source', source, '--out', out(), '--size', String(SIZE), '--fps', '3', '--folds', '2']);
    expect(run.code).toBe(0);
    ({ rows, info } = openDataset(out()));
    const bySource = (s: string) => rows.filter((r) => r.source === s);
    // 20 frames at Frame Time 100 ms = 10 fps; 3 fps keeps every 3rd: 0, 3, ..., 18.
    expect(bySource('covid/IM0001').map((r) => [r.frame, r.time, r.kind])).toEqual([0, 3, 6, 9, 12, 15, 18].map((f) => [f, Number((f / 10).toFixed(3)), 'video']));
    expect(bySource('covid/IM0002.dcm').map((r) => r.frame)).toEqual([0, 2, 4]); // Cine Rate 6
    expect(bySource('covid/IM0010').map((r) => [r.frame, r.time])).toEqual([[0, 0], [1, 0.25], [2, 0.5], [3, 0.75]]); // vector, 4 fps
    expect(bySource('regular/IM0003').map((r) => [r.kind, r.frame, r.time])).toEqual([['image', 0, 0]]);
    // Lossless frames are the pixels written.
    const png = await sharp(join(out(), bySource('covid/IM0001')[2]!.path)).raw().toBuffer({ resolveWithObject: true });
    expect(png.info.width).toBe(SIZE);
    expect(Array.from(png.data.filter((_, i) => i % png.info.channels === 0))).toEqual(Array.from(greyFrame(6)));
    // Patients: A's three files (two classes) share one pseudonym and one fold; the ID-less file is alone.
    const patientOf = (s: string) => bySource(s)[0]!.patient;
    expect(patientOf('covid/IM0001')).toMatch(/^dcm-[0-9a-f]{16}$/);
    expect(patientOf('covid/IM0002.dcm')).toBe(patientOf('covid/IM0001'));
    expect(patientOf('regular/IM0004')).toBe(patientOf('covid/IM0001'));
    expect(new Set(['covid/IM0001', 'covid/IM0002.dcm', 'regular/IM0004'].flatMap((s) => bySource(s).map((r) => r.fold))).size).toBe(1);
    expect(new Set(['covid/IM0010', 'regular/IM0003', 'pneumonia/IM0006', 'pneumonia/IM0007'].map(patientOf)).size).toBe(4);
    expect(patientOf('regular/IM0005')).toBe('regular/IM0005');
    // The documented method: HMAC-SHA256 with the salt file's secret, over issuer NUL Patient ID.
    const salt = Buffer.from(readFileSync(join(out(), 'patient-salt'), 'utf8').trim(), 'hex');
    const expected = 'dcm-' + createHmac('sha256', salt).update(`${IDENTIFYING.IssuerOfPatientID}\u0000${PATIENT_IDS.A}`).digest('hex').slice(0, 16);
    expect(patientOf('covid/IM0001')).toBe(expected);
    expect(statSync(join(out(), 'patient-salt')).mode & 0o777).toBe(0o600);
    expect(info.patientPseudonyms).toMatchObject({ saltFile: 'patient-salt', saltFingerprint: expect.stringMatching(/^[0-9a-f]{16}$/), sources: 7 });
    // Skipped, each with its reason; warnings for the loose file, the assumed rate, the burned-in annotation.
    const reasons = Object.fromEntries(info.skipped.map((s) => [s.source, s.reason]));
    expect(reasons['covid/IM0008']).toBe('truncated: the pixel data runs past the end of the file');
    expect(reasons['regular/IM0009']).toMatch(/^transfer syntax JPEG 2000 \(1\.2\.840\.10008\.1\.2\.4\.91\) is not supported/);
    expect(reasons['pneumonia/DICOMDIR']).toMatch(/DICOMDIR/);
    expect(info.warnings).toEqual([
      expect.stringMatching(/^1 file\(s\) have no patient folder and no DICOM Patient ID.*: regular\/IM0005$/),
      expect.stringMatching(/^1 DICOM cine loop\(s\) have no Frame Time, Frame Time Vector or Cine Rate; 25 frames per second was assumed .*: pneumonia\/IM0006$/),
      expect.stringMatching(/^1 DICOM file\(s\) say their pixels carry burned-in annotations .*: regular\/IM0003$/),
    ]);
    expect(run.err).toContain('covid/IM0008');
  });

  it('a rebuild with the same salt gets the same groups and folds; another salt, other pseudonyms but the same grouping', async () => {
    const same = join(root, 'ds-again');
    await cli(['data', 'build', '--source', source, '--out', same, '--size', String(SIZE), '--fps', '3', '--folds', '2', '--patient-salt', join(out(), 'patient-salt'), '--quiet']);
    const again = openDataset(same).rows;
    expect(again.map((r) => [r.source, r.patient, r.fold])).toEqual(rows.map((r) => [r.source, r.patient, r.fold]));
    expect(openDataset(same).info.patientPseudonyms?.saltFingerprint).toBe(info.patientPseudonyms?.saltFingerprint);
    const other = join(root, 'ds-other');
    await cli(['data', 'build', '--source', source, '--out', other, '--size', String(SIZE), '--fps', '3', '--folds', '2', '--quiet']);
    const otherRows = openDataset(other).rows;
    const partition = (rs: ManifestRow[]) => {
      const groups = new Map<string, string[]>();
      for (const r of rs) groups.set(r.patient, [...new Set([...(groups.get(r.patient) ?? []), r.source])]);
      return [...groups.values()].map((g) => g.sort().join('+')).sort();
    };
    expect(partition(otherRows)).toEqual(partition(rows));
    expect(otherRows.find((r) => r.source === 'covid/IM0001')!.patient).not.toBe(rows.find((r) => r.source === 'covid/IM0001')!.patient);
    const bad = await cli(['data', 'build', '--source', source, '--out', join(root, 'bad-salt'), '--patient-salt', join(source, 'covid', 'IM0001'), '--quiet']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/IM0001: not a patient salt file/);
  });

  it('data audit reads the pseudonymised dataset', async () => {
    const run = await cli(['data', 'audit', out(), '--quiet']);
    expect(run.out).toMatch(/patients in two or more folds: none/);
    expect(JSON.parse(readFileSync(join(out(), 'audit.json'), 'utf8')).totals).toMatchObject({ sources: 8, patients: 6 });
  });

  it('predict classifies DICOM files found in a folder by their bytes, and reports the broken ones', async () => {
    const model = join(root, 'model');
    await saveModelDir(model, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(SIZE), members: [tinyModel(3)] });
    const json = await cli(['predict', '--model', model, source, '--json', '--max-frames', '3', '--heatmaps', join(root, 'maps')]);
    const results = JSON.parse(json.out) as { file: string; kind?: string; format?: string; frames?: unknown[]; error?: string }[];
    const byName = new Map(results.map((r) => [r.file.slice(source.length + 1), r]));
    expect([...byName.keys()].sort()).toEqual(['covid/IM0001', 'covid/IM0002.dcm', 'covid/IM0008', 'covid/IM0010', 'pneumonia/IM0006', 'pneumonia/IM0007', 'regular/IM0003', 'regular/IM0004', 'regular/IM0005', 'regular/IM0009']);
    expect(byName.get('covid/IM0001')).toMatchObject({ kind: 'video', format: 'dicom', frames: [{ index: 0 }, { index: 1 }, { index: 2 }] });
    expect(byName.get('regular/IM0003')).toMatchObject({ kind: 'image', format: 'dicom' });
    expect(byName.get('covid/IM0008')!.error).toMatch(/IM0008: truncated/);
    expect(byName.get('regular/IM0009')!.error).toMatch(/IM0009: transfer syntax JPEG 2000/);
    await cli(['predict', '--model', model, source, '--csv']);
    await cli(['predict', '--model', model, join(source, 'covid', 'IM0001'), join(source, 'regular', 'IM0009')]);
  });

  it('the server reads DICOM uploads and answers without identifying values', async () => {
    server = await createServer({ model: join(root, 'model'), pageDir: join(root, 'no-page') });
    const base = await server.app.listen({ port: 0, host: '127.0.0.1' });
    const upload = async (file: string, name: string) => {
      const form = new FormData();
      form.append('file', new Blob([readFileSync(file)]), name);
      const res = await fetch(`${base}/api/predict?heatmap=1`, { method: 'POST', body: form });
      const text = await res.text();
      answers.push(text);
      return { status: res.status, body: JSON.parse(text) };
    };
    const clip = await upload(join(source, 'covid', 'IM0001'), 'IM0001');
    expect(clip.status).toBe(200);
    expect(clip.body).toMatchObject({ kind: 'video', format: 'dicom', file: 'IM0001' });
    expect(clip.body.frames).toHaveLength(7);
    const still = await upload(join(source, 'regular', 'IM0003'), 'still.dcm');
    expect(still.body).toMatchObject({ kind: 'image', format: 'dicom' });
    const broken = await upload(join(source, 'covid', 'IM0008'), 'IM0008');
    expect(broken.status).toBe(422);
    expect(broken.body.error).toMatch(/^IM0008: truncated/);
    const unsupported = await upload(join(source, 'regular', 'IM0009'), 'IM0009');
    expect(unsupported.status).toBe(422);
  });

  it('no identifying value is in any file written or any answer given', () => {
    // The sources do hold every value searched for.
    const sourceText = Buffer.concat(filesUnder(source).map((f) => readFileSync(f))).toString('latin1');
    for (const secret of SECRETS) expect(sourceText.toLowerCase()).toContain(secret.toLowerCase());
    const written = [...filesUnder(join(root, 'ds')), ...filesUnder(join(root, 'ds-again')), ...filesUnder(join(root, 'ds-other')), ...filesUnder(join(root, 'maps'))];
    expect(written.length).toBeGreaterThan(40);
    for (const file of written) expectNoSecrets(file, readFileSync(file));
    expect(answers.length).toBeGreaterThan(10);
    for (const [i, answer] of answers.entries()) expectNoSecrets(`answer ${i}`, answer);
  });
});
