/**
 * Timing side channels of the data plane (docs/disclosure-control.md, "Timing"; measured by
 * `npm run bench:timing`): the structural properties the fixes rest on, checked without a clock.
 * Which statements a request issues, and what each statement evaluates, are counted instead.
 */
import { randomBytes } from 'node:crypto';
import { Database, Transaction } from '@broker/core';
import { DataPlaneService, PolicyCache, aggregateSql, pageSql } from '@broker/data-plane';
import { perturbationKey } from '@broker/policy';
import { recordTable } from '@broker/registry';
import { TestBroker } from '@broker/testing';

const DATA = '/data/graphql';

describe('data plane timing: past its budget, an aggregate reads nothing', () => {
  let broker: TestBroker;
  let analyst: { id: string; apiKey: string };
  let agreement: string;
  /** The statements the broker's transactions ran while `during` ran. */
  const statementsDuring = async (during: () => Promise<unknown>): Promise<string[]> => {
    const spy = jest.spyOn(Transaction.prototype, 'query');
    try {
      await during();
      return spy.mock.calls.map(([sql]) => sql);
    } finally {
      spy.mockRestore();
    }
  };
  const count = (zip: string) =>
    broker.http
      .inject({
        method: 'POST',
        url: DATA,
        headers: { authorization: `Bearer ${analyst.apiKey}` },
        payload: {
          query: `query($w: CasesWhere) { cases_aggregate(purpose: RESEARCH, agreement: "${agreement}", where: $w,
            groupBy: [offense]) { groups { key count } noise } }`,
          variables: { w: { zip: { eq: zip } } },
        },
      })
      .then((r) => JSON.parse(r.body) as { data: any; errors?: { extensions: Record<string, unknown> }[] });

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'dp_timing_budget', AGGREGATE_DAILY_BUDGET: '2' });
    const parties = await broker.sharingParties('Provider', 'Recipient', 'RESEARCH');
    analyst = parties.analyst;
    const p = parties.providerSteward.apiKey;
    const { id: datasetId } = await broker.registerDataset(p, {
      slug: 'cases',
      title: 'Cases',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'zip', type: 'STRING', classification: 'QUASI_IDENTIFIER' },
        { name: 'offense', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    });
    const records = Array.from({ length: 40 }, (_, i) => ({
      id: `C${i}`,
      zip: i < 30 ? '10001' : '10002',
      offense: 'DUI',
    }));
    await broker.gqlOk(
      p,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: datasetId, r: records },
    );
    agreement = await broker.activateAgreement(p, parties.recipientSteward.apiKey, {
      title: 'Counts',
      providerAgencyId: parties.providerAgency.id,
      recipientAgencyId: parties.recipientAgency.id,
      purposes: ['RESEARCH'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId,
          access: 'AGGREGATE_ONLY',
          minCellSize: 5,
          fields: [{ name: 'zip' }, { name: 'offense' }],
        },
      ],
    });
  }, 120_000);
  afterAll(() => broker.close());

  it('spends the budget before the statement runs: past it, the refusal issues no statement on the records', async () => {
    const readsRecords = (sql: string) => sql.includes(recordTable('cases'));
    // Within the budget (2): the statement counts the records, and the answer lists the zip's group.
    const within = await statementsDuring(async () => {
      const answer = await count('10001');
      expect(answer.errors).toBeUndefined();
      expect(answer.data.cases_aggregate.groups).toHaveLength(1);
      expect(answer.data.cases_aggregate.noise).toBe(2);
    });
    expect(within.filter(readsRecords)).toHaveLength(1);
    await count('10002');
    // Past it: LIMIT, audited under the agreement, and no statement read a record, whichever zip.
    for (const zip of ['10001', '99999']) {
      const past = await statementsDuring(async () => {
        const answer = await count(zip);
        expect(answer.data).toBeNull();
        expect(answer.errors![0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'LIMIT' });
      });
      expect(past.filter(readsRecords)).toEqual([]);
    }
    const [{ used }] = await broker.query<{ used: number }>(
      `SELECT used FROM aggregate_budget WHERE user_id = $1 AND agreement_id = $2`,
      [analyst.id, agreement],
    );
    expect(used).toBe(4);
    const [{ n }] = await broker.query<{ n: string }>(
      `SELECT count(*) AS n FROM audit_event
        WHERE actor_user_id = $1 AND decision = 'DENY' AND reason = 'LIMIT' AND agreement_id = $2`,
      [analyst.id, agreement],
    );
    expect(Number(n)).toBe(2);
  });
});

