#!/usr/bin/env node
// CI gate on vitest's JSON report: every test must have run. A skipped, pending or todo test fails
// CI unless its name carries "[real data]" (tests on /work/shared, which a fresh clone never has;
// test/helpers/prerequisites.ts labels them). Tests that need a tool .ci/run installs fail on
// their own under POCOVID_REQUIRE_ALL=1; this gate also catches a skip written any other way.
import { readFileSync } from 'node:fs';

const REAL_DATA = '[real data]';
const file = process.argv[2];
if (!file) {
  console.error('usage: check_skips.mjs <vitest-json-report>');
  process.exit(2);
}
const report = JSON.parse(readFileSync(file, 'utf8'));
const notRun = [];
const realData = [];
let total = 0;
for (const suite of report.testResults ?? []) {
  for (const test of suite.assertionResults ?? []) {
    total++;
    if (test.status === 'passed' || test.status === 'failed') continue;
    const name = `${suite.name}: ${test.fullName} (${test.status})`;
    (test.fullName.includes(REAL_DATA) ? realData : notRun).push(name);
  }
}
if (total === 0) {
  console.error(`check_skips: ${file} lists no tests`);
  process.exit(1);
}
if (realData.length) console.log(`check_skips: ${realData.length} test(s) on the real data skipped (no /work/shared here)`);
if (notRun.length) {
  console.error(`check_skips: ${notRun.length} test(s) did not run; CI accepts no skipped test except those on the real data:`);
  for (const name of notRun) console.error(`  ${name}`);
  process.exit(1);
}
console.log(`check_skips: all ${total - realData.length} tests ran${realData.length ? ` (besides the ${realData.length} on the real data)` : ''}`);
