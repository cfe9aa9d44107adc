import { BudgetSpending } from './data-plane-recorder';
import type { Plan } from './plan';

/** A perturbed aggregate under `agreement` (and, for a linked count, `other`), as budgetUses reads it. */
const count = (agreement: string, other?: string) =>
  ({
    kind: 'AGGREGATE',
    exact: false,
    agreement: { id: agreement },
    linked: other ? { agreement: { id: other } } : null,
  }) as unknown as Plan;
const exact = (agreement: string): Plan => ({ ...count(agreement), exact: true });
const weights = (m: Map<string, { weight: number }>) =>
  Object.fromEntries([...m].map(([k, v]) => [k, v.weight]));

describe('BudgetSpending: what one request spends while it is decided', () => {
  it('asks only for the units a decision needs beyond those spent, each agreement once per count', () => {
    const spending = new BudgetSpending();
    const plans = [count('X'), count('X'), count('Y', 'Z'), count('W', 'W'), exact('V')];
    expect(weights(spending.due(plans))).toEqual({ X: 2, Y: 1, Z: 1, W: 1 });
    spending.add('X', '2026-01-01', 2);
    spending.add('Y', '2026-01-01', 1);
    expect(weights(spending.due(plans))).toEqual({ Z: 1, W: 1 });
    expect(weights(spending.due([count('X'), count('Y')]))).toEqual({});
    expect(weights(spending.due([count('X'), count('X'), count('X')]))).toEqual({ X: 1 });
  });

  it('gives back what the decision answered does not use, on the day it was spent, and forgets it', () => {
    const spending = new BudgetSpending();
    spending.add('X', '2026-01-01', 1);
    spending.add('Y', '2026-01-01', 1);
    // Past midnight, the second decision needed one more of X.
    spending.add('X', '2026-01-02', 1);
    expect(Object.fromEntries(spending.excess([count('X')]))).toEqual({ X: 1, Y: 1 });
    expect(spending.giveBack(spending.excess([count('X')]))).toEqual([
      { agreementId: 'X', day: '2026-01-02', units: 1 },
      { agreementId: 'Y', day: '2026-01-01', units: 1 },
    ]);
    expect(spending.unitsOf('X')).toBe(1);
    expect(spending.unitsOf('Y')).toBe(0);
    expect(spending.excess([count('X')]).size).toBe(0);
    // Refused at last: everything left goes back.
    expect(spending.giveBack(spending.excess([]))).toEqual([
      { agreementId: 'X', day: '2026-01-01', units: 1 },
    ]);
    expect(spending.giveBack(spending.excess([]))).toEqual([]);
  });

  it('keeps what statements that ran used when their release was withdrawn, once, whatever comes after', () => {
    const spending = new BudgetSpending();
    spending.add('X', '2026-01-01', 2);
    spending.add('Y', '2026-01-01', 1);
    // Two counts under X and one under Y were read, and withdrawn before they were recorded.
    spending.read([count('X'), count('X'), count('Y')]);
    // Decided again (twice), now with one count under X only: nothing more is due, nothing is given back.
    spending.read([count('X')]);
    expect(weights(spending.due([count('X')]))).toEqual({});
    expect(spending.excess([count('X')]).size).toBe(0);
    // Refused at last: what ran stays spent.
    expect(spending.excess([]).size).toBe(0);
    expect(spending.giveBack(spending.excess([]))).toEqual([]);
    expect([spending.unitsOf('X'), spending.unitsOf('Y')]).toEqual([2, 1]);
    // A count under another agreement, answered, is billed on its own; what ran is still kept.
    spending.add('Z', '2026-01-01', 1);
    expect(spending.excess([count('Z')]).size).toBe(0);
  });
});
