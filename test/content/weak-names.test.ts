import { describe, expect, it } from 'vitest';
import { isWeakName } from '../../src/content/weak-names';

describe('weak names', () => {
  it.each([
    'IMG_2034.jpg',
    'DSC01234',
    'photo.png',
    'image',
    'Photo',
    'the picture',
    'img 3',
    '  ',
    'Bild',
    'uploads/cat.JPEG',
    'PXL_20230101_123456',
  ])('%j counts as missing', (n) => expect(isWeakName(n)).toBe(true));
  it.each(['A dog on a beach', 'Company logo', 'Sales chart 2024', 'photo of my grandmother', 'Zugspitze im Winter'])(
    '%j is a real name',
    (n) => expect(isWeakName(n)).toBe(false),
  );
});
