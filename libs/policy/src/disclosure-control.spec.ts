import fc from 'fast-check';
import { type CountCell, protectedPattern, suppressionPattern } from './disclosure-control';

const cell = (key: string[], count: number, hidden = count): CountCell => ({ key, count, hidden });

/** The lines of a table: cells that agree on every grouped value but one. */
function lines(cells: CountCell[]): number[][] {
  const dims = cells[0]?.key.length ?? 0;
  const out: number[][] = [];
  for (let d = 0; d < dims; d++) {
    const by = new Map<string, number[]>();
    cells.forEach((c, i) => {
      const rest = JSON.stringify(c.key.filter((_, j) => j !== d));
      by.set(rest, [...(by.get(rest) ?? []), i]);
    });
    // A line of one cell equals a group of the coarser table, which is as small and suppressed there.
    out.push(...[...by.values()].filter((line) => line.length > 1));
  }
  return out;
}

describe('suppressionPattern', () => {
  it('releases a table with no small group untouched', () => {
    expect(suppressionPattern([cell(['F'], 40), cell(['M'], 12)], 11)).toEqual([false, false]);
  });

  it('suppresses a small group and the smallest other group of its line', () => {
    const cells = [cell(['F'], 40), cell(['M'], 30), cell(['X'], 3)];
    expect(suppressionPattern(cells, 11)).toEqual([false, true, true]);
  });

  it('suppresses a group whose part hidden from the rows is small, even when its count is large', () => {
    const cells = [cell(['F'], 40, 0), cell(['M'], 30, 2), cell(['X'], 50, 50)];
    expect(suppressionPattern(cells, 11)).toEqual([true, true, false]);
  });

  it('never treats zero as small: an empty part tells nothing', () => {
    expect(suppressionPattern([cell(['F'], 40, 0), cell(['M'], 30, 0)], 11)).toEqual([false, false]);
  });

  it('keeps the total alone: with no grouping, a small total is suppressed and nothing else exists', () => {
    expect(suppressionPattern([cell([], 4)], 5)).toEqual([true]);
    expect(suppressionPattern([cell([], 5)], 5)).toEqual([false]);
  });

  it('prefers a complement that shares all its lines, as one alone in a line equals a released margin', () => {
    // Row a1: X small, Y (alone in column b2), Z (column b3 shared with row a2).
    const cells = [
      cell(['a1', 'b1'], 2),
      cell(['a1', 'b2'], 20),
      cell(['a1', 'b3'], 30),
      cell(['a2', 'b1'], 40),
      cell(['a2', 'b3'], 50),
    ];
    const pattern = suppressionPattern(cells, 5);
    expect(pattern[1]).toBe(false);
    expect(pattern[0] && pattern[2]).toBe(true);
  });

  it('leaves no line with exactly one suppressed group, marks every small group, and is deterministic', () => {
    const arbTable = fc
      .tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 15 }))
      .chain(([dims, k]) =>
        fc.record({
          k: fc.constant(k),
          cells: fc.uniqueArray(
            fc.record({
              key: fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { minLength: dims, maxLength: dims }),
              count: fc.integer({ min: 1, max: 40 }),
              hiddenShare: fc.double({ min: 0, max: 1, noNaN: true }),
            }),
            { selector: (c) => c.key.join('|'), minLength: 1, maxLength: 40 },
          ),
        }),
      );
    fc.assert(
      fc.property(arbTable, ({ k, cells: raw }) => {
        const cells = raw.map((c) => cell(c.key, c.count, Math.floor(c.count * c.hiddenShare)));
        const pattern = suppressionPattern(cells, k);
        cells.forEach((c, i) => {
          const small = (n: number) => n > 0 && n < k;
          if (small(c.count) || small(c.hidden)) expect(pattern[i]).toBe(true);
        });
        for (const line of lines(cells)) {
          expect(line.filter((i) => pattern[i]).length).not.toBe(1);
        }
        expect(suppressionPattern([...cells].reverse(), k)).toEqual([...pattern].reverse());
      }),
      { numRuns: 300 },
    );
  });

  describe('protectedPattern', () => {
    /** A full 3 x 2 x 2 table with the given count in every cell. */
    const cube = (count: (key: string[]) => number) => {
      const cells: CountCell[] = [];
      for (const a of ['a1', 'a2', 'a3'])
        for (const b of ['b1', 'b2'])
          for (const c of ['c1', 'c2']) {
            const key = [a, b, c];
            cells.push(cell(key, count(key)));
          }
      return cells;
    };

    it('is suppressionPattern for tables of up to two names', () => {
      const cells = [cell(['F', 'x'], 40), cell(['M', 'x'], 30), cell(['X', 'x'], 3)];
      expect(protectedPattern(cells, 11)).toEqual(suppressionPattern(cells, 11));
    });

    it('releases a three-way table in full when no cell of it or of its margins is suppressed', () => {
      expect(
        protectedPattern(
          cube(() => 12),
          11,
        ),
      ).toEqual(new Array(12).fill(false));
    });

    it('suppresses a three-way table in full when one of its cells is small', () => {
      const cells = cube((k) => (k.join() === 'a3,b2,c2' ? 4 : 50));
      expect(protectedPattern(cells, 11)).toEqual(new Array(12).fill(true));
    });

    it('suppresses a three-way table in full when a margin hides something, though every cell is large', () => {
      // Every cell is at least 11, but a part hidden from the caller's rows is small in one margin.
      const cells = cube((k) => (k[0] === 'a3' ? 11 : 30)).map((c) =>
        c.key[0] === 'a3' && c.key[1] === 'b1' ? { ...c, hidden: 2 } : { ...c, hidden: 0 },
      );
      expect(protectedPattern(cells, 11)).toEqual(new Array(12).fill(true));
    });
  });
});
