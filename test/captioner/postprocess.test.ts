import { describe, expect, it } from 'vitest';
import { EmptyCaptionError } from '../../src/shared/errors';
import { postprocessCaption } from '../../src/captioner/postprocess';

describe('caption post-processing', () => {
  it('capitalises and keeps the terminating period', () => {
    expect(postprocessCaption(' a red circle on a white background.')).toBe('A red circle on a white background.');
  });
  it('keeps only the first sentence', () => {
    expect(postprocessCaption(' a dog on grass. a cat on a mat.')).toBe('A dog on grass.');
    expect(postprocessCaption(' is it a dog? yes it is')).toBe('Is it a dog?');
  });
  it('drops a trailing fragment left by the token limit', () => {
    expect(postprocessCaption(' a man riding a horse on a beach with a')).toBe('A man riding a horse on a beach.');
    expect(postprocessCaption(' a plate of food, with the')).toBe('A plate of food.');
  });
  it('tidies spacing and punctuation', () => {
    expect(postprocessCaption('  two  cats ,sitting on a sofa  .')).toBe('Two cats, sitting on a sofa.');
    expect(postprocessCaption(' a sign that says ( stop ) ..')).toBe('A sign that says (stop).');
  });
  it('does not cut inside a number', () => {
    expect(postprocessCaption(' a 3.5 inch floppy disk.')).toBe('A 3.5 inch floppy disk.');
  });
  it('refuses an empty caption with a named error', () => {
    for (const raw of ['', '   ', '.', ' , .', ' the', ' with a']) {
      expect(() => postprocessCaption(raw, [13])).toThrow(EmptyCaptionError);
    }
  });
});
