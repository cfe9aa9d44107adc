import { TestBroker } from '@broker/testing';
import { type CasesInput, casesSharing } from './cases-sharing';

const ROWS_Q = `query($a: ID) { cases(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { case_id } } }`;
const TWO_Q = `query($a: ID) { x: cases(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { case_id } }
  y: cases(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { case_id } } }`;
const COUNT_Q = `query($a: ID) { cases_aggregate(purpose: RECIDIVISM_EVALUATION, agreement: $a, groupBy: [case_id]) { noise } }`;
const REVOKE = `mutation($id: ID!) { revokeAgreement(id: $id, reason: "stop") { status } }`;
const DEACTIVATE = `mutation($id: ID!) { deactivateUser(id: $id) { id } }`;

/** The error codes of the contract (DESIGN §4): a deadlock would be none of them. */
const CONTRACT_CODES = ['UNAUTHENTICATED', 'FORBIDDEN', 'BAD_USER_INPUT', 'NOT_FOUND', 'CONFLICT'];

/** The one 503 a data request may answer here: its agreements changed under every decision. */
const POLICY_MOVED =
  'The agreements in force changed while the request was decided, so nothing was read: try again';

/**
 * Everything that withdraws a release, at once, on two instances: agreements approved and revoked,
 * users deactivated, keys rotated in a loop, while analysts read pages, counts and exports through
 * both. No lock is ever taken in an order that deadlocks (a deadlock would fail an append, a 503
 * that says the access could not be recorded, or a control-plane change, a 500); every answer is one
 * of the contract's; and the chain never shows a release after the change that withdrew it.
 */
