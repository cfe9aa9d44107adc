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
  bookings_aggregate(purpose: $purpose, groupBy: $groupBy, where: $where) { groups { key count suppressed } noise } }`;

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
    ({
      providerAgency: sheriff,
      recipientAgency: research,
      providerSteward: sheriffSteward,
      recipientSteward: researchSteward,
      analyst,
    } = await broker.sharingParties('Sheriff', 'Research', 'RECIDIVISM_EVALUATION'));
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
    expect(rows.errors![0].extensions).toEqual({ code: 'FORBIDDEN', reason: 'ROWS_NOT_GRANTED' });
    const [event] = await broker.query<{ reason: string; dataset_id: string }>(
      `SELECT reason, dataset_id FROM audit_event WHERE decision = 'DENY' ORDER BY seq DESC LIMIT 1`,
    );
    expect(event).toEqual({ reason: 'ROWS_NOT_GRANTED', dataset_id: dataset.id });
    // A root field of no dataset the caller is granted stays a name it does not hold.
    const unknown = await broker.gql(
      analyst.apiKey,
      `{ parole(purpose: RECIDIVISM_EVALUATION) { nodes { sex } } }`,
      {},
      DATA,
    );
    expect(unknown.errors![0].extensions).toMatchObject({ code: 'FORBIDDEN', reason: 'FIELD_NOT_RELEASED' });
  });

  it('counts in SQL, perturbed within the stated noise, the same records always giving the same count', async () => {
    const total = await aggregate([]);
    expect((total.data as any).bookings_aggregate.noise).toBe(2);
    const [all] = await groups([]);
    expect(Math.abs(all.count! - 205)).toBeLessThanOrEqual(2);
    const byYear = await groups(['booked_on_year']);
    expect(byYear.map((g) => g.key.booked_on_year)).toEqual([2020, 2021]);
    expect(Math.abs(byYear[0].count! - 102)).toBeLessThanOrEqual(2);
    expect(Math.abs(byYear[1].count! - 103)).toBeLessThanOrEqual(2);
    // The same set of records, selected by another query, gets the same count.
    expect(await groups(['booked_on_year'], { booked_on_year: { eq: 2020 } })).toEqual([byYear[0]]);
    expect(await groups([], { booked_on_year: { lt: 2021 } })).toEqual([
      { key: {}, count: byYear[0].count, suppressed: false },
    ]);
  });

  it('leaves small groups out of the answer, so no answer shows that a small combination exists', async () => {
    const bySex = await groups(['sex']);
    expect(bySex.map((g) => g.key.sex)).toEqual(['F', 'M']);
    for (const g of bySex) expect(Math.abs(g.count! - 101)).toBeLessThanOrEqual(2);
    // A filter naming the small group answers no group at all, as for a combination that does not exist.
    expect(await groups(['sex'], { sex: { eq: 'X' } })).toEqual([]);
    expect(await groups(['zip'], { zip: { eq: '98001' } })).toEqual([]);
    expect(await groups(['zip'], { zip: { eq: '00000' } })).toEqual([]);
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

  it('accepts any filter on released names, and gives every grouping order the same answer', async () => {
    const res = await groups(['sex'], { zip: { eq: '97201' } });
    expect(res.map((g) => g.key.sex)).toEqual(['F', 'M']);
    const all = await groups(['sex', 'zip']);
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
    // A three-way table lists its groups of the minimum size or more, and none of sex X.
    const three = await groups(['sex', 'zip', 'offense']);
    expect(three.length).toBeGreaterThan(0);
    expect(three.some((g) => g.key.sex === 'X')).toBe(false);
  });

  it('records each aggregate as an AGGREGATE event with its grouped names', async () => {
    const [{ seq }] = await broker.query<{ seq: number }>(`SELECT max(seq)::int AS seq FROM audit_event`);
    const answered = await groups(['sex', 'age_band']);
    await aggregate(['sex'], { booked_on_year: { eq: 2020 } });
    await aggregate(['sex'], { ssn: { eq: '100000001' } });
    await aggregate(['ssn']);
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
    expect(events[1]).toMatchObject({ action: 'AGGREGATE', decision: 'ALLOW', fields: ['sex'] });
    // Refused for a name not released: no data, no release, and each refusal on the record with what
    // it asked.
    expect(events.slice(2).map((e) => [e.decision, e.row_count])).toEqual([
      ['DENY', null],
      ['DENY', null],
    ]);
    // Aggregates release no rows: nothing is recorded for subject access reports.
    const releases = await broker.query<{ n: number }>(`SELECT count(*)::int AS n FROM release_record`);
    expect(releases[0].n).toBe(0);
  });

  it('counts exactly where the chosen agreement releases the rows, and perturbs where it does not', async () => {
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
          minCellSize: K,
        },
      ],
    });
    const query = `query($a: ID!, $g: [BookingsField!]!) {
      bookings_aggregate(purpose: RECIDIVISM_EVALUATION, agreement: $a, groupBy: $g) { groups { key count suppressed } noise } }`;
    const exact = await broker.gql(analyst.apiKey, query, { a: rowsAgreement, g: ['offense'] }, DATA);
    expect((exact.data as any).bookings_aggregate).toEqual({
      groups: [
        // FRAUD (2) is small, and ASSAULT its complement: exact counts keep suppression.
        { key: { offense: 'ASSAULT' }, count: null, suppressed: true },
        { key: { offense: 'FRAUD' }, count: null, suppressed: true },
        { key: { offense: 'THEFT' }, count: 160, suppressed: false },
      ],
      noise: 0,
    });
    const perturbed = await broker.gql(analyst.apiKey, query, { a: countsOnly, g: ['zip'] }, DATA);
    const answer = (perturbed.data as any).bookings_aggregate as { groups: Group[]; noise: number };
    expect(answer.noise).toBe(2);
    // 98001 holds 2 people: left out under the counts-only agreement, whatever the caller reads.
    expect(answer.groups.map((g) => g.key.zip)).toEqual(['97201', '97202', '97203']);
  });
});
