/** The model choice: one radio per catalogue model, with its description and sizes; the default is checked. */
import type { CatalogueModel } from '../shared/messages';
import { modelDescription, modelLabel, sizeText } from '../shared/status-text';

export function renderModelRadios(box: HTMLElement, catalogue: readonly CatalogueModel[], preferred: string | null): void {
  box.replaceChildren(
    ...catalogue.map((m) => {
      const row = document.createElement('div');
      row.className = 'choice';
      const input = document.createElement('input');
      input.type = 'radio';
      input.name = 'model';
      input.value = m.id;
      input.id = `m-${m.id}`;
      input.setAttribute('aria-describedby', `m-${m.id}-about`);
      const label = document.createElement('label');
      label.htmlFor = input.id;
      label.textContent = modelLabel(m);
      const about = document.createElement('span');
      about.id = `m-${m.id}-about`;
      about.className = 'hint';
      about.textContent = `${modelDescription(m)} ${sizeText(m)}`;
      row.append(input, ' ', label, document.createElement('br'), about);
      return row;
    }),
  );
  const want = catalogue.find((m) => m.id === preferred) ?? catalogue.find((m) => m.default) ?? catalogue[0];
  if (want) box.querySelector<HTMLInputElement>(`#${CSS.escape(`m-${want.id}`)}`)!.checked = true;
}

export function chosenModel(box: HTMLElement): string | null {
  return box.querySelector<HTMLInputElement>('input[name=model]:checked')?.value ?? null;
}
