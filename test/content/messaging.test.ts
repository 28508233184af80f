// An orphaned content script (the extension was reloaded or updated): requests reject with a named reason, said once
// in the console (reload the page), and nothing throws synchronously into the page.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { request } from '../../src/content/messaging';
import { ContextInvalidatedError } from '../../src/shared/errors';

const g = globalThis as unknown as { chrome?: unknown };

describe('content messaging after the extension context is invalidated', () => {
  afterEach(() => {
    delete g.chrome;
    vi.restoreAllMocks();
  });

  it('rejects with ContextInvalidatedError, logs the reason once, and never retries', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const sendMessage = vi.fn(() => {
      throw new Error('Extension context invalidated.');
    });
    g.chrome = { runtime: { id: 'abc', sendMessage } };
    let p: Promise<unknown> | undefined;
    expect(() => {
      p = request({ type: 'cs-bg-status' });
    }).not.toThrow();
    await expect(p).rejects.toBeInstanceOf(ContextInvalidatedError);
    expect(sendMessage).toHaveBeenCalledTimes(1);
    // Once orphaned, chrome.runtime.id is gone: nothing is sent at all, and the reason is not logged again.
    g.chrome = { runtime: { sendMessage } };
    await expect(request({ type: 'cs-bg-status' })).rejects.toMatchObject({
      name: 'ContextInvalidatedError',
      message: expect.stringMatching(/reload this page/),
    });
    expect(sendMessage).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0].join(' '))).toMatch(/ContextInvalidatedError: .*reload this page/);
  });
});
