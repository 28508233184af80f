// Hostile fixture pages (test/e2e/hostile.test.ts, load.test.ts): a page that spoofs our protocol, forges our marker,
// redefines DOM APIs in its own world and points images at non-image URLs; pages with thousands of images, a
// mutation storm and an image whose src never stops changing. Captions come from the toy pack's held-out images.

/** Deterministic roles for held-out images; tests call it again to know the true captions. */
export function hostilePlan(heldout) {
  const pick = (k) => heldout[k % heldout.length];
  return {
    plain: pick(3),
    forged: pick(4),
    authored: pick(5),
    stripped: pick(6),
    inject: pick(7),
    churn: [pick(8), pick(9), pick(10), pick(11)],
  };
}

export const INJECT_CAPTION = '<img src=x onerror="window.__pwned=1"></span><script>window.__pwned=2</script>';

// Runs before the content script: redefine what a naive content script would rely on, in the page's own world.
const SABOTAGE = `<script>
  const real = { set: Element.prototype.setAttribute, get: Element.prototype.getAttribute };
  window.__real = real;
  Element.prototype.setAttribute = function (n, v) { if (n === 'aria-label') return; return real.set.call(this, n, v); };
  Element.prototype.getAttribute = function (n) { return n === 'aria-label' ? 'Appears to be: a lie' : real.get.call(this, n); };
  Element.prototype.hasAttribute = () => true;
  Element.prototype.removeAttribute = () => {};
  window.MutationObserver = function () { throw new Error('no observers here'); };
  window.IntersectionObserver = function () { throw new Error('no observers here'); };
  window.requestIdleCallback = () => 0;
  HTMLImageElement.prototype.decode = () => Promise.resolve();
  Object.defineProperty(HTMLImageElement.prototype, 'currentSrc', { get() { return '/hostile/secret.json'; } });
  Object.defineProperty(HTMLImageElement.prototype, 'complete', { get() { return true; } });
  // Our protocol, imitated over window messages, over and over.
  const fake = (url) => ({ type: 'cs-bg-caption', requestId: 'x', priority: 0, source: { kind: 'url', url } });
  setInterval(() => {
    for (const u of ['/hostile/secret.json', 'file:///etc/passwd', 'http://127.0.0.1:1/admin']) {
      window.postMessage(fake(u), '*');
      window.postMessage({ type: 'bg-cs-describe', via: 'menu', srcUrl: u }, '*');
    }
  }, 50);
</script>`;

