/**
 * The daily budget of perturbed aggregates an agreement shares among all its recipient's analysts
 * (`AGGREGATE_AGREEMENT_DAILY_BUDGET`), beside each analyst's own (`AGGREGATE_DAILY_BUDGET`): a
 * steward who creates more analysts does not multiply what one agreement answers in a day. Here each
 * analyst may ask 3 a day and the agreement's analysts together 5.
 */
import { DataPlaneRecorder, DataPlaneService } from '@broker/data-plane';
import { TestBroker } from '@broker/testing';
import { casesSharing } from './cases-sharing';

const BUDGETS = { AGGREGATE_DAILY_BUDGET: '3', AGGREGATE_AGREEMENT_DAILY_BUDGET: '5' };
const COUNT_Q = `query($a: ID) { cases_aggregate(purpose: RECIDIVISM_EVALUATION, agreement: $a, groupBy: [case_id]) { noise } }`;
const REVOKE = `mutation($id: ID!) { revokeAgreement(id: $id, reason: "renegotiating") { status } }`;
const OWN_SPENT = 'Your own budget of aggregates under this agreement is spent for today: try again tomorrow';
const SHARED_SPENT =
  'The budget of aggregates this agreement shares among all its analysts is spent for today: try again tomorrow';

type Analyst = { id: string; apiKey: string };

