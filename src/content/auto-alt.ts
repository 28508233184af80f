/**
 * Auto-alt: find images without a name (here, in open shadow roots, and as they appear or change), caption them
 * (visible first) and label them. Aborting the signal tears it all down and removes every label we added.
 *
 * Built for hostile and huge pages, one job per module:
 *   observe  page-watch.ts notes mutations and trusted load/error events; visibility.ts watches waiting images
 *   note     changes.ts keeps element -> what changed, so a storm of changes to one element is one unit of work
 *   decide   decide.ts looks at each changed element in short idle slices (work-loop.ts); a src that keeps changing
 *            waits until it settles
 *   queue    queue-feed.ts feeds the bounded caption requests (caption-requests.ts), visible first; images off
 *            screen wait while the page is busy (page-activity.ts)
 *   label    auto-labels.ts puts labels on and off, and reports their count
 * This file only wires them together.
 */
import { AutoLabels, type LabelOptions } from './auto-labels';
import { Changes } from './changes';
import { Decider } from './decide';
import { labelCount } from './labeller';
import { PageActivity } from './page-activity';
import { PageWatch } from './page-watch';
import { QueueFeed } from './queue-feed';
import { Visibility } from './visibility';
import { WorkLoop } from './work-loop';

/** `opts`: the marker before each caption, whether weak names count as missing, whether unsure captions are left out. */
export function init(signal: AbortSignal, opts: LabelOptions): void {
  const loop = new WorkLoop(signal);
  // The parts call each other through these closures only once the page watch starts (the last line), or later.
  const changes = new Changes(loop, signal, (el, flags) => decide.handle(el, flags));
  const visibility = new Visibility((el, visible) => feed.visibilityChanged(el, visible));
  const labels = new AutoLabels(opts, signal);
  const activity = new PageActivity();
  const feed = new QueueFeed(loop, changes, visibility, labels, activity, signal);
  const page: PageWatch = new PageWatch(
    changes,
    { onRoot: (root) => decide.scan(root), isTracked: (el) => decide.isTracked(el), onBroken: (img) => decide.broken(img) },
    activity,
    signal,
  );
  const decide: Decider = new Decider({ loop, changes, page, visibility, feed, labels }, opts.weakNamesCountAsMissing, signal);

  window.addEventListener('pagehide', () => feed.cancelAll(), { signal });

  signal.addEventListener(
    'abort',
    () => {
      // Observers first, so that taking the labels off is not itself noted as a change.
      page.disconnect();
      visibility.disconnect();
      decide.clear();
      feed.clear();
      changes.clear();
      labels.removeAll();
    },
    { once: true },
  );

  if (__TEST__) {
    // Test builds only: what the e2e load tests read, from this isolated world (the page cannot see it).
    (globalThis as unknown as { altTextContentTest: unknown }).altTextContentTest = {
      stats: () => ({
        ...feed.stats(),
        loop: { ...loop.stats },
        tracked: decide.trackedCount,
        judged: decide.judged,
        judgedForLooks: decide.judgedForLooks,
        observed: visibility.watching,
        dirty: changes.size,
        labelled: labelCount(),
        unsure: labels.unsureCount(),
        busy: { ...activity.stats, now: activity.busy },
      }),
      sentMatching: (part: string) => feed.sentMatching(part),
      // A positive control for the e2e long-task attribution: a task of `ms` run from this script's own code.
      spin: (ms: number) =>
        setTimeout(() => {
          const t0 = performance.now();
          while (performance.now() - t0 < ms) {
            /* busy */
          }
        }, 0),
    };
  }

  page.watch(document);
  labels.changed();
}
