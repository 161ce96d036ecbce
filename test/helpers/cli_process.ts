// The `pocovid` command as a real child process (bin/pocovid.js, which runs dist/): for the fault
// tests that kill it (kill -9, SIGTERM) or watch it exit. Each process gets its own cache folder
// and, when asked, its own TMPDIR.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = join(fileURLToPath(new URL('../..', import.meta.url)), 'bin', 'pocovid.js');

export interface CliProcess {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** What was written to stdout alone (machine-readable output such as --json). */
  stdout(): string;
  /** Resolves with the first match of `pattern` in the output (rejects after `ms`). */
  waitFor(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or the signal's name) when the process ends. */
  exited: Promise<number | string>;
}

export function startCli(args: string[], env: { cache: string; tmp?: string; cwd?: string }): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: env.cwd,
    env: { ...process.env, POCOVID_CACHE: env.cache, ...(env.tmp ? { TMPDIR: env.tmp } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  let stdoutText = '';
  const waiters: (() => void)[] = [];
  const onData = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    waiters.forEach((w) => w());
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    stdoutText += chunk.toString('utf8');
    onData(chunk);
  });
  child.stderr!.on('data', onData);
  // 'close' comes after the exit and after the last output has been read.
  const exited = new Promise<number | string>((resolve) => child.once('close', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    output: () => text,
    stdout: () => stdoutText,
    exited,
    waitFor(pattern, ms = 120_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(text);
          if (match) {
            clearTimeout(timer);
            resolve(match);
          }
        };
        const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${ms} ms; output:\n${text}`)), ms);
        waiters.push(check);
        void exited.then(() => setTimeout(() => reject(new Error(`exited before ${pattern}; output:\n${text}`)), 50));
        check();
      });
    },
  };
}

/** Runs the command to its end: exit code and output. */
export async function runCli(args: string[], env: { cache: string; tmp?: string; cwd?: string }): Promise<{ code: number | string; output: string; stdout: string }> {
  const cli = startCli(args, env);
  const code = await cli.exited;
  return { code, output: cli.output(), stdout: cli.stdout() };
}
