// `pocovid serve`: parse options, start the HTTP API and page, stop cleanly on Ctrl-C or SIGTERM.
import { Command, InvalidArgumentError, Option } from 'commander';
import { PRECISIONS, RUNTIMES, type Precision } from '../infer/pipeline.js';
import type { RuntimeChoice } from '../onnx/runtime.js';
import { createServer, DEFAULT_TIMEOUTS } from '../serve/server.js';

import { numberIn, port } from './options.js';

const seconds = (value: string): number => {
  const n = Number(value);
  if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`not a positive number of seconds: ${value}`);
  return n;
};

export function register(program: Command): void {
  program
    .command('serve')
    .description('HTTP API (POST /api/predict, GET /api/health, GET /api/model) and the in-browser page at / (research use only, not a diagnostic device)')
    .requiredOption('--model <dir>', 'exported model folder, or a training run')
    .option('--port <n>', 'port (0: any free port)', port, 8080)
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--keep-uploads', 'keep uploaded files (in the private temp folder printed at start)')
    .option('--max-upload-mb <n>', 'largest upload accepted (MB)', numberIn({ min: 0, exclusiveMin: true, max: 100_000 }), 200)
    .option('--log', 'log every request')
    .option('--drain-timeout <s>', 'on SIGTERM/Ctrl-C, seconds to let requests in progress finish before their connections are cut', seconds, DEFAULT_TIMEOUTS.drainMs / 1000)
    .addOption(new Option('--runtime <engine>', 'forward passes on ONNX Runtime (ort), TF.js (tfjs), or ort where it loads (auto); Grad-CAM uses TF.js').choices([...RUNTIMES]).default('auto'))
    .addOption(new Option('--precision <p>', 'fp32, or int8: the members export --format onnx --int8 wrote (ONNX Runtime)').choices([...PRECISIONS]).default('fp32'))
    .option('--no-guard', 'diagnose even inputs that do not look like lung ultrasound (the guard is on by default)')
    .action(async (o: { model: string; port: number; host: string; keepUploads?: boolean; maxUploadMb: number; log?: boolean; drainTimeout: number; guard: boolean; runtime: RuntimeChoice; precision: Precision }) => {
      const server = await createServer({
        model: o.model,
        keepUploads: o.keepUploads,
        maxUploadMb: o.maxUploadMb,
        logger: o.log ?? false,
        pipeline: { runtime: o.runtime, precision: o.precision },
        timeouts: { drainMs: o.drainTimeout * 1000 },
        ...(o.guard ? {} : { guard: false as const }),
      });
      const address = await server.app.listen({ port: o.port, host: o.host });
      console.log(`pocovid serve: ${address}/ (model "${server.pipeline.model.meta.name}", runtime ${[...new Set(server.pipeline.runtimes)].join('+')}, ${server.pipeline.precision})`);
      if (server.swept.length > 0) console.log(`removed ${server.swept.length} upload folder(s) left by servers that were killed`);
      if (o.keepUploads) console.log(`uploads kept in ${server.workDir}`);
      // First signal: finish the requests in progress (within the drain deadline), then exit 0.
      // Second signal: cut everything now, remove the uploads, exit 1.
      let stopping = false;
      const stop = (signal: NodeJS.Signals): void => {
        if (stopping) {
          console.error(`pocovid serve: ${signal} again: stopping now`);
          server.abort();
          process.exit(1);
        }
        stopping = true;
        console.error(`pocovid serve: ${signal}: finishing the requests in progress (at most ${o.drainTimeout} s; ${signal} again to stop at once)`);
        server.close().then(
          () => process.exit(0),
          (err: unknown) => {
            console.error(`pocovid serve: ${(err as Error).message}`);
            server.abort();
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
}
