import { AuditService, RefusalRecorder } from '@broker/audit';
import { TestBroker } from '@broker/testing';

describe('control plane: limits refuse floods before anything runs', () => {
  let broker: TestBroker;
  let auditor: { id: string; apiKey: string };
  let verify: jest.SpyInstance;
  let list: jest.SpyInstance;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'cp_limits' });
    auditor = await broker.createUser({ role: 'AUDITOR' });
    verify = jest.spyOn(broker.app.get(AuditService), 'verify');
    list = jest.spyOn(broker.app.get(AuditService), 'list');
  });
  afterAll(() => broker.close());
  beforeEach(() => {
    verify.mockClear();
    list.mockClear();
  });

  const aliases = (n: number, field: string) =>
    `{ ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ')} }`;

  async function expectLimit(query: string, variables?: Record<string, unknown>) {
    const res = await broker.gql(auditor.apiKey, query, variables);
    expect(res.status).toBe(400);
    expect(res.data).toBeNull();
    expect(res.errors?.length).toBeGreaterThan(0);
    for (const error of res.errors ?? []) {
      expect(error.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'LIMIT' });
      // Never where the limit stands.
      expect(error.message).not.toMatch(/\d/);
    }
    return res;
  }

  it('refuses alias, cost and depth floods without running a resolver', async () => {
    await expectLimit(aliases(2_000, 'verifyAuditChain { valid checked }'));
    await expectLimit(aliases(1_000, 'auditEvents(first: 1000) { nodes { seq hash } }'));
    // Under the alias limit, over the cost: a whole-chain verification is expensive.
    await expectLimit(aliases(2, 'verifyAuditChain { valid }'));
    await expectLimit(aliases(4, 'auditEvents(first: 1000) { nodes { seq } pageInfo { hasNextPage } }'));
    // A variable counts for the largest page it could ask.
    await expectLimit(
      `query($n: Int) { ${Array.from({ length: 4 }, (_, i) => `a${i}: auditEvents(first: $n) { nodes { seq } pageInfo { endCursor } }`).join(' ')} }`,
      { n: 1 },
    );
    const legit = `{ agreements { versions { approvals { agency { id } user { agency { id } } } } provider { id } } }`;
    expect((await broker.gql(auditor.apiKey, legit)).errors).toBeUndefined();
    // Nested 17 levels: refused for its depth (as well as for its names).
    const deep = await broker.gql(auditor.apiKey, `{ me ${'{ agency '.repeat(16)}{ id }${' }'.repeat(16)} }`);
    expect(deep.status).toBe(400);
    expect(deep.errors?.map((e) => e.extensions?.reason)).toContain('LIMIT');
    expect(verify).not.toHaveBeenCalled();
    expect(list).not.toHaveBeenCalled();
  });

  it('refuses documents with too many tokens', async () => {
    await expectLimit(`{ me { ${'id '.repeat(20_000)} } }`);
  });

  it('allows the work one request may do: one verification, a full page of events', async () => {
    const ok = await broker.gql(
      auditor.apiKey,
      `{ verifyAuditChain { valid } auditEvents(first: 1000) { nodes { seq } pageInfo { hasNextPage } } }`,
    );
    expect(ok.errors).toBeUndefined();
    expect(ok.data?.verifyAuditChain).toEqual({ valid: true });
    expect(verify).toHaveBeenCalledTimes(1);
  });

  it('keeps /health at 200 under a flood of refused requests, and merges their audit events', async () => {
    const [before] = await broker.query<{ seq: number }>(
      `SELECT coalesce(max(seq), 0)::int AS seq FROM audit_event`,
    );
    // Waves of refused requests with a health probe in each: a refused request holds no connection
    // beyond its key's lookup, so the pool never runs dry.
    const statuses = new Set<number>();
    for (let wave = 0; wave < 10; wave++) {
      const flood = Array.from({ length: 20 }, () =>
        broker.http.inject({
          method: 'POST',
          url: '/graphql',
          headers: { authorization: `Bearer ${auditor.apiKey}` },
          payload: { query: aliases(500, 'verifyAuditChain { valid checked firstBrokenSeq }') },
        }),
      );
      const health = broker.http.inject({ method: 'GET', url: '/health' });
      const [responses, healthResponse] = await Promise.all([Promise.all(flood), health]);
      expect(healthResponse.statusCode).toBe(200);
      for (const r of responses) statuses.add(r.statusCode);
    }
    expect(statuses).toEqual(new Set([400]));
    expect(verify).not.toHaveBeenCalled();
    const events = await broker.query<{ reason: string; actor_user_id: string; row_count: number }>(
      `SELECT reason, actor_user_id, row_count FROM audit_event WHERE seq > $1 AND decision = 'DENY'`,
      [before.seq],
    );
    // Not one append per request: the caller's first LIMIT refusal of a minute is appended at once
    // (this file's first test made it), the others are counted for one event when the minute ends.
    expect(events.length).toBeLessThanOrEqual(2);
    await broker.app.get(RefusalRecorder).flush(true);
    const merged = await broker.query<{ n: number; events: number }>(
      `SELECT sum(row_count)::int AS n, count(*)::int AS events FROM audit_event
        WHERE decision = 'DENY' AND reason = 'LIMIT' AND actor_user_id = $1`,
      [auditor.id],
    );
    // Every LIMIT refusal of this file, counted: 6 in the first test, 1 of tokens, 200 here.
    expect(merged[0].n).toBe(207);
    expect(merged[0].events).toBeLessThanOrEqual(6);
    expect((await broker.http.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  });

  it('counts refused unauthenticated requests in metrics, not in the audit log', async () => {
    const [before] = await broker.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_event`);
    for (let i = 0; i < 3; i++) {
      const res = await broker.gql('dsb_not-a-key-at-all-000000000', aliases(5, 'me { id }'));
      expect(res.status).toBe(401);
      expect(res.errors?.[0].extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'INVALID' });
    }
    const [after] = await broker.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_event`);
    expect(after.n).toBe(before.n);
    const metrics = await broker.http.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/broker_unauthenticated_requests_total\{endpoint="\/graphql"\} [1-9]/);
  });

  it('merges LIMIT refusals per broker instance: at most two events per instance, endpoint and minute, every refusal counted', async () => {
    const other = await broker.startAnother();
    try {
      const caller = await broker.createUser({ role: 'AUDITOR' });
      // One minute for the whole flood, so the bound is exact (a minute boundary would double it).
      const intoMinute = Date.now() % 60_000;
      if (intoMinute > 45_000) await new Promise((resolve) => setTimeout(resolve, 60_500 - intoMinute));
      const [before] = await broker.query<{ seq: number }>(
        `SELECT coalesce(max(seq), 0)::int AS seq FROM audit_event`,
      );
      const flood = (instance: TestBroker) =>
        Array.from({ length: 40 }, () => instance.gql(caller.apiKey, aliases(100, 'me { id }')));
      const answers = await Promise.all([...flood(broker), ...flood(other)]);
      expect(answers.map((a) => [a.status, a.errors?.[0].extensions?.reason])).toEqual(
        Array.from({ length: 80 }, () => [400, 'LIMIT']),
      );
      const denials = () =>
        broker.query<{ row_count: number; details: { endpoint: string; operations: string[] } }>(
          `SELECT row_count, details FROM audit_event WHERE seq > $1 AND actor_user_id = $2 ORDER BY seq`,
          [before.seq, caller.id],
        );
      // Before the minute is over: the first refusal on each instance, appended at once.
      expect((await denials()).map((d) => [d.row_count, d.details.operations])).toEqual([
        [1, ['me']],
        [1, ['me']],
      ]);
      await broker.app.get(RefusalRecorder).flush(true);
      await other.app.get(RefusalRecorder).flush(true);
      const all = await denials();
      // Then each instance's count of the rest: 2 events per instance, and every refusal counted.
      expect(all.map((d) => [d.row_count, d.details.endpoint, d.details.operations])).toEqual([
        [1, '/graphql', ['me']],
        [1, '/graphql', ['me']],
        [39, '/graphql', []],
        [39, '/graphql', []],
      ]);
      expect(all.reduce((sum, d) => sum + d.row_count, 0)).toBe(80);
    } finally {
      await other.stop();
    }
  }, 90_000);
});
