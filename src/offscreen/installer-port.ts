/**
 * What the offscreen document needs of the model installer (src/installer/, engine D): one Installer over the
 * IndexedDB pack store, and the catalogue summarised for the pages. Everything else in the offscreen document talks
 * to these two types only, so the installer can change inside without touching the handlers.
 */
import type { CatalogueModel, InstallState } from '../shared/messages';

interface InstallerLike {
  install(modelId: string, picked?: Record<string, string>, text?: boolean): Promise<unknown>;
  pause(modelId: string): Promise<unknown>;
  resume(modelId: string): Promise<unknown>;
  cancel(modelId: string): Promise<unknown>;
  remove(modelId: string): Promise<unknown>;
  states(): Promise<InstallState[]>;
  /** Continue every job that was running when the document (or the browser) went away. */
  resumeInterrupted(): Promise<unknown>;
  /** The pack-store id of the model's installed pack, or null while none is ready. */
  readyStoreId(modelId: string): Promise<string | null>;
}

export interface InstallerBundle {
  installer: InstallerLike;
  catalogue: CatalogueModel[];
}
