import { AuthService } from '@broker/auth';
import { Database } from '@broker/core';
import { PolicyCache } from '@broker/data-plane';
import { TestBroker } from '@broker/testing';
import { casesSharing } from './cases-sharing';

const ROWS_Q = `query($a: ID) { cases(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { case_id } } }`;
const REVOKE = `mutation($id: ID!) { revokeAgreement(id: $id, reason: "stop") { status } }`;

/**
 * An agreement that changes while a data request is in flight: the request is answered under the
 * version in force when its rows are read, never under one revoked, or past its window, by then.
 */
describe('agreements and the data plane: a request in flight when the agreement changes', () => {
  let broker: TestBroker;
  let parties: Awaited<ReturnType<TestBroker['sharingParties']>>;

  let activate: Awaited<ReturnType<typeof casesSharing>>['activate'];
  const eventsSince = (seq: number) =>
    broker.query<{ action: string; decision: string; reason: string | null; agreement_id: string | null }>(
      `SELECT action, decision, reason, agreement_id FROM audit_event
        WHERE seq > $1 AND actor_user_id = $2 ORDER BY seq`,
      [seq, parties.analyst.id],
    );

  /** The next request's user is deactivated right after its key is looked up, before anything else. */
  const deactivatedOnceAuthenticated = (userId: string) => {
    const auth = broker.app.get(AuthService);
    const authenticate = auth.authenticate.bind(auth);
    jest.spyOn(auth, 'authenticate').mockImplementationOnce(async (key) => {
      const principal = await authenticate(key);
      await broker.gqlOk(
        parties.recipientSteward.apiKey,
        `mutation($id: ID!) { deactivateUser(id: $id) { id } }`,
        {
          id: userId,
        },
      );
      return principal;
    });
  };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'agreement_races' });
    ({ parties, activate } = await casesSharing(broker));
  });
  afterAll(() => broker.close());
  afterEach(() => jest.restoreAllMocks());

  it('never answers under a policy compiled before a revocation that committed before the read', async () => {
    const id = await activate({ title: 'Revoked while compiled' });
    const policies = broker.app.get(PolicyCache);
    const reload = policies.reload.bind(policies);
    // The instance compiles the policy (the agreement in force); right after, before the request's
    // snapshot begins, a party revokes.
    jest.spyOn(policies, 'reload').mockImplementationOnce(async (agencyId, now) => {
      const compiled = await reload(agencyId, now);
      await broker.gqlOk(parties.recipientSteward.apiKey, REVOKE, { id });
      return compiled;
    });
    const seq = await broker.auditHeadSeq();
    const answer = await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql');
    expect(answer.data).toBeNull();
    expect(answer.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    expect(JSON.stringify(answer)).not.toContain('C1');
    const events = await eventsSince(seq);
    expect(events.map((e) => [e.action, e.decision])).toEqual([['QUERY', 'DENY']]);
  });

  it('releases nothing to a user deactivated after its key was checked and before its rows were read', async () => {
    const id = await activate({ title: 'Deactivated in flight' });
    const analyst = await broker.createUser({ agencyId: parties.recipientAgency.id, role: 'ANALYST' });
    // The instance holds the agency's policy at the stamp of now (another analyst's request).
    const warm = await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql');
    expect(warm.data!.cases.nodes).toHaveLength(2);
    deactivatedOnceAuthenticated(analyst.id);
    const seq = await broker.auditHeadSeq();
    const answer = await broker.gql(analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql');
    expect(answer.status).toBe(401);
    expect(JSON.stringify(answer)).not.toContain('C1');
    const events = await broker.query(`SELECT 1 FROM audit_event WHERE seq > $1 AND actor_user_id = $2`, [
      seq,
      analyst.id,
    ]);
    expect(events).toEqual([]);
  });

  it.each([
    ['several root fields', 'graphql'],
    ['an export', 'export'],
  ] as const)(
    'releases nothing on %s to a user deactivated after its key was checked and before its snapshot began',
    async (_name, endpoint) => {
      const id = await activate({ title: `Deactivated before its snapshot (${endpoint})` });
      const analyst = await broker.createUser({ agencyId: parties.recipientAgency.id, role: 'ANALYST' });
      deactivatedOnceAuthenticated(analyst.id);
      // Two root fields take the snapshot's path; an export takes it always.
      const query =
        endpoint === 'graphql'
          ? `query($a: ID) { one: cases(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { case_id } }
                             two: cases(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { case_id } } }`
          : ROWS_Q;
      const seq = await broker.auditHeadSeq();
      const res = await broker.http.inject({
        method: 'POST',
        url: endpoint === 'graphql' ? '/data/graphql' : '/data/export',
        headers: {
          authorization: `Bearer ${analyst.apiKey}`,
          'content-type': 'application/json',
          ...(endpoint === 'export' ? { accept: 'text/csv' } : {}),
        },
        payload: JSON.stringify({ query, variables: { a: id } }),
      });
      expect([
        res.statusCode,
        (JSON.parse(res.body) as { errors?: { extensions?: { code?: string } }[] }).errors?.[0]?.extensions
          ?.code,
      ]).toEqual([401, 'UNAUTHENTICATED']);
      expect(res.body).not.toContain('C1');
      // Nothing recorded under the key that stopped working: no release, no refusal.
      const events = await broker.query(`SELECT 1 FROM audit_event WHERE seq > $1 AND actor_user_id = $2`, [
        seq,
        analyst.id,
      ]);
      expect(events).toEqual([]);
    },
  );

  /**
   * Holds the first statement run in a transaction (past its opening, which reads the policy stamp)
   * until `until` resolves.
   */
  const holdNextSnapshot = (until: () => Promise<void>) => {
    const db = broker.app.get(Database);
    const begin = db.begin.bind(db);
    let held = false;
    jest.spyOn(db, 'begin').mockImplementation(async (options) => {
      const tx = await begin(options);
      const query = tx.query.bind(tx);
      tx.query = async (sql: string, params?: unknown[]) => {
        if (!held) {
          held = true;
          await until();
        }
        return query(sql, params);
      };
      return tx;
    });
  };
  const endingSoon = async (title: string) => {
    const validUntil = new Date(Date.now() + 1500);
    const id = await activate({ title, validUntil: validUntil.toISOString() });
    const pastEnd = async () => {
      while (Date.now() <= validUntil.getTime()) await new Promise((r) => setTimeout(r, 20));
    };
    return { id, validUntil, pastEnd };
  };

  it('stops a request of several root fields decided before its validUntil and read after it', async () => {
    const { id, validUntil, pastEnd } = await endingSoon('Ending, two fields');
    const q = `query($a: ID) { x: cases(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { case_id } }
      y: cases(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { case_id } } }`;
    expect(Date.now()).toBeLessThan(validUntil.getTime());
    holdNextSnapshot(pastEnd);
    const seq = await broker.auditHeadSeq();
    const answer = await broker.gql(parties.analyst.apiKey, q, { a: id }, '/data/graphql');
    expect(answer.data).toBeNull();
    expect(JSON.stringify(answer)).not.toContain('C1');
    const events = await eventsSince(seq);
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.decision === 'DENY')).toBe(true);
  });

  it('stops an export decided before its validUntil whose rows are counted after it', async () => {
    const { id, validUntil, pastEnd } = await endingSoon('Ending, exported');
    expect(Date.now()).toBeLessThan(validUntil.getTime());
    holdNextSnapshot(pastEnd);
    const seq = await broker.auditHeadSeq();
    const response = await broker.http.inject({
      method: 'POST',
      url: '/data/export',
      headers: {
        authorization: `Bearer ${parties.analyst.apiKey}`,
        accept: 'text/csv',
        'content-type': 'application/json',
      },
      payload: { query: ROWS_Q, variables: { a: id } },
    });
    expect(response.statusCode).toBeGreaterThanOrEqual(400);
    expect(response.statusCode).toBeLessThan(500);
    expect(response.body).not.toContain('C1');
    const events = await eventsSince(seq);
    expect(events.map((e) => [e.action, e.decision])).toEqual([['EXPORT', 'DENY']]);
  });

  it('stops a request decided before its validUntil whose rows are read after it', async () => {
    // The window ends shortly after this test begins: the request is decided inside it, and its read
    // is held (not raced) until the clock has passed its end.
    const validUntil = new Date(Date.now() + 1500);
    const id = await activate({ title: 'Ending', validUntil: validUntil.toISOString() });
    expect(Date.now()).toBeLessThan(validUntil.getTime());
    // The instance holds the policy at the stamp of now: the next request is decided without I/O.
    const warm = await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql');
    expect(warm.data!.cases.nodes).toHaveLength(2);
    const db = broker.app.get(Database);
    const read = db.read.bind(db);
    const pastEnd = async () => {
      while (Date.now() <= validUntil.getTime()) await new Promise((r) => setTimeout(r, 20));
    };
    jest.spyOn(db, 'read').mockImplementationOnce(async (...args: Parameters<Database['read']>) => {
      await pastEnd();
      return read(...args);
    });
    const seq = await broker.auditHeadSeq();
    const answer = await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql');
    expect(Date.now()).toBeGreaterThan(validUntil.getTime());
    expect(answer.data).toBeNull();
    expect(JSON.stringify(answer)).not.toContain('C1');
    const events = await eventsSince(seq);
    expect(events.map((e) => [e.action, e.decision])).toEqual([['QUERY', 'DENY']]);
  });
});
