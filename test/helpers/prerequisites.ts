// Tests that need something outside the repository say so here, in one place, so that nothing is
// skipped silently. Two kinds:
// - a tool (Chromium, Debian's python3-pydicom): .ci/run installs it, so in CI
//   (POCOVID_REQUIRE_ALL=1) its absence is a failing test that names what is missing; elsewhere
//   (a developer's machine, `npm test` on a fresh clone) the tests are skipped with a warning.
// - the real data under /work/shared: never in a fresh clone, so those tests may be skipped even
//   in CI; their titles carry REAL_DATA, which .ci/check_skips.mjs accepts and nothing else.
// .ci/check_skips.mjs then rejects every other skipped, pending or todo test in vitest's report.
import { describe, it } from 'vitest';

export const REAL_DATA = '[real data]';

/** True when every tool a test needs must be present (set by .ci/run). */
export const requireAll = process.env['POCOVID_REQUIRE_ALL'] === '1';

export interface Need {
  /** What is needed, as a user would install it: "Chromium at /usr/bin/chromium". */
  what: string;
  available: boolean;
}

/** A describe block that runs only where `need` is met (see the file's comment for what happens otherwise). */
export function describeNeeding(need: Need, title: string, body: () => void): void {
  if (need.available) {
    describe(title, body);
    return;
  }
  if (requireAll) {
    describe(title, () => {
      it(`needs ${need.what}`, () => {
        throw new Error(`${need.what} is missing: install it (.ci/run installs it as root) — this test must not be skipped in CI`);
      });
    });
    return;
  }
  console.warn(`skipping "${title}": ${need.what} is missing`);
  describe.skip(title, body);
}

/** One test that runs only where `need` is met; same rules as describeNeeding. */
export function itNeeding(need: Need, title: string, body: () => void | Promise<void>): void {
  if (need.available) {
    it(title, body);
    return;
  }
  if (requireAll) {
    it(title, () => {
      throw new Error(`${need.what} is missing: install it (.ci/run installs it as root) — this test must not be skipped in CI`);
    });
    return;
  }
  console.warn(`skipping "${title}": ${need.what} is missing`);
  it.skip(title, body);
}

/** A describe block on the real data under /work/shared: skipped (and counted as such) where it is absent. */
export function describeOnRealData(available: boolean, what: string, title: string, body: () => void): void {
  const labelled = `${REAL_DATA} ${title}`;
  if (available) {
    describe(labelled, body);
    return;
  }
  console.warn(`skipping "${title}": ${what} is absent`);
  describe.skip(labelled, body);
}

/** One test on the real data under /work/shared; same rules as describeOnRealData. */
export function itOnRealData(available: boolean, what: string, title: string, body: () => void | Promise<void>): void {
  const labelled = `${REAL_DATA} ${title}`;
  if (available) {
    it(labelled, body);
    return;
  }
  console.warn(`skipping "${title}": ${what} is absent`);
  it.skip(labelled, body);
}
