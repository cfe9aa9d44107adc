import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decisionOf } from '../libs/data-plane/src/data-plane.controller';
import { TestBroker } from '@broker/testing';

const DASHBOARD = JSON.parse(
  readFileSync(join(__dirname, '..', 'docs', 'grafana-dashboard.json'), 'utf8'),
) as {
  panels: { title: string; targets: { expr: string }[] }[];
};

/** Metric families of a Prometheus text answer: name → type. */
function families(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
}

/** The value of one sample line, `name{labels} value`, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return undefined;
}

/** The metric names a PromQL expression reads (the broker's and the process's). */
function namesIn(expr: string): string[] {
  return [...expr.matchAll(/\b(?:broker|process|nodejs)_[a-z0-9_]+/g)].map((m) => m[0]);
}

describe('GET /metrics and the Grafana dashboard', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'metrics' });
  });
  afterAll(() => broker.close());

  const scrape = async () => {
    const response = await broker.http.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    return response.body;
  };

  it('exports decisions, unauthenticated requests, audit appends, queue depths and linkage runs', async () => {
    // A refusal on the data plane (the operator reads no records), an unauthenticated request, and
    // control-plane changes that append audit events.
    const refused = await broker.gql(broker.operatorKey, '{ x }', undefined, '/data/graphql');
    expect(refused.data).toBeNull();
    expect((await broker.gql(null, '{ me { id } }', undefined, '/data/graphql')).status).toBe(401);
    await broker.createAgency('Metrics Agency');

    const text = await scrape();
    const reason = (refused.errors![0].extensions!.reason ?? refused.errors![0].extensions!.code) as string;
    expect(sample(text, 'broker_data_plane_decisions_total', { outcome: 'DENY', reason })).toBe(1);
    expect(sample(text, 'broker_unauthenticated_requests_total', { endpoint: '/data/graphql' })).toBe(1);
    expect(sample(text, 'broker_audit_appends_total', { decision: 'ALLOW' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'broker_audit_appends_total', { decision: 'DENY' })).toBeGreaterThanOrEqual(1);
    for (const queue of ['linkage', 'retention']) {
      expect(sample(text, 'broker_queue_jobs', { queue, state: 'failed' })).toBe(0);
    }
    expect(sample(text, 'broker_linkage_runs', { status: 'SUCCEEDED' })).toBe(0);
    // No run yet: progress 0.
    expect(sample(text, 'broker_linkage_run_progress')).toBe(0);
    expect(
      sample(text, 'broker_http_request_duration_seconds_count', { route: '/data/graphql', status: '200' }),
    ).toBe(1);
  });

  it('counts every refusal of a signed-in caller by endpoint and reason, on both planes', async () => {
    const count = (text: string, endpoint: string, reason: string) =>
      sample(text, 'broker_refusals_total', { endpoint, reason }) ?? 0;
    const before = await scrape();
    // The data plane: the operator reads no records (ROLE), and a purpose no agreement grants.
    for (const query of ['{ x }', '{ y }']) {
      const refused = await broker.gql(broker.operatorKey, query, undefined, '/data/graphql');
      expect(refused.errors?.[0].extensions?.reason).toBe('ROLE');
    }
    // The control plane: a steward's operation asked by the operator.
    const control = await broker.gql(
      broker.operatorKey,
      'mutation { recordConsent(input: { datasetId: "00000000-0000-4000-8000-000000000000", subjectId: "S1", purpose: "RESEARCH", granted: true }) { recordedAt } }',
    );
    expect(control.errors?.[0].extensions?.reason).toBe('ROLE');
    const after = await scrape();
    expect(count(after, '/data/graphql', 'ROLE') - count(before, '/data/graphql', 'ROLE')).toBe(2);
    expect(count(after, '/graphql', 'ROLE') - count(before, '/graphql', 'ROLE')).toBe(1);
  });

  it('times each step of an allowed request once, and none of a refused one', async () => {
    const parties = await broker.sharingParties('Phase Provider', 'Phase Recipient', 'RESEARCH');
    const dataset = await broker.registerDataset(parties.providerSteward.apiKey, {
      slug: 'phase_things',
      title: 'Things',
      keyField: 'k',
      fields: [{ name: 'k', type: 'STRING', classification: 'NON_SENSITIVE' }],
    });
    await broker.gqlOk(
      parties.providerSteward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: dataset.id, r: [{ k: 'a' }, { k: 'b' }] },
    );
    await broker.activateAgreement(parties.providerSteward.apiKey, parties.recipientSteward.apiKey, {
      title: 'Things',
      providerAgencyId: parties.providerAgency.id,
      recipientAgencyId: parties.recipientAgency.id,
      purposes: ['RESEARCH'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [{ datasetId: dataset.id, fields: [{ name: 'k' }] }],
    });
    const counts = async () => {
      const text = await scrape();
      return Object.fromEntries(
        ['decide', 'read', 'append', 'render'].map((phase) => [
          phase,
          [
            sample(text, 'broker_data_plane_phase_seconds_count', { phase }) ?? 0,
            sample(text, 'broker_data_plane_phase_seconds_sum', { phase }) ?? 0,
          ],
        ]),
      ) as Record<string, [number, number]>;
    };
    const before = await counts();
    const page = await broker.gql(
      parties.analyst.apiKey,
      '{ phase_things(purpose: RESEARCH, first: 10) { nodes { k } } }',
      undefined,
      '/data/graphql',
    );
    expect(page.errors).toBeUndefined();
    const after = await counts();
    for (const phase of ['decide', 'read', 'append', 'render']) {
      expect({ phase, steps: after[phase][0] - before[phase][0] }).toEqual({ phase, steps: 1 });
      expect(after[phase][1]).toBeGreaterThan(before[phase][1]);
    }
    // A refusal (a name the agreement does not release) takes none of those steps.
    const refused = await broker.gql(
      parties.analyst.apiKey,
      '{ phase_things(purpose: RESEARCH) { nodes { nope } } }',
      undefined,
      '/data/graphql',
    );
    expect(refused.data).toBeNull();
    expect(await counts()).toEqual(after);
  });

  it('counts a decision under its contract reason, NONE when allowed, and never request text', () => {
    expect(decisionOf({ status: 200, json: Buffer.from('{"data":{}}') })).toEqual({
      outcome: 'ALLOW',
      reason: 'NONE',
    });
    expect(
      decisionOf({
        status: 200,
        body: {
          data: null,
          errors: [
            {
              message: 'x',
              extensions: { code: 'FORBIDDEN', reason: 'FIELD_NOT_RELEASED', field: 'dob' },
            },
          ],
        },
      }),
    ).toEqual({ outcome: 'DENY', reason: 'FIELD_NOT_RELEASED' });
  });

  it('has a dashboard whose queries read exactly the metrics the broker exports', async () => {
    const exported = families(await scrape());
    const used = new Set(DASHBOARD.panels.flatMap((p) => p.targets.flatMap((t) => namesIn(t.expr))));
    expect(used.size).toBeGreaterThan(10);
    const family = (name: string) => {
      if (exported.has(name)) return name;
      const base = name.replace(/_(bucket|sum|count)$/, '');
      return exported.get(base) === 'histogram' ? base : null;
    };
    expect([...used].filter((name) => family(name) === null)).toEqual([]);
    // Every metric of the broker's own is on the dashboard.
    const shown = new Set([...used].map(family));
    expect([...exported.keys()].filter((name) => name.startsWith('broker_') && !shown.has(name))).toEqual([]);
    for (const panel of DASHBOARD.panels)
      expect([panel.title, panel.targets.length > 0]).toEqual([panel.title, true]);
  });

  it("lists every metric of the broker's own, with its type, in docs/operations.md", async () => {
    const exported = families(await scrape());
    const operations = readFileSync(join(__dirname, '..', 'docs', 'operations.md'), 'utf8');
    const documented = new Map(
      [...operations.matchAll(/^\| `(broker_[a-z0-9_]+)` +\| (\w+) +\|/gm)].map((m) => [m[1], m[2]]),
    );
    const own = new Map([...exported].filter(([name]) => name.startsWith('broker_')));
    expect(own.size).toBeGreaterThan(10);
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(own));
  });
});
