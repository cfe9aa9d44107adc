import { TestBroker } from '@broker/testing';

const DATA = '/data/graphql';
const K = 5;

/**
 * Bookings of a small county: 200 people in large groups, plus a few rare combinations. Sex is
 * mostly F/M with 3 X; zip 97201..97203 with 2 people at 98001.
 */
function bookings(): string {
  const rows = ['booking_id,person_id,sex,age,zip,offense,booked_on,ssn'];
  let id = 0;
  const add = (sex: string, age: number, zip: string, offense: string, year: number) => {
    id++;
    rows.push(`B${id},P${id},${sex},${age},${zip},${offense},${year}-03-0${(id % 9) + 1},${100000000 + id}`);
  };
  for (let i = 0; i < 200; i++) {
    add(
      i % 2 ? 'F' : 'M',
      20 + (i % 4) * 10,
      `9720${1 + (i % 3)}`,
      i % 5 ? 'THEFT' : 'ASSAULT',
      2020 + (i % 2),
    );
  }
  add('X', 44, '97201', 'THEFT', 2020);
  add('X', 52, '97202', 'THEFT', 2021);
  add('X', 61, '97203', 'ASSAULT', 2020);
  add('F', 33, '98001', 'FRAUD', 2021);
  add('M', 47, '98001', 'FRAUD', 2021);
  return rows.join('\n');
}

const AGG = `query($groupBy: [BookingsField!]!, $where: BookingsWhere, $purpose: Purpose!) {
  bookings_aggregate(purpose: $purpose, groupBy: $groupBy, where: $where) { groups { key count suppressed } } }`;

type Group = { key: Record<string, unknown>; count: number | null; suppressed: boolean };

