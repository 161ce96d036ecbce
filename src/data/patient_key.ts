// Pseudonyms for DICOM Patient IDs. `data build` groups a patient's files into one fold by the
// Patient ID in their headers, but the ID itself must never reach the manifest, reports or any
// other output. What is stored is HMAC-SHA256(salt, issuer + NUL + Patient ID), the first 16 hex
// digits, prefixed "dcm-". The salt is a random secret kept in a file (by default
// <dataset>/patient-salt, created on the first build that meets a Patient ID, mode 0600); a
// rebuild that uses the same salt file gets the same pseudonyms, hence the same groups and folds.
// dataset.json records the salt file's path and a fingerprint of the salt, never the salt.
//
// Why a secret salt: Patient IDs are short (a hospital number has ~8 digits), so a plain or
// public-salted hash can be reversed by trying every candidate. Without the salt file the
// pseudonyms in predictions.csv or a report cannot be; with it they can, so keep it with the
// dataset (which holds the patients' images anyway) and out of anything you share.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { BadInputError } from '../errors.js';

export const PSEUDONYM_PREFIX = 'dcm-';
export const DEFAULT_SALT_FILE = 'patient-salt';
const SALT_BYTES = 32;

export interface PatientKey {
  /** The salt file. */
  file: string;
  /** sha256 of the salt (first 16 hex digits): tells two builds' salts apart without revealing them. */
  fingerprint: string;
  /** True when this call created the salt file. */
  created: boolean;
  /** The pseudonym of an "issuer NUL Patient ID" string (as DicomClip.pseudonym hands it). */
  pseudonym(issuerAndId: string): string;
}

function fromSalt(file: string, salt: Buffer, created: boolean): PatientKey {
  return {
    file,
    fingerprint: createHash('sha256').update(salt).digest('hex').slice(0, 16),
    created,
    pseudonym: (issuerAndId) => PSEUDONYM_PREFIX + createHmac('sha256', salt).update(issuerAndId, 'utf8').digest('hex').slice(0, 16),
  };
}

function readSalt(file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new BadInputError(file, `cannot read the patient salt (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
  if (!/^[0-9a-f]{64}$/i.test(text)) throw new BadInputError(file, 'not a patient salt file (expected 64 hexadecimal digits, as `data build` writes)');
  return Buffer.from(text, 'hex');
}

/**
 * The salt in `file`, created (random, mode 0600) when the file does not exist. Two builds racing
 * to create it end with the same salt: it is written under a temporary name and hard-linked into
 * place, which fails for the loser, who then reads the winner's.
 */
export function loadOrCreatePatientKey(file: string): PatientKey {
  if (existsSync(file)) return fromSalt(file, readSalt(file), false);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const salt = randomBytes(SALT_BYTES);
  writeFileSync(tmp, salt.toString('hex') + '\n', { mode: 0o600 });
  try {
    chmodSync(tmp, 0o600);
    linkSync(tmp, file);
    return fromSalt(file, salt, true);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return fromSalt(file, readSalt(file), false);
    throw new BadInputError(file, `cannot write the patient salt (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  } finally {
    rmSync(tmp, { force: true });
  }
}
