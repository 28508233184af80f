// The gating fixture page (test/e2e/uncertain.test.ts): out-of-distribution toy images the engine marks uncertain,
// next to held-out images it captions correctly and surely. Which OOD images are uncertain comes from the engine
// (test/e2e/engine-check.ts, read through toyOod()), never from a list written here.

/** At most this many of each: one per kind of OOD image is enough to show the gate, and the page stays quick. */
const MAX_EACH = 4;

/**
 * `heldout`: toyHeldout() (captioned correctly, not uncertain); `ood`: toyOod(). Returns the page's route and its plan:
 * `unsure` [{id, file, text, kind}] must stay unlabelled, `sure` [{id, file, caption}] must get their true caption.
 */
export function buildUncertainFixtures(heldout, ood) {
  // Only verdicts clear of the threshold (engine-check.ts GATE_MARGIN): the browser decodes with its own code. One of
  // each kind first (noise, text, an unseen shape…), so the page shows the different ways a picture can be unknown.
  const gated = ood.filter((o) => o.uncertain && o.clear);
  const firstOfKind = gated.filter((o, i) => gated.findIndex((p) => p.kind === o.kind) === i);
  const unsure = [...firstOfKind, ...gated.filter((o) => !firstOfKind.includes(o))]
    .slice(0, MAX_EACH)
    .map((o, k) => ({ id: `ood-${k}`, file: o.file, text: o.text, kind: o.kind }));
  const sure = heldout.slice(-MAX_EACH).map((h, k) => ({ id: `sure-${k}`, file: h.file, caption: h.caption }));
  // Interleaved, so neither kind is all on one side of the page (both are on screen: 96 px each).
  const rows = [];
  for (let k = 0; k < Math.max(unsure.length, sure.length); k += 1) {
    if (sure[k]) rows.push(`<img data-test="${sure[k].id}" src="/heldout/${sure[k].file}" width="96" height="96">`);
    if (unsure[k]) rows.push(`<img data-test="${unsure[k].id}" src="/ood/${unsure[k].file}" width="96" height="96">`);
  }
  const page = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Uncertain fixture</title>
<style>img{margin:4px}</style></head><body><main><h1>Pictures the model knows, and pictures it does not</h1>
<div>${rows.join('\n')}</div></main></body></html>`;
  return { plan: { unsure, sure }, routes: { '/fixtures/uncertain.html': () => ({ body: page }) } };
}
