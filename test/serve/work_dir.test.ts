// Start-up sweep of server folders: only those of dead servers on this host go; a live server's,
// one kept on purpose (--keep-uploads) and a recent folder without an owner file stay.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createWorkDir, OWNER_FILE, sweepStaleWorkDirs, WORK_DIR_PREFIX } from '../../src/serve/work_dir.js';
import { createQueue } from '../../src/serve/queue.js';

const tmp = mkdtempSync(join(tmpdir(), 'pocovid-workdir-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The id of a process that has ended. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).stdout.trim());
}

function serverDir(name: string, owner?: object, ageHours = 0): string {
  const dir = join(tmp, `${WORK_DIR_PREFIX}${name}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'upload-1'), 'patient image');
  if (owner) writeFileSync(join(dir, OWNER_FILE), JSON.stringify(owner));
  const when = new Date(Date.now() - ageHours * 3600_000);
  utimesSync(dir, when, when);
  return dir;
}

describe('sweepStaleWorkDirs', () => {
  it('removes the folders of dead servers only', async () => {
    const dead = deadPid();
    const mine = await createWorkDir(false, tmp);
    const gone = serverDir('gone', { pid: dead, host: hostname(), startedAt: '', keepUploads: false });
    const kept = serverDir('kept', { pid: dead, host: hostname(), startedAt: '', keepUploads: true });
    const elsewhere = serverDir('elsewhere', { pid: dead, host: `${hostname()}-other`, startedAt: '', keepUploads: false });
    const recentUnowned = serverDir('recent', undefined, 1);
    const oldUnowned = serverDir('old', undefined, 48);
    writeFileSync(join(tmp, 'unrelated'), 'x');
    expect(sweepStaleWorkDirs(tmp).sort()).toEqual([gone, oldUnowned].sort());
    expect(readdirSync(tmp).sort()).toEqual([mine, kept, elsewhere, recentUnowned].map((d) => d.slice(tmp.length + 1)).concat('unrelated').sort());
  });
});

describe('the request queue at shutdown', () => {
  it('lets the running job finish, refuses those not started, and says when it is idle', async () => {
    const queue = createQueue();
    let release!: () => void;
    const running = queue.run(() => new Promise<string>((resolve) => (release = () => resolve('done'))));
    const waiting = queue.run(async () => 'should not run');
    await new Promise((r) => setTimeout(r, 10));
    queue.close('server shutting down');
    await expect(queue.run(async () => 'new')).rejects.toMatchObject({ message: 'server shutting down', statusCode: 503 });
    let idle = false;
    const idled = queue.idle().then(() => (idle = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(idle).toBe(false);
    release();
    await expect(running).resolves.toBe('done');
    await expect(waiting).rejects.toMatchObject({ message: 'server shutting down', statusCode: 503 });
    await idled;
    expect(queue.size).toBe(0);
  });
});
