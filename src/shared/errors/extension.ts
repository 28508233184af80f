/**
 * Named errors of the extension around the engine: the service worker, the offscreen host, the pages and the content
 * script. Plain TypeScript; the registry (index.ts) gives each name its message key and whether retrying can help.
 */

export class ExtensionError extends Error {
  override name = 'ExtensionError';
}

/** No model pack is configured or installed: the user has to pick or add one. */
export class NoPackError extends ExtensionError {
  override name = 'NoPackError';
  // What to do: a page says what happened first, in the user's language (ERRORS' messageKey, statusNoPack).
  constructor(message = 'Open the set-up page from the popup and choose "Download and set up".') {
    super(message);
  }
}

/** Model installs are not part of this build (no installer): the user can still add a pack address under Advanced. */
export class InstallerUnavailableError extends ExtensionError {
  override name = 'InstallerUnavailableError';
  constructor(
    message = 'This version of the extension cannot download models. Under Advanced in Options, add a pack address or import a pack folder.',
  ) {
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

/** The engine's sandboxed frame stopped answering (its process crashed or was killed); a new one can be started. */
export class EngineCrashedError extends ExtensionError {
  override name = 'EngineCrashedError';
}

/**
 * Another model was asked for while this one was opening, and only one runs at a time: this request lost. Asking again
 * gets the model in use.
 */
export class ModelChangedError extends ExtensionError {
  override name = 'ModelChangedError';
}

/** A message got no reply: the receiver went away (a worker restarting, a document closing). Sending again may work. */
export class TransportError extends ExtensionError {
  override name = 'TransportError';
}

/** The content script was orphaned: the extension was reloaded, updated or removed since the page loaded. */
export class ContextInvalidatedError extends Error {
  override name = 'ContextInvalidatedError';
  constructor() {
    super('The alt-text extension was reloaded or updated: reload this page to describe its images again.');
  }
}

/** The page pointed at something that is not an image it shows (or at a URL scheme we never fetch). */
export class UnsafeSourceError extends Error {
  override name = 'UnsafeSourceError';
}