describe('releases withdrawn under load, on two instances', () => {
  let broker: TestBroker;
  let other: TestBroker;
  let parties: Awaited<ReturnType<TestBroker['sharingParties']>>;
  let dataset: { id: string };

  let input: CasesInput;

  beforeAll(async () => {
    broker = await TestBroker.start({
      LABEL: 'release_withdrawn_races',
      AGGREGATE_DAILY_BUDGET: '100000',
      AGGREGATE_AGREEMENT_DAILY_BUDGET: '100000',
    });
    other = await broker.startAnother();
    ({ parties, dataset, input } = await casesSharing(
      broker,
      Array.from({ length: 40 }, (_, i) => `C${i}`),
    ));
  }, 120_000);
  afterAll(async () => {
    await other?.stop();
    await broker?.close();
  });

  it('deadlocks nowhere, answers as the contract says, and records no release after its withdrawal', async () => {
    const activate = (overrides: Record<string, unknown>) =>
      broker.activateAgreement(
        parties.providerSteward.apiKey,
        parties.recipientSteward.apiKey,
        input(overrides),
      );
    const stable = await activate({ title: 'Stays in force' });
    const counted = await activate({
      title: 'Counts only',
      grants: [{ datasetId: dataset.id, access: 'AGGREGATE_ONLY', fields: [{ name: 'case_id' }] }],
    });
    const instances = [broker, other];
    const problems: string[] = [];
    let refusals = 0;
    let done = false;
    const seq = await broker.auditHeadSeq();

    /** A data request through `via`, its answer checked against the contract. */
    const ask = async (
      via: TestBroker,
      apiKey: string,
      url: '/data/graphql' | '/data/export',
      q: string,
      a: string,
    ) => {
      const res = await via.http.inject({
        method: 'POST',
        url,
        headers: {
          authorization: `Bearer ${apiKey}`,
          'content-type': 'application/json',
          ...(url === '/data/export' ? { accept: 'text/csv' } : {}),
        },
        payload: JSON.stringify({ query: q, variables: { a } }),
      });
      const what = `${url} ${q.slice(8, 40)} → ${res.statusCode} ${res.body.slice(0, 200)}`;
      if (res.statusCode === 401) return;
      if (res.statusCode === 503) {
        if (!res.body.includes(POLICY_MOVED)) problems.push(what);
        return;
      }
      if (url === '/data/export' && res.statusCode === 200) {
        if (!res.body.startsWith('case_id')) problems.push(what);
        return;
      }
      if (url === '/data/export' && res.statusCode === 403) return void refusals++;
      if (res.statusCode !== 200) return void problems.push(what);
      const body = JSON.parse(res.body) as { data: unknown; errors?: { extensions?: { code?: string } }[] };
      if (body.data !== null) return;
      if (body.errors?.[0]?.extensions?.code === 'FORBIDDEN') refusals++;
      else problems.push(what);
    };
    /** A control-plane change through `via`: done, or refused as the contract says, never a 500. */
    const change = async (
      via: TestBroker,
      apiKey: string,
      query: string,
      variables: Record<string, unknown>,
    ) => {
      const res = await via.gql(apiKey, query, variables);
      const code = res.errors?.[0]?.extensions?.code;
      if (res.status >= 500 || (res.errors?.length && !CONTRACT_CODES.includes(String(code)))) {
        problems.push(`${query.slice(0, 40)} → ${res.status} ${JSON.stringify(res.errors)}`);
      }
      return res;
    };

    const loops: Promise<void>[] = [];
    // Analysts read through both instances: pages (one root field and two), counts and exports,
    // under the agreement that stays and under whichever is being revoked.
    let churned = stable;
    const readers = [
      parties.analyst,
      await broker.createUser({ agencyId: parties.recipientAgency.id, role: 'ANALYST' }),
    ];
    for (const [n, reader] of readers.entries()) {
      loops.push(
        (async () => {
          for (let i = 0; !done; i++) {
            const via = instances[(i + n) % 2];
            await ask(via, reader.apiKey, '/data/graphql', ROWS_Q, i % 2 ? stable : churned);
            await ask(via, reader.apiKey, '/data/graphql', TWO_Q, stable);
            await ask(via, reader.apiKey, '/data/graphql', COUNT_Q, counted);
            await ask(via, reader.apiKey, '/data/export', ROWS_Q, i % 2 ? stable : churned);
          }
        })(),
      );
    }
    // Agreements come into force and are revoked, through either instance.
    const revoked: string[] = [];
    loops.push(
      (async () => {
        for (let i = 0; !done; i++) {
          const id = await activate({ title: `Churned ${i}` });
          churned = id;
          // In force until something was released under it (at most 2 s: a loaded machine reads
          // slowly), so that its revocation races releases under it.
          for (let waited = 0; waited < 2000; waited += 50) {
            const [released] = await broker.query(
              `SELECT 1 FROM audit_event WHERE agreement_id = $1 AND decision = 'ALLOW'
                  AND action IN ('QUERY', 'EXPORT') LIMIT 1`,
              [id],
            );
            if (released && waited >= 150) break;
            await new Promise((r) => setTimeout(r, 50));
          }
          await change(instances[i % 2], parties.recipientSteward.apiKey, REVOKE, { id });
          revoked.push(id);
        }
      })(),
    );
    // Analysts who read and are deactivated while they read.
    const deactivated: string[] = [];
    loops.push(
      (async () => {
        for (let i = 0; !done; i++) {
          const user = await broker.createUser({ agencyId: parties.recipientAgency.id, role: 'ANALYST' });
          const reading = Promise.all([
            ask(instances[i % 2], user.apiKey, '/data/graphql', TWO_Q, stable),
            ask(instances[(i + 1) % 2], user.apiKey, '/data/export', ROWS_Q, stable),
            ask(instances[i % 2], user.apiKey, '/data/graphql', COUNT_Q, counted),
          ]);
          await change(instances[(i + 1) % 2], parties.recipientSteward.apiKey, DEACTIVATE, { id: user.id });
          deactivated.push(user.id);
          await reading;
        }
      })(),
    );
    // Users who rotate their keys in a loop, as fast as they can, one of them while it reads.
    const rotating = [
      await broker.createUser({ agencyId: parties.recipientAgency.id, role: 'ANALYST' }),
      await broker.createUser({ agencyId: parties.providerAgency.id, role: 'ANALYST' }),
    ];
    for (const [n, user] of rotating.entries()) {
      loops.push(
        (async () => {
          let key = user.apiKey;
          for (let i = 0; !done; i++) {
            const via = instances[(i + n) % 2];
            const reading =
              n === 0 ? ask(instances[(i + 1) % 2], key, '/data/graphql', ROWS_Q, stable) : null;
            const res = await change(via, key, `mutation { rotateApiKey { apiKey } }`, {});
            key = (res.data as { rotateApiKey: { apiKey: string } }).rotateApiKey.apiKey;
            await reading;
          }
        })(),
      );
    }

    await new Promise((r) => setTimeout(r, 4000));
    done = true;
    await Promise.all(loops);

    expect(problems).toEqual([]);
    expect(revoked.length).toBeGreaterThan(2);
    expect(deactivated.length).toBeGreaterThan(2);
    // The chain never shows a release under an agreement after its revocation, nor one to a user
    // after its deactivation.
    const late = await broker.query<{ seq: string; action: string }>(
      `SELECT e.seq::text AS seq, e.action FROM audit_event e
         JOIN audit_event w ON w.seq > $1 AND e.seq > w.seq
          AND ((w.action = 'AGREEMENT_REVOKED' AND e.agreement_id = w.agreement_id)
            OR (w.action = 'USER_DEACTIVATED' AND w.details->'accounts' ? e.actor_user_id::text))
        WHERE e.decision = 'ALLOW' AND e.action IN ('QUERY', 'EXPORT', 'AGGREGATE')`,
      [seq],
    );
    expect(late).toEqual([]);
    // Releases were recorded all along, under the agreements churned too.
    const [{ n }] = await broker.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_event WHERE seq > $1 AND decision = 'ALLOW'
          AND action IN ('QUERY', 'EXPORT', 'AGGREGATE') AND agreement_id = ANY($2::uuid[])`,
      [seq, revoked],
    );
    expect(n).toBeGreaterThan(0);
    // Every refusal, decided again after a withdrawal or not, was audited, once.
    const [{ denied }] = await broker.query<{ denied: number }>(
      `SELECT count(*)::int AS denied FROM audit_event WHERE seq > $1 AND decision = 'DENY'
          AND action IN ('QUERY', 'EXPORT', 'AGGREGATE')`,
      [seq],
    );
    expect(refusals).toBeGreaterThan(0);
    expect(denied).toBe(refusals);
    const auditor = await broker.oversightAuditor();
    expect((await broker.verifyAuditChain(auditor.apiKey)).valid).toBe(true);
  }, 120_000);
});
