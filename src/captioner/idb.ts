/** Promise wrappers for IndexedDB requests, cursors and transactions, shared by the pack store and the caption cache. */

/** The request's own error; a browser may report none (null), and a rejection should always carry an Error. */
function failure(err: DOMException | null, what: string): Error {
  return err ?? new Error(`IndexedDB ${what} failed`);
}

export function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(failure(r.error, 'request'));
  });
}

/** Walk a cursor to its end, or until `visit` returns false; the cursor is advanced after each visit. */
export function walk<C extends IDBCursor>(r: IDBRequest<C | null>, visit: (cursor: C) => boolean | void): Promise<void> {
  return new Promise((resolve, reject) => {
    r.onerror = () => reject(failure(r.error, 'cursor'));
    r.onsuccess = () => {
      const cursor = r.result;
      if (!cursor || visit(cursor) === false) return resolve();
      cursor.continue();
    };
  });
}

export function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(failure(tx.error, 'transaction'));
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}
