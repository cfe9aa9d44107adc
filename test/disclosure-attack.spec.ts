import { TestBroker } from '@broker/testing';

/**
 * An attacker with an AGGREGATE_ONLY grant tries to learn suppressed counts about 50 targets (people
 * whose combination of sex, age band, zip and offense is rare) by differencing pairs, overlapping
 * group-bys and tracker-style filters. Everything it is told is written down as linear equations
 * over the finest cells (sex x age band x zip x offense); a suppressed count is learnt exactly when
 * its cells' indicator vector lies in the span of those equations. None may.
 */

const DATA = '/data/graphql';
const K = 5;
/** What the broker allows under an AGGREGATE_ONLY grant: every grouping of the four names. */
const MAXG = 4;
const DIMS = ['sex', 'age_band', 'zip', 'offense'] as const;
type Dim = (typeof DIMS)[number];
type Key = Record<Dim, string | number>;

/** A small deterministic generator (mulberry32), so the county is the same on every run. */
function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rnd: () => number, items: [T, number][]): T {
  let r = rnd() * items.reduce((s, [, w]) => s + w, 0);
  for (const [item, w] of items) if ((r -= w) < 0) return item;
  return items[items.length - 1][0];
}

interface Person {
  id: string;
  sex: string;
  age: number;
  zip: string;
  offense: string;
}

/**
 * A generated county. `sparse`: rare sexes, zips and offenses, so that most three-way tables have
 * small cells; `dense`: common values everywhere but two rare offenses, so that tables without the
 * offense are clean and released in full, three-way ones included.
 */
function county(n: number, profile: 'sparse' | 'dense'): Person[] {
  const rnd = random(Number(process.env.DISCLOSURE_SEED ?? 20261122));
  const people: Person[] = [];
  const dense = profile === 'dense';
  for (let i = 0; i < n; i++) {
    people.push({
      id: `B${i}`,
      sex: pick(
        rnd,
        dense
          ? [
              ['F', 50],
              ['M', 50],
            ]
          : [
              ['F', 48],
              ['M', 48],
              ['X', 4],
            ],
      ),
      age: 20 + Math.floor(rnd() * (dense ? 20 : 40)),
      zip: pick(
        rnd,
        dense
          ? [
              ['97201', 40],
              ['97202', 35],
              ['97203', 25],
            ]
          : [
              ['97201', 30],
              ['97202', 25],
              ['97203', 20],
              ['97204', 15],
              ['97205', 7],
              ['98001', 3],
            ],
      ),
      offense: pick(
        rnd,
        dense
          ? [
              ['THEFT', 50],
              ['ASSAULT', 30],
              ['DUI', 17],
              ['ARSON', 2],
              ['FRAUD', 1],
            ]
          : [
              ['THEFT', 35],
              ['ASSAULT', 25],
              ['DUI', 20],
              ['DRUGS', 12],
              ['FRAUD', 6],
              ['ARSON', 2],
            ],
      ),
    });
  }
  return people;
}

const keyOf = (p: Person): Key => ({
  sex: p.sex,
  age_band: Math.floor(p.age / 5) * 5,
  zip: p.zip,
  offense: p.offense,
});
const cellText = (k: Partial<Key>, dims: readonly Dim[] = DIMS) => dims.map((d) => String(k[d])).join('|');

/** Linear algebra modulo a prime: is a vector in the span of the equations seen so far? */
class Span {
  private static readonly P = 1_000_003;
  private readonly basis = new Map<number, Int32Array>();
  constructor(private readonly n: number) {}

  private reduce(v: Int32Array): Int32Array {
    const P = Span.P;
    for (let c = 0; c < this.n; c++) {
      if (v[c] === 0) continue;
      const row = this.basis.get(c);
      if (!row) continue;
      const f = v[c];
      for (let j = c; j < this.n; j++) {
        if (row[j] !== 0) v[j] = (((v[j] - f * row[j]) % P) + P) % P;
      }
    }
    return v;
  }

  add(indices: number[]): void {
    const v = new Int32Array(this.n);
    for (const i of indices) v[i] = 1;
    this.reduce(v);
    const pivot = v.findIndex((x) => x !== 0);
    if (pivot < 0) return;
    const inv = modInverse(v[pivot], Span.P);
    for (let j = pivot; j < this.n; j++) v[j] = (v[j] * inv) % Span.P;
    // Keep the basis reduced on its pivot columns so that reduce() works in one pass.
    for (const [c, row] of this.basis) {
      if (row[pivot] === 0) continue;
      const f = row[pivot];
      for (let j = pivot; j < this.n; j++) row[j] = (((row[j] - f * v[j]) % Span.P) + Span.P) % Span.P;
      this.basis.set(c, row);
    }
    this.basis.set(pivot, v);
  }

  contains(indices: number[]): boolean {
    const v = new Int32Array(this.n);
    for (const i of indices) v[i] = 1;
    return this.reduce(v).every((x) => x === 0);
  }
}

