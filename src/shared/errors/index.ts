/**
 * The one error registry: every named error of the engine, the installer and the extension, with the message key a
 * page shows for it and whether asking again can help; and the wire format that carries any error between contexts.
 *
 * The classes are defined once each, by area (engine.ts, install.ts, extension.ts: plain TypeScript, no extension
 * APIs, so the engine still runs in Node); this module registers them by name. An error crosses a message boundary as
 * `{ name, message }` (never `String(err)`), and fromWire rebuilds it as an instance of the registered class, so a
 * receiver can branch on `err.name` or `instanceof` alike, and ask `isPermanent(err)`.
 */
import * as engine from './engine';
import * as extension from './extension';
import * as install from './install';

export * from './engine';
export * from './extension';
export * from './install';

export interface WireError {
  name: string;
  message: string;
}

/**
 * The public/_locales messages a page shows for an error (the error's own message, in English, follows as the detail):
 *   panelFailed            "This image could not be described."     a caption request failed (panel, caption page)
 *   statusError            "The model could not start."             the model (pack, backend, host) is not usable
 *   statusNoPack           "No model is set up yet."
 *   phaseFailed            "Setting up $A$ failed: $B$"             an install failed
 *   onboardingPickNeeded   the user has to pick their checkpoint file first
 *   onboardingNoCatalogue  this build cannot download models
 * null: the page says nothing (the user cancelled, or the error never leaves the code that handles it).
 */
export type ErrorMessageKey =
  'panelFailed' | 'statusError' | 'statusNoPack' | 'phaseFailed' | 'onboardingPickNeeded' | 'onboardingNoCatalogue';

export interface ErrorInfo {
  /** the class fromWire rebuilds for this name */
  readonly cls: abstract new (...args: never[]) => Error;
  readonly messageKey: ErrorMessageKey | null;
  /**
   * True when asking again with the same input cannot help, whatever else changes: the image, file or build itself is
   * the problem. False when a retry may succeed once something clears up or is fixed (network, queue, worker, a model
   * set up or downloaded again, a file picked). The content script remembers permanent failures per image URL.
   */
  readonly permanent: boolean;
}

const entry = (cls: ErrorInfo['cls'], messageKey: ErrorMessageKey | null, permanent: boolean): ErrorInfo =>
  Object.freeze({ cls, messageKey, permanent });

/**
 * By `name`. Two names are shared on purpose, so one entry serves both classes: 'AbortError' (CancelledError and the
 * engine's CaptionAbortedError; the DOM's name for a cancellation, which every context tests) and 'StorageQuotaError'
 * (InstallQuotaError is a StorageQuotaError with the numbers of an install).
 */
