/**
 * The extension's own timing lines ('[alt-text] ...' console messages of the offscreen document and the engine's
 * sandboxed frame), collected over a browser-level CDP connection, each with its wall-clock time. bench:page reads the
 * start-up phases from them; the faults tests, how a crash was noticed. Playwright lists neither the offscreen document nor the sandboxed frame (an out-of-process
 * frame of that document) among its pages, so this attaches to every target itself (non-flattened sessions, as the
 * e2e network audit does). Runtime.enable replays what a context logged before the attach, so nothing early is lost.
 */
import { chromium } from 'playwright-core';

/** Start collecting; `lines()` is every '[alt-text]' message so far as {t: epoch ms, text}, `stop()` disconnects. */
export async function collectEngineLog(cdpUrl, extensionId) {
  const browser = await chromium.connectOverCDP(cdpUrl);
  const s = await browser.newBrowserCDPSession();
  const lines = [];
  const attached = new Set();
  let id = 1;
  // The sandboxed frame's URL is the extension's too (its origin is opaque, its address is not).
  const ours = (t) => t.url.startsWith(`chrome-extension://${extensionId}/`) && t.type !== 'service_worker';
  const attach = async (t) => {
    if (!ours(t) || attached.has(t.targetId)) return;
    attached.add(t.targetId);
    try {
      const { sessionId } = await s.send('Target.attachToTarget', { targetId: t.targetId, flatten: false });
      for (const method of ['Runtime.enable', 'Runtime.runIfWaitingForDebugger']) {
        await s.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id: id++, method }) });
      }
    } catch {
      // The target went away before the attach: it logged nothing we need.
    }
  };
  s.on('Target.receivedMessageFromTarget', (e) => {
    const m = JSON.parse(e.message);
    if (m.method !== 'Runtime.consoleAPICalled') return;
    const text = m.params.args.map((a) => a.value ?? a.description ?? '').join(' ');
    if (text.startsWith('[alt-text]')) lines.push({ t: m.params.timestamp, text });
  });
  s.on('Target.targetCreated', (e) => void attach(e.targetInfo));
  s.on('Target.targetInfoChanged', (e) => void attach(e.targetInfo));
  await s.send('Target.setDiscoverTargets', { discover: true });
  for (const t of (await s.send('Target.getTargets')).targetInfos) await attach(t);
  return {
    lines: () => [...lines].sort((a, b) => a.t - b.t),
    stop: () => browser.close(),
  };
}

/**
 * The start-up phases in the engine's own words: every '[alt-text] ... in N ms' line logged after `since` (epoch ms),
 * as {at: ms after `since`, text}. The engine logs each phase once per start (src/sandbox/engine-server.ts,
 * src/offscreen/engine-host.ts), so the list reads as a timeline.
 */
export function timeline(lines, since) {
  return lines.filter((l) => l.t >= since).map((l) => ({ at: Math.round(l.t - since), text: l.text.replace('[alt-text] ', '') }));
}
