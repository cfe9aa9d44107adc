/**
 * The check of a release's row-id list, differential against the regular expression it replaced
 * (which overflowed the stack on an export's million ids), on lists fast-check builds and mangles.
 */
import fc from 'fast-check';
import { isRidList } from './audit.service';

const REFERENCE = /^\{\d{1,19}(,\d{1,19})*\}$/;

describe('isRidList', () => {
  it('agrees with the reference expression on lists and their mangled forms', () => {
    const id = fc.oneof(fc.stringMatching(/^\d{1,19}$/), fc.stringMatching(/^\d{18,21}$/), fc.constant(''));
    const list = fc.array(id, { minLength: 0, maxLength: 8 }).map((ids) => `{${ids.join(',')}}`);
    const mangled = fc
      .tuple(list, fc.nat(), fc.constantFrom('', ',', '{', '}', ' ', 'x', '-', '1', '٣'))
      .map(([text, at, insert]) => {
        const i = at % (text.length + 1);
        return text.slice(0, i) + insert + text.slice(i);
      });
    fc.assert(
      fc.property(fc.oneof(list, mangled, fc.string()), (text) => {
        expect(isRidList(text)).toBe(REFERENCE.test(text));
      }),
      { numRuns: 5000 },
    );
  });

  it('takes an export of two million ids, and still refuses one bad id among them', () => {
    const ids = Array.from({ length: 2_000_000 }, (_, i) => String(1e15 + i * 7919));
    expect(isRidList(`{${ids.join(',')}}`)).toBe(true);
    ids[1_500_000] = '12a';
    expect(isRidList(`{${ids.join(',')}}`)).toBe(false);
  });

  it.each(['{}', '{,}', '{1,}', '{,1}', '{1,,2}', '1,2', '{1', '{12345678901234567890}', ''])(
    'refuses %j',
    (text) => expect(isRidList(text)).toBe(false),
  );
});
