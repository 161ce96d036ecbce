// `pocovid serve`: the HTTP API (fastify 5) and the static page.
//   POST /api/predict  multipart, one image or video (query or field heatmap=1 for Grad-CAM)
//   GET  /api/health   GET /api/model   GET / (the page, which loads ./pocovid.json and ./member-k/)
//   GET  /metrics      Prometheus metrics (metrics.ts)
// Uploads are untrusted: streamed to a private temp folder with a size limit, typed from their
// bytes, decoded by the hardened ffmpeg/sharp path, queued one at a time, deleted after the answer.
// Clients are untrusted too: headers, a stalled body and the whole upload have time limits, and
// close() drains within a deadline, then cuts the connections still open (a stalled client cannot
// keep a stopping server alive). Folders left by killed servers are swept at start-up (work_dir.ts).
// An answer has a time limit too (deadline.ts): past it the client gets a 503 with a JSON error.
import { randomUUID } from 'node:crypto';
import { createWriteStream, existsSync, rmSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { basename, join, resolve } from 'node:path';
import { pipeline as pipeStreams } from 'node:stream/promises';
import fastifyMultipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { BadInputError, ModelOutputError, PocovidError } from '../errors.js';
import { exportRun } from '../infer/export.js';
import { MODEL_META_FILE, type ModelDirMeta } from '../model_dir/meta.js';
import { SHARED_WEIGHTS_FILE } from '../model_dir/names.js';
import { readModelMeta } from '../model_dir/model_dir.js';
import type { Guard } from '../decision/core.js';
import { createPipeline, type Pipeline, type PipelineOptions } from '../infer/pipeline.js';
import { describeUnknown, sniffType, SNIFF_BYTES } from '../media/formats.js';
import { VERSION } from '../version.js';
import { findPageDir, ISOLATION_HEADERS, PAGE_FILES } from './page_dir.js';
import { answerDeadline, isLate } from './deadline.js';
import { createServerMetrics } from './metrics.js';
import { createQueue } from './queue.js';
import { guardAgainstStall } from './stall_guard.js';
import { createWorkDir, sweepStaleWorkDirs } from './work_dir.js';

export interface ServerOptions {
  /** Exported model folder, or a training run (exported to a private folder at start). */
  model: string;
  keepUploads?: boolean;
  /** Largest accepted upload (MB, default 200). */
  maxUploadMb?: number;
  /** Built page folder (default: dist/page); without one, GET / answers 503. */
  pageDir?: string;
  /** Requests waiting for the model before new ones get 503 (default 500). */
  maxQueued?: number;
  /** Default: the guard stored with the model; false: none. */
  guard?: Guard | false;
  pipeline?: Omit<PipelineOptions, 'guard'>;
  logger?: boolean;
  timeouts?: Partial<ServerTimeouts>;
  /** Where the private folder is made and stale ones are swept (default: os.tmpdir()). */
  tmpDir?: string;
  /** What GET /metrics answers instead of this server's own metrics: the sum over a cluster's workers (cluster.ts). */
  metricsAggregate?: () => Promise<string>;
}

/** Form fields a request may carry besides its one file (the page and API send at most one). */
const MAX_FORM_FIELDS = 8;

/** Time limits (ms) on what clients send, and on a stop. */
export interface ServerTimeouts {
  /** From connection to the end of the request headers. */
  headersMs: number;
  /** Longest pause in an upload's body. */
  bodyIdleMs: number;
  /** From the start of a request to the end of its body (the whole upload). */
  requestMs: number;
  /** How long close() waits for requests in progress before cutting their connections. */
  drainMs: number;
  /** From the end of an upload to its answer (waiting for the model, classifying); past it, 503. */
  answerMs: number;
}

export const DEFAULT_TIMEOUTS: Readonly<ServerTimeouts> = { headersMs: 20_000, bodyIdleMs: 30_000, requestMs: 300_000, drainMs: 10_000, answerMs: 120_000 };

function resolveTimeouts(partial: Partial<ServerTimeouts> = {}): ServerTimeouts {
  const timeouts = { ...DEFAULT_TIMEOUTS, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) };
  for (const [key, value] of Object.entries(timeouts)) {
    if (!(Number.isFinite(value) && value > 0)) throw new PocovidError(`server timeout ${key} must be a positive number of milliseconds, got ${value}`);
  }
  // Node refuses a header limit longer than the request limit.
  if (timeouts.headersMs > timeouts.requestMs) throw new PocovidError(`server timeout headersMs (${timeouts.headersMs}) must not exceed requestMs (${timeouts.requestMs})`);
  return timeouts;
}