export function buildHostileFixtures(heldout) {
  const p = hostilePlan(heldout);
  // Every image is unnamed and has its own URL (so the content queue cannot fold them together), but only the first
  // `eager` load with the page; the rest are loading="lazy", as on real long pages, and load as they are scrolled to.
  // The static server sends max-age, so a second visit to the page comes from the HTTP cache.
  const many = (n, size, eager) => {
    const rows = [];
    for (let k = 0; k < n; k += 1) {
      const f = heldout[k % heldout.length].file;
      rows.push(
        `<img data-k="${k}" data-file="${f}" src="/heldout/${f}?k=${k}" width="${size}" height="${size}"${k >= eager ? ' loading="lazy"' : ''}>`,
      );
    }
    return rows.join('');
  };
  const PERF = `<script>
  window.__long = []; window.__loaf = [];
  new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push({ start: e.startTime, duration: e.duration }); }).observe({ type: 'longtask', buffered: true });
  try { new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__loaf.push({ start: e.startTime, duration: e.duration, scripts: e.scripts.map((s) => ({ url: s.sourceURL, duration: s.duration, invoker: s.invoker })) }); }).observe({ type: 'long-animation-frame', buffered: true }); } catch {}
  window.__frames = 0; const tick = () => { window.__frames += 1; requestAnimationFrame(tick); }; requestAnimationFrame(tick);
</script>`;
  const head = (title, extra = '') =>
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>${extra}<style>img{margin:2px;vertical-align:top}</style></head><body><main><h1>${title}</h1>`;

  const spoof = `${head('Hostile page', SABOTAGE)}
<img data-test="plain" src="/heldout/${p.plain.file}?spoof">
<img data-test="forged" src="/heldout/${p.forged.file}?spoof" aria-label="Appears to be: forged by the page" data-alt-text-generated="toy">
<img data-test="authored" src="/heldout/${p.authored.file}?spoof" alt="Author words" data-alt-text-generated="toy">
<img data-test="stripped" src="/heldout/${p.stripped.file}?spoof">
<img data-test="secret-img" src="/hostile/secret.json" width="64" height="64">
<input data-test="secret-input" type="image" src="/hostile/secret-input" width="64" height="64">
<div data-test="secret-bg" role="img" style="width:64px;height:64px;background-image:url('/hostile/secret-bg')"></div>
<img data-test="file-img" src="file:///etc/passwd" width="64" height="64">
<img data-test="ext-img" src="chrome-extension://abcdefghijklmnopabcdefghijklmnop/icons/icon-128.png" width="64" height="64">
</main><script>
  // Fake events: a load on the secret image, a context menu on it.
  const s = document.querySelector('[data-test=secret-img]');
  setInterval(() => { s.dispatchEvent(new Event('load')); s.dispatchEvent(new MouseEvent('contextmenu', { bubbles: true, composed: true })); s.dispatchEvent(new PointerEvent('pointerover', { bubbles: true, composed: true })); }, 100);
</script></body></html>`;

  const inject = `${head('Injection')}<img data-test="inject" src="/heldout/${p.inject.file}?inject=1"></main></body></html>`;

  const load = (n, eager) => `${head('Many images', PERF)}<div id="grid">${many(n, 96, eager)}</div></main><script>
  let next = ${n};
  // Infinite scroll: m more images at the end, lazy like the rest.
  window.more = (m) => { const d = document.createElement('div'); let h = ''; for (let i = 0; i < m; i += 1, next += 1) h += '<img data-k="' + next + '" data-file="${p.plain.file}" src="/heldout/${p.plain.file}?k=' + next + '" width="96" height="96" loading="lazy">'; d.innerHTML = h; document.getElementById('grid').append(d); };
  window.storm = (ms) => new Promise((done) => {
    const imgs = [...document.querySelectorAll('#grid img')].slice(0, 400); const grid = document.getElementById('grid'); let n = 0;
    const t = setInterval(() => { for (let i = 0; i < 40; i += 1) { const im = imgs[(n + i) % imgs.length]; im.className = 'c' + (n % 7); im.style.outline = (n % 3) + 'px solid red'; } grid.className = 'g' + (n % 5); n += 40; }, 4);
    setTimeout(() => { clearInterval(t); done(n); }, ms);
  });
  const files = ${JSON.stringify(p.churn.map((h) => h.file))};
  window.churn = (ms) => new Promise((done) => {
    const im = document.createElement('img'); im.setAttribute('data-test', 'churn'); im.width = 96; im.height = 96; document.querySelector('main').prepend(im);
    let n = 0; const t = setInterval(() => { im.src = '/heldout/' + files[n % files.length] + '?churn=' + n; n += 1; }, 15);
    setTimeout(() => { clearInterval(t); im.src = '/heldout/' + files[files.length - 1] + '?churn=final'; done(n); }, ms);
  });
</script></body></html>`;

  const secret = () => ({ type: 'application/json', body: '{"secret":"intranet data"}' });
  return {
    plan: p,
    routes: {
      '/hostile/spoof.html': () => ({ body: spoof }),
      '/hostile/inject.html': () => ({ body: inject }),
      '/hostile/load.html': (_req, url) => ({
        body: load(Number(url.searchParams.get('n') ?? 10000), Number(url.searchParams.get('eager') ?? 300)),
      }),
      '/hostile/secret.json': secret,
      '/hostile/secret-input': secret,
      '/hostile/secret-bg': secret,
    },
  };
}
