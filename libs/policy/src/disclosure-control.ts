/**
 * Disclosure control of aggregate counts (docs/disclosure-control.md): which groups of a count
 * table are released and which are suppressed. Pure: counts in, a suppression pattern out.
 *
 * The table is the full cross-tabulation of the grant's population by the grouped names (every
 * non-empty group, before the caller's `where` picks which ones to show), so the pattern never
 * depends on the filter. A group is suppressed when
 * - its count is below the grant's minimum cell size (primary suppression), or
 * - the part of it that the caller cannot read as rows under a ROWS grant is (also primary: the
 *   caller could subtract the rows it reads from the count), or
 * - it is needed so that no line of the table holds exactly one suppressed group (complementary
 *   suppression). A line is the set of groups that agree on every grouped name but one; its total
 *   is a group of the table grouped by one name fewer, which the caller can ask for, so a line with
 *   one suppressed group would give that group away by subtraction.
 */

/** One non-empty group of a count table. */
export interface CountCell {
  /** The group's values, one per grouped name, as a stable text (equal values, equal text). */
  key: string[];
  /** Records in the group. */
  count: number;
  /** Records in the group that the caller may not read as rows; equal to `count` without ROWS grants. */
  hidden: number;
}

/** Whether a count below the threshold would tell something: zero tells nothing (no group). */
function small(count: number, minCellSize: number): boolean {
  return count > 0 && count < minCellSize;
}

/**
 * The suppression pattern of a count table: `true` for each suppressed cell, in input order.
 * Deterministic: the same table always gets the same pattern. Complements are taken, line by line,
 * from the released groups of the line: those that share every line with other cells first, then the
 * smallest count (ties: smallest hidden part, then key order), which loses the least information.
 */
export function suppressionPattern(cells: CountCell[], minCellSize: number): boolean[] {
  const suppressed = cells.map((c) => small(c.count, minCellSize) || small(c.hidden, minCellSize));
  const dims = cells.length ? cells[0].key.length : 0;
  if (dims === 0 || !suppressed.some(Boolean)) return suppressed;

  // The lines of each dimension: cells that agree on every other grouped value. A cell alone in a
  // line equals a group of the table grouped by one name fewer, which the caller can ask for: as a
  // complement it would hide nothing, so such cells come last.
  const lines: number[][] = [];
  const lonely = new Array<boolean>(cells.length).fill(false);
  for (let d = 0; d < dims; d++) {
    const byRest = new Map<string, number[]>();
    cells.forEach((cell, i) => {
      const rest = JSON.stringify(cell.key.filter((_, j) => j !== d));
      const line = byRest.get(rest);
      if (line) line.push(i);
      else byRest.set(rest, [i]);
    });
    for (const line of byRest.values()) {
      if (line.length > 1) lines.push(line);
      else lonely[line[0]] = true;
    }
  }
  const order = (a: number, b: number) =>
    Number(lonely[a]) - Number(lonely[b]) ||
    cells[a].count - cells[b].count ||
    cells[a].hidden - cells[b].hidden ||
    compareKeys(cells[a].key, cells[b].key);

  // Each pass suppresses at least one more cell, so this ends within cells.length passes.
  for (let changed = true; changed;) {
    changed = false;
    for (const line of lines) {
      let count = 0;
      for (const i of line) if (suppressed[i]) count++;
      if (count !== 1) continue;
      const candidates = line.filter((i) => !suppressed[i]).sort(order);
      suppressed[candidates[0]] = true;
      changed = true;
    }
  }
  return suppressed;
}

function compareKeys(a: string[], b: string[]): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

/**
 * The suppression pattern of any table: {@link suppressionPattern} for tables of up to two grouped
 * names, whose line-by-line complements leave every suppressed count undetermined; a table of three
 * names or more is all or nothing: released in full only when none of its cells and no cell of any
 * table grouped by a subset of its names (totals included) is suppressed, else every cell is
 * suppressed (the data plane then refuses the table). So a larger table is released only when it
 * hides nothing that a smaller one hides.
 */
export function protectedPattern(cells: CountCell[], minCellSize: number): boolean[] {
  const dims = cells.length ? cells[0].key.length : 0;
  if (dims <= 2) return suppressionPattern(cells, minCellSize);
  const all = () => cells.map(() => true);
  if (cells.some((c) => small(c.count, minCellSize) || small(c.hidden, minCellSize))) return all();
  for (let mask = 0; mask < (1 << dims) - 1; mask++) {
    const kept = [...Array(dims).keys()].filter((d) => mask & (1 << d));
    const margins = new Map<string, CountCell>();
    for (const cell of cells) {
      const key = kept.map((d) => cell.key[d]);
      const text = JSON.stringify(key);
      const margin = margins.get(text);
      if (margin) {
        margin.count += cell.count;
        margin.hidden += cell.hidden;
      } else {
        margins.set(text, { key, count: cell.count, hidden: cell.hidden });
      }
    }
    if (protectedPattern([...margins.values()], minCellSize).some(Boolean)) return all();
  }
  return cells.map(() => false);
}
