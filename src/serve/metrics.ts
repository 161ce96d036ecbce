// GET /metrics in the Prometheus text format (prom-client): requests by route, method and status,
// their latency, the requests waiting for the model, the frames classified, and how long the model
// took to load; plus prom-client's process metrics (CPU, memory, event-loop lag, heap).
// Each server has its own registry, so several servers in one process (tests) never mix counts.
// Under `serve --workers N` every worker answers /metrics with the sum over all workers (the
// primary gathers them, cluster.ts), so a scrape of the one port sees the whole server.
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface ServerMetrics {
  registry: Registry;
  /** Frames whose classes were computed (an image is one frame; a video, its sampled frames). */
  framesClassified: Counter<'kind'>;
  /** Seconds from the start of the server to the model ready (the export of a run included). */
  modelLoadSeconds: Gauge;
}

/** Latency buckets (s): an image on a small model answers in milliseconds, a long video in tens of seconds. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export function createServerMetrics(app: FastifyInstance, queueLength: () => number, aggregate?: () => Promise<string>): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'pocovid_' });
  const requests = new Counter({ name: 'pocovid_http_requests_total', help: 'HTTP requests answered, by route, method and status', labelNames: ['route', 'method', 'status_code'], registers: [registry] });
  const latency = new Histogram({ name: 'pocovid_http_request_duration_seconds', help: 'time from a request\'s arrival to its answer, by route and method', labelNames: ['route', 'method'], buckets: LATENCY_BUCKETS, registers: [registry] });
  new Gauge({
    name: 'pocovid_queue_length',
    help: 'requests waiting for the model or being classified',
    registers: [registry],
    collect() {
      this.set(queueLength());
    },
  });
  const framesClassified = new Counter({ name: 'pocovid_frames_classified_total', help: 'frames classified, by upload kind', labelNames: ['kind'], registers: [registry] });
  // Workers load the same model: the slowest is the figure to watch (not the sum).
  const modelLoadSeconds = new Gauge({ name: 'pocovid_model_load_seconds', help: 'seconds from the server\'s start to its model being ready', registers: [registry], aggregator: 'max' });

  app.addHook('onResponse', async (request, reply) => {
    // The route's pattern, never the raw URL: unknown paths must not make a label each.
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc({ route, method: request.method, status_code: String(reply.statusCode) });
    latency.observe({ route, method: request.method }, reply.elapsedTime / 1000);
  });
  app.get('/metrics', async (_request, reply) => {
    const text = aggregate ? await aggregate() : await registry.metrics();
    return reply.header('content-type', registry.contentType).send(text);
  });
  return { registry, framesClassified, modelLoadSeconds };
}
