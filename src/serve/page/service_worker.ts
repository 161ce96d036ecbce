// The page's service worker (bundled as sw.js): after the first visit the page keeps working with
// no network — a clinic's laptop off the network, a flaky connection. It keeps copies of the
// page's own files and the model folder's, nothing else: the images and videos a user analyses or
// adapts on are read from disk by the page and never fetched, so they never pass through here.
//   install:  fetches the page (OFFLINE_FILES), pocovid.json and every member file it lists;
//   fetch:    same-origin GETs go to the network first (a re-exported model is picked up at once)
//             and are copied into the cache; without a network the copy answers. The video
//             decoder is cached this way the first time a video is decoded.
import { MODEL_META_FILE } from '../../model_dir/names.js';
import { OFFLINE_FILES } from './page_files.js';

/** The worker's global scope, typed for what is used here (the project's lib is DOM, not WebWorker). */
interface InstallEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface FetchEvent extends Event {
  request: Request;
  respondWith(response: Promise<Response>): void;
}
const scope = globalThis as unknown as {
  addEventListener(type: 'install' | 'activate', listener: (event: InstallEvent) => void): void;
  addEventListener(type: 'fetch', listener: (event: FetchEvent) => void): void;
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void> };
  location: Location;
  registration: { scope: string };
};

/** One cache per page folder (its scope): two exported models on one host do not mix. */
const CACHE = `pocovid-page:${scope.registration.scope}`;

/** The member files pocovid.json records (member-0/model.json, member-0/weights.bin…). */
async function memberFiles(base: string): Promise<string[]> {
  const response = await fetch(new URL(MODEL_META_FILE, base));
  if (!response.ok) return [];
  const meta = (await response.json()) as { files?: Record<string, unknown>; members?: string[] };
  if (meta.files) return Object.keys(meta.files);
  // A folder written before digests were recorded: each member's model.json names its weight files.
  const names: string[] = [];
  for (const member of meta.members ?? []) {
    names.push(`${member}/model.json`);
    const json = await fetch(new URL(`${member}/model.json`, base)).then((r) => (r.ok ? r.json() : undefined));
    for (const group of (json?.weightsManifest ?? []) as { paths: string[] }[]) names.push(...group.paths.map((p) => `${member}/${p}`));
  }
  return names;
}

/** Copies what the page needs; a file the host does not have (a page without a model) is skipped. */
async function precache(): Promise<void> {
  const base = scope.registration.scope;
  const cache = await caches.open(CACHE);
  const names = ['', ...OFFLINE_FILES, MODEL_META_FILE, ...(await memberFiles(base).catch(() => []))];
  await Promise.all(
    names.map(async (name) => {
      const response = await fetch(new URL(name, base), { cache: 'no-cache' }).catch(() => undefined);
      if (response?.ok) await cache.put(new URL(name, base).href, response);
    }),
  );
}

scope.addEventListener('install', (event) => {
  event.waitUntil(precache().then(() => scope.skipWaiting()));
});

scope.addEventListener('activate', (event) => {
  event.waitUntil(scope.clients.claim());
});

scope.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET' || new URL(request.url).origin !== scope.location.origin) return;
  event.respondWith(
    (async () => {
      try {
        const response = await fetch(request);
        if (response.ok && response.status === 200) {
          const copy = response.clone();
          void caches.open(CACHE).then((cache) => cache.put(request, copy));
        }
        return response;
      } catch (err) {
        const cached = await caches.match(request, { cacheName: CACHE, ignoreSearch: true });
        if (cached) return cached;
        throw err;
      }
    })(),
  );
});
