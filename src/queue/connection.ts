// The Redis server behind the job queue (BullMQ), named by `--queue redis://host:port[/db]`.
// Every command that talks to the queue checks first that the server answers, so an address that
// is wrong or a server that is down gives one clear line instead of BullMQ's endless reconnects.
import type { ConnectionOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { PocovidError } from '../errors.js';

/** The one BullMQ queue of training jobs (folds of cv and sweep runs, refits). */
export const QUEUE_NAME = 'pocovid-train';

/** An error about the --queue option: names the option and its value, with the password hidden. */
export class QueueAddressError extends PocovidError {}

/** The address as it may be printed (a password in it is replaced by ***). */
export function shownQueueUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/** ioredis options for `redis://[user:password@]host[:port][/db]` (or rediss:// for TLS). */
export function redisOptionsFromUrl(url: string): RedisOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new QueueAddressError(`--queue "${shownQueueUrl(url)}": not an address; use redis://host:port (e.g. redis://127.0.0.1:6379)`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new QueueAddressError(`--queue "${shownQueueUrl(url)}": use redis://host:port or rediss://host:port (the protocol was ${parsed.protocol.replace(/:$/, '')})`);
  }
  if (!parsed.hostname) throw new QueueAddressError(`--queue "${shownQueueUrl(url)}": no host; use redis://host:port`);
  const port = parsed.port ? Number(parsed.port) : 6379;
  const dbText = parsed.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0) throw new QueueAddressError(`--queue "${shownQueueUrl(url)}": the database "${dbText}" is not a whole number ≥ 0`);
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port,
    db,
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/**
 * Connection options for BullMQ's queues and workers: commands wait for a lost connection to come
 * back (BullMQ requires maxRetriesPerRequest null for workers) instead of failing a fold.
 */
export function queueConnection(url: string): ConnectionOptions {
  return { ...redisOptionsFromUrl(url), maxRetriesPerRequest: null } as ConnectionOptions;
}

/** Fails with a clear message unless a Redis server answers at `url` within `timeoutMs`. */
export async function checkQueueReachable(url: string, timeoutMs = 5000): Promise<void> {
  const client = new Redis({ ...redisOptionsFromUrl(url), lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  // ioredis gives the reason (ECONNREFUSED, ENOTFOUND...) on 'error'; connect() then rejects with
  // a bare "Connection is closed".
  let cause: Error | undefined;
  client.on('error', (err: Error) => (cause ??= err));
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    const first = (cause ?? err) as NodeJS.ErrnoException;
    const reason = first.code ?? first.message;
    throw new QueueAddressError(`--queue ${shownQueueUrl(url)}: no Redis server answers there (${reason}); start one (redis-server) or check the address`);
  } finally {
    client.disconnect();
  }
}
