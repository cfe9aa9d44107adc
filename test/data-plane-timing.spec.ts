/**
 * Timing side channels of the data plane (docs/disclosure-control.md, "Timing"; measured by
 * `npm run bench:timing`): the structural properties the fixes rest on, checked without a clock.
 * Which statements a request issues, and what each statement evaluates, are counted instead.
 */
import { Transaction } from '@broker/core';
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
