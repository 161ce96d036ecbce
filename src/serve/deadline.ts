// A request's answer has a time limit: from the end of its upload, waiting for the model and
// classifying must not take longer than `ms`. Past it the client gets a 503 with a JSON error (and
// Retry-After) at once instead of hanging on an overloaded server. A job that had not started by
// then never runs (its turn is skipped); one already running cannot be interrupted (a forward
// pass is synchronous), so it finishes and its result is dropped — the caller waits for `settled`
// before removing the upload it reads.
const late = (message: string, retryAfterS: number): Error & { statusCode: number; retryAfter: number } =>
  Object.assign(new Error(message), { statusCode: 503, retryAfter: retryAfterS });

export interface Deadline {
  /** Wraps the job handed to the queue: past the deadline it is refused instead of run. */
  guard<T>(job: () => Promise<T>): () => Promise<T>;
  /** The job's answer, or a 503 error once the deadline passes (whichever comes first). */
  race<T>(job: Promise<T>): Promise<T>;
}

export function answerDeadline(ms: number, message: string): Deadline {
  const end = Date.now() + ms;
  const retryAfter = Math.max(1, Math.ceil(ms / 1000));
  return {
    guard: (job) => () => (Date.now() >= end ? Promise.reject(late(message, retryAfter)) : job()),
    race<T>(job: Promise<T>): Promise<T> {
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(late(message, retryAfter)), Math.max(0, end - Date.now()));
      });
      return Promise.race([job, expired]).finally(() => clearTimeout(timer));
    },
  };
}

/** Whether `err` is a deadline's 503 (its Retry-After in seconds). */
export function isLate(err: unknown): err is Error & { statusCode: 503; retryAfter: number } {
  return err instanceof Error && (err as { statusCode?: number }).statusCode === 503 && typeof (err as { retryAfter?: unknown }).retryAfter === 'number';
}
