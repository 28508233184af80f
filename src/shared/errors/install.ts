/**
 * Named errors of the installer (src/installer/): downloading published files from mirrors and installing a model on
 * the device. Plain TypeScript, no extension APIs; the registry (index.ts) gives each name its message key and whether
 * retrying can help.
 */
import { CaptionerError, StorageQuotaError } from './engine';

const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MB`;

/** The catalogue (src/shared/catalogue.json, or the CAPTION_CATALOGUE replacement) is malformed. */
export class CatalogueError extends CaptionerError {
  override name = 'CatalogueError';
  constructor(detail: string) {
    super(`The model catalogue is not valid: ${detail}. This is a bug in this build of the extension; reinstall or update it.`);
  }
}

/** The network failed (offline, DNS, connection reset) and retries did not help. */
export class NetworkError extends CaptionerError {
  override name = 'NetworkError';
  constructor(
    readonly url: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      `Could not reach ${new URL(url).host} (${detail}). Check your connection and try again; the download resumes where it stopped.`,
      options,
    );
  }
}

/** A mirror answered an HTTP error status (after retries, for 5xx). */
export class MirrorHttpError extends CaptionerError {
  override name = 'MirrorHttpError';
  constructor(
    readonly url: string,
    readonly status: number,
  ) {
    super(
      `${new URL(url).host} answered HTTP ${status} for ${url.split('/').pop()}` +
        `${status === 404 || status === 410 ? ' (the file is not there)' : status >= 500 ? ' (the server has a problem)' : ''}. Try again later.`,
    );
  }
}

/** A downloaded input file is not the published one: wrong size or SHA-256. Its bytes were deleted. */
export class SourceIntegrityError extends CaptionerError {
  override name = 'SourceIntegrityError';
  constructor(
    readonly url: string,
    readonly what: 'size' | 'sha256',
    readonly expected: string | number,
    readonly actual: string | number,
  ) {
    super(
      what === 'size'
        ? `${url.split('/').pop()} from ${new URL(url).host} has ${actual} bytes, but ${expected} were expected${Number(actual) < Number(expected) ? ' (the download was cut short)' : ''}. It was deleted; try again.`
        : `${url.split('/').pop()} from ${new URL(url).host} has SHA-256 ${String(actual).slice(0, 12)}…, but ${String(expected).slice(0, 12)}… was expected. It was deleted; try again, or report the mirror.`,
    );
  }
}

/** Every mirror of an input failed; the message lists each mirror's failure. */
export class MirrorsFailedError extends CaptionerError {
  override name = 'MirrorsFailedError';
  constructor(
    readonly input: string,
    readonly failures: ReadonlyArray<{ url: string; error: { name: string; message: string } }>,
  ) {
    super(
      `Could not download the "${input}" weights from any mirror: ` +
        failures.map((f, i) => `(${i + 1}) ${new URL(f.url).host}: ${f.error.message}`).join(' ') +
        ' Check your connection and try again later; bytes already downloaded are kept.',
    );
  }
}

/** Not enough free storage to install a model (checked before anything is downloaded). */
export class InstallQuotaError extends StorageQuotaError {
  override name = 'StorageQuotaError';
  constructor(
    readonly modelId: string,
    neededBytes: number,
    readonly availableBytes: number,
  ) {
    super(modelId, neededBytes);
    this.message =
      `There is not enough storage space to install "${modelId}": it needs about ${mb(neededBytes)} and ${mb(Math.max(0, availableBytes))} ` +
      'are free. Nothing was downloaded, and models you already have still work. Free some disk space, or remove models you ' +
      'no longer need (Options → "Clear saved descriptions and downloaded models"), then try again.';
  }
}

/** A model needs a file the user has to pick (e.g. a checkpoint only published on Google Drive). */
export class UserFileNeededError extends CaptionerError {
  override name = 'UserFileNeededError';
  constructor(
    readonly modelId: string,
    readonly roles: readonly string[],
    hint: string,
  ) {
    super(
      `Installing "${modelId}" needs a file you download yourself (${roles.join(', ')}${hint ? `: ${hint}` : ''}). Pick it, then install again.`,
    );
  }
}

/** The catalogue names no model with this id. */
export class UnknownModelError extends CaptionerError {
  override name = 'UnknownModelError';
  constructor(readonly modelId: string) {
    super(`There is no model "${modelId}" in this version of the extension. Pick one of the listed models.`);
  }
}

/** The server answered a Range request with the whole file (200): the caller downloads the file whole instead. */
export class RangeNotSupportedError extends Error {
  override name = 'RangeNotSupportedError';
  constructor(readonly url: string) {
    super(`${url} does not answer Range requests`);
  }
}
