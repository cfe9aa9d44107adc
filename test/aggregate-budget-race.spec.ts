/**
 * The budget of perturbed aggregates is spent before any statement runs, on a connection of its
 * own, and the request is then decided again in a new snapshot (DataPlaneService.handle). Agreements
 * may change in between: these tests change them there, at the one moment that matters, and check
 * that each agreement is billed exactly what was answered under it (in the analyst's budget and the
 * one the agreement's analysts share alike), and that the request ends.
 */
import { DataPlaneRecorder, DataPlaneService } from '@broker/data-plane';
import { TestBroker } from '@broker/testing';

const DATA = '/data/graphql';
const AMEND = `mutation($id: ID!, $input: AgreementInput!) { amendAgreement(id: $id, input: $input) { currentVersion } }`;
const APPROVE = `mutation($id: ID!, $v: Int!) { approveAgreement(id: $id, version: $v) { inForceVersion } }`;
const REVOKE = `mutation($id: ID!) { revokeAgreement(id: $id, reason: "renegotiating") { status } }`;

describe('aggregate budget: agreements changed between the spend and the second decision', () => {
  let broker: TestBroker;
  let provider: string;
  let recipient: string;
  let analyst: { id: string; apiKey: string };
  let base: Record<string, unknown>;
  let datasets: { a: string; b: string };
  let recorder: DataPlaneRecorder;
  /** The agreement of the first test that grants cases_b (revoked by the last). */
  let y: string;

  const grant = (datasetId: string, access: 'ROWS' | 'AGGREGATE_ONLY') => ({
    datasetId,
    access,
    minCellSize: 5,
    fields: [{ name: 'id' }, { name: 'offense' }],
  });
  const activate = (title: string, grants: unknown[]) =>
    broker.activateAgreement(provider, recipient, { ...base, title, grants });
  /** Amends an agreement and has the other party approve the new version: it is in force at once. */
  const amend = async (id: string, title: string, grants: unknown[]) => {
    const { amendAgreement } = await broker.gqlOk<{ amendAgreement: { currentVersion: number } }>(
      provider,
      AMEND,
      { id, input: { ...base, title, grants } },
    );
    await broker.gqlOk(recipient, APPROVE, { id, v: amendAgreement.currentVersion });
  };
  const ask = async (query: string) => {
    const res = await broker.http.inject({
      method: 'POST',
      url: DATA,
      headers: { authorization: `Bearer ${analyst.apiKey}` },
      payload: { query },
    });
    return {
      status: res.statusCode,
      ...(JSON.parse(res.body) as {
        data: unknown;
        errors?: { message: string; extensions: Record<string, unknown> }[];
      }),
    };
  };
  /** What the analyst has spent under an agreement today: of their own budget, and of the agreement's shared one. */
  const used = async (agreementId: string) => {
    const [own] = await broker.query<{ used: number }>(
      `SELECT used FROM aggregate_budget WHERE user_id = $1 AND agreement_id = $2`,
      [analyst.id, agreementId],
    );
    const [shared] = await broker.query<{ used: number }>(
      `SELECT used FROM aggregate_budget_agreement WHERE agreement_id = $1`,
      [agreementId],
    );
    return [own?.used ?? 0, shared?.used ?? 0];
  };
  /** Runs `change` once after each of the next `times` spends of the budget (the spend itself real). */
  const afterSpends = (times: number, change: (call: number) => Promise<void>) => {
    const spend = recorder.spendBudget.bind(recorder);
    let calls = 0;
    const spy = jest.spyOn(recorder, 'spendBudget').mockImplementation(async (...args) => {
      const spent = await spend(...args);
      calls += 1;
      if (calls <= times) await change(calls);
      return spent;
    });
    return { spy, calls: () => calls };
  };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'budget_race', AGGREGATE_DAILY_BUDGET: '50' });
    recorder = broker.app.get(DataPlaneRecorder);
    const parties = await broker.sharingParties('Provider', 'Recipient', 'RESEARCH');
    provider = parties.providerSteward.apiKey;
    recipient = parties.recipientSteward.apiKey;
    analyst = parties.analyst;
    base = {
      providerAgencyId: parties.providerAgency.id,
      recipientAgencyId: parties.recipientAgency.id,
      purposes: ['RESEARCH'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
    };
    const ids: string[] = [];
    for (const slug of ['cases_a', 'cases_b']) {
      const { id } = await broker.registerDataset(provider, {
        slug,
        title: slug,
        keyField: 'id',
        fields: [
          { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
          { name: 'offense', type: 'STRING', classification: 'NON_SENSITIVE' },
        ],
      });
      await broker.gqlOk(
        provider,
        `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
        { id, r: Array.from({ length: 30 }, (_, i) => ({ id: `${slug}${i}`, offense: 'DUI' })) },
      );
      ids.push(id);
    }
    datasets = { a: ids[0], b: ids[1] };
  }, 120_000);
  afterAll(() => broker.close());
  afterEach(() => jest.restoreAllMocks());

  it('bills two perturbed roots under two agreements once each, also when one becomes exact in between', async () => {
    const x = await activate('X', [grant(datasets.a, 'AGGREGATE_ONLY')]);
    y = await activate('Y', [grant(datasets.b, 'AGGREGATE_ONLY')]);
    const both = `{ a: cases_a_aggregate(purpose: RESEARCH, agreement: "${x}", groupBy: [offense]) { noise }
                    b: cases_b_aggregate(purpose: RESEARCH, agreement: "${y}", groupBy: [offense]) { noise } }`;
    const plain = await ask(both);
    expect(plain.data).toEqual({ a: { noise: 2 }, b: { noise: 2 } });
    expect([await used(x), await used(y)]).toEqual([
      [1, 1],
      [1, 1],
    ]);

    // Y is amended to release rows once the budget is spent: its count is now exact and costs nothing.
    const race = afterSpends(1, () => amend(y, 'Y', [grant(datasets.b, 'ROWS')]));
    const raced = await ask(both);
    expect(raced.data).toEqual({ a: { noise: 2 }, b: { noise: 0 } });
    // X once more for its count; Y given back what the first decision spent on it.
    expect([await used(x), await used(y)]).toEqual([
      [2, 2],
      [1, 1],
    ]);
    expect(race.calls()).toBe(1);
  });

  it('gives back what it spent when the second decision refuses, and audits the refusal', async () => {
    const z = await activate('Z', [grant(datasets.a, 'AGGREGATE_ONLY')]);
    const count = `{ cases_a_aggregate(purpose: RESEARCH, agreement: "${z}", groupBy: [offense]) { noise } }`;
    afterSpends(1, async () => {
      await broker.gqlOk(provider, REVOKE, { id: z });
    });
    const seq = await broker.auditHeadSeq();
    const refused = await ask(count);
    expect(refused.data).toBeNull();
    expect(refused.errors?.map((e) => e.extensions.reason)).toEqual(['NO_AGREEMENT_IN_FORCE']);
    const events = await broker.query<{ action: string; decision: string; reason: string }>(
      `SELECT action, decision, reason FROM audit_event WHERE seq > $1 AND actor_user_id = $2 ORDER BY seq`,
      [seq, analyst.id],
    );
    expect(events).toEqual([{ action: 'AGGREGATE', decision: 'DENY', reason: 'NO_AGREEMENT_IN_FORCE' }]);
    // Nothing was counted under Z: its budgets are as they were.
    expect(await used(z)).toEqual([0, 0]);
  });

  it('bills nothing for a request whose read the database cut or whose append failed: nothing released', async () => {
    const v = await activate('V', [grant(datasets.a, 'AGGREGATE_ONLY')]);
    const count = `{ cases_a_aggregate(purpose: RESEARCH, agreement: "${v}", groupBy: [offense]) { noise } }`;
    expect((await ask(count)).data).toEqual({ cases_a_aggregate: { noise: 2 } });
    expect(await used(v)).toEqual([1, 1]);
    // The read itself, a private step of the service: failed as a lost connection fails it.
    const service: unknown = broker.app.get(DataPlaneService);
    const reads = service as { run: (...args: unknown[]) => Promise<unknown> };
    const failures: [string, () => void][] = [
      [
        'The query could not be answered, so nothing was released',
        () =>
          jest
            .spyOn(reads, 'run')
            .mockRejectedValueOnce(Object.assign(new Error('terminating connection'), { code: '57P01' })),
      ],
      [
        'The access could not be recorded, so nothing was released',
        () => jest.spyOn(recorder, 'recordReleases').mockRejectedValueOnce(new Error('audit write failed')),
      ],
    ];
    for (const [message, fail] of failures) {
      fail();
      const seq = await broker.auditHeadSeq();
      const failed = await ask(count);
      expect([failed.status, failed.data, failed.errors?.map((e) => e.message)]).toEqual([
        503,
        null,
        [message],
      ]);
      // The spend was made before the statement, and given back: no event accounts for it.
      expect(await used(v)).toEqual([1, 1]);
      const events = await broker.query(`SELECT 1 FROM audit_event WHERE seq > $1 AND actor_user_id = $2`, [
        seq,
        analyst.id,
      ]);
      expect(events).toEqual([]);
      jest.restoreAllMocks();
    }
    // A statement that fails on its own (not a connection the database cut) keeps what it spent: a
    // caller who could make an aggregate fail at will does not time it for free.
    jest
      .spyOn(reads, 'run')
      .mockRejectedValueOnce(Object.assign(new Error('integer out of range'), { code: '22003' }));
    const failed = await ask(count);
    expect([failed.status, failed.data]).toEqual([503, null]);
    expect(await used(v)).toEqual([2, 2]);
    jest.restoreAllMocks();
    // The next answer is billed as usual.
    expect((await ask(count)).data).toEqual({ cases_a_aggregate: { noise: 2 } });
    expect(await used(v)).toEqual([3, 3]);
  });

  it('ends when every new decision needs another bill: a clear answer, nothing read, nothing billed', async () => {
    // One agreement at a time grants cases_b's counts; after each spend it is revoked and another
    // takes its place, so each new decision bills an agreement not yet billed.
    let current = await activate('W0', [grant(datasets.b, 'AGGREGATE_ONLY')]);
    await broker.gqlOk(provider, REVOKE, { id: y });
    const billed = [current];
    const race = afterSpends(10, async (call) => {
      await broker.gqlOk(provider, REVOKE, { id: current });
      current = await activate(`W${call}`, [grant(datasets.b, 'AGGREGATE_ONLY')]);
      billed.push(current);
    });
    const answer = await ask(`{ cases_b_aggregate(purpose: RESEARCH, groupBy: [offense]) { noise } }`);
    expect(race.calls()).toBeLessThanOrEqual(3);
    expect(answer.status).toBe(503);
    expect(answer.data).toBeNull();
    expect(answer.errors?.map((e) => e.message)).toEqual([
      'The agreements in force changed while the request was decided, so nothing was read: try again',
    ]);
    for (const id of billed) expect([id, await used(id)]).toEqual([id, [0, 0]]);
  });
});
