/**
 * What the set-up page's one button does for the chosen model: set it up; nothing while a job of it runs, or once it is
 * set up as the box asks; or, for an installed model whose box the user changed, add or drop CLIP's text tower
 * (src/installer/text-change.ts): on downloads the text tower alone, off downloads nothing. The pack in use keeps
 * captioning until the changed one is ready, and a failed or cancelled change leaves it as it was.
 */
import { msg } from '../shared/i18n';
import type { InstallState } from '../shared/messages';
import { formatBytes, isBusy } from '../shared/status-text';
import type { TextOffer } from './text-option';

interface SetupAction {
  disabled: boolean;
  /** The button's text. */
  label: string;
  /** Said beside the button (it describes it); empty when there is nothing to add. */
  hint: string;
}

/** `s`: the chosen model's install state; `offer`: its text tower (null: none offered); `wantText`: the box. */
export function setupAction(s: InstallState | undefined, offer: TextOffer | null, wantText: boolean): SetupAction {
  const plain = { label: msg('onboardingGo'), hint: '' };
  if (s && (isBusy(s) || s.phase === 'paused')) return { disabled: true, ...plain };
  if (s?.storeId && offer && wantText !== !!s.readyText) {
    return {
      disabled: false,
      label: msg(wantText ? 'onboardingTextAdd' : 'onboardingTextRemove'),
      hint: !wantText
        ? msg('onboardingTextRemoveHint')
        : offer.downloadBytes === null
          ? msg('onboardingTextAddHintPlain')
          : msg('onboardingTextAddHint', formatBytes(offer.downloadBytes)),
    };
  }
  if (s?.phase === 'ready') return { disabled: true, label: plain.label, hint: offer ? msg('onboardingTextReadyHint') : '' };
  return { disabled: false, ...plain };
}
