// The caption page: a picture from a file, the clipboard, a drop or the webcam, captioned on this device.
import browser from 'webextension-polyfill';
import { localize, msg } from '../shared/i18n';
import { addMessageListener, isEvent, newRequestId, send } from '../shared/messages';
import { messageKeyOf } from '../shared/errors';
import { fillModelSelect } from '../shared/model-choice';
import { loadSettings, type Strategy } from '../shared/settings';
import { describeStatus } from '../shared/status-text';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
let current: string | null = null;
let caption = '';

function readAsDataUrl(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result as string);
    r.onerror = () => reject(r.error ?? new Error('could not read the file'));
    r.readAsDataURL(blob);
  });
}

async function take(blob: Blob | null | undefined): Promise<void> {
  if (!blob || !blob.type.startsWith('image/')) {
    $('note').textContent = msg('captionNotImage');
    return;
  }
  current = await readAsDataUrl(blob);
  const img = $<HTMLImageElement>('preview');
  img.src = current;
  img.hidden = false;
  $<HTMLButtonElement>('go').disabled = false;
  $('out').textContent = '';
  $('note').textContent = '';
  await describe();
}

async function describe(): Promise<void> {
  if (!current) return;
  $<HTMLButtonElement>('go').disabled = true;
  $<HTMLButtonElement>('copy').disabled = true;
  $('out').textContent = msg('panelWorking');
  try {
    const r = await send({
      type: 'ui-bg-caption',
      requestId: newRequestId('page'),
      source: { kind: 'bytes', dataUrl: current },
      packUrl: $<HTMLSelectElement>('pack').value || undefined,
      decoding: { strategy: $<HTMLSelectElement>('strategy').value as Strategy },
    });
    caption = r.text;
    // A caption the model is unsure of says so first, as the describe panel does; Copy still copies the caption alone.
    const said = r.uncertain === true ? `${msg('panelUnsure')} ${r.text}` : r.text;
    $('out').textContent = said;
    $('preview').setAttribute('alt', said);
    $<HTMLButtonElement>('copy').disabled = false;
  } catch (err) {
    // What happened, in the user's language (the error registry's message for it), then the error's own words.
    $('out').textContent = `${msg(messageKeyOf(err, 'panelFailed') ?? 'panelFailed')} ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    $<HTMLButtonElement>('go').disabled = false;
  }
}

async function main(): Promise<void> {
  localize();
  const { settings } = await loadSettings(browser.storage.local);
  // Models by name (installed ones, pack addresses, imported folders); the value is the pack reference.
  const pack = $<HTMLSelectElement>('pack');
  fillModelSelect(pack, settings, null);
  $<HTMLSelectElement>('strategy').value = settings.strategy;
  if (pack.options.length === 0) $('note').textContent = msg('hintNoPack');
  send({ type: 'ui-bg-models' }).then(
    (view) => fillModelSelect(pack, settings, view),
    (err: unknown) => ($('note').textContent = err instanceof Error ? err.message : String(err)),
  );

  addMessageListener((m) => {
    if (isEvent(m, 'os-bg-status') && m.status.state !== 'ready') $('note').textContent = describeStatus(m.status).text;
    if (isEvent(m, 'os-bg-status') && m.status.state === 'ready') $('note').textContent = '';
    return false;
  });

  $<HTMLInputElement>('file').addEventListener('change', (e) => void take((e.target as HTMLInputElement).files?.[0]));
  document.addEventListener('paste', (e) => {
    const item = [...(e.clipboardData?.items ?? [])].find((i) => i.type.startsWith('image/'));
    if (item) void take(item.getAsFile());
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    void take(e.dataTransfer?.files?.[0]);
  });
  $('go').addEventListener('click', () => void describe());
  $('copy').addEventListener('click', () => {
    navigator.clipboard.writeText(caption).then(
      () => ($('note').textContent = msg('panelCopied')),
      () => ($('note').textContent = msg('panelCopyFailed')),
    );
  });

  const video = $<HTMLVideoElement>('video');
  $('camera').addEventListener('click', () => {
    navigator.mediaDevices
      .getUserMedia({ video: true })
      .then((stream) => {
        video.srcObject = stream;
        video.hidden = false;
        $('snap').hidden = false;
        $('snap').focus();
      })
      .catch((err: unknown) => ($('note').textContent = `${msg('captionNoCamera')} (${err instanceof Error ? err.name : String(err)})`));
  });
  $('snap').addEventListener('click', () => {
    const c = document.createElement('canvas');
    c.width = video.videoWidth;
    c.height = video.videoHeight;
    c.getContext('2d')!.drawImage(video, 0, 0);
    c.toBlob((b) => void take(b), 'image/png');
  });
}

void main();