const seconds = (ms: number): string => `${Math.round(ms / 100) / 10} s`;

export interface PocovidServer {
  app: FastifyInstance;
  pipeline: Pipeline;
  /** Private folder holding uploads (and the exported model when serving a run). */
  workDir: string;
  /** Folders of dead servers removed at start-up. */
  swept: string[];
  /** What GET /metrics counts for this server (metrics.ts). */
  metricsRegistry: Registry;
  /**
   * Stops: no new connections, requests in progress get `drainMs` (default: the server's) to
   * finish, then every connection still open is cut; the model is freed and the uploads removed.
   */
  close(options?: { drainMs?: number }): Promise<void>;
  /** Stops at once (a second Ctrl-C): cuts every connection and removes the uploads synchronously. */
  abort(): void;
}

const predictQuery = z.object({
  heatmap: z.enum(['0', '1', 'true', 'false']).optional(),
  aggregate: z.enum(['mean', 'vote']).optional(),
  fps: z.coerce.number().positive().max(30).optional(),
  maxFrames: z.coerce.number().int().min(1).max(120).optional(),
});

function httpError(statusCode: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode });
}

async function readHead(file: string): Promise<Uint8Array> {
  const handle = await open(file, 'r');
  try {
    const buffer = new Uint8Array(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

export async function createServer(options: ServerOptions): Promise<PocovidServer> {
  const timeouts = resolveTimeouts(options.timeouts);
  const swept = sweepStaleWorkDirs(options.tmpDir);
  const workDir = await createWorkDir(options.keepUploads ?? false, options.tmpDir);
  try {
    return await startServer(options, timeouts, workDir, swept);
  } catch (err) {
    // A server that could not start leaves nothing behind (nothing was uploaded yet).
    rmSync(workDir, { recursive: true, force: true });
    throw err;
  }
}

async function startServer(options: ServerOptions, timeouts: ServerTimeouts, workDir: string, swept: string[]): Promise<PocovidServer> {
  const loadStarted = performance.now();
  const maxBytes = Math.round((options.maxUploadMb ?? 200) * 1024 * 1024);
  // Absolute from here on: the static file server refuses relative roots.
  let modelDir = resolve(options.model);
  if (!existsSync(join(modelDir, MODEL_META_FILE))) {
    modelDir = join(workDir, 'model');
    await exportRun(options.model, modelDir, { page: false });
  }
  const meta = readModelMeta(modelDir);
  const pipeline = await createPipeline(modelDir, { ...options.pipeline, guard: options.guard });
  try {
    return await serveWith(options, timeouts, workDir, swept, modelDir, meta, pipeline, maxBytes, (performance.now() - loadStarted) / 1000);
  } catch (err) {
    await pipeline.dispose();
    throw err;
  }
}

async function serveWith(
  options: ServerOptions,
  timeouts: ServerTimeouts,
  workDir: string,
  swept: string[],
  modelDir: string,
  meta: ModelDirMeta,
  pipeline: Pipeline,
  maxBytes: number,
  loadSeconds: number,
): Promise<PocovidServer> {
  const queue = createQueue(options.maxQueued ?? 500);
  const pageDir = [options.pageDir ?? findPageDir()].find((d): d is string => d !== undefined && existsSync(join(d, 'index.html')));

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: 1024 * 1024,
    // Node's own limits: the headers, and the whole request until its body has arrived (checked
    // every second, not every 30 s as by default, so that a limit means what it says).
    requestTimeout: timeouts.requestMs,
    http: { headersTimeout: timeouts.headersMs, connectionsCheckingInterval: Math.min(1000, timeouts.headersMs) },
    // Node answers a request that ran out of time itself; this gives it our JSON error.
    clientErrorHandler: (err, socket) => {
      if ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || socket.destroyed) return;
      const timedOut = (err as NodeJS.ErrnoException).code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const status = timedOut ? 408 : 400;
      const body = JSON.stringify({
        error: timedOut
          ? `request timed out: headers must arrive within ${seconds(timeouts.headersMs)} and a whole upload within ${seconds(timeouts.requestMs)}`
          : 'malformed HTTP request',
      });
      if (socket.writable) {
        socket.write(`HTTP/1.1 ${status} ${timedOut ? 'Request Timeout' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      }
      socket.destroy();
    },
  });
  // The form's field limit is enforced in the handler (MAX_FORM_FIELDS), as the fields arrive: at
  // busboy's own limit @fastify/multipart stops reading without ending the parts, so the client
  // waited for the stall timeout and got a 408. Busboy's limits sit above ours as a backstop.
  await app.register(fastifyMultipart, { limits: { fileSize: maxBytes, files: 2, fields: 4 * MAX_FORM_FIELDS, parts: 4 * MAX_FORM_FIELDS + 2, headerPairs: 100 } });

  const metrics = createServerMetrics(app, () => queue.size, options.metricsAggregate);
  metrics.modelLoadSeconds.set(loadSeconds);

  // Every open connection, so that a stop can cut those still open after the drain deadline.
  const sockets = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    let status = error.statusCode ?? 500;
    if (error.code === 'FST_INVALID_MULTIPART_CONTENT_TYPE') status = 415;
    if (error.code === 'FST_REQ_FILE_TOO_LARGE') status = 413;
    // A model that gives NaN is the server's fault, not the upload's: 500, with the reason.
    if (error instanceof PocovidError && status === 500 && !(error instanceof ModelOutputError)) status = 422;
    if (status >= 500) request.log.error(error);
    const message = status >= 500 && !(error instanceof PocovidError) && status !== 503 ? 'internal error' : error.message;
    // A body we stopped reading must not hold the connection open for the rest of it.
    if (!request.raw.complete) void reply.header('connection', 'close');
    void reply.status(status).send({ error: message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: `not found: ${request.method} ${request.url.split('?')[0]}` });
  });

  // pid: which process answered, when several serve one port (serve --workers).
  app.get('/api/health', async () => ({ status: 'ok', model: meta.name, queued: queue.size, pid: process.pid }));
  app.get('/api/model', async () => ({
    name: meta.name,
    classes: meta.classes,
    inputSize: meta.cfg.inputSize,
    channels: meta.cfg.channels,
    members: meta.members.length,
    aggregation: meta.aggregation,
    createdAt: meta.createdAt,
    format: meta.format,
    formatVersion: meta.version,
    version: VERSION,
    // What runs the members' forward passes: a user comparing answers needs to know int8 from float.
    runtimes: [...new Set(pipeline.runtimes)],
    precision: pipeline.precision,
  }));

  app.post('/api/predict', async (request, reply) => {
    const query = predictQuery.safeParse(request.query);
    if (!query.success) throw httpError(400, `bad query: ${query.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const guard = guardAgainstStall(request, reply, timeouts.bodyIdleMs, `upload stalled: no data for ${seconds(timeouts.bodyIdleMs)}`);
    const target = join(workDir, `upload-${randomUUID()}`);
    let result;
    let shownName = 'upload';
    try {
      const fields: Record<string, string> = {};
      let received = false;
      let fieldCount = 0;
      for await (const part of request.parts()) {
        if (part.type === 'field') {
          if (++fieldCount > MAX_FORM_FIELDS) throw httpError(413, `too many form fields: at most ${MAX_FORM_FIELDS} besides the file`);
          fields[part.fieldname] = String(part.value);
          continue;
        }
        // The client's file name is only echoed back, never used as a path.
        const name = basename(part.filename || 'upload').replace(/[^\w.\- ]/g, '_').slice(0, 100);
        if (received) {
          part.file.resume();
          throw httpError(400, `one file per request: "${name}" came after "${shownName}"; send each file in a request of its own`);
        }
        shownName = name;
        guard.writing(part.file);
        await pipeStreams(part.file, createWriteStream(target, { mode: 0o600 }));
        guard.writing(undefined);
        if (part.file.truncated) throw httpError(413, `file larger than the ${options.maxUploadMb ?? 200} MB limit`);
        received = true;
      }
      guard.stop();
      if (!received) throw httpError(400, 'no file: send one image or video as multipart/form-data');
      const heatmapFlag = query.data.heatmap ?? fields['heatmap'];
      const wantHeatmap = heatmapFlag === '1' || heatmapFlag === 'true';
      const head = await readHead(target);
      const type = sniffType(head);
      if (!type) throw httpError(head.length === 0 ? 400 : 415, `${shownName}: ${describeUnknown(head)}`);
      const deadline = answerDeadline(timeouts.answerMs, `no answer within ${seconds(timeouts.answerMs)} of the upload: the server is busy; try again later`);
      const job = queue
        .run(
          deadline.guard(async () => {
            // predictFile, as the CLI: the answer has predict --json's shape (format included).
            const answer = await pipeline.predictFile(target, { heatmap: wantHeatmap, aggregation: query.data.aggregate, fps: query.data.fps, maxFrames: query.data.maxFrames });
            metrics.framesClassified.inc({ kind: answer.kind }, answer.frames?.length ?? 1);
            return answer;
          }),
        )
        .catch((err: unknown) => {
          if (err instanceof BadInputError) throw httpError(422, err.message.split(target).join(shownName));
          throw err;
        });
      try {
        result = await deadline.race(job);
      } catch (err) {
        if (!isLate(err)) throw err;
        // Answered now; a job already running still reads the upload, removed (finally) once it is done.
        void reply.status(503).header('retry-after', String(err.retryAfter)).send({ error: err.message });
        await job.catch(() => undefined);
        return reply;
      }
    } catch (err) {
      // The stall answer has gone out already; what failed after it is the cut connection.
      if (guard.stalled) return reply;
      throw err;
    } finally {
      guard.stop();
      // Deleted before the answer leaves, so a client never sees its upload linger.
      if (!options.keepUploads) await rm(target, { force: true });
    }
    return reply.send({ file: shownName, ...result });
  });

  // The page and the model files it loads (./pocovid.json, ./member-k/model.json + weights), sent
  // cross-origin isolated: the page's model worker then runs TF.js wasm on every core.
  const roots = pageDir ? [pageDir, modelDir] : [modelDir];
  await app.register(fastifyStatic, {
    root: roots,
    serveDotFiles: false,
    setHeaders: (res) => {
      for (const [name, value] of Object.entries(ISOLATION_HEADERS)) res.setHeader(name, value);
    },
    allowedPath: (pathName) =>
      PAGE_FILES.includes(pathName.slice(1)) ||
      pathName === '/' ||
      pathName === `/${MODEL_META_FILE}` ||
      pathName === `/${SHARED_WEIGHTS_FILE}` ||
      /^\/member-\d+\/[A-Za-z0-9._-]+\.(json|bin)$/.test(pathName),
  });
  if (!pageDir) {
    app.get('/', async (_request, reply) => reply.status(503).send({ error: 'the page has not been built (npm run build:page)' }));
  }

  let closing: Promise<void> | undefined;
  const removeUploads = (): void => {
    if (!options.keepUploads) rmSync(workDir, { recursive: true, force: true });
  };
  return {
    app,
    pipeline,
    workDir,
    swept,
    metricsRegistry: metrics.registry,
    close(closeOptions = {}) {
      closing ??= (async () => {
        const drainMs = closeOptions.drainMs ?? timeouts.drainMs;
        // Requests already accepted may finish; queued ones not yet started are refused.
        queue.close('server shutting down');
        let deadline: NodeJS.Timeout | undefined;
        const cut = new Promise<void>((resolve) => {
          deadline = setTimeout(() => {
            for (const socket of sockets) socket.destroy();
            resolve();
          }, drainMs);
        });
        const closed = app.close();
        await Promise.race([closed, cut]);
        clearTimeout(deadline);
        await closed;
        // The job running when the connections were cut finishes before its model is freed.
        await queue.idle();
        await pipeline.dispose();
        removeUploads();
      })();
      return closing;
    },
    abort() {
      queue.close('server shutting down');
      for (const socket of sockets) socket.destroy();
      removeUploads();
    },
  };
}
