// Registers the page's service worker (service_worker.ts, sw.js), which keeps the page and its
// model usable offline after the first visit. Browsers allow it over HTTPS and on localhost only;
// elsewhere (or from file://) the page works as before, online. document.body.dataset.offline
// says where it stands: "ready" once the page's files are kept, "unavailable" otherwise.
import { SERVICE_WORKER_FILE } from './page_files.js';

export function registerOffline(): void {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) {
    document.body.dataset['offline'] = 'unavailable';
    return;
  }
  navigator.serviceWorker
    .register(SERVICE_WORKER_FILE)
    .then(() => navigator.serviceWorker.ready)
    .then(() => {
      document.body.dataset['offline'] = 'ready';
    })
    .catch(() => {
      document.body.dataset['offline'] = 'unavailable';
    });
}
