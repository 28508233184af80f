/** The one Installer of the offscreen document, over the IndexedDB pack store, and the catalogue it installs from. */
import browser from 'webextension-polyfill';
import { defaultPackStore } from '../captioner/pack-store';
import { loadCatalogue, type CatalogueModel as FullModel } from '../installer/catalogue';
import { Installer } from '../installer/installer';
import type { CatalogueModel } from '../shared/messages';
import type { InstallerBundle } from './installer-port';

/** What the pages need of a catalogue model: no mirror URLs or hashes cross the wire. */
function summarise(m: FullModel): CatalogueModel {
  return {
    id: m.id,
    name: m.name,
    description: m.description,
    downloadBytes: m.downloadBytes,
    diskBytes: m.diskBytes,
    default: m.default,
    userFiles: Object.entries(m.inputs)
      .filter(([, i]) => i.fetch === 'user-file')
      .map(([role, i]) => ({ role, hint: i.hint ?? '' })),
  };
}

/** `onChange` is called whenever any job moves (bytes, phase). */
export async function openInstaller(onChange: () => void): Promise<InstallerBundle> {
  const catalogue = loadCatalogue();
  const installer = new Installer({
    store: defaultPackStore(),
    catalogue,
    // Graph templates are bundled (vite copies them into dist/templates/), never fetched from the web.
    templateBase: browser.runtime.getURL('templates/'),
    onState: () => onChange(),
  });
  return { installer, catalogue: catalogue.models.map(summarise) };
}
