// Progress reporting for long runs: a bar on a terminal, one plain line per event otherwise
// (logs, CI), so that a run inside `nohup` or a pipe still shows where it is.
import cliProgress from 'cli-progress';

export interface ProgressReporter {
  start(label: string, total: number): void;
  update(done: number, fields?: Record<string, string | number>): void;
  stop(summary?: string): void;
  log(line: string): void;
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr, quiet = false): ProgressReporter {
  if (quiet) return { start() {}, update() {}, stop() {}, log() {} };
  if (!stream.isTTY) {
    // Logs get a line at most every 30 s, so a long feature cache or epoch still shows progress.
    let current = '';
    let total = 0;
    let lastLine = 0;
    return {
      start(label, n) {
        current = label;
        total = n;
        lastLine = Date.now();
      },
      update(done, fields) {
        if (Date.now() - lastLine < 30_000) return;
        lastLine = Date.now();
        const info = fields ? ' ' + Object.entries(fields).map(([k, v]) => `${k} ${typeof v === 'number' ? v.toPrecision(4) : v}`).join(' ') : '';
        stream.write(`${current}: ${done}/${total}${info}\n`);
      },
      stop(summary) {
        if (summary) stream.write(`${summary}\n`);
      },
      log(line) {
        stream.write(line + '\n');
      },
    };
  }
  let bar: cliProgress.SingleBar | undefined;
  return {
    start(label, total) {
      bar = new cliProgress.SingleBar(
        { format: `${label} [{bar}] {value}/{total} {info} | eta {eta_formatted}`, stream, hideCursor: true, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, { info: '' });
    },
    update(done, fields) {
      const info = fields ? Object.entries(fields).map(([k, v]) => `${k} ${typeof v === 'number' ? v.toFixed(4) : v}`).join(' ') : '';
      bar?.update(done, { info });
    },
    stop(summary) {
      bar?.stop();
      bar = undefined;
      if (summary) stream.write(summary + '\n');
    },
    log(line) {
      stream.write(line + '\n');
    },
  };
}
