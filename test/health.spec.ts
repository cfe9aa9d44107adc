import { RefusalRecorder } from '@broker/audit';
import { Database, type Transaction, dropDatabase } from '@broker/core';
import { TestBroker } from '@broker/testing';

describe('starting the broker', () => {
  it('prints no Fastify warning, and answers errors before a handler in the endpoint’s shape', async () => {
    // Fastify warns through process.emitWarning (FSTWRN004: a second error handler in one scope;
    // FSTDEP: deprecated options). The first test of the file, so no warning was emitted before it.
    const warnings: string[] = [];
    const spy = jest.spyOn(process, 'emitWarning').mockImplementation((warning: string | Error) => {
      warnings.push(
        typeof warning === 'string' ? warning : `${(warning as { code?: string }).code} ${warning.message}`,
      );
    });
    let broker: TestBroker | undefined;
    try {
      broker = await TestBroker.start({ LABEL: 'start_warnings' });
    } finally {
      spy.mockRestore();
    }
    try {
      expect(warnings).toEqual([]);
      // The error handler that replaced the overridden one answers on every kind of route.
      const key = { authorization: `Bearer ${broker.operatorKey}`, 'content-type': 'application/json' };
      const post = (url: string, payload: string, headers: Record<string, string> = key) =>
        broker.http.inject({ method: 'POST', url, payload, headers });
      for (const url of ['/graphql', '/data/graphql', '/data/export']) {
        const notJson = await post(url, '{"query": ');
        expect([url, notJson.statusCode, JSON.parse(notJson.body)]).toEqual([
          url,
          400,
          {
            data: null,
            errors: [
              {
                message: expect.stringMatching(/not valid JSON/) as string,
                extensions: { code: 'BAD_USER_INPUT', reason: 'INVALID' },
              },
            ],
          },
        ]);
      }
      const tooLarge = await post('/data/graphql', JSON.stringify({ query: `{ a }${' '.repeat(2 << 20)}` }));
      expect(tooLarge.statusCode).toBe(413);
      expect(JSON.parse(tooLarge.body)).toEqual({
        data: null,
        errors: [
          {
            message: 'The request body is too large',
            extensions: { code: 'BAD_USER_INPUT', reason: 'LIMIT' },
          },
        ],
      });
      const rest = await post('/api/datasets/00000000-0000-4000-8000-000000000000/records', '{"a": ');
      expect(rest.statusCode).toBe(400);
      expect(JSON.parse(rest.body)).toEqual({
        error: expect.stringMatching(/not valid JSON/) as string,
        code: 'BAD_USER_INPUT',
        reason: 'INVALID',
      });
    } finally {
      await broker.close();
    }
  });
});

describe('GET /health and GET /metrics', () => {
  it('answers 200 with both services up, without a key', async () => {
    const broker = await TestBroker.start({ LABEL: 'health' });
    try {
      const res = await broker.http.inject({ method: 'GET', url: '/health' });
      expect(res.statusCode).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ status: 'ok', postgres: 'up', redis: 'up' });

      await broker.gql(broker.operatorKey, '{ me { id } }');
      const metrics = await broker.http.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.statusCode).toBe(200);
      expect(metrics.headers['content-type']).toContain('text/plain');
      expect(metrics.body).toMatch(
        /^broker_http_request_duration_seconds_count\{method="POST",route="\/graphql",status="200"\} [1-9]/m,
      );
      expect(metrics.body).toContain('process_resident_memory_bytes');
    } finally {
      await broker.close();
    }
  });

  it('answers 503 when Redis is down', async () => {
    const broker = await TestBroker.start({ LABEL: 'health_redis', REDIS_URL: 'redis://127.0.0.1:1' });
    try {
      const res = await broker.http.inject({ method: 'GET', url: '/health' });
      expect(res.statusCode).toBe(503);
      expect(JSON.parse(res.body)).toEqual({ status: 'unavailable', postgres: 'up', redis: 'down' });
    } finally {
      await broker.close();
    }
  });

  it('answers 503 when PostgreSQL is gone', async () => {
    const broker = await TestBroker.start({ LABEL: 'health_pg' });
    try {
      // Its own connection is open (a first probe), and PostgreSQL then closes it.
      expect((await broker.http.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
      await dropDatabase(broker.config.DATABASE_URL);
      const res = await broker.http.inject({ method: 'GET', url: '/health' });
      expect(res.statusCode).toBe(503);
      expect(JSON.parse(res.body)).toMatchObject({ postgres: 'down', redis: 'up' });
    } finally {
      await broker.close();
    }
  });

  it('asks for METRICS_TOKEN when one is set', async () => {
    const broker = await TestBroker.start({ LABEL: 'metrics', METRICS_TOKEN: 'scrape-token-0123456789' });
    try {
      expect((await broker.http.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
      const ok = await broker.http.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: 'Bearer scrape-token-0123456789' },
      });
      expect(ok.statusCode).toBe(200);
    } finally {
      await broker.close();
    }
  });
});