function modInverse(a: number, p: number): number {
  let [r0, r1, s0, s1] = [a, p, 1, 0];
  while (r1 !== 0) {
    const q = Math.floor(r0 / r1);
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % p) + p) % p;
}

type Group = { key: Partial<Key>; count: number | null; suppressed: boolean };

describe.each([
  ['sparse', 800],
  ['dense', 3000],
] as const)(
  'disclosure control: an attacker with an AGGREGATE_ONLY grant learns no suppressed count (%s county of %d)',
  (profile, size) => {
    let broker: TestBroker;
    let analyst: { apiKey: string };
    const people = county(size, profile);
    const cells = [...new Set(people.map((p) => cellText(keyOf(p))))].sort();
    const cellIndex = new Map(cells.map((c, i) => [c, i]));
    const cellCount = new Map<string, number>();
    for (const p of people) cellCount.set(cellText(keyOf(p)), (cellCount.get(cellText(keyOf(p))) ?? 0) + 1);
    /** The finest cells a group of a grouping covers. */
    const covered = (dims: readonly Dim[], key: Partial<Key>) =>
      cells.filter((c) => {
        const parts = c.split('|');
        return dims.every((d) => parts[DIMS.indexOf(d)] === String(key[d]));
      });
    // The targets: 50 people whose finest cell is below the minimum cell size.
    const targets = people.filter((p) => cellCount.get(cellText(keyOf(p)))! < K).slice(0, 50);

    const ask = async (groupBy: readonly Dim[], where?: unknown) =>
      broker.gql(
        analyst.apiKey,
        `query($g: [BookingsField!]!, $w: BookingsWhere) {
         bookings_aggregate(purpose: RECIDIVISM_EVALUATION, groupBy: $g, where: $w) { groups { key count suppressed } } }`,
        { g: groupBy, w: where },
        DATA,
      );

    beforeAll(async () => {
      broker = await TestBroker.start({ LABEL: `disclosure_${profile}` });
      const sheriff = await broker.createAgency('Sheriff');
      const research = await broker.createAgency('Research');
      const sheriffSteward = await broker.createUser({ agencyId: sheriff.id, role: 'STEWARD' });
      const researchSteward = await broker.createUser({ agencyId: research.id, role: 'STEWARD' });
      analyst = await broker.createUser({ agencyId: research.id, role: 'ANALYST' });
      await broker.definePurposes('RECIDIVISM_EVALUATION');
      const dataset = await broker.registerDataset(sheriffSteward.apiKey, {
        slug: 'bookings',
        title: 'Bookings',
        keyField: 'booking_id',
        fields: [
          { name: 'booking_id', type: 'STRING', classification: 'NON_SENSITIVE' },
          { name: 'sex', type: 'STRING', classification: 'QUASI_IDENTIFIER' },
          { name: 'age', type: 'INTEGER', classification: 'QUASI_IDENTIFIER' },
          { name: 'zip', type: 'STRING', classification: 'QUASI_IDENTIFIER' },
          { name: 'offense', type: 'STRING', classification: 'SENSITIVE' },
        ],
      });
      const csv = [
        'booking_id,sex,age,zip,offense',
        ...people.map((p) => `${p.id},${p.sex},${p.age},${p.zip},${p.offense}`),
      ];
      expect(
        (await broker.upload(sheriffSteward.apiKey, dataset.id, 'text/csv', csv.join('\n'))).status,
      ).toBe(200);
      await broker.activateAgreement(sheriffSteward.apiKey, researchSteward.apiKey, {
        title: 'Counts only',
        providerAgencyId: sheriff.id,
        recipientAgencyId: research.id,
        purposes: ['RECIDIVISM_EVALUATION'],
        validFrom: '2020-01-01T00:00:00Z',
        validUntil: '2099-01-01T00:00:00Z',
        grants: [
          {
            datasetId: dataset.id,
            access: 'AGGREGATE_ONLY',
            minCellSize: K,
            fields: [
              { name: 'sex' },
              { name: 'age', transform: 'GENERALIZE' },
              { name: 'zip' },
              { name: 'offense' },
            ],
          },
        ],
      });
    });
    afterAll(() => broker.close());

    it('has 50 targets in cells below the minimum size', () => {
      expect(targets).toHaveLength(50);
    });

    it('stops differencing pairs, overlapping group-bys and trackers against 50 targets', async () => {
      const answers: { dims: readonly Dim[]; filtered: boolean; groups: Group[] }[] = [];
      let refused = 0;
      let answered = 0;
      let wide = 0;
      const run = async (dims: readonly Dim[], where?: unknown) => {
        const res = await ask(dims, where);
        if (res.errors) {
          expect(res.data).toBeNull();
          refused++;
          return;
        }
        answered++;
        if (dims.length > 2) wide++;
        const groups = (res.data as { bookings_aggregate: { groups: Group[] } }).bookings_aggregate.groups;
        for (const g of groups) if (g.suppressed) expect(g.count).toBeNull();
        answers.push({ dims, filtered: where !== undefined, groups });
      };

      // Overlapping group-bys: every grouping of the four names in two orders, totals included.
      for (let mask = 0; mask < 1 << DIMS.length; mask++) {
        const dims = DIMS.filter((_, i) => mask & (1 << i));
        await run(dims);
        if (dims.length > 1) await run([...dims].reverse());
      }

      for (const target of targets) {
        const k = keyOf(target);
        const isTarget = { and: DIMS.map((d) => ({ [d]: { eq: k[d] } })) };
        // Differencing pair: a count, and the same count without the target (filters on other names).
        await run(['sex'], { not: { and: [{ zip: { eq: k.zip } }, { offense: { eq: k.offense } }] } });
        await run(['sex'], { not: isTarget });
        // The same pair inside the full grouping, where the filter may only pick groups.
        await run(['zip', 'offense'], {
          not: { and: [{ zip: { eq: k.zip } }, { offense: { eq: k.offense } }] },
        });
        await run(['sex', 'zip'], { not: { and: [{ sex: { eq: k.sex } }, { zip: { eq: k.zip } }] } });
        // Tracker: the target's condition padded with a large group, and the padding alone.
        await run(['offense'], { or: [isTarget, { offense: { eq: 'THEFT' } }] });
        await run(['offense', 'zip'], {
          or: [{ and: [{ offense: { eq: k.offense } }, { zip: { eq: k.zip } }] }, { zip: { eq: '97201' } }],
        });
        await run(['offense', 'zip'], { zip: { eq: '97201' } });
      }
      expect(answered).toBeGreaterThan(16);
      // The dense county gets tables of three names and more answered; the sparse one gets them refused.
      if (profile === 'dense') expect(wide).toBeGreaterThan(0);
      expect(refused).toBeGreaterThan(0);

      // What the attacker knows: every combination of the values the one-way tables show, except
      // those that an answered table without a filter shows to be empty (no group with that key).
      const domains = DIMS.map((d) => [...new Set(people.map((p) => String(keyOf(p)[d])))]);
      let space: string[][] = [[]];
      for (const values of domains) space = space.flatMap((prefix) => values.map((v) => [...prefix, v]));
      const shown = answers
        .filter((a) => !a.filtered)
        .map((a) => ({ dims: a.dims, keys: new Set(a.groups.map((g) => cellText(g.key, a.dims))) }));
      const possible = space
        .map((parts) => parts.join('|'))
        .filter((text) => {
          const parts = text.split('|');
          const key = Object.fromEntries(DIMS.map((d, i) => [d, parts[i]])) as unknown as Key;
          return shown.every(({ dims, keys }) => keys.has(cellText(key, dims)));
        });
      // Every true cell is possible: the attacker's knowledge is never wrong.
      for (const c of cells) expect(possible).toContain(c);
      const index = new Map(possible.map((c, i) => [c, i]));
      const inGroup = (dims: readonly Dim[], key: Partial<Key>) =>
        possible
          .filter((c) => {
            const parts = c.split('|');
            return dims.every((d) => parts[DIMS.indexOf(d)] === String(key[d]));
          })
          .map((c) => index.get(c)!);
      const span = new Span(possible.length);
      for (const { dims, groups } of answers) {
        for (const g of groups) if (!g.suppressed) span.add(inGroup(dims, g.key));
      }
      const derivable = answers.flatMap(({ dims, groups }) =>
        groups
          .filter((g) => g.suppressed && span.contains(inGroup(dims, g.key)))
          .map((g) => ({ dims, key: g.key })),
      );
      expect(derivable).toEqual([]);
      for (const target of targets) {
        expect(span.contains([index.get(cellText(keyOf(target)))!])).toBe(false);
      }
    }, 120_000);

    it('would catch primary suppression alone: the same attacker then learns suppressed counts', () => {
      // What a broker without complementary suppression would release for the same groupings.
      const span = new Span(cells.length);
      const small: string[][] = [];
      for (let mask = 0; mask < 1 << DIMS.length; mask++) {
        const dims = DIMS.filter((_, i) => mask & (1 << i));
        if (dims.length > MAXG) continue;
        const counts = new Map<string, number>();
        for (const p of people) {
          const text = cellText(keyOf(p), dims);
          counts.set(text, (counts.get(text) ?? 0) + 1);
        }
        for (const [text, count] of counts) {
          const parts = text.split('|');
          const key = Object.fromEntries(dims.map((d, i) => [d, parts[i]])) as Partial<Key>;
          const group = covered(dims, key);
          if (count < K) small.push(group);
          else span.add(group.map((c) => cellIndex.get(c)!));
        }
      }
      const learnt = small.filter((group) => span.contains(group.map((c) => cellIndex.get(c)!)));
      expect(learnt.length).toBeGreaterThan(0);
    });
  },
);
