// The set-up page's one button for the chosen model: set it up; nothing while its job runs or once it is set up as the
// box says; for an installed model whose box the user changed, turn caption checking on or off (on says how much
// the text tower alone downloads; off, that nothing is). Messages come from the real en/de messages.json.
import { afterEach, describe, expect, it } from 'vitest';
import { setupAction } from '../../src/onboarding/setup-action';
import type { TextOffer } from '../../src/onboarding/text-option';
import type { InstallState } from '../../src/shared/messages';
import { installState } from '../helpers/install-state';
import { dropLocale, useLocale } from '../helpers/locale';

afterEach(dropLocale);

const OFFER: TextOffer = { downloadBytes: 127e6, diskBytes: 128e6 };
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

  it('installed, box ticked: turn it on, and the hint says it downloads the text tower alone', () => {
    useLocale('en');
    expect(setupAction(st('ready'), OFFER, true)).toEqual({
      disabled: false,
      label: 'Turn on caption checking',
      hint: 'Only the part that checks captions is downloaded: about 127 MB. Until it is ready, the model keeps working as it is.',
    });
    // a catalogue that does not say the size: the same, without a figure
    expect(setupAction(st('ready'), { downloadBytes: null, diskBytes: null }, true).hint).toBe(
      'Only the part that checks captions is downloaded. Until it is ready, the model keeps working as it is.',
    );
    // a change that failed keeps the old pack (failed, with its storeId): pressing again retries it
    expect(setupAction(st('failed', { storeId: 'clipcap-coco@1', text: true }), OFFER, true).label).toBe('Turn on caption checking');
  });

  it('installed with it, box unticked: turn it off, which downloads nothing, in German too', () => {
    useLocale('en');
    const on = st('ready', { text: true, readyText: true });
    expect(setupAction(on, OFFER, false)).toEqual({
      disabled: false,
      label: 'Turn off caption checking',
      hint: 'Nothing is downloaded. Until the change is done, the model keeps working as it is.',
    });
    useLocale('de');
    expect(setupAction(on, OFFER, false)).toMatchObject({ disabled: false, label: 'Abgleich mit dem Bild ausschalten' });
    expect(setupAction(on, OFFER, false).hint).toMatch(/^Es wird nichts heruntergeladen\./);
    expect(setupAction(st('ready'), OFFER, true).hint).toMatch(/^Nur der Teil für den Abgleich wird heruntergeladen: etwa 127 MB\./);
  });
});
