import { assignPersonIds, clusterRecords } from './clustering';

/** Records with SSNs and dates of birth ('YYYY-MM-DD' or null). */
function records(rows: { ssn?: number; dob?: string }[]) {
  const n = rows.length;
  const r = {
    size: n,
    ssn: new Uint32Array(n),
    year: new Uint16Array(n),
    month: new Uint8Array(n),
    day: new Uint8Array(n),
  };
  rows.forEach((row, i) => {
    r.ssn[i] = row.ssn ?? 0;
    if (row.dob) {
      const [y, m, d] = row.dob.split('-').map(Number);
      r.year[i] = y;
      r.month[i] = m;
      r.day[i] = d;
    }
  });
  return r;
}

function links(list: [number, number, number][]) {
  return {
    size: list.length,
    a: Uint32Array.from(list.map((l) => l[0])),
    b: Uint32Array.from(list.map((l) => l[1])),
    weight: Float32Array.from(list.map((l) => l[2])),
  };
}

describe('clustering', () => {
  it('keeps apart two records decided not one person, even through others, and joins on a strong link', () => {
    // 0-1-2-3 chained by strong links; a reviewer decided 0 and 3 are not one person.
    const chain = links([
      [0, 1, 30],
      [1, 2, 29],
      [2, 3, 28],
    ]);
    const free = clusterRecords(records([{}, {}, {}, {}]), chain);
    expect(Array.from(free.label)).toEqual([0, 0, 0, 0]);
    const kept = clusterRecords(records([{}, {}, {}, {}]), chain, undefined, [[3, 0]]);
    expect(Array.from(kept.label)).toEqual([0, 0, 0, 3]);
    expect(kept.refused).toBe(1);
    // A conflicting date of birth elsewhere in the cluster is overridden by a link of weight 20 or
    // more, not by a weaker one.
    const dobs = records([{ dob: '1980-01-02' }, {}, { dob: '1955-07-30' }]);
    expect(
      clusterRecords(
        dobs,
        links([
          [0, 1, 30],
          [1, 2, 19],
        ]),
      ).count,
    ).toBe(2);
    expect(
      clusterRecords(
        dobs,
        links([
          [0, 1, 30],
          [1, 2, 21],
        ]),
      ).count,
    ).toBe(1);
  });

  it('does not chain two people through a record that links to both', () => {
    const result = clusterRecords(
      records([{ ssn: 123456789 }, {}, { ssn: 987654321 }]),
      links([
        [0, 1, 10],
        [1, 2, 9],
      ]),
    );
    expect(Array.from(result.label)).toEqual([0, 0, 2]);
    expect(result).toMatchObject({ count: 2, merges: 1, refused: 1 });
  });

  it('takes the strongest links first, so the weaker claim loses', () => {
    const result = clusterRecords(
      records([{ ssn: 123456789 }, {}, { ssn: 987654321 }]),
      links([
        [0, 1, 10],
        [1, 2, 20],
      ]),
    );
    expect(Array.from(result.label)).toEqual([0, 1, 1]);
  });

  it('allows what a typo or a day/month swap explains, and refuses what it does not', () => {
    const typo = clusterRecords(records([{ ssn: 123456789 }, { ssn: 123456788 }]), links([[0, 1, 5]]));
    expect(typo.count).toBe(1);
    const swapped = clusterRecords(
      records([{ dob: '1990-03-04' }, { dob: '1990-04-03' }]),
      links([[0, 1, 5]]),
    );
    expect(swapped.count).toBe(1);
    const yearTypo = clusterRecords(
      records([{ dob: '1990-03-04' }, { dob: '1980-03-04' }]),
      links([[0, 1, 5]]),
    );
    expect(yearTypo.count).toBe(1);
    // Through a third record, a date that no typo explains is another person's.
    const otherDob = clusterRecords(
      records([{ dob: '1990-03-04' }, {}, { dob: '1975-06-09' }]),
      links([
        [0, 1, 6],
        [1, 2, 5],
      ]),
    );
    expect(otherDob).toMatchObject({ count: 2, refused: 1 });
  });

  it("leaves the link's own two dates of birth to the model that weighed them, not its SSNs", () => {
    // A date of birth replaced by another person's: the rest of the pair outweighed it.
    const replaced = clusterRecords(
      records([{ dob: '1990-03-04' }, { dob: '1975-06-09' }, { dob: '1990-03-04' }]),
      links([
        [0, 1, 6],
        [0, 2, 12],
      ]),
    );
    expect(replaced).toMatchObject({ count: 1, refused: 0 });
    // Two SSNs are two people, on the link itself too (unless it weighs 20 or more).
    const ssns = records([{ ssn: 123456789 }, { ssn: 987654321 }]);
    expect(clusterRecords(ssns, links([[0, 1, 5]])).count).toBe(2);
    expect(clusterRecords(ssns, links([[0, 1, 21]])).count).toBe(1);
  });

  it('labels each record with the smallest record of its cluster', () => {
    const result = clusterRecords(
      records([{}, {}, {}, {}, {}]),
      links([
        [3, 4, 1],
        [1, 3, 2],
      ]),
    );
    expect(Array.from(result.label)).toEqual([0, 1, 2, 1, 1]);
    expect(result.count).toBe(3);
  });
});

describe('person ids across runs', () => {
  it('keeps the id of the previous person a cluster holds most of, and gives new clusters new ids', () => {
    const label = Uint32Array.from([0, 0, 2, 2, 2, 5]);
    const previous = Float64Array.from([1, 1, 1, 2, 2, -1]);
    const { personOf, nextId, kept, created } = assignPersonIds(label, previous, 10);
    expect([personOf.get(0), personOf.get(2), personOf.get(5)]).toEqual([1, 2, 10]);
    expect({ nextId, kept, created }).toEqual({ nextId: 11, kept: 2, created: 1 });
  });

  it('gives a split person its id on the larger part, and a merged cluster the smaller of equal claims', () => {
    const split = assignPersonIds(Uint32Array.from([0, 0, 0, 3]), Float64Array.from([7, 7, 7, 7]), 20);
    expect([split.personOf.get(0), split.personOf.get(3)]).toEqual([7, 20]);
    const merged = assignPersonIds(Uint32Array.from([0, 0, 0, 0]), Float64Array.from([9, 9, 4, 4]), 20);
    expect(merged.personOf.get(0)).toBe(4);
    expect(merged.created).toBe(0);
  });
});
