import { PolicyError } from './policy-error';
import type { CompiledGrant } from './policy.types';
import { type CountCell, protectedPattern } from './disclosure-control';
import { listed as isListed, perturbedCount } from './cell-key';

/** At most this many groups in the full table of an aggregate (before `where` picks groups). */
export const MAX_GROUPS = 10_000;

/** One group of an aggregate's answer. */
export interface AggregateGroup {
  key: Record<string, unknown>;
  count: number | null;
  suppressed: boolean;
}

/** One group of an aggregate's full table as its statement returns it. */
export interface AggregateRow {
  /** The group's key: a JSON array of released values, in the order of `groupBy`. */
  k: string;
  /** Records in the group. */
  n: number;
  /** Of them, records the caller may read as rows under some ROWS grant. */
  v: number;
  /** Whether the caller's `where` selects the group (always, where `where` is applied in SQL). */
  selected: boolean;
  /** The group's cell key (see cell-key.ts), as text: perturbed answers only. */
  ck?: string;
}

/**
 * The answer of an aggregate from its full table: the suppression pattern is decided on every group
 * (so it never depends on `where`), and then only the selected groups are returned, in key order.
 */
export function protectedGroups(
  plan: { groupBy: string[]; grant: Pick<CompiledGrant, 'minCellSize'> },
  rows: AggregateRow[],
): AggregateGroup[] {
  if (rows.length > MAX_GROUPS) {
    throw new PolicyError(
      'BAD_USER_INPUT',
      'The grouping makes too many groups: group by fewer or coarser fields',
      true,
    );
  }
  const keys = rows.map((row) => JSON.parse(row.k) as unknown[]);
  // The pattern is decided with the grouped names in one order, whatever order the caller wrote:
  // two orders of the same grouping must not get two patterns, which together would tell more.
  const canonical = plan.groupBy.map((name, j) => [name, j] as const).sort(([a], [b]) => (a < b ? -1 : 1));
  const cells: CountCell[] = rows.map((row, i) => ({
    key: canonical.map(([, j]) => JSON.stringify(keys[i][j])),
    count: row.n,
    hidden: row.n - row.v,
  }));
  const suppressed = protectedPattern(cells, plan.grant.minCellSize);
  // A table of three names or more is answered in full or not at all: even its keys would tell which
  // combinations are empty, so one that would need suppression is refused.
  if (plan.groupBy.length > 2 && suppressed.some(Boolean)) {
    throw new PolicyError(
      'BAD_USER_INPUT',
      'Grouped by three fields or more, some groups would be suppressed: group by fewer or coarser fields',
    );
  }
  const order = rows.map((_, i) => i).sort((a, b) => compareCells(cells[a].key, cells[b].key));
  const groups: AggregateGroup[] = [];
  for (const i of order) {
    if (!rows[i].selected) continue;
    const key: Record<string, unknown> = {};
    plan.groupBy.forEach((name, j) => (key[name] = keys[i][j]));
    groups.push({ key, count: suppressed[i] ? null : rows[i].n, suppressed: suppressed[i] });
  }
  return groups;
}

/**
 * The answer of a perturbed aggregate (docs/disclosure-control.md): a group below `minCellSize` is
 * left out, so no answer shows that a small combination exists, and so is one whose perturbed count
 * falls below it (`listed` in cell-key.ts), so that presence is no exact test of the minimum; every
 * other group shows its count
 * perturbed by its cell key, so the same records always get the same count and no difference of
 * answers, nor a total less the groups listed, is exact. Groups come in key order.
 */
export function perturbedGroups(
  plan: { groupBy: string[]; minCellSize: number },
  rows: AggregateRow[],
  /** The key of perturbations (perturbationKey in cell-key.ts). */
  secretKey: Buffer,
): AggregateGroup[] {
  // Only the groups the answer lists count towards the limit, so that a refusal says nothing of a
  // group left out (its statement reads no other: listedSql).
  const kept = rows.filter((row) => isListed(row.n, row.ck ?? 0, plan.minCellSize, secretKey));
  if (kept.length > MAX_GROUPS) {
    throw new PolicyError(
      'BAD_USER_INPUT',
      'The grouping makes too many groups: group by fewer or coarser fields',
      true,
    );
  }
  const listed = kept
    .map((row) => ({ row, key: (JSON.parse(row.k) as unknown[]).map((v) => JSON.stringify(v)) }))
    .sort((a, b) => compareCells(a.key, b.key));
  return listed.map(({ row, key }) => {
    const named: Record<string, unknown> = {};
    plan.groupBy.forEach((name, j) => (named[name] = JSON.parse(key[j]) as unknown));
    return {
      key: named,
      count: perturbedCount(row.n, row.ck ?? 0, plan.minCellSize, secretKey),
      suppressed: false,
    };
  });
}

/** Key order: value by value, null last, numbers by value, text by code point. */
function compareCells(a: string[], b: string[]): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    if (a[i] === 'null') return 1;
    if (b[i] === 'null') return -1;
    const x = JSON.parse(a[i]) as unknown;
    const y = JSON.parse(b[i]) as unknown;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}