/**
 * A filter is checked only on records of the population. Where the grant requires consent, the
 * consent is found first and the filter checked after it: a record whose subject withdrew consent
 * costs the filter nothing, however heavy (here, HMACs of a HASH name under `or`, which no lookup
 * table serves), so its time cannot tell that it exists. Counted: the calls of pgcrypto's hmac in
 * the statement's own transaction (track_functions), for a record of each kind.
 */
describe('data plane timing: a filter costs a record outside the population nothing', () => {
  let broker: TestBroker;
  let agencyId: string;
  let analystKey: string;
  let rows: string;
  let counts: string;
  const OR = Array.from({ length: 5 }, (_, i) => ({ name_hash: { eq: String(i).repeat(64) } }));

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'dp_timing_consent', AGGREGATE_DAILY_BUDGET: '1000' });
    const parties = await broker.sharingParties('Provider', 'Recipient', 'RESEARCH');
    agencyId = parties.recipientAgency.id;
    analystKey = parties.analyst.apiKey;
    const p = parties.providerSteward.apiKey;
    const { id: datasetId } = await broker.registerDataset(p, {
      slug: 'cases',
      title: 'Cases',
      keyField: 'id',
      subjectField: 'person',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'person', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'name', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'county', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    });
    // IN: in the row filter, consent given; WITHDRAWN: in it, consent withdrawn; NONE: in it, no
    // consent recorded; OUT: outside the row filter, consent given.
    const records = [
      { id: 'IN', person: 'P1', name: 'Ada', county: 'NORTH' },
      { id: 'WITHDRAWN', person: 'P2', name: 'Bea', county: 'NORTH' },
      { id: 'NONE', person: 'P3', name: 'Cy', county: 'NORTH' },
      { id: 'OUT', person: 'P4', name: 'Di', county: 'SOUTH' },
      ...Array.from({ length: 12 }, (_, i) => ({ id: `G${i}`, person: 'P1', name: 'Ada', county: 'NORTH' })),
    ];
    await broker.gqlOk(
      p,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: datasetId, r: records },
    );
    for (const [subjectId, granted] of [
      ['P1', true],
      ['P2', true],
      ['P2', false],
      ['P4', true],
    ] as const) {
      await broker.gqlOk(p, `mutation($input: ConsentInput!) { recordConsent(input: $input) { id } }`, {
        input: { datasetId, subjectId, purpose: 'RESEARCH', granted },
      });
    }
    const base = {
      providerAgencyId: parties.providerAgency.id,
      recipientAgencyId: parties.recipientAgency.id,
      purposes: ['RESEARCH'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
    };
    const grant = {
      datasetId,
      rowFilter: { county: { $eq: 'NORTH' } },
      requireConsent: true,
      fields: [{ name: 'id' }, { name: 'name', transform: 'HASH' }, { name: 'county' }],
    };
    const r = parties.recipientSteward.apiKey;
    rows = await broker.activateAgreement(p, r, { ...base, title: 'Rows', grants: [grant] });
    counts = await broker.activateAgreement(p, r, {
      ...base,
      title: 'Counts',
      grants: [{ ...grant, access: 'AGGREGATE_ONLY', minCellSize: 5 }],
    });
  }, 120_000);
  afterAll(() => broker.close());

  /** The statement of a request as the broker builds it, run with pgcrypto's hmac calls counted. */
  const hmacCalls = async (query: string, variables: Record<string, unknown>) => {
    const policy = await broker.app.get(PolicyCache).forAgency(agencyId, new Date());
    const decision = broker.app.get(DataPlaneService).decide(policy, { query, variables });
    if (decision.kind !== 'run') throw new Error(JSON.stringify(decision));
    const [plan] = decision.plans;
    const { text, values } =
      plan.kind === 'AGGREGATE'
        ? aggregateSql(plan, perturbationKey(randomBytes(32)))
        : pageSql(plan, false, agencyId);
    return broker.app.get(Database).connection(async (client) => {
      await client.query('BEGIN');
      try {
        await client.query(`SET LOCAL track_functions = 'all'`);
        // The view holds the session's calls not yet flushed to the cumulative statistics, earlier
        // transactions' included: the statement's are the difference.
        const calls = async () =>
          Number(
            (
              await client.query<{ n: string }>(
                `SELECT coalesce(sum(calls), 0) AS n FROM pg_stat_xact_user_functions WHERE funcname = 'hmac'`,
              )
            ).rows[0].n,
          );
        const before = await calls();
        const answer = await client.query(text, values);
        return { rows: answer.rows.length, hmacs: (await calls()) - before };
      } finally {
        await client.query('ROLLBACK');
      }
    });
  };
  const page = (id: string) =>
    hmacCalls(
      `query($w: CasesWhere) { cases(purpose: RESEARCH, agreement: "${rows}", where: $w) { nodes { id } } }`,
      { w: { id: { eq: id }, or: OR } },
    );

  it('checks a page’s filter only on records whose consent is in force', async () => {
    // The consenting record's filter is checked: one HMAC per comparison, and no match.
    expect(await page('IN')).toEqual({ rows: 0, hmacs: OR.length });
    // The others: no HMAC at all, as for a key that does not exist.
    for (const id of ['WITHDRAWN', 'NONE', 'OUT', 'NOWHERE'])
      expect([id, await page(id)]).toEqual([id, { rows: 0, hmacs: 0 }]);
  });

  it('checks an aggregate’s filter only on records whose consent is in force', async () => {
    const count = (ids: string[]) =>
      hmacCalls(
        `query($w: CasesWhere) { cases_aggregate(purpose: RESEARCH, agreement: "${counts}", where: $w,
          groupBy: [county]) { groups { count } } }`,
        { w: { id: { in: ids }, or: OR.slice(0, 2) } },
      );
    // Thirteen consenting records reach the filter, two HMACs each (the most a perturbed count's
    // filter may hold), and no group is listed: none matches it.
    const consenting = ['IN', ...Array.from({ length: 12 }, (_, i) => `G${i}`)];
    expect(await count(consenting)).toEqual({ rows: 0, hmacs: 13 * 2 });
    expect(await count(['WITHDRAWN', 'NONE', 'OUT'])).toEqual({ rows: 0, hmacs: 0 });
  });

  it('counts what the compiled filter evaluates: an `in` or `nin` list of a HASH name is one HMAC a record', async () => {
    const consenting = ['IN', ...Array.from({ length: 12 }, (_, i) => `G${i}`)];
    const values = Array.from({ length: 500 }, (_, i) => i.toString(16).padStart(64, '0'));
    const count = (where: Record<string, unknown>) =>
      hmacCalls(
        `query($w: CasesWhere) { cases_aggregate(purpose: RESEARCH, agreement: "${counts}", where: $w,
          groupBy: [county]) { groups { count } } }`,
        { w: { id: { in: consenting }, ...where } },
      );
    // Each weighs one HASH condition (filterWeight), and is one HMAC of each record it is checked on,
    // whatever the length of its list: PostgreSQL hashes the value once, then looks it up. (A group
    // of at least the minimum draws its perturbation by one more HMAC: the 13 records' group, where
    // they pass the filter.)
    for (const [where, hmacs] of [
      [{ name_hash: { in: values } }, 13],
      [{ name_hash: { nin: values } }, 13 + 1],
      [{ not: { name_hash: { in: values } } }, 13 + 1],
      [{ or: [{ name_hash: { in: values } }, { county: { eq: 'SOUTH' } }] }, 13],
    ] as const) {
      expect([where, await count(where)]).toEqual([where, { rows: expect.any(Number), hmacs }]);
    }
    // Two operators on one name weigh two, and may be two HMACs (PostgreSQL shares no expression):
    // here the first (`neq`, checked before `in`) holds for every record, so the second is checked too.
    expect(await count({ name_hash: { neq: values[0], in: values } })).toEqual({ rows: 0, hmacs: 26 });
  });

  it('bounds the weight of a perturbed count’s filter, not an exact one’s, and audits the refusal', async () => {
    const aggregate = async (agreement: string, where: unknown, groupBy = 'county') => {
      const res = await broker.http.inject({
        method: 'POST',
        url: DATA,
        headers: { authorization: `Bearer ${analystKey}` },
        payload: {
          query: `query($w: CasesWhere) { cases_aggregate(purpose: RESEARCH, agreement: "${agreement}", where: $w,
            groupBy: [${groupBy}]) { groups { count } noise } }`,
          variables: { w: where },
        },
      });
      return JSON.parse(res.body) as { data: any; errors?: { extensions: Record<string, unknown> }[] };
    };
    const hashes = (n: number) => ({ or: OR.slice(0, n) });
    const conditions = (n: number) => ({
      or: Array.from({ length: n }, (_, i) => ({ id: { eq: `K${i}` } })),
    });
    const limited = { code: 'BAD_USER_INPUT', reason: 'LIMIT' };
    // Two HASH comparisons (an `in` list is one) and 100 conditions pass; one more of either does not.
    expect((await aggregate(counts, hashes(2))).data.cases_aggregate.noise).toBe(2);
    expect(
      (await aggregate(counts, { name_hash: { in: OR.map((o) => o.name_hash.eq) } })).errors,
    ).toBeUndefined();
    expect((await aggregate(counts, conditions(100))).errors).toBeUndefined();
    const before = await broker.query<{ n: string }>(
      `SELECT count(*) AS n FROM audit_event WHERE decision = 'DENY' AND reason = 'LIMIT' AND agreement_id = $1`,
      [counts],
    );
    // A HASH name grouped by is an HMAC of each record the filter keeps, as one filtered on.
    expect((await aggregate(counts, hashes(1), 'county, name_hash')).data.cases_aggregate.noise).toBe(2);
    for (const [where, groupBy] of [
      [hashes(3), 'county'],
      [conditions(101), 'county'],
      [{ and: [hashes(2), { not: hashes(1) }] }, 'county'],
      [hashes(2), 'county, name_hash'],
    ] as const) {
      const answer = await aggregate(counts, where, groupBy);
      expect(answer.data).toBeNull();
      expect(answer.errors![0].extensions).toMatchObject(limited);
    }
    const after = await broker.query<{ n: string }>(
      `SELECT count(*) AS n FROM audit_event WHERE decision = 'DENY' AND reason = 'LIMIT' AND agreement_id = $1`,
      [counts],
    );
    expect(Number(after[0].n) - Number(before[0].n)).toBe(4);
    // Exact counts (the caller reads the rows) are not bounded: they tell nothing the rows do not.
    const exact = await aggregate(rows, { and: [hashes(5), conditions(200)] }, 'county, name_hash');
    expect(exact.errors).toBeUndefined();
    expect(exact.data.cases_aggregate.noise).toBe(0);
  });

  it('answers the same records as before: the filter still selects within the population', async () => {
    const ask = async (where: unknown, select = 'id') => {
      const res = await broker.http.inject({
        method: 'POST',
        url: DATA,
        headers: { authorization: `Bearer ${analystKey}` },
        payload: {
          query: `query($w: CasesWhere) { cases(purpose: RESEARCH, agreement: "${rows}", where: $w, first: 100) {
            nodes { ${select} } } }`,
          variables: { w: where },
        },
      });
      return JSON.parse(res.body).data.cases.nodes as Record<string, string>[];
    };
    const ids = async (where: unknown) => (await ask(where)).map((n) => n.id).sort();
    const [{ name_hash: ada }] = await ask({ id: { eq: 'IN' } }, 'name_hash');
    const everyAda = ['IN', ...Array.from({ length: 12 }, (_, i) => `G${i}`)].sort();
    expect(await ids({ name_hash: { eq: ada } })).toEqual(everyAda);
    expect(
      await ids({ or: [{ id: { eq: 'WITHDRAWN' } }, { id: { eq: 'IN' } }, { id: { eq: 'OUT' } }] }),
    ).toEqual(['IN']);
    expect(await ids({ id: { in: ['G1', 'NONE'] }, name_hash: { in: [ada, '0'.repeat(64)] } })).toEqual([
      'G1',
    ]);
    expect(await ids({ not: { name_hash: { eq: ada } } })).toEqual([]);
  });
});
