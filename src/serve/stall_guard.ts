// A client that opens an upload and stops sending must not hold the connection (and its
// half-written file) for as long as it likes. The guard watches the request body: after `idleMs`
// without a byte it answers 408 with `Connection: close`, cuts the socket once that answer is out,
// and destroys the file part being written so that the handler's await ends. A connection closed
// before the body ended cuts the file part the same way.
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface StallGuard {
  /** The file part now being written (cut if the upload stops); undefined once it is written. */
  writing(part: Readable | undefined): void;
  /** Whether the 408 has been sent (the handler then only cleans up). */
  readonly stalled: boolean;
  /** Stops watching: the body has arrived, or the request is over. */
  stop(): void;
}

export function guardAgainstStall(request: FastifyRequest, reply: FastifyReply, idleMs: number, message: string): StallGuard {
  let stalled = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Readable | undefined;
  const cut = (why: string): void => {
    current?.destroy(new Error(why));
  };
  const arm = (): void => {
    clearTimeout(timer);
    if (request.raw.complete) return;
    timer = setTimeout(() => {
      stalled = true;
      cut('upload stalled');
      if (reply.sent) return;
      reply.raw.once('finish', () => request.raw.socket?.destroy());
      void reply.status(408).header('connection', 'close').send({ error: message });
    }, idleMs);
  };
  const onClose = (): void => {
    if (!request.raw.complete) cut('connection closed before the upload ended');
  };
  request.raw.on('data', arm);
  request.raw.once('close', onClose);
  arm();
  return {
    writing(part) {
      current = part;
    },
    get stalled() {
      return stalled;
    },
    stop() {
      clearTimeout(timer);
      request.raw.off('data', arm);
      request.raw.off('close', onClose);
    },
  };
}
