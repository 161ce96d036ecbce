// A FIFO of async jobs run one at a time: the model (and the wasm engine) serves one request at a
// time, and concurrent uploads wait their turn instead of racing for memory.
export interface JobQueue {
  run<T>(job: () => Promise<T>): Promise<T>;
  /** Jobs waiting or running. */
  readonly size: number;
}

export function createQueue(maxWaiting = Infinity): JobQueue {
  let tail: Promise<unknown> = Promise.resolve();
  let size = 0;
  return {
    get size() {
      return size;
    },
    run<T>(job: () => Promise<T>): Promise<T> {
      if (size >= maxWaiting) return Promise.reject(Object.assign(new Error('server busy: too many requests queued'), { statusCode: 503 }));
      size++;
      const result = tail.then(job, job);
      // The chain continues whatever this job's outcome; the caller still sees the failure.
      tail = result.then(
        () => undefined,
        () => undefined,
      );
      return result.finally(() => {
        size--;
      });
    },
  };
}
