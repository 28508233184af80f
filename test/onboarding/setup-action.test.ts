// The set-up page's one button for the chosen model: set it up; nothing while its job runs or once it is set up as the
// box says; for an installed model whose box the user changed, turn caption checking on or off (which sets the model
// up again, and says how much that downloads). Messages come from the real en/de messages.json.
import { afterEach, describe, expect, it } from 'vitest';
import { setupAction } from '../../src/onboarding/setup-action';
import type { TextOffer } from '../../src/onboarding/text-option';
import type { InstallState } from '../../src/shared/messages';
import { installState } from '../helpers/install-state';
import { dropLocale, useLocale } from '../helpers/locale';

afterEach(dropLocale);

const OFFER: TextOffer = { downloadBytes: 127e6, diskBytes: 128e6, rebuildBytes: { on: 417e6, off: 290e6 } };
const st = (phase: InstallState['phase'], extra: Partial<InstallState> = {}) => installState('clipcap-coco', phase, extra);

describe('setupAction', () => {
  it('a model not set up: "Download and set up", with the box or without', () => {
    useLocale('en');
    for (const s of [undefined, st('not-installed'), st('failed')])
      for (const want of [false, true])
        expect(setupAction(s, OFFER, want)).toEqual({ disabled: false, label: 'Download and set up', hint: '' });
  });

  it('while a job of the model runs or is paused: nothing to press', () => {
    useLocale('en');
    for (const phase of ['queued', 'downloading', 'verifying', 'converting', 'paused'] as const)
      expect(setupAction(st(phase, { storeId: 'clipcap-coco@1' }), OFFER, true).disabled).toBe(true);
  });

  it('installed, box as the pack is: nothing to press, and the hint says the box changes it', () => {
    useLocale('en');
    expect(setupAction(st('ready'), OFFER, false)).toEqual({
      disabled: true,
      label: 'Download and set up',
      hint: 'This model is set up. Tick or untick the box above to turn caption checking on or off.',
    });
    expect(setupAction(st('ready', { text: true, readyText: true }), OFFER, true).disabled).toBe(true);
    // no text tower offered: no hint about a box that is not there
    expect(setupAction(st('ready'), null, false)).toEqual({ disabled: true, label: 'Download and set up', hint: '' });
  });

  it('installed, box ticked: turn it on, and the hint says it downloads the model again with it', () => {
    useLocale('en');
    expect(setupAction(st('ready'), OFFER, true)).toEqual({
      disabled: false,
      label: 'Turn on caption checking',
      hint: 'This sets the model up again: about 417 MB to download. Until it is ready, the model keeps working as it is.',
    });
    // a change that failed keeps the old pack (failed, with its storeId): pressing again retries it
    expect(setupAction(st('failed', { storeId: 'clipcap-coco@1', text: true }), OFFER, true).label).toBe('Turn on caption checking');
  });

  it('installed with it, box unticked: turn it off (the download without it), in German too', () => {
    useLocale('en');
    const on = st('ready', { text: true, readyText: true });
    expect(setupAction(on, OFFER, false)).toMatchObject({ disabled: false, label: 'Turn off caption checking' });
    expect(setupAction(on, OFFER, false).hint).toContain('about 290 MB to download');
    useLocale('de');
    expect(setupAction(on, OFFER, false)).toMatchObject({ disabled: false, label: 'Abgleich mit dem Bild ausschalten' });
    expect(setupAction(on, OFFER, false).hint).toMatch(/^Dafür wird das Modell neu eingerichtet: etwa 290 MB/);
  });
});