describe("aggregate budget: an agreement's, shared by all its analysts", () => {
  let broker: TestBroker;
  let sharing: Awaited<ReturnType<typeof casesSharing>>;
  /** Five analysts of the recipient agency. */
  let analysts: Analyst[];

  /** An agreement of counts only: every count under it is perturbed, and spends the budgets. */
  const countsOnly = (title: string) =>
    sharing.activate({
      title,
      grants: [{ datasetId: sharing.dataset.id, access: 'AGGREGATE_ONLY', fields: [{ name: 'case_id' }] }],
    });
  /** A count under `agreement` by `analyst`, through `via`: its noise, or its refusal's reason and message. */
  const count = async (analyst: Analyst, agreement: string, via = broker) => {
    const res = await via.gql<{ cases_aggregate: { noise: number } }>(
      analyst.apiKey,
      COUNT_Q,
      { a: agreement },
      '/data/graphql',
    );
    if (res.data) return { noise: res.data.cases_aggregate.noise };
    return { reason: res.errors?.[0].extensions?.reason, message: res.errors?.[0].message };
  };
  const answered = { noise: 2 };
  const ownSpent = { reason: 'LIMIT', message: OWN_SPENT };
  const sharedSpent = { reason: 'LIMIT', message: SHARED_SPENT };
  /** What each analyst has spent of their own budget under `agreement` today, and the agreement of its shared one. */
  const spent = async (agreement: string, of: Analyst[] = analysts) => {
    const own = await broker.query<{ user_id: string; used: number }>(
      `SELECT user_id, used FROM aggregate_budget WHERE agreement_id = $1`,
      [agreement],
    );
    const [shared] = await broker.query<{ used: number }>(
      `SELECT used FROM aggregate_budget_agreement WHERE agreement_id = $1`,
      [agreement],
    );
    return {
      own: of.map((a) => own.find((row) => row.user_id === a.id)?.used ?? 0),
      shared: shared?.used ?? 0,
    };
  };
  const events = (agreement: string, seq: number) =>
    broker.query<{ actor_user_id: string; action: string; decision: string; reason: string | null }>(
      `SELECT actor_user_id, action, decision, reason FROM audit_event
        WHERE seq > $1 AND agreement_id = $2 ORDER BY seq`,
      [seq, agreement],
    );

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'budget_agreement', ...BUDGETS });
    sharing = await casesSharing(broker);
    analysts = [sharing.parties.analyst];
    for (let i = 1; i < 5; i++) {
      analysts.push(
        await broker.createUser({ agencyId: sharing.parties.recipientAgency.id, role: 'ANALYST' }),
      );
    }
  }, 120_000);
  afterAll(() => broker.close());
  afterEach(() => jest.restoreAllMocks());

  it("refuses past the agreement's budget the analysts within their own, with LIMIT saying so, nothing read", async () => {
    const [a, b, c] = analysts;
    const agreement = await countsOnly('Shared');
    const seq = await broker.auditHeadSeq();
    // 2 + 2 + 1: each analyst within their own 3, the agreement's 5 spent.
    for (const analyst of [a, a, b, b, c]) expect(await count(analyst, agreement)).toEqual(answered);
    expect(await spent(agreement, [a, b, c])).toEqual({ own: [2, 2, 1], shared: 5 });

    const service: unknown = broker.app.get(DataPlaneService);
    const reads = jest.spyOn(service as { run: (...args: unknown[]) => Promise<unknown> }, 'run');
    expect(await count(c, agreement)).toEqual(sharedSpent);
    expect(await count(a, agreement)).toEqual(sharedSpent);
    // Nothing was read, and the refused requests cost nothing: not the analysts' own, not the agreement's.
    expect(reads).not.toHaveBeenCalled();
    expect(await spent(agreement, [a, b, c])).toEqual({ own: [2, 2, 1], shared: 5 });
    // Each refusal audited as any budget's: a DENY LIMIT under the agreement, by its analyst.
    expect((await events(agreement, seq)).slice(5)).toEqual([
      { actor_user_id: c.id, action: 'AGGREGATE', decision: 'DENY', reason: 'LIMIT' },
      { actor_user_id: a.id, action: 'AGGREGATE', decision: 'DENY', reason: 'LIMIT' },
    ]);
    // Another agreement of the same analysts has its own.
    expect(await count(c, await countsOnly('Another'))).toEqual(answered);
  });

  it("refuses first with the analyst's own budget where it is spent, which leaves the agreement's as it was", async () => {
    const [a, b] = analysts;
    const agreement = await countsOnly('Own first');
    for (let i = 0; i < 3; i++) expect(await count(a, agreement)).toEqual(answered);
    expect(await count(a, agreement)).toEqual(ownSpent);
    // The attempt counts against the analyst's own budget, as it always has, never the agreement's.
    expect(await spent(agreement, [a, b])).toEqual({ own: [4, 0], shared: 3 });
    // The others have the rest of the agreement's.
    for (let i = 0; i < 2; i++) expect(await count(b, agreement)).toEqual(answered);
    expect(await count(b, agreement)).toEqual(sharedSpent);
    // Both spent: the analyst's own is named.
    expect(await count(a, agreement)).toEqual(ownSpent);
    expect(await spent(agreement, [a, b])).toEqual({ own: [5, 2], shared: 5 });
  });

  it('never answers more than the agreement allows, however many analysts race it on two instances', async () => {
    const other = await broker.startAnother(BUDGETS);
    try {
      for (const round of [1, 2]) {
        const agreement = await countsOnly(`Raced ${round}`);
        const seq = await broker.auditHeadSeq();
        // Each analyst asks 3, their own budget: 15 requests at once for the agreement's 5.
        const answers = await Promise.all(
          analysts.flatMap((analyst, i) =>
            [0, 1, 2].map((j) => count(analyst, agreement, (i + j) % 2 ? other : broker)),
          ),
        );
        expect(answers.filter((x) => 'noise' in x)).toEqual(Array(5).fill(answered));
        expect(answers.filter((x) => !('noise' in x))).toEqual(Array(10).fill(sharedSpent));
        // Billed exactly what was answered, in both budgets.
        const { own, shared } = await spent(agreement);
        expect([own.reduce((n, u) => n + u, 0), shared]).toEqual([5, 5]);
        const audited = await events(agreement, seq);
        expect(audited.filter((e) => e.decision === 'ALLOW')).toHaveLength(5);
        expect(audited.filter((e) => e.reason === 'LIMIT')).toHaveLength(10);
      }
    } finally {
      await other.stop();
    }
  });

  it('gives back to the agreement what it gives back to the analyst: a request refused on its second decision', async () => {
    const [a, b] = analysts;
    const agreement = await countsOnly('Revoked after the spend');
    expect(await count(b, agreement)).toEqual(answered);
    // The agreement is revoked between the spend and the decision taken again: refused, nothing read.
    const recorder = broker.app.get(DataPlaneRecorder);
    const spend = recorder.spendBudget.bind(recorder);
    jest.spyOn(recorder, 'spendBudget').mockImplementationOnce(async (...args) => {
      const over = await spend(...args);
      expect(await spent(agreement, [a, b])).toEqual({ own: [1, 1], shared: 2 });
      await broker.gqlOk(sharing.parties.recipientSteward.apiKey, REVOKE, { id: agreement });
      return over;
    });
    const refused = await count(a, agreement);
    expect(refused.reason).toBe('NO_AGREEMENT_IN_FORCE');
    expect(await spent(agreement, [a, b])).toEqual({ own: [0, 1], shared: 1 });
  });
});
