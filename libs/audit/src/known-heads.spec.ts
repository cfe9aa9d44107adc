import fc from 'fast-check';
import { parseHeads } from '../../../apps/admin/src/lib/known-heads';
import { knownHeadOfText } from './audit-chain';

/** The admin UI reads a head written down as the audit library does (its bundle cannot import it). */
describe('a head written down: the admin UI against knownHeadOfText', () => {
  const hex = fc.stringMatching(/^[0-9a-fA-F]{64}$/);
  const line = fc.oneof(
    fc.tuple(fc.nat({ max: 2 ** 40 }), hex).map(([seq, hash]) => `${seq}:${hash}`),
    fc
      .tuple(fc.nat(), hex, fc.constantFrom(' ', ': ', '::', ':0x', '-', ''))
      .map(([s, h, sep]) => `${s}${sep}${h}`),
    fc.tuple(fc.integer({ min: -5, max: 5 }), fc.string({ maxLength: 70 })).map(([s, h]) => `${s}:${h}`),
    fc.string({ maxLength: 90 }),
  );

  it('takes and refuses the same lines, with the same heads (fast-check)', () => {
    fc.assert(
      fc.property(line, (text) => {
        const trimmed = text.trim();
        const ui = parseHeads(text);
        const lib = knownHeadOfText(trimmed);
        if (!trimmed) return expect(ui).toEqual({ heads: [] });
        if (text.includes('\n')) return;
        expect(ui).toEqual(lib ? { heads: [lib] } : { bad: [1] });
      }),
      { numRuns: 500 },
    );
  });

  it('reads several lines, and names the ones that are no head', () => {
    const h = 'A'.repeat(64);
    expect(parseHeads(`12:${h}\n\n  0:${h.toLowerCase()}  \n7 ${h}\n-1:${h}`)).toEqual({ bad: [4, 5] });
    expect(parseHeads(`12:${h}\n0:${h}`)).toEqual({
      heads: [
        { seq: 12, hash: h.toLowerCase() },
        { seq: 0, hash: h.toLowerCase() },
      ],
    });
    expect(knownHeadOfText(`12:${h}`)).toEqual({ seq: 12, hash: h.toLowerCase() });
  });
});