describe('data plane: aggregates with disclosure control', () => {
  let broker: TestBroker;
  let analyst: { apiKey: string };
  let sheriffSteward: { apiKey: string };
  let researchSteward: { apiKey: string };
  let sheriff: { id: string };
  let research: { id: string };
  let dataset: { id: string };
  let countsOnly: string;

  const aggregate = async (groupBy: string[], where?: unknown, purpose = 'RECIDIVISM_EVALUATION') => {
    const res = await broker.gql(analyst.apiKey, AGG, { groupBy, where, purpose }, DATA);
    return res;
  };
  const groups = async (groupBy: string[], where?: unknown): Promise<Group[]> => {
    const res = await aggregate(groupBy, where);
    if (res.errors) throw new Error(JSON.stringify(res.errors));
    return (res.data as { bookings_aggregate: { groups: Group[] } }).bookings_aggregate.groups;
  };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'aggregate' });
    sheriff = await broker.createAgency('Sheriff');
    research = await broker.createAgency('Research');
    sheriffSteward = await broker.createUser({ agencyId: sheriff.id, role: 'STEWARD' });
    researchSteward = await broker.createUser({ agencyId: research.id, role: 'STEWARD' });
    analyst = await broker.createUser({ agencyId: research.id, role: 'ANALYST' });
    await broker.definePurposes('RECIDIVISM_EVALUATION');
    dataset = await broker.registerDataset(sheriffSteward.apiKey, {
      slug: 'bookings',
      title: 'Bookings',
      keyField: 'booking_id',
      subjectField: 'person_id',
      fields: [
        { name: 'booking_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'person_id', type: 'STRING', classification: 'DIRECT_IDENTIFIER' },
        { name: 'sex', type: 'STRING', classification: 'QUASI_IDENTIFIER' },
        { name: 'age', type: 'INTEGER', classification: 'QUASI_IDENTIFIER' },
        { name: 'zip', type: 'STRING', classification: 'QUASI_IDENTIFIER' },
        { name: 'offense', type: 'STRING', classification: 'SENSITIVE' },
        { name: 'booked_on', type: 'DATE', classification: 'QUASI_IDENTIFIER' },
        { name: 'ssn', type: 'STRING', classification: 'DIRECT_IDENTIFIER' },
      ],
    });
    expect((await broker.upload(sheriffSteward.apiKey, dataset.id, 'text/csv', bookings())).status).toBe(200);
    countsOnly = await broker.activateAgreement(sheriffSteward.apiKey, researchSteward.apiKey, {
      title: 'Counts for evaluation',
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
            { name: 'booked_on', transform: 'GENERALIZE' },
          ],
        },
      ],
    });
  });
  afterAll(() => broker.close());

  it('offers only the aggregate root for an AGGREGATE_ONLY grant, with the released names to group by', async () => {
    const res = await broker.gql(
      analyst.apiKey,
      `{ __schema { queryType { fields { name } } } __type(name: "BookingsField") { enumValues { name } } }`,
      {},
      DATA,
    );
    const data = res.data as any;
    expect(data.__schema.queryType.fields.map((f: { name: string }) => f.name)).toEqual([
      'bookings_aggregate',
    ]);
    expect(data.__type.enumValues.map((v: { name: string }) => v.name)).toEqual([
      'age_band',
      'booked_on_year',
      'offense',
      'sex',
      'zip',
    ]);
    const rows = await broker.gql(
      analyst.apiKey,
      `{ bookings(purpose: RECIDIVISM_EVALUATION) { nodes { sex } } }`,
      {},
      DATA,
    );
    expect(rows.data).toBeNull();
    expect(rows.errors![0].extensions!.code).toBe('FORBIDDEN');
  });

  it('counts in SQL, exactly, for groups at or above the minimum cell size', async () => {
    expect(await groups([])).toEqual([{ key: {}, count: 205, suppressed: false }]);
    const byYear = await groups(['booked_on_year']);
    expect(byYear).toEqual([
      { key: { booked_on_year: 2020 }, count: 102, suppressed: false },
      { key: { booked_on_year: 2021 }, count: 103, suppressed: false },
    ]);
  });

  it('suppresses small groups and enough others that the total does not give them away', async () => {
    const bySex = await groups(['sex']);
    expect(bySex.map((g) => g.key.sex)).toEqual(['F', 'M', 'X']);
    const x = bySex.find((g) => g.key.sex === 'X')!;
    expect(x).toEqual({ key: { sex: 'X' }, count: null, suppressed: true });
    // 3 X: the total (205) minus F and M would give it, so one of them is suppressed too.
    expect(bySex.filter((g) => g.suppressed)).toHaveLength(2);
    const released = bySex.filter((g) => !g.suppressed);
    expect(released).toHaveLength(1);
    // F and M have 101 each: the tie goes to key order, so F is the complement.
    expect(released[0]).toEqual({ key: { sex: 'M' }, count: 101, suppressed: false });
  });

  it('refuses grouping or filtering by a name the agreement does not release', async () => {
    for (const groupBy of [['ssn'], ['age'], ['person_id'], ['booked_on'], ['personKey']]) {
      const res = await aggregate(groupBy);
      expect(res.data).toBeNull();
      expect(res.errors![0].extensions!.code).toBe('FORBIDDEN');
      expect(JSON.stringify(res.errors)).not.toMatch(/Did you mean/);
    }
    const raw = await aggregate(['sex'], { age: { gt: 40 } });
    expect(raw.data).toBeNull();
    expect(raw.errors![0].extensions!.code).toBe('FORBIDDEN');
  });

  it('filters only on grouped names, so a filter picks groups and never changes a count', async () => {
    const res = await aggregate(['sex'], { zip: { eq: '97201' } });
    expect(res.data).toBeNull();
    expect(res.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
    expect(res.errors![0].message).toMatch(/add "zip" to groupBy/);

    const all = await groups(['sex', 'zip']);
    const picked = await groups(['sex', 'zip'], { zip: { eq: '97201' } });
    expect(picked.length).toBeGreaterThan(0);
    expect(picked).toEqual(all.filter((g) => g.key.zip === '97201'));
    const notX = await groups(['sex', 'zip'], { not: { sex: { eq: 'X' } } });
    expect(notX).toEqual(all.filter((g) => g.key.sex !== 'X'));
    // The same grouping in the other order gets the same pattern: two patterns would tell more.
    const reversed = await groups(['zip', 'sex']);
    const pattern = (list: Group[]) =>
      Object.fromEntries(list.map((g) => [`${String(g.key.sex)}|${String(g.key.zip)}`, g.count]));
    expect(pattern(reversed)).toEqual(pattern(all));
  });

  it('refuses duplicate group names and groupings with too many groups', async () => {
    const dup = await aggregate(['sex', 'sex']);
    expect(dup.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
    // Four names at most under an AGGREGATE_ONLY grant (docs/disclosure-control.md).
    const five = await aggregate(['sex', 'zip', 'offense', 'age_band', 'booked_on_year']);
    expect(five.data).toBeNull();
    expect(five.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
    // A limit refuses without saying where it stands.
    expect(five.errors![0].extensions!.reason).toBe('LIMIT');
    expect(five.errors![0].message).not.toMatch(/\d/);
    // A three-way table with a small cell (the people of sex X) is refused, keys and all.
    const three = await aggregate(['sex', 'zip', 'offense']);
    expect(three.data).toBeNull();
    expect(three.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
    expect(three.errors![0].message).toMatch(/three fields or more/);
  });

  it('records each aggregate as an AGGREGATE event with its grouped names', async () => {
    const [{ seq }] = await broker.query<{ seq: number }>(`SELECT max(seq)::int AS seq FROM audit_event`);
    const answered = await groups(['sex', 'age_band']);
    await aggregate(['sex'], { booked_on_year: { eq: 2020 } });
    await aggregate(['sex'], { offense: { eq: 'THEFT' } });
    const events = await broker.query<{
      action: string;
      decision: string;
      fields: string[];
      row_count: number;
    }>(`SELECT action, decision, fields, row_count FROM audit_event WHERE seq > $1 ORDER BY seq`, [seq]);
    expect(events[0]).toEqual({
      action: 'AGGREGATE',
      decision: 'ALLOW',
      fields: ['age_band', 'sex'],
      row_count: answered.length,
    });
    // Refused for their filters (BAD_USER_INPUT, reason INVALID): no data, no release, and each
    // refusal on the record with what it asked.
    expect(events.slice(1)).toEqual([
      { action: 'AGGREGATE', decision: 'DENY', fields: ['sex'], row_count: null },
      { action: 'AGGREGATE', decision: 'DENY', fields: ['sex'], row_count: null },
    ]);
    // Aggregates release no rows: nothing is recorded for subject access reports.
    const releases = await broker.query<{ n: number }>(`SELECT count(*)::int AS n FROM release_record`);
    expect(releases[0].n).toBe(0);
  });

  it('does not let the rows of a ROWS grant give away a suppressed count', async () => {
    // Rows of women and men, with their zip: the 3 people of sex X are the only ones not readable.
    const rowsAgreement = await broker.activateAgreement(sheriffSteward.apiKey, researchSteward.apiKey, {
      title: 'Rows of F and M',
      providerAgencyId: sheriff.id,
      recipientAgencyId: research.id,
      purposes: ['RECIDIVISM_EVALUATION'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId: dataset.id,
          fields: [{ name: 'zip' }, { name: 'offense' }],
          rowFilter: { sex: { $in: ['F', 'M'] } },
        },
      ],
    });
    const query = `query($a: ID!, $g: [BookingsField!]!) {
      bookings_aggregate(purpose: RECIDIVISM_EVALUATION, agreement: $a, groupBy: $g) { groups { key count suppressed } } }`;
    const rows = await broker.gql(
      analyst.apiKey,
      `query($a: ID!) { bookings(purpose: RECIDIVISM_EVALUATION, agreement: $a, first: 1000) { nodes { zip offense } } }`,
      { a: rowsAgreement },
      DATA,
    );
    const readable = (rows.data as any).bookings.nodes as { zip: string; offense: string }[];
    expect(readable).toHaveLength(202);
    for (const groupBy of [['zip'], ['offense'], ['zip', 'offense'], []]) {
      const res = await broker.gql(analyst.apiKey, query, { a: countsOnly, g: groupBy }, DATA);
      const answer = (res.data as any).bookings_aggregate.groups as Group[];
      for (const group of answer) {
        const visible = readable.filter((r) => groupBy.every((f) => (r as any)[f] === group.key[f])).length;
        if (group.suppressed) {
          expect(group.count).toBeNull();
        } else {
          // What the count tells beyond the readable rows is nothing, or at least the minimum cell size.
          const hidden = group.count! - visible;
          expect(hidden === 0 || hidden >= K).toBe(true);
        }
      }
      if (groupBy.length === 1 && groupBy[0] === 'zip') {
        // Each 972xx zip holds one person of sex X: 1 hidden record, so each is suppressed.
        expect(answer.filter((g) => String(g.key.zip).startsWith('972')).every((g) => g.suppressed)).toBe(
          true,
        );
      }
    }
  });
});
