/**
 * The models a user can choose to use, across kinds: installed catalogue models, pack addresses, imported folders.
 * One list for the popup and the caption page, keyed by the pack reference string (settings.ts packRef).
 */
import type { ModelsView } from './messages';
import { activeModel, packRef, type ModelRef, type Settings } from './settings';
import { modelLabel } from './status-text';

export interface ModelChoice {
  ref: ModelRef;
  key: string;
  label: string;
}

function modelChoices(s: Settings, view: ModelsView | null): ModelChoice[] {
  const out: ModelChoice[] = [];
  for (const m of view?.catalogue ?? []) {
    if (view?.states.find((x) => x.id === m.id)?.phase === 'ready')
      out.push({ ref: { kind: 'catalogue', id: m.id }, key: `model:${m.id}`, label: modelLabel(m) });
  }
  for (const p of s.packSources) out.push({ ref: { kind: 'url', url: p.url }, key: p.url, label: p.name || p.url });
  for (const f of s.folders) out.push({ ref: { kind: 'folder', id: f.id }, key: `folder:${f.id}`, label: f.name || f.id });
  // The model in use is always listed, even before it is installed, so the select shows the truth.
  const active = activeModel(s);
  if (active && !out.some((c) => c.key === packRef(active))) {
    const name =
      active.kind === 'catalogue' ? (view?.catalogue.find((m) => m.id === active.id) ?? { id: active.id, name: active.id }) : null;
    out.unshift({ ref: active, key: packRef(active), label: name ? modelLabel(name) : packRef(active) });
  }
  return out;
}

/** Fill a <select> with the choices, the model in use selected. */
export function fillModelSelect(select: HTMLSelectElement, s: Settings, view: ModelsView | null): ModelChoice[] {
  const choices = modelChoices(s, view);
  select.replaceChildren(
    ...choices.map((c) => {
      const o = document.createElement('option');
      o.value = c.key;
      o.textContent = c.label;
      return o;
    }),
  );
  select.disabled = choices.length === 0;
  const active = activeModel(s);
  select.value = active ? packRef(active) : '';
  return choices;
}
