// `pocovid worker` (runs training jobs from the queue) and `pocovid queue status` (what the queue holds).
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { shownQueueUrl } from '../queue/connection.js';
import { formatQueueStatus, queueStatus } from '../queue/status.js';
import { startQueueWorker, WORKER_DEFAULTS } from '../queue/worker.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${value}": use a whole number ≥ 1`);
  return n;
}

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`"${value}": use a positive number of seconds`);
  return n;
}

export function register(program: Command): void {
  program
    .command('worker')
    .description('run training jobs (the folds of cv --queue and sweep --queue) from a Redis queue; datasets and runs must be on a disk this machine sees at the same path')
    .requiredOption('--queue <url>', 'the Redis server of the queue, e.g. redis://10.0.0.5:6379')
    .option('--concurrency <n>', 'jobs at once, each in its own process (one fold already uses every core TF.js and ONNX Runtime are given)', positiveInt, WORKER_DEFAULTS.concurrency)
    .option('--name <name>', 'how queue status names this worker (default host:pid)')
    .option('--lock-seconds <s>', "a job's lock; after a worker dies its jobs are taken over once their locks run out", positiveSeconds, WORKER_DEFAULTS.lockMs / 1000)
    .option('--stalled-check-seconds <s>', 'how often to look for jobs whose worker died', positiveSeconds, WORKER_DEFAULTS.stalledCheckMs / 1000)
    .action(async (o: { queue: string; concurrency: number; name?: string; lockSeconds: number; stalledCheckSeconds: number }) => {
      const worker = await startQueueWorker({ url: o.queue, concurrency: o.concurrency, name: o.name, lockMs: o.lockSeconds * 1000, stalledCheckMs: o.stalledCheckSeconds * 1000 });
      console.log(`pocovid worker ${worker.name}: taking jobs from ${shownQueueUrl(o.queue)} (${o.concurrency} at a time); Ctrl-C or SIGTERM to stop`);
      // First signal: take no more jobs, finish those running. Second: stop now; the running jobs
      // are taken over by other workers once their locks run out, and resume from their checkpoints.
      let stopping = false;
      const stop = (signal: NodeJS.Signals): void => {
        if (stopping) {
          console.error(`pocovid worker: ${signal} again: stopping now; the running job(s) resume on another worker from their checkpoints`);
          process.exit(1);
        }
        stopping = true;
        console.error(`pocovid worker: ${signal}: taking no more jobs, finishing the running one(s) (${signal} again to stop now)`);
        worker.close().then(
          () => process.exit(0),
          (err: unknown) => {
            console.error(`pocovid worker: ${(err as Error).message}`);
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });

  const queue = program.command('queue').description('the Redis job queue of cv --queue, sweep --queue and pocovid worker');
  queue
    .command('status')
    .description('jobs waiting, running (where, doing what), done and failed (with their errors), and the workers connected')
    .requiredOption('--queue <url>', 'the Redis server of the queue, e.g. redis://10.0.0.5:6379')
    .option('--limit <n>', 'jobs listed per state', positiveInt, 20)
    .option('--json', 'print JSON')
    .action(async (o: { queue: string; limit: number; json?: boolean }) => {
      const status = await queueStatus(o.queue, o.limit);
      console.log(o.json ? JSON.stringify(status, null, 2) : formatQueueStatus(status));
    });
}
