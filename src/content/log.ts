/** Content scripts log each distinct problem once, and never throw into the page. */
const seen = new Set<string>();

/** A page can make endless distinct problems (images with ever new URLs); past this many, we stop logging them. */
const MAX_KEYS = 500;

export function logOnce(level: 'info' | 'warn', key: string, ...args: unknown[]): void {
  if (seen.has(key) || seen.size >= MAX_KEYS) return;
  seen.add(key);
  console[level]('[alt-text]', ...args);
}

/** Every skipped image's reason is logged (once per image URL and reason), so a user can see why. */
export function logSkip(url: string, reason: string): void {
  logOnce('info', `skip|${reason}|${url}`, `skipped ${url}: ${reason}`);
}