export const ERRORS: Readonly<Record<string, ErrorInfo>> = Object.freeze({
  // Engine (engine.ts). A pack that is damaged, missing or too new is not permanent: once another is downloaded,
  // the same image can be described.
  CaptionerError: entry(engine.CaptionerError, 'statusError', false),
  PackFormatError: entry(engine.PackFormatError, 'statusError', false),
  UnsupportedPackVersionError: entry(engine.UnsupportedPackVersionError, 'statusError', false),
  PackIntegrityError: entry(engine.PackIntegrityError, 'statusError', false),
  PackSizeError: entry(engine.PackSizeError, 'statusError', false),
  PackDownloadError: entry(engine.PackDownloadError, 'statusError', false),
  PackFileMissingError: entry(engine.PackFileMissingError, 'statusError', false),
  PackNotCachedError: entry(engine.PackNotCachedError, 'statusError', false),
  StorageQuotaError: entry(engine.StorageQuotaError, 'statusError', false),
  CaptionerDisposedError: entry(engine.CaptionerDisposedError, 'statusError', false),
  BackendUnavailableError: entry(engine.BackendUnavailableError, 'statusError', false),
  // The image itself: decoding it (or captioning it with this model) gives the same result every time; a
  // decompression bomb would time out again.
  ImageDecodeError: entry(engine.ImageDecodeError, 'panelFailed', true),
  ImageDecodeTimeoutError: entry(engine.ImageDecodeTimeoutError, 'panelFailed', true),
  EmptyImageError: entry(engine.EmptyImageError, 'panelFailed', true),
  EmptyCaptionError: entry(engine.EmptyCaptionError, 'panelFailed', true),
  // Out-of-range decoding options come from settings, which the user can change.
  InvalidOptionError: entry(engine.InvalidOptionError, 'panelFailed', false),

  // Reading and converting published checkpoints (engine.ts), shown as a failed install. A file of the wrong kind
  // stays so; a damaged or cut-short one may download whole next time.
  CheckpointError: entry(engine.CheckpointError, 'phaseFailed', false),
  NotACheckpointError: entry(engine.NotACheckpointError, 'phaseFailed', true),
  CorruptCheckpointError: entry(engine.CorruptCheckpointError, 'phaseFailed', false),
  TruncatedCheckpointError: entry(engine.TruncatedCheckpointError, 'phaseFailed', false),
  CompressedEntryError: entry(engine.CompressedEntryError, 'phaseFailed', true),
  UnsafeCheckpointError: entry(engine.UnsafeCheckpointError, 'phaseFailed', true),
  UnsupportedCheckpointError: entry(engine.UnsupportedCheckpointError, 'phaseFailed', true),
  TemplateFormatError: entry(engine.TemplateFormatError, 'phaseFailed', true),
  WrongCheckpointError: entry(engine.WrongCheckpointError, 'phaseFailed', true),
  // Never leaves the converter: it is reported as a TemplateFormatError.
  OpArgumentError: entry(engine.OpArgumentError, null, true),

  // Installer (install.ts).
  CatalogueError: entry(install.CatalogueError, 'phaseFailed', true),
  NetworkError: entry(install.NetworkError, 'phaseFailed', false),
  // 5xx clear up; even a 404 may be a mirror's passing state, and other mirrors are tried.
  MirrorHttpError: entry(install.MirrorHttpError, 'phaseFailed', false),
  // The bad bytes were deleted, so the next try downloads them again.
  SourceIntegrityError: entry(install.SourceIntegrityError, 'phaseFailed', false),
  MirrorsFailedError: entry(install.MirrorsFailedError, 'phaseFailed', false),
  UserFileNeededError: entry(install.UserFileNeededError, 'onboardingPickNeeded', false),
  UnknownModelError: entry(install.UnknownModelError, 'phaseFailed', true),
  // Never leaves the installer: it downloads the file whole instead.
  RangeNotSupportedError: entry(install.RangeNotSupportedError, null, true),

  // Extension (extension.ts).
  ExtensionError: entry(extension.ExtensionError, 'panelFailed', false),
  NoPackError: entry(extension.NoPackError, 'statusNoPack', false),
  InstallerUnavailableError: entry(extension.InstallerUnavailableError, 'onboardingNoCatalogue', true),
  // As the engine's image errors: the same URL gives the same answer (an HTTP error, a blocked scheme).
  ImageFetchError: entry(extension.ImageFetchError, 'panelFailed', true),
  ImageSkippedError: entry(extension.ImageSkippedError, 'panelFailed', true),
  UnsafeSourceError: entry(extension.UnsafeSourceError, 'panelFailed', true),
  AbortError: entry(extension.CancelledError, null, false),
  // Protocol errors are not remembered per image: the sender, or the rules, can change with an update.
  ForbiddenSenderError: entry(extension.ForbiddenSenderError, 'panelFailed', false),
  BadMessageError: entry(extension.BadMessageError, 'panelFailed', false),
  QueueFullError: entry(extension.QueueFullError, 'panelFailed', false),
  OffscreenUnavailableError: entry(extension.OffscreenUnavailableError, 'statusError', false),
  // A new engine frame is started and the caption asked once more; only an image that crashes it twice gets this.
  EngineCrashedError: entry(extension.EngineCrashedError, 'statusError', false),
  // Only the newest model asked for is opened; a request for the one it replaced may simply be asked again.
  ModelChangedError: entry(extension.ModelChangedError, 'panelFailed', false),
  // The receiver went away mid-request; messaging retries it, and only a request that keeps failing reaches the user.
  TransportError: entry(extension.TransportError, 'panelFailed', false),
  // An orphaned content script stays orphaned until the page is reloaded.
  ContextInvalidatedError: entry(extension.ContextInvalidatedError, 'panelFailed', true),
} satisfies Record<string, ErrorInfo>);

function nameOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('name' in err)) return undefined;
  return typeof err.name === 'string' ? err.name : undefined;
}

/** The registry's entry for an error (an instance, or a WireError) by its name; undefined for names it does not know. */
export function errorInfo(err: unknown): ErrorInfo | undefined {
  const name = nameOf(err);
  return name !== undefined && Object.prototype.hasOwnProperty.call(ERRORS, name) ? ERRORS[name] : undefined;
}

/**
 * The message a page shows for an error: its registry entry's key, `fallback` for a name the registry does not know;
 * null when the page says nothing (a cancellation). The error's own message follows it as the detail.
 */
export function messageKeyOf(err: unknown, fallback: ErrorMessageKey): ErrorMessageKey | null {
  const info = errorInfo(err);
  return info ? info.messageKey : fallback;
}

/** Whether asking again with the same input cannot help (see ErrorInfo.permanent); unknown errors are not. */
export function isPermanent(err: unknown): boolean {
  return errorInfo(err)?.permanent ?? false;
}

export function toWire(err: unknown): WireError {
  if (err instanceof Error) return { name: err.name || 'Error', message: err.message };
  if (typeof err === 'object' && err !== null && 'name' in err && 'message' in err) {
    return { name: String((err as WireError).name), message: String((err as WireError).message) };
  }
  return { name: 'Error', message: typeof err === 'string' ? err : 'Unknown error' };
}

/**
 * Rebuild an error from the wire: an instance of the registered class for its name (its constructor is not run, as
 * the classes take different arguments; fields beyond name and message do not cross the wire), else a plain Error
 * that keeps the name.
 */
export function fromWire(wire: WireError): Error {
  const e = new Error(wire.message);
  const info = errorInfo(wire);
  if (info) Object.setPrototypeOf(e, info.cls.prototype as object);
  e.name = wire.name;
  return e;
}

export function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

/** True for failures of the transport itself (receiver gone, worker restarted): the request can be sent again. */
export function isTransportError(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return (
    /Receiving end does not exist|message port closed|Could not establish connection|message channel closed/i.test(msg) ||
    (err instanceof Error && (err.name === 'OffscreenUnavailableError' || err.name === 'TransportError'))
  );
}
