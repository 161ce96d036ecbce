// Where the page keeps an adapted model between visits: IndexedDB, in this browser only, one
// adaptation per model (keyed by the model's pocovid.json sha256), as the same JSON text the
// page exports (src/adapt/record.ts). Nothing here ever goes over the network.
const DB_NAME = 'pocovid';
const STORE = 'adaptations';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(new Error(`IndexedDB: ${request.error?.message ?? 'cannot be opened'}`));
  });
}

async function run<T>(mode: IDBTransactionMode, f: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = f(tx.objectStore(STORE));
      // Resolved when the transaction commits: a put is only kept once it is on disk.
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(new Error(`IndexedDB: ${tx.error?.message ?? 'the transaction failed'}`));
      tx.onabort = () => reject(new Error(`IndexedDB: ${tx.error?.message ?? 'the transaction was aborted'}`));
    });
  } finally {
    db.close();
  }
}

/** The adaptation kept for the model `key` (its JSON text), or undefined. */
export async function loadKeptAdaptation(key: string): Promise<string | undefined> {
  const value = await run('readonly', (store) => store.get(key) as IDBRequest<unknown>);
  return typeof value === 'string' ? value : undefined;
}

export async function keepAdaptation(key: string, json: string): Promise<void> {
  await run('readwrite', (store) => store.put(json, key));
}

export async function forgetAdaptation(key: string): Promise<void> {
  await run('readwrite', (store) => store.delete(key));
}
