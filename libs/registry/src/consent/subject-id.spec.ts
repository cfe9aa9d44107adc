import fc from 'fast-check';
import { FieldType } from '../dataset/dataset-schema';
import { MAX_SUBJECT_ID_LENGTH, subjectIdInput } from './subject-id';

const SPACES = [' ', '\t', '\n', '\r', '\u00a0', '\u2003', '\u3000', '\ufeff', '\u2028', '\u1680'];

describe('subjectIdInput: the subject id exactly as given', () => {
  it('returns every id it accepts unchanged, surrounding spaces included (property)', () => {
    const space = fc.constantFrom(...SPACES);
    fc.assert(
      fc.property(
        fc.array(space, { maxLength: 3 }),
        fc.string({ unit: 'grapheme', maxLength: 20 }),
        fc.array(space, { maxLength: 3 }),
        (before, middle, after) => {
          const id = `${before.join('')}${middle}${after.join('')}`.replaceAll('\u0000', '');
          fc.pre(id !== '');
          expect(subjectIdInput(id)).toBe(id);
        },
      ),
    );
  });

  it('takes an id of spaces only, and one of 200 characters, astral ones counted once', () => {
    expect(subjectIdInput('   ')).toBe('   ');
    expect(subjectIdInput('\t\n')).toBe('\t\n');
    const astral = '\u{1F600}'.repeat(MAX_SUBJECT_ID_LENGTH);
    expect(subjectIdInput(astral)).toBe(astral);
  });

  it('refuses the empty id, a longer one, a NUL and a lone surrogate', () => {
    for (const bad of ['', 'x'.repeat(MAX_SUBJECT_ID_LENGTH + 1), 'P\u0000', 'P\ud800', '\udc00P', 1, null]) {
      expect(() => subjectIdInput(bad)).toThrow(/subjectId/);
    }
  });

  it('takes an INTEGER subject only as its records write it', () => {
    for (const good of ['0', '7', '-12', '9007199254740993']) {
      expect(subjectIdInput(good, 'subjectId', FieldType.INTEGER)).toBe(good);
    }
    for (const bad of ['07', ' 7', '7 ', '+7', '7.0', '-0', '1e3', 'seven']) {
      expect(() => subjectIdInput(bad, 'subjectId', FieldType.INTEGER)).toThrow(/integer/);
      expect(subjectIdInput(bad, 'subjectId', FieldType.STRING)).toBe(bad);
    }
  });
});
