/**
 * Named errors of the extension, and the wire format that carries any error between contexts.
 *
 * An error crosses a message boundary as `{ name, message }` (never `String(err)`), and is rebuilt on the other side
 * as an instance of the same named class when we know it, so callers can branch on `err.name`.
 * The engine's own errors (src/captioner/errors.ts) keep their names across the wire too.
 */

export interface WireError {
  name: string;
  message: string;
}

export class ExtensionError extends Error {
  override name = 'ExtensionError';
}

/** No model pack is configured or installed: the user has to pick or add one. */
export class NoPackError extends ExtensionError {
  override name = 'NoPackError';
  constructor(message = 'No model is set up yet. Open the set-up page from the popup and choose "Download and set up".') {
    super(message);
  }
}

/** Model installs are not part of this build (no installer): the user can still add a pack address under Advanced. */
export class InstallerUnavailableError extends ExtensionError {
  override name = 'InstallerUnavailableError';
  constructor(message = 'This version of the extension cannot download models. Under Advanced in Options, add a pack address or import a pack folder.') {
    super(message);
  }
}

/** The image's pixels could not be read (HTTP error, network, blocked URL scheme). */
export class ImageFetchError extends ExtensionError {
  override name = 'ImageFetchError';
}

/** The image is not one we describe (too small, decorative, …); carries the reason. */
export class ImageSkippedError extends ExtensionError {
  override name = 'ImageSkippedError';
}

/** The work was cancelled: the image left the page, the page navigated, or auto-alt was switched off. */
export class CancelledError extends ExtensionError {
  override name = 'AbortError';
  constructor(message = 'Cancelled.') {
    super(message);
  }
}

/** A message came from a context that may not send it. */
export class ForbiddenSenderError extends ExtensionError {
  override name = 'ForbiddenSenderError';
}

/** A message had the wrong shape, or an unknown type. */
export class BadMessageError extends ExtensionError {
  override name = 'BadMessageError';
}

/** Too much work is waiting; the request was refused and can be asked again later. */
export class QueueFullError extends ExtensionError {
  override name = 'QueueFullError';
  constructor(message = 'Too many images are waiting to be described; this one will be retried later.') {
    super(message);
  }
}

/** The offscreen document (which hosts the model) could not be reached, even after recreating it. */
export class OffscreenUnavailableError extends ExtensionError {
  override name = 'OffscreenUnavailableError';
}

const KNOWN: Record<string, new (message: string) => Error> = {
  NoPackError,
  ImageFetchError,
  ImageSkippedError,
  AbortError: CancelledError,
  ForbiddenSenderError,
  BadMessageError,
  QueueFullError,
  OffscreenUnavailableError,
  InstallerUnavailableError,
};

export function toWire(err: unknown): WireError {
  if (err instanceof Error) return { name: err.name || 'Error', message: err.message };
  if (typeof err === 'object' && err !== null && 'name' in err && 'message' in err) {
    return { name: String((err as WireError).name), message: String((err as WireError).message) };
  }
  return { name: 'Error', message: typeof err === 'string' ? err : 'Unknown error' };
}

/** Rebuild an error from the wire. Known names get their class; any other keeps its name on a plain Error. */
export function fromWire(wire: WireError): Error {
  const Cls = KNOWN[wire.name];
  if (Cls) {
    const e = new Cls(wire.message);
    e.message = wire.message;
    return e;
  }
  const e = new Error(wire.message);
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
    /Receiving end does not exist|message port closed|Could not establish connection|message channel closed/i.test(
      msg,
    ) || (err instanceof Error && (err.name === 'OffscreenUnavailableError' || err.name === 'TransportError'))
  );
}
