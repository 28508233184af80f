/**
 * ORT's worker threads in the engine's frame. The frame is a sandboxed page, so its document's origin is opaque, and
 * Chromium refuses it a module worker from the extension's URL ("cannot be accessed from origin 'null'") and from a
 * blob: URL it made itself, but runs a classic worker from such a blob: URL, and a classic worker may import() a
 * module. ORT's threads are module workers (Emscripten's pthreads); so from here on, a module worker starts as a classic
 * one whose script imports the module. The messages that reach it before the module has run (ORT posts the first one
 * at once) are kept, and dispatched again, in order, once it has: to whatever listener the module set. The sandbox CSP
 * allows `blob:` scripts for this boot script; nothing else makes one, and its URL is revoked once the worker has it.
 */
let installed = false;

export function moduleWorkersAsClassic(): void {
  if (installed) return;
  installed = true;
  const Native = globalThis.Worker;
  globalThis.Worker = class extends Native {
    constructor(script: string | URL, options?: WorkerOptions) {
      if (options?.type !== 'module') {
        super(script, options);
        return;
      }
      // No message task runs between the module's evaluation and the `then`, so none is seen twice or missed.
      const boot = [
        'const early = [];',
        'const keep = (e) => early.push(e);',
        "self.addEventListener('message', keep);",
        `import(${JSON.stringify(String(script))}).then(`,
        '  () => {',
        "    self.removeEventListener('message', keep);",
        "    for (const e of early) self.dispatchEvent(new MessageEvent('message', { data: e.data, ports: [...e.ports] }));",
        '  },',
        '  (err) => setTimeout(() => { throw err; }),',
        ');',
      ].join('\n');
      const url = URL.createObjectURL(new Blob([boot], { type: 'text/javascript' }));
      super(url, { ...options, type: 'classic' });
      // The constructor has resolved the URL to its Blob (HTML: a blob: URL's entry is looked up when it is parsed),
      // so the worker loads without it; revoked, the Blob is not kept for the frame's lifetime, once per thread.
      URL.revokeObjectURL(url);
    }
  };
}
