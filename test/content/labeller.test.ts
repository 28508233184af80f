import { describe, expect, it } from 'vitest';
import { labelText } from '../../src/content/labeller';

describe('label text', () => {
  it('puts the marker before the caption, in sentence flow', () => {
    expect(labelText('Appears to be: ', 'A red circle on a white background.')).toBe('Appears to be: a red circle on a white background.');
    expect(labelText('Appears to be: ', 'TV on a table.')).toBe('Appears to be: TV on a table.');
  });
});
