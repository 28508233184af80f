/**
 * Turn the model's raw decoded text into alt text: first sentence, no dangling fragment, tidy spacing, capitalised.
 */
import { EmptyCaptionError } from '../shared/errors';

// Words a caption cannot end on: a caption cut by maxTokens often stops right after one of these.
const DANGLING = new Set(
  'a an the and or but of with in on at to from by for into onto over under near next its their his her this that these those is are was were as while which who whose'.split(
    ' ',
  ),
);

/**
 * @param raw decoded text, e.g. " a red circle on a white background."
 * @param tokenIds for the error only
 */
export function postprocessCaption(raw: string, tokenIds: readonly number[] = []): string {
  let s = raw.replace(/\s+/g, ' ').trim();
  // tidy spaces around punctuation: "dog , cat ." -> "dog, cat."
  s = s
    .replace(/\s+([.,;:!?])/g, '$1')
    .replace(/([,;:])(?=\S)/g, '$1 ')
    .replace(/\(\s+/g, '(')
    .replace(/\s+\)/g, ')');
  // collapse repeated punctuation
  s = s.replace(/([.,;:!?])\1+/g, '$1').replace(/,([.!?])/g, '$1');

  // First sentence: up to the first terminator followed by whitespace or the end.
  const end = /[.!?](?=\s|$)/.exec(s);
  if (end) {
    s = s.slice(0, end.index + 1);
  } else {
    // No terminator: the model was cut off mid-sentence. Drop the trailing fragment back to the last clause that
    // ends cleanly, and strip words a sentence cannot end on.
    s = s.replace(/[,;:]\s*$/, '');
    const words = s.split(' ');
    while (words.length > 0 && DANGLING.has(words[words.length - 1].toLowerCase().replace(/[^a-z']/g, ''))) words.pop();
    s = words.join(' ').replace(/[,;:\s]+$/, '');
    if (s !== '') s += '.';
  }
  s = s.replace(/^[\s.,;:!?'"-]+/, '');
  if (!/[\p{L}\p{N}]/u.test(s)) throw new EmptyCaptionError(tokenIds);
  return s.charAt(0).toUpperCase() + s.slice(1);
}
