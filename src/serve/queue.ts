// A FIFO of async jobs run one at a time: the model (and the wasm engine) serves one request at a
// time, and concurrent uploads wait their turn instead of racing for memory. At shutdown the queue
// is closed: jobs not yet started are refused, the running one finishes (idle() waits for it).
export interface JobQueue {
  run<T>(job: () => Promise<T>): Promise<T>;
  /** Jobs waiting or running. */
  readonly size: number;
  /** Refuses new jobs and every job not yet started (503); the running job goes on. */
  close(reason: string): void;
  /** Resolves when no job is running or waiting. */
  idle(): Promise<void>;
}

const refusal = (message: string): Error => Object.assign(new Error(message), { statusCode: 503 });

export function createQueue(maxWaiting = Infinity): JobQueue {
  let tail: Promise<unknown> = Promise.resolve();
  let size = 0;
  let closed: string | undefined;
  return {
    get size() {
      return size;
    },
    run<T>(job: () => Promise<T>): Promise<T> {
      if (closed) return Promise.reject(refusal(closed));
      if (size >= maxWaiting) return Promise.reject(refusal('server busy: too many requests queued'));
      size++;
      // A job whose turn comes after close() is refused instead of run.
      const guarded = () => (closed ? Promise.reject(refusal(closed)) : job());
      const result = tail.then(guarded, guarded);
      // The chain continues whatever this job's outcome; the caller still sees the failure.
      tail = result.then(
        () => undefined,
        () => undefined,
      );
      return result.finally(() => {
        size--;
      });
    },
    close(reason) {
      closed ??= reason;
    },
    async idle() {
      // Jobs can be added while we wait; wait until the chain stops growing.
      let seen: Promise<unknown> | undefined;
      while (seen !== tail) {
        seen = tail;
        await tail;
      }
    },
  };
}