describe('GET /health under load', () => {
  let broker: TestBroker;
  let analyst: { id: string; apiKey: string };
  let datasetId: string;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'health_load' });
    const cbo = await broker.createAgency('Second Chance');
    const research = await broker.createAgency('Research Office');
    const cboSteward = await broker.createUser({ agencyId: cbo.id, role: 'STEWARD' });
    const researchSteward = await broker.createUser({ agencyId: research.id, role: 'STEWARD' });
    analyst = await broker.createUser({ agencyId: research.id, role: 'ANALYST' });
    await broker.definePurposes('RECIDIVISM_EVALUATION');
    const dataset = await broker.registerDataset(cboSteward.apiKey, {
      slug: 'reentry',
      title: 'Re-entry participation',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'program', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'notes', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    });
    datasetId = dataset.id;
    await broker.activateAgreement(cboSteward.apiKey, researchSteward.apiKey, {
      title: 'Programs for evaluation',
      providerAgencyId: cbo.id,
      recipientAgencyId: research.id,
      purposes: ['RECIDIVISM_EVALUATION'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [{ datasetId, fields: [{ name: 'program' }] }],
    });
  });
  afterAll(() => broker.close());

  it('answers 200 while requests hold every pooled connection', async () => {
    const db = broker.app.get(Database);
    const held: Transaction[] = [];
    try {
      // Every connection of the broker's pool (CoreModule's max of 20), each in an open transaction.
      for (let i = 0; i < 20; i++) held.push(await db.begin());
      const [{ n }] = await held[0].query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = 'data-sharing-broker' AND datname = current_database() AND xact_start IS NOT NULL`,
      );
      expect(n).toBe(20);
      const started = Date.now();
      const res = await broker.http.inject({ method: 'GET', url: '/health' });
      expect([res.statusCode, JSON.parse(res.body)]).toEqual([
        200,
        { status: 'ok', postgres: 'up', redis: 'up' },
      ]);
      // Answered at once, not when the probe gave up (2 s).
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      for (const tx of held) await tx.rollback();
    }
  });

  it('stays 200 under 300 simultaneous refused requests, each a 4xx in its endpoint’s shape and audited', async () => {
    const base = await broker.listen();
    const aliases = (n: number, field: string) =>
      `{ ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ')} }`;
    const graphqlRefusal = (status: number, code: string, reason: string, extra: object = {}) => ({
      status,
      body: {
        data: null,
        errors: expect.arrayContaining([
          expect.objectContaining({
            extensions: expect.objectContaining({ code, reason, ...extra }) as object,
          }),
        ]) as unknown[],
      },
    });
    const kinds = [
      {
        name: 'no key on /graphql',
        path: '/graphql',
        key: null,
        body: { query: '{ me { id } }' },
        expected: graphqlRefusal(401, 'UNAUTHENTICATED', 'INVALID'),
      },
      {
        name: 'a wrong key on /data/graphql',
        path: '/data/graphql',
        key: 'dsb_not-a-key-at-all-0000000000',
        body: { query: '{ reentry(purpose: RECIDIVISM_EVALUATION) { nodes { program } } }' },
        expected: graphqlRefusal(401, 'UNAUTHENTICATED', 'INVALID'),
      },
      {
        name: 'no key on the upload route',
        path: `/api/datasets/${datasetId}/records`,
        key: null,
        body: { records: [] },
        expected: {
          status: 401,
          body: { error: expect.any(String) as string, code: 'UNAUTHENTICATED', reason: 'INVALID' },
        },
      },
      {
        name: 'an alias flood on /graphql',
        path: '/graphql',
        key: analyst.apiKey,
        body: { query: aliases(500, 'verifyAuditChain { valid checked }') },
        expected: graphqlRefusal(400, 'BAD_USER_INPUT', 'LIMIT'),
      },
      {
        name: 'an alias flood on /data/graphql',
        path: '/data/graphql',
        key: analyst.apiKey,
        body: { query: aliases(200, 'reentry(purpose: RECIDIVISM_EVALUATION) { nodes { program } }') },
        expected: graphqlRefusal(400, 'BAD_USER_INPUT', 'LIMIT'),
      },
      {
        name: 'a field not released on /data/graphql',
        path: '/data/graphql',
        key: analyst.apiKey,
        body: { query: '{ reentry(purpose: RECIDIVISM_EVALUATION) { nodes { notes } } }' },
        expected: graphqlRefusal(400, 'FORBIDDEN', 'FIELD_NOT_RELEASED', { field: 'notes' }),
      },
    ];
    const PER_KIND = 50;
    // Whatever a previous test appended is not counted.
    await broker.app.get(RefusalRecorder).flush(true);
    const [before] = await broker.query<{ seq: number }>(
      `SELECT coalesce(max(seq), 0)::int AS seq FROM audit_event`,
    );
    const unauthenticatedBefore = await unauthenticatedCount(broker);

    const health: { status: number; body: unknown }[] = [];
    let flooding = true;
    const poll = (async () => {
      while (flooding) {
        const res = await fetch(`${base}/health`);
        health.push({ status: res.status, body: await res.json() });
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    const requests = kinds.flatMap((kind) =>
      Array.from({ length: PER_KIND }, async () => {
        const res = await fetch(`${base}${kind.path}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(kind.key ? { authorization: `Bearer ${kind.key}` } : {}),
          },
          body: JSON.stringify(kind.body),
        });
        return { kind, status: res.status, body: await res.json() };
      }),
    );
    let answers: Awaited<(typeof requests)[number]>[];
    try {
      answers = await Promise.all(requests);
    } finally {
      flooding = false;
      await poll;
    }

    expect(answers).toHaveLength(kinds.length * PER_KIND);
    for (const answer of answers) {
      expect({ kind: answer.kind.name, status: answer.status, body: answer.body }).toEqual({
        kind: answer.kind.name,
        ...answer.kind.expected,
      });
    }
    // Polled throughout, and every answer was 200 with both dependencies up.
    expect(health.length).toBeGreaterThan(1);
    expect(health.filter((h) => h.status !== 200)).toEqual([]);
    expect(
      health.every((h) => JSON.stringify(h.body) === '{"status":"ok","postgres":"up","redis":"up"}'),
    ).toBe(true);

    // Every refusal of the signed-in analyst is on the record: each FORBIDDEN its own event, the
    // LIMIT refusals merged, counted one by one; the unauthenticated ones in metrics only.
    await broker.app.get(RefusalRecorder).flush(true);
    const events = await broker.query<{ reason: string; events: number; refusals: number }>(
      `SELECT reason, count(*)::int AS events, sum(row_count)::int AS refusals FROM audit_event
        WHERE seq > $1 AND decision = 'DENY' AND actor_user_id = $2 GROUP BY reason ORDER BY reason`,
      [before.seq, analyst.id],
    );
    const byReason = Object.fromEntries(events.map((e) => [e.reason, e]));
    expect(Object.keys(byReason)).toEqual(['FIELD_NOT_RELEASED', 'LIMIT']);
    expect(byReason.FIELD_NOT_RELEASED.events).toBe(PER_KIND);
    expect(byReason.LIMIT.refusals).toBe(2 * PER_KIND);
    expect(byReason.LIMIT.events).toBeLessThanOrEqual(8);
    const [unattributed] = await broker.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_event WHERE seq > $1 AND actor_user_id IS NULL`,
      [before.seq],
    );
    expect(unattributed.n).toBe(0);
    expect((await unauthenticatedCount(broker)) - unauthenticatedBefore).toBe(3 * PER_KIND);
  }, 120_000);
});

/** `broker_unauthenticated_requests_total`, summed over its endpoints. */
async function unauthenticatedCount(broker: TestBroker): Promise<number> {
  const metrics = await broker.http.inject({ method: 'GET', url: '/metrics' });
  return [...metrics.body.matchAll(/^broker_unauthenticated_requests_total\{[^}]*\} (\d+)/gm)].reduce(
    (sum, m) => sum + Number(m[1]),
    0,
  );
}
