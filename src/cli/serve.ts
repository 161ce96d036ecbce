// `pocovid serve`: parse options, start the HTTP API and page (in N worker processes with
// --workers), stop cleanly on Ctrl-C or SIGTERM.
import { Command, InvalidArgumentError, Option } from 'commander';
import { PRECISIONS, RUNTIMES, type Precision } from '../infer/pipeline.js';
import type { RuntimeChoice } from '../onnx/runtime.js';
import { isServeWorker, linkWorker, runPrimary } from '../serve/cluster.js';
import { createServer, DEFAULT_TIMEOUTS, type PocovidServer } from '../serve/server.js';

import { numberIn, port } from './options.js';

const seconds = (value: string): number => {
  const n = Number(value);
  if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`not a positive number of seconds: ${value}`);
  return n;
};

const workerCount = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${value}": use a whole number ≥ 1`);
  return n;
};

interface ServeOptions {
  model: string;
  port: number;
  host: string;
  keepUploads?: boolean;
  maxUploadMb: number;
  log?: boolean;
  drainTimeout: number;
  answerTimeout: number;
  guard: boolean;
  runtime: RuntimeChoice;
  precision: Precision;
  workers: number;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('HTTP API (POST /api/predict, GET /api/health, GET /api/model, GET /metrics) and the in-browser page at / (research use only, not a diagnostic device)')
    .requiredOption('--model <dir>', 'exported model folder, or a training run')
    .option('--port <n>', 'port (0: any free port)', port, 8080)
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--keep-uploads', 'keep uploaded files (in the private temp folder printed at start)')
    .option('--max-upload-mb <n>', 'largest upload accepted (MB)', numberIn({ min: 0, exclusiveMin: true, max: 100_000 }), 200)
    .option('--log', 'log every request')
    .option('--drain-timeout <s>', 'on SIGTERM/Ctrl-C, seconds to let requests in progress finish before their connections are cut', seconds, DEFAULT_TIMEOUTS.drainMs / 1000)
    .option('--answer-timeout <s>', 'seconds from the end of an upload to its answer (waiting for the model included); past it the client gets 503', seconds, DEFAULT_TIMEOUTS.answerMs / 1000)
    .option('--workers <n>', 'server processes sharing the port, each with its own model (about one per 2 cores: a worker\'s forward passes use 2 threads)', workerCount, 1)
    .addOption(new Option('--runtime <engine>', 'forward passes on ONNX Runtime (ort), TF.js (tfjs), or ort where it loads (auto); Grad-CAM uses TF.js').choices([...RUNTIMES]).default('auto'))
    .addOption(new Option('--precision <p>', 'fp32, or int8: the members export --format onnx --int8 wrote (ONNX Runtime)').choices([...PRECISIONS]).default('fp32'))
    .option('--no-guard', 'diagnose even inputs that do not look like lung ultrasound (the guard is on by default)')
    .action(async (o: ServeOptions) => {
      if (o.workers > 1 && !isServeWorker()) {
        process.exitCode = await runPrimary({
          workers: o.workers,
          log: (line) => console.error(line),
          ready: (address, description) => console.log(`pocovid serve: ${address}/ (${o.workers} workers; ${description})`),
        });
        return;
      }
      await serveHere(o);
    });
}

/** One server in this process: on its own, or as a worker of --workers. */
async function serveHere(o: ServeOptions): Promise<void> {
  let server: PocovidServer | undefined;
  // First signal: finish the requests in progress (within the drain deadline), then exit 0.
  // Second signal: cut everything now, remove the uploads, exit 1.
  let stopping = false;
  const drain = (why: string, again: string): void => {
    if (stopping) return;
    stopping = true;
    if (!server) process.exit(0);
    console.error(`pocovid serve: ${why}: finishing the requests in progress (at most ${o.drainTimeout} s; ${again} to stop at once)`);
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`pocovid serve: ${(err as Error).message}`);
        server!.abort();
        process.exit(1);
      },
    );
  };
  const abort = (why: string): void => {
    console.error(`pocovid serve: ${why}: stopping now`);
    server?.abort();
    process.exit(1);
  };
  const link = isServeWorker() ? linkWorker({ stop: () => drain('stopping', 'a second signal to the primary'), abort: () => abort('stop') }) : undefined;
  try {
    server = await createServer({
      model: o.model,
      keepUploads: o.keepUploads,
      maxUploadMb: o.maxUploadMb,
      logger: o.log ?? false,
      pipeline: { runtime: o.runtime, precision: o.precision },
      timeouts: { drainMs: o.drainTimeout * 1000, answerMs: o.answerTimeout * 1000 },
      ...(o.guard ? {} : { guard: false as const }),
      ...(link ? { metricsAggregate: () => link.aggregate() } : {}),
    });
  } catch (err) {
    link?.release();
    throw err;
  }
  let address: string;
  try {
    address = await server.app.listen({ port: o.port, host: o.host });
  } catch (err) {
    await server.close();
    link?.release();
    throw err;
  }
  const description = `model "${server.pipeline.model.meta.name}", runtime ${[...new Set(server.pipeline.runtimes)].join('+')}, ${server.pipeline.precision}`;
  if (link) {
    link.setRegistry(server.metricsRegistry);
    link.ready(address, description);
  } else {
    console.log(`pocovid serve: ${address}/ (${description})`);
  }
  if (server.swept.length > 0) console.log(`removed ${server.swept.length} upload folder(s) left by servers that were killed`);
  if (o.keepUploads) console.log(`uploads kept in ${server.workDir}`);
  const onSignal = (signal: NodeJS.Signals): void => (stopping ? abort(`${signal} again`) : drain(signal, `${signal} again`));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
