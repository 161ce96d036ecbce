// Progress on stderr: a bar when stderr is a terminal, plain lines otherwise (logs, CI).
import cliProgress from 'cli-progress';

export interface Progress {
  /** Sets the position (items or bytes) and an optional note about the current item. */
  update(value: number, note?: string): void;
  /** Sets the total when it becomes known. */
  setTotal(total: number): void;
  stop(): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  /** 'items' prints every update as a line; 'bytes' prints a line per 10%. */
  unit?: 'items' | 'bytes';
  /** Silence everything (library use, tests). */
  quiet?: boolean;
  stream?: NodeJS.WriteStream;
}

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;
}

export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const unit = options.unit ?? 'items';
  let total = options.total;
  if (options.quiet) return { update: () => undefined, setTotal: () => undefined, stop: () => undefined };
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: unit === 'bytes' ? `${options.label} [{bar}] {percentage}% {done}` : `${options.label} [{bar}] {value}/{total} {note}`,
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { note: '', done: '' });
    return {
      update: (value, note) => bar.update(value, { note: note ?? '', done: unit === 'bytes' ? formatBytes(value) : '' }),
      setTotal: (t) => {
        total = t;
        bar.setTotal(t);
      },
      stop: () => bar.stop(),
    };
  }
  let lastDecile = -1;
  return {
    update: (value, note) => {
      if (unit === 'bytes') {
        const decile = total > 0 ? Math.floor((10 * value) / total) : -1;
        if (decile > lastDecile) {
          lastDecile = decile;
          stream.write(`${options.label}: ${formatBytes(value)}${total > 0 ? ` of ${formatBytes(total)}` : ''}\n`);
        }
      } else {
        stream.write(`${options.label} [${value}/${total}]${note ? ` ${note}` : ''}\n`);
      }
    },
    setTotal: (t) => {
      total = t;
    },
    stop: () => undefined,
  };
}
