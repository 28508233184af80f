#!/usr/bin/env node
/**
 * Maintainer tool: ask each mirror in the catalogue for the size and SHA-256 of its file, and write them (and the
 * commit a Hugging Face revision resolves to) into the catalogue. Needs the internet; the tests run it only against
 * the loopback hub (test/helpers/hub-server.ts).
 *
 *   node scripts/pin-catalogue.mjs [--catalogue src/shared/catalogue.json] [--base URL] [--dry-run] [--force]
 *
 * What it asks (the same headers huggingface_hub's get_hf_file_metadata reads, /tmp/mirror-facts.md 6a, 6b, 6e):
 *   GET <url> with `Range: bytes=0-0`, NOT following redirects. The Hub answers 302 for an LFS file and puts the facts
 *   on that redirect: X-Linked-Size (the file's size), X-Linked-Etag (its SHA-256, the LFS oid) and X-Repo-Commit. A
 *   server that answers directly gives the size in Content-Range; its ETag counts as a SHA-256 only if it is 64 hex
 *   digits. An OpenAI CLIP URL carries the SHA-256 as its second-to-last path segment (clip.py checks exactly that).
 *   A Hub URL at a branch (`resolve/main/`) is rewritten to the commit it resolved to, so the pin cannot move.
 * Nothing is guessed: a figure no server states stays null. A stated figure that differs from a pinned one is reported
 * and left alone unless --force.
 *
 * downloadBytes and diskBytes are ESTIMATES, recomputed from the sizes (they are shown to users and used for the free
 * space check, not for verification):
 *   downloadBytes = for each input: "whole" -> the first source's bytes (a null size counts the estimate below);
 *                   "vision-only" -> the vision tower's tensors in the first source plus 1 MiB for the index
 *                   (ViT-B/32: 87,849,216 visual parameters, stored fp16 in OpenAI's archive = 175,698,432 B);
 *                   "user-file" -> 0.
 *   diskBytes     = the converted pack: vision + mapper + GPT-2 (wte once) in the template's precision, plus the
 *                   tokenizer, per template below.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const file = opt('--catalogue', new URL('../src/shared/catalogue.json', import.meta.url).pathname);
const base = opt('--base', '');
const dryRun = args.includes('--dry-run');
const force = args.includes('--force');

const MiB = 1 << 20;
// Parameter counts (see the header comment); bytes per element from the template's precision.
const VISION_RANGE_BYTES = {
  'vit-b32-mlp-fp16': 87_849_216 * 2 + MiB,
  'rn50x4-transformer-fp16': 175_000_000, // estimate: ~87.1 M visual parameters in fp16; not verified
};
const PACK_BYTES = {
  // vision 87,849,216 + MLP mapper 31,468,800 + GPT-2 124,439,808 parameters, fp16, + tokenizer ~1.4 MB
  'vit-b32-mlp-fp16': (87_849_216 + 31_468_800 + 124_439_808) * 2 + 1_400_000,
  'rn50x4-transformer-fp16': 505_000_000, // estimate: RN50x4 visual ~87 M + transformer mapper ~40 M + GPT-2, fp16
};
// A "whole" input whose size no server stated yet: ClipCap's checkpoints (MLP) measure 636,286,431 B on mirrors.
const UNKNOWN_WHOLE_BYTES = 636_286_431;

const rewrite = (url) => (base ? `${base.replace(/\/+$/, '')}/${url.replace(/^https?:\/\//, '')}` : url);
const hex64 = (v) => {
  const s = (v ?? '').replace(/^W\//, '').replace(/"/g, '').trim().toLowerCase();
  return /^[0-9a-f]{64}$/.test(s) ? s : null;
};

async function ask(url) {
  const res = await fetch(rewrite(url), { headers: { Range: 'bytes=0-0', 'Accept-Encoding': 'identity' }, redirect: 'manual' });
  const h = res.headers;
  const facts = { status: res.status, size: null, sha256: null, commit: h.get('x-repo-commit') };
  const linked = Number(h.get('x-linked-size') ?? NaN);
  if (Number.isSafeInteger(linked)) facts.size = linked;
  facts.sha256 = hex64(h.get('x-linked-etag'));
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel();
    if (facts.size === null || facts.sha256 === null) {
      // A redirect without the facts: follow it once and read the answer itself.
      const next = await fetch(new URL(h.get('location') ?? '', rewrite(url)), { headers: { Range: 'bytes=0-0' } });
      await next.body?.cancel();
      const total = /\/(\d+)\s*$/.exec(next.headers.get('content-range') ?? '');
      if (facts.size === null && total) facts.size = Number(total[1]);
    }
    return facts;
  }
  await res.body?.cancel();
  if (!res.ok) return facts;
  const total = /\/(\d+)\s*$/.exec(h.get('content-range') ?? '');
  if (facts.size === null && total) facts.size = Number(total[1]);
  facts.sha256 ??= hex64(h.get('etag'));
  return facts;
}

const catalogue = JSON.parse(readFileSync(file, 'utf8'));
const problems = [];
for (const m of catalogue.models) {
  for (const [role, input] of Object.entries(m.inputs)) {
    for (const s of input.sources) {
      const openai = /\/clip\/models\/([0-9a-f]{64})\/[^/]+$/.exec(s.url);
      let f;
      try {
        f = await ask(s.url);
      } catch (e) {
        problems.push(`${m.id}/${role}: ${s.url}: ${e.message}`);
        continue;
      }
      if (f.status >= 400) {
        problems.push(`${m.id}/${role}: ${s.url}: HTTP ${f.status}`);
        continue;
      }
      const sha = f.sha256 ?? (openai ? openai[1] : null);
      for (const [k, v] of [
        ['bytes', f.size],
        ['sha256', sha],
      ]) {
        if (v === null) continue;
        if (s[k] !== null && s[k] !== v && !force)
          problems.push(`${m.id}/${role}: ${s.url}: ${k} is ${s[k]} in the catalogue, the server says ${v} (use --force to take it)`);
        else s[k] = v;
      }
      const hub = /^(https?:\/\/huggingface\.co\/.+\/resolve\/)([^/]+)(\/.+)$/.exec(s.url);
      if (hub && f.commit && /^[0-9a-f]{40}$/.test(f.commit) && hub[2] !== f.commit) {
        console.log(`${m.id}/${role}: pinning ${hub[2]} -> ${f.commit}`);
        s.url = `${hub[1]}${f.commit}${hub[3]}`;
      }
      console.log(`${m.id}/${role}: ${s.url}\n  bytes ${s.bytes ?? 'null (not stated)'}  sha256 ${s.sha256 ?? 'null (not stated)'}`);
    }
  }
  let download = 0;
  for (const input of Object.values(m.inputs)) {
    if (input.fetch === 'whole') download += input.sources[0]?.bytes ?? UNKNOWN_WHOLE_BYTES;
    else if (input.fetch === 'vision-only')
      download += Math.min(VISION_RANGE_BYTES[m.template] ?? Infinity, input.sources[0]?.bytes ?? Infinity);
  }
  if (Number.isFinite(download)) m.downloadBytes = download;
  if (PACK_BYTES[m.template]) m.diskBytes = PACK_BYTES[m.template];
}
for (const p of problems) console.warn(`warning: ${p}`);
if (!dryRun) writeFileSync(file, `${JSON.stringify(catalogue, null, 2)}\n`);
process.exitCode = problems.length ? 1 : 0;
