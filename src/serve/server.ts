// `pocovid serve`: the HTTP API (fastify 5) and the static page.
//   POST /api/predict  multipart, one image or video (query or field heatmap=1 for Grad-CAM)
//   GET  /api/health   GET /api/model   GET / (the page, which loads ./pocovid.json and ./member-k/)
// Uploads are untrusted: streamed to a private temp folder with a size limit, typed from their
// bytes, decoded by the hardened ffmpeg/sharp path, queued one at a time, deleted after the answer.
import { randomUUID } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pipeline as pipeStreams } from 'node:stream/promises';
import fastifyMultipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { z } from 'zod';
import { BadInputError, PocovidError } from '../errors.js';
import { exportRun } from '../infer/export.js';
import { MODEL_META_FILE, readModelMeta } from '../infer/model_dir.js';
import { createPipeline, type Guard, type Pipeline, type PipelineOptions } from '../infer/pipeline.js';
import { describeUnknown, sniffType, SNIFF_BYTES } from '../media/sniff.js';
import { VERSION } from '../version.js';
import { findPageDir, PAGE_FILES } from './page_dir.js';
import { createQueue } from './queue.js';

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
}

export interface PocovidServer {
  app: FastifyInstance;
  pipeline: Pipeline;
  /** Private folder holding uploads (and the exported model when serving a run). */
  workDir: string;
  close(): Promise<void>;
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
  const maxBytes = Math.round((options.maxUploadMb ?? 200) * 1024 * 1024);
  const workDir = await mkdtemp(join(tmpdir(), 'pocovid-serve-'));
  let modelDir = options.model;
  if (!existsSync(join(modelDir, MODEL_META_FILE))) {
    modelDir = join(workDir, 'model');
    await exportRun(options.model, modelDir, { page: false });
  }
  const meta = readModelMeta(modelDir);
  const pipeline = await createPipeline(modelDir, { ...options.pipeline, guard: options.guard });
  const queue = createQueue(options.maxQueued ?? 500);
  const pageDir = [options.pageDir ?? findPageDir()].find((d): d is string => d !== undefined && existsSync(join(d, 'index.html')));

  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 1024 * 1024 });
  await app.register(fastifyMultipart, { limits: { fileSize: maxBytes, files: 1, fields: 8, parts: 9, headerPairs: 100 } });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    let status = error.statusCode ?? 500;
    if (error.code === 'FST_INVALID_MULTIPART_CONTENT_TYPE') status = 415;
    if (error.code === 'FST_REQ_FILE_TOO_LARGE') status = 413;
    if (error instanceof PocovidError && status === 500) status = 422;
    if (status >= 500) request.log.error(error);
    const message = status >= 500 && !(error instanceof PocovidError) && status !== 503 ? 'internal error' : error.message;
    void reply.status(status).send({ error: message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: `not found: ${request.method} ${request.url.split('?')[0]}` });
  });

  app.get('/api/health', async () => ({ status: 'ok', model: meta.name, queued: queue.size }));
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
    const part = await request.file();
    if (!part) throw httpError(400, 'no file: send one image or video as multipart/form-data');
    const field = (name: string): string | undefined => {
      const value = part.fields[name];
      return value && !Array.isArray(value) && 'value' in value ? String(value.value) : undefined;
    };
    const heatmapFlag = query.data.heatmap ?? field('heatmap');
    const wantHeatmap = heatmapFlag === '1' || heatmapFlag === 'true';
    // The client's file name is only echoed back, never used as a path.
    const shownName = basename(part.filename || 'upload').replace(/[^\w.\- ]/g, '_').slice(0, 100);
    const target = join(workDir, `upload-${randomUUID()}`);
    let result;
    try {
      await pipeStreams(part.file, createWriteStream(target, { mode: 0o600 }));
      if (part.file.truncated) throw httpError(413, `file larger than the ${options.maxUploadMb ?? 200} MB limit`);
      const head = await readHead(target);
      const type = sniffType(head);
      if (!type) throw httpError(head.length === 0 ? 400 : 415, `${shownName}: ${describeUnknown(head)}`);
      result = await queue.run(() =>
        type.kind === 'image'
          ? pipeline.predictImage(target, { heatmap: wantHeatmap })
          : pipeline.predictVideo(target, { heatmap: wantHeatmap, aggregation: query.data.aggregate, fps: query.data.fps, maxFrames: query.data.maxFrames }),
      ).catch((err: unknown) => {
        if (err instanceof BadInputError) throw httpError(422, err.message.split(target).join(shownName));
        throw err;
      });
    } finally {
      // Deleted before the answer leaves, so a client never sees its upload linger.
      if (!options.keepUploads) await rm(target, { force: true });
    }
    return reply.send({ file: shownName, ...result });
  });

  // The page and the model files it loads (./pocovid.json, ./member-k/model.json + weights).
  const roots = pageDir ? [pageDir, modelDir] : [modelDir];
  await app.register(fastifyStatic, {
    root: roots,
    serveDotFiles: false,
    allowedPath: (pathName) =>
      PAGE_FILES.includes(pathName.slice(1)) || pathName === '/' || pathName === `/${MODEL_META_FILE}` || /^\/member-\d+\/[A-Za-z0-9._-]+\.(json|bin)$/.test(pathName),
  });
  if (!pageDir) {
    app.get('/', async (_request, reply) => reply.status(503).send({ error: 'the page has not been built (npm run build:page)' }));
  }

  return {
    app,
    pipeline,
    workDir,
    async close() {
      await app.close();
      await pipeline.dispose();
      if (!options.keepUploads) await rm(workDir, { recursive: true, force: true });
    },
  };
}
