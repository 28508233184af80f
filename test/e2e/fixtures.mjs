// Fixture pages for the e2e tests, built from the toy pack's held-out images: each eligible image uses its own
// held-out picture, so its expected label is that picture's true caption from captions.json.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

/**
 * Assign held-out images to roles. Returns { pages: {path: html}, expected: {testId: caption}, untouched: [testId] }.
 * `heldout` is toyHeldout(); `packDir` is where the PNGs live (for the data: URL image).
 */
export function buildFixtures(heldout, { packDir, otherOrigin, ood = [] }) {
  let i = 0;
  const take = () => {
    const h = heldout[i % heldout.length];
    i += 1;
    return h;
  };
  const expected = {};
  const img = (id, h, attrs = '') => {
    expected[id] = h.caption;
    return `<img data-test="${id}" src="/heldout/${h.file}" ${attrs}>`;
  };
  /** The true caption of every image, eligible or not (describe works on any image). */
  const truth = {};
  const any = (id) => {
    const h = take();
    truth[id] = h.caption;
    return h;
  };

  // basic: eligibility rules.
  const b = {
    noAlt: take(),
    spaceAlt: take(),
    fileAlt: take(),
    stopAlt: take(),
    input: take(),
    roleImg: take(),
    emptyTitle: take(),
  };
  const untouchedIds = [
    'deco',
    'presentation',
    'none',
    'hidden-self',
    'hidden-parent',
    'display-none',
    'visibility-hidden',
    'named-alt',
    'named-aria',
    'named-labelledby',
    'named-title',
    'tiny',
    'broken',
    'missing',
    'inside-role-img',
  ];
  expected['input-image'] = b.input.caption;
  expected['role-img'] = b.roleImg.caption;
  const basic = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Basic fixture</title>
<style>img{margin:4px} .row{display:flex;flex-wrap:wrap;gap:6px}</style></head><body>
<main><h1>Basic fixture</h1>
<div class="row">
${img('no-alt', b.noAlt)}
${img('space-alt', b.spaceAlt, 'alt="  "')}
${img('file-alt', b.fileAlt, 'alt="IMG_2034.jpg"')}
${img('stop-alt', b.stopAlt, 'alt="image"')}
${img('empty-title', b.emptyTitle, 'title=""')}
<form onsubmit="return false"><input type="image" data-test="input-image" src="/heldout/${b.input.file}" width="96" height="96"></form>
<div role="img" data-test="role-img" style="width:96px;height:96px;background:url('/heldout/${b.roleImg.file}') center/cover"></div>
</div>
<div class="row" id="untouched">
<img data-test="deco" src="/heldout/${any('deco').file}" alt="">
<img data-test="presentation" src="/heldout/${any('presentation').file}" role="presentation">
<img data-test="none" src="/heldout/${any('none').file}" role="none">
<img data-test="hidden-self" src="/heldout/${any('hidden-self').file}" aria-hidden="true">
<span aria-hidden="true"><img data-test="hidden-parent" src="/heldout/${any('hidden-parent').file}"></span>
<img data-test="display-none" src="/heldout/${any('display-none').file}" style="display:none">
<img data-test="visibility-hidden" src="/heldout/${any('visibility-hidden').file}" style="visibility:hidden">
<img data-test="named-alt" src="/heldout/${any('named-alt').file}" alt="A shape I drew">
<img data-test="named-aria" src="/heldout/${any('named-aria').file}" aria-label="Company logo">
<span id="lbl">A chart of sales</span><img data-test="named-labelledby" src="/heldout/${any('named-labelledby').file}" aria-labelledby="lbl">
<img data-test="named-title" src="/heldout/${any('named-title').file}" title="Sunset over the bay">
<img data-test="tiny" src="/heldout/${any('tiny').file}" width="12" height="12">
<img data-test="broken" src="/broken.png">
<img data-test="missing" src="/missing.png">
<div role="img" aria-label="Two shapes"><img data-test="inside-role-img" src="/heldout/${any('inside-role-img').file}"></div>
</div></main></body></html>`;

  // dynamic: lazy, srcset, picture, inserted, src change, shadow DOM, iframes, blob:, data:.
  const d = {
    lazy: take(),
    srcsetA: take(),
    srcsetB: take(),
    picture: take(),
    inserted: take(),
    changeFrom: take(),
    changeTo: take(),
    shadow: take(),
    frameSame: take(),
    frameCross: take(),
    blob: take(),
    data: take(),
    later: take(),
    authorLater: take(),
  };
  expected['srcset'] = d.srcsetB.caption;
  expected['picture'] = d.picture.caption;
  expected['lazy'] = d.lazy.caption;
  expected['inserted'] = d.inserted.caption;
  expected['change-before'] = d.changeFrom.caption;
  expected['change-after'] = d.changeTo.caption;
  expected['shadow'] = d.shadow.caption;
  expected['in-frame-same'] = d.frameSame.caption;
  expected['in-frame-cross'] = d.frameCross.caption;
  expected['blob'] = d.blob.caption;
  expected['data'] = d.data.caption;
  expected['author-later'] = d.authorLater.caption;
  const dataUrl = `data:image/png;base64,${readFileSync(join(packDir, 'heldout', d.data.file)).toString('base64')}`;
  const dynamic = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Dynamic fixture</title></head><body>
<main><h1>Dynamic fixture</h1>
<img data-test="srcset" src="/heldout/${d.srcsetA.file}" srcset="/heldout/${d.srcsetB.file} 1x, /heldout/${d.srcsetA.file} 2x">
<picture><source srcset="/heldout/${d.picture.file}" type="image/png"><img data-test="picture" src="/heldout/${d.srcsetA.file}"></picture>
<img data-test="change" src="/heldout/${d.changeFrom.file}">
<img data-test="author-later" src="/heldout/${d.authorLater.file}">
<img data-test="data" src="${dataUrl}">
<div id="shadow-host"></div>
<div id="insert-here"></div>
<iframe id="iframe-same" src="/fixtures/frame.html?img=${d.frameSame.file}" width="220" height="200" title="Same-origin frame"></iframe>
<iframe id="iframe-cross" src="${otherOrigin}/fixtures/frame.html?img=${d.frameCross.file}" width="220" height="200" title="Cross-origin frame"></iframe>
<div style="height:3000px" aria-hidden="true"></div>
<img data-test="lazy" loading="lazy" src="/heldout/${d.lazy.file}">
</main>
<script>
  const host = document.getElementById('shadow-host');
  const root = host.attachShadow({ mode: 'open' });
  const s = document.createElement('img'); s.src = '/heldout/${d.shadow.file}'; s.setAttribute('data-test', 'shadow'); root.append(s);
  fetch('/heldout/${d.blob.file}').then((r) => r.blob()).then((b) => {
    const im = document.createElement('img'); im.setAttribute('data-test', 'blob'); im.src = URL.createObjectURL(b);
    document.querySelector('main').insertBefore(im, document.getElementById('insert-here'));
  });
  window.insertImage = () => {
    const im = document.createElement('img'); im.setAttribute('data-test', 'inserted'); im.src = '/heldout/${d.inserted.file}';
    document.getElementById('insert-here').append(im);
  };
  window.changeSrc = () => { document.querySelector('[data-test=change]').src = '/heldout/${d.changeTo.file}'; };
</script></body></html>`;

  const frame = (url) => {
    const file = url.searchParams.get('img') ?? '';
    const id = url.host.startsWith('localhost') ? 'in-frame-cross' : 'in-frame-same';
    return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Frame</title></head><body><img data-test="${id}" src="/heldout/${esc(file)}"></body></html>`;
  };

  // names: every way HTML names or hides an image (test/e2e/ax-names.test.ts judges it by Chrome's accessibility tree).
  // Each element shows its own held-out picture; `label` ones must get its caption, the rest must stay as they are.
  const names = [];
  const nm = (id, label, html) => {
    const h = take();
    truth[id] = h.caption;
    if (label) expected[id] = h.caption;
    const src = `/heldout/${h.file}?names=${id}`;
    names.push(
      html
        .replaceAll('@', `data-test="${id}" data-file="${h.file}"`)
        .replaceAll('SRC', src)
        .replaceAll('BG', `width:64px;height:64px;background:url('${src}') center/cover`),
    );
  };
  // labelled: Chrome exposes an image (or an image button) with no name, a default name or a weak one
  nm('n-plain', true, '<img @ src="SRC">');
  nm('n-alt-space', true, '<img @ src="SRC" alt="  ">');
  nm('n-alt-file', true, '<img @ src="SRC" alt="DSC_0042.JPG">');
  nm('n-title-weak', true, '<img @ src="SRC" title="photo">');
  nm('n-aria-blank', true, '<img @ src="SRC" aria-label="  ">');
  nm('n-labelledby-empty', true, '<span id="n-empty"></span><img @ src="SRC" aria-labelledby="n-empty">');
  nm('n-labelledby-missing', true, '<img @ src="SRC" aria-labelledby="nowhere">');
  nm('n-pres-focusable', true, '<img @ src="SRC" role="presentation" tabindex="0">');
  nm('n-none-tabindex-neg', true, '<img @ src="SRC" role="none" tabindex="-1">');
  nm('n-pres-live', true, '<img @ src="SRC" role="presentation" aria-live="polite">');
  nm('n-alt-empty-focusable', true, '<img @ src="SRC" alt="" tabindex="0">');
  nm('n-alt-empty-describedby', true, '<span id="n-desc">More words</span><img @ src="SRC" alt="" aria-describedby="n-desc">');
  nm('n-picture', true, '<picture><source srcset="SRC&amp;p" type="image/png"><img @ src="SRC"></picture>');
  nm('n-input', true, '<input @ type="image" src="SRC">');
  nm('n-input-alt-empty', true, '<input @ type="image" src="SRC" alt="">');
  nm('n-input-weak', true, '<input @ type="image" src="SRC" alt="image">');
  nm('n-input-pres', true, '<input @ type="image" src="SRC" role="presentation">');
  nm(
    'n-usemap',
    true,
    '<img @ src="SRC" usemap="#n-map1"><map name="n-map1"><area shape="rect" coords="0,0,30,30" href="#a" alt="Corner"></map>',
  );
  nm('n-bg', true, '<div @ role="img" style="BG"></div>');
  nm('n-container', true, '<div @ role="img"><img data-test="n-inside-role-img" src="SRC"></div>');
  truth['n-inside-role-img'] = truth['n-container'];
  nm('n-svg-raster', true, '<svg @ role="img" width="64" height="64"><image href="SRC" width="64" height="64"/></svg>');
  nm('n-role-image', true, '<img @ src="SRC" role="image">');
  nm('n-in-link', true, '<a href="#x"><img @ src="SRC"></a>');
  nm('n-figure', true, '<figure><img @ src="SRC"><figcaption>A figure caption</figcaption></figure>');
  nm('n-shadow', true, '<div><template shadowrootmode="open"><img @ src="SRC"></template></div>');
  // left alone: named by the author, decorative, hidden, not an image, or a documented non-name rule
  nm('n-alt', false, '<img @ src="SRC" alt="A shape I drew">');
  nm('n-alt-empty', false, '<img @ src="SRC" alt="">');
  nm('n-alt-empty-title', false, '<img @ src="SRC" alt="" title="A tooltip">');
  nm('n-title', false, '<img @ src="SRC" title="Sunset over the bay">');
  nm('n-aria', false, '<img @ src="SRC" aria-label="Company logo">');
  nm('n-aria-weak', false, '<img @ src="SRC" aria-label="image">');
  nm('n-labelledby', false, '<span id="n-l1">A chart of sales</span><img @ src="SRC" aria-labelledby="n-l1">');
  nm('n-labelledby-weak', false, '<span id="n-l2">picture</span><img @ src="SRC" aria-labelledby="n-l2">');
  nm('n-labelledby-hidden', false, '<span id="n-l3" hidden>Words nobody sees</span><img @ src="SRC" aria-labelledby="n-l3">');
  nm('n-labelledby-empty-alt', false, '<span id="n-l4"></span><img @ src="SRC" aria-labelledby="n-l4" alt="Floor plan">');
  nm('n-pres', false, '<img @ src="SRC" role="presentation">');
  nm('n-none', false, '<img @ src="SRC" role="none">');
  nm('n-pres-alt', false, '<img @ src="SRC" role="presentation" alt="Words">');
  nm('n-none-tabindex-bad', false, '<img @ src="SRC" role="none" tabindex="x">');
  nm('n-hidden-self', false, '<img @ src="SRC" aria-hidden="true">');
  nm('n-hidden-parent', false, '<span aria-hidden="true"><img @ src="SRC"></span>');
  nm('n-hidden-attr-parent', false, '<div hidden><img @ src="SRC"></div>');
  nm('n-visibility-hidden', false, '<img @ src="SRC" style="visibility:hidden">');
  nm('n-input-label-for', false, '<label for="n-in1">Search</label><input id="n-in1" @ type="image" src="SRC">');
  nm('n-input-label-wrap', false, '<label>Search <input @ type="image" src="SRC"></label>');
  nm('n-input-alt', false, '<input @ type="image" src="SRC" alt="Search">');
  nm('n-input-aria', false, '<input @ type="image" src="SRC" aria-label="Search">');
  nm('n-input-value', false, '<input @ type="image" src="SRC" value="Search">');
  nm(
    'n-usemap-alt',
    false,
    '<img @ src="SRC" usemap="#n-map2" alt="Floor plan"><map name="n-map2"><area shape="rect" coords="0,0,30,30" href="#b" alt="Hall"></map>',
  );
  nm('n-bg-aria', false, '<div @ role="img" aria-label="A shape" style="BG"></div>');
  nm('n-bg-title', false, '<div @ role="img" title="A shape" style="BG"></div>');
  nm('n-svg-vector', false, '<svg @ role="img" width="64" height="64"><circle cx="32" cy="32" r="28"/></svg>');
  nm(
    'n-svg-title',
    false,
    '<svg @ role="img" width="64" height="64"><title>A shape</title><image href="SRC" width="64" height="64"/></svg>',
  );
  nm('n-role-separator', false, '<img @ src="SRC" role="separator">');
  nm('n-role-button', false, '<img @ src="SRC" role="button">');
  nm('n-tiny', false, '<img @ src="SRC" width="12" height="12">');
  const namesPage = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Names fixture</title>
<style>main{display:flex;flex-wrap:wrap;gap:4px;align-items:flex-start} main>div{display:flex} img:not([width]),input{width:56px;height:56px} figure{margin:0}</style></head><body>
<main><h1 style="width:100%;margin:0;font-size:16px">Names fixture</h1>
${names.map((h) => `<div>${h}</div>`).join('\n')}
</main></body></html>`;

  // Demo / bench page: n images, some missing alt, some decorative, some named.
  const gallery = (n, { mix = true, salt = '', unknown = 0 } = {}) => {
    const rows = [];
    // Pictures from outside the toy world (packs/toy/ood/), with no alt: the model may be unsure of them.
    for (const [k, file] of ood.slice(0, unknown).entries()) {
      rows.push(
        `<figure data-kind="unknown"><img data-test="u${k}" data-file="${esc(file)}" src="/ood/${esc(file)}"><figcaption aria-hidden="true"><b>unknown</b><span class="label"></span></figcaption></figure>`,
      );
    }
    for (let k = 0; k < n; k += 1) {
      const h = heldout[k % heldout.length];
      const kind = !mix ? 'missing' : ['missing', 'missing', 'decorative', 'missing', 'named', 'file-name'][k % 6];
      const attrs =
        kind === 'decorative'
          ? 'alt=""'
          : kind === 'named'
            ? `alt="${esc(h.caption.replace(/\.$/, ''))} (author's alt)"`
            : kind === 'file-name'
              ? `alt="${esc(h.file)}"`
              : '';
      rows.push(
        `<figure data-kind="${kind}"><img data-test="g${k}" data-file="${h.file}" src="/heldout/${h.file}?n=${k}${salt ? `&s=${salt}` : ''}" ${attrs}><figcaption aria-hidden="true"><b>${kind}</b><span class="label"></span></figcaption></figure>`,
      );
    }
    return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Alt text demo</title>
<style>body{font:14px system-ui,sans-serif;margin:16px} .grid{display:flex;flex-wrap:wrap;gap:10px} figure{margin:0;width:170px;border:1px solid #ccc;padding:6px;border-radius:6px}
figure img{display:block;width:160px;height:120px;object-fit:contain;background:#eee} figcaption{font-size:12px;margin-top:4px} figcaption .label{display:block;color:#064}</style></head>
<body><main><h1>Alt text demo: toy shapes</h1><p>Green text under each picture shows the label the extension added (its aria-label); decorative and named pictures are left alone${ood.length && unknown ? ', and so are pictures from outside the toy world (marked "unknown") when the model is unsure of them' : ''}.</p>
<div class="grid">${rows.join('\n')}</div></main>
<script>
  // Show each label visibly, for the screenshot only (textContent, never innerHTML).
  const show = () => document.querySelectorAll('figure').forEach((f) => { const im = f.querySelector('img'); f.querySelector('.label').textContent = im.getAttribute('aria-label') || ''; });
  new MutationObserver(show).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['aria-label'] });
</script></body></html>`;
  };

  return {
    expected,
    truth: { ...truth, ...expected },
    untouchedIds,
    routes: {
      '/fixtures/basic.html': () => ({ body: basic }),
      '/fixtures/dynamic.html': () => ({ body: dynamic }),
      '/fixtures/names.html': () => ({ body: namesPage }),
      '/fixtures/frame.html': (req, url) => ({ body: frame(new URL(url.pathname + url.search, `http://${req.headers.host}`)) }),
      '/fixtures/gallery.html': (_req, url) => ({
        body: gallery(Number(url.searchParams.get('n') ?? 24), {
          mix: url.searchParams.get('mix') !== '0',
          salt: url.searchParams.get('s') ?? '',
          unknown: Number(url.searchParams.get('unknown') ?? 0),
        }),
      }),
      '/broken.png': () => ({ type: 'image/png', body: 'this is not a png' }),
    },
  };
}
