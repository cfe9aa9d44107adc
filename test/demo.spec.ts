import {
  type BrokerClient,
  COUNTY_AGENCIES,
  COUNTY_DATASETS,
  COUNTY_PROPOSAL_AWAITING_OVERSIGHT,
  COUNTY_PURPOSES,
  COUNTY_RETENTION,
  COUNTY_USERS,
  type SeededCounty,
  TestBroker,
  seedCounty,
} from '@broker/testing';

/** The demo's seeding, run against an in-process broker through the same public API `npm run demo` uses. */
describe('demo county seeding', () => {
  let broker: TestBroker;
  let seeded: SeededCounty;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'demo' });
    const client: BrokerClient = {
      gql: (apiKey, query, variables) => broker.gqlOk(apiKey, query, variables),
      upload: (apiKey, datasetId, contentType, body) => broker.upload(apiKey, datasetId, contentType, body),
    };
    seeded = await seedCounty(client, {
      operatorKey: broker.operatorKey,
      seed: 11,
      people: 300,
      batchSize: 200,
    });
  });
  afterAll(() => broker.close());

  it('creates the agencies, purposes and one user per demo role, each key signing in as its user', async () => {
    const { agencies, purposes } = await broker.gqlOk(
      broker.operatorKey,
      '{ agencies { id name kind } purposes { code } }',
    );
    expect(agencies.map((a: { name: string }) => a.name).sort()).toEqual(
      Object.values(COUNTY_AGENCIES)
        .map((a) => a.name)
        .sort(),
    );
    expect(purposes.map((p: { code: string }) => p.code).sort()).toEqual(
      COUNTY_PURPOSES.map((p) => p.code).sort(),
    );

    expect(seeded.users.map((u) => u.handle)).toEqual(COUNTY_USERS.map((u) => u.handle));
    for (const user of seeded.users) {
      const { me } = await broker.gqlOk(user.apiKey, '{ me { id email role agency { id name } } }');
      expect(me).toEqual({
        id: user.id,
        email: user.email,
        role: user.role,
        agency: { id: seeded.agencies[user.agency].id, name: COUNTY_AGENCIES[user.agency].name },
      });
    }
    expect(new Set(seeded.users.map((u) => u.role))).toEqual(new Set(['STEWARD', 'ANALYST', 'AUDITOR']));
  });

  it('registers the four datasets under their providers, with identity roles for linkage', async () => {
    const analyst = seeded.users.find((u) => u.handle === 'analyst:RESEARCH')!;
    const { datasets } = await broker.gqlOk(
      analyst.apiKey,
      '{ datasets { id slug keyField subjectField provider { name } fields { name type classification identity required } } }',
    );
    expect(datasets.map((d: { slug: string }) => d.slug).sort()).toEqual(
      COUNTY_DATASETS.map((d) => d.slug).sort(),
    );
    for (const definition of COUNTY_DATASETS) {
      const dataset = datasets.find((d: { slug: string }) => d.slug === definition.slug);
      const provider = seeded.datasets[definition.slug].provider;
      expect(dataset.id).toBe(seeded.datasets[definition.slug].id);
      expect(dataset.provider.name).toBe(COUNTY_AGENCIES[provider].name);
      expect(dataset.keyField).toBe(definition.keyField);
      expect(dataset.subjectField).toBe(definition.subjectField);
      expect(
        dataset.fields.map((f: { name: string; identity: string | null }) => [f.name, f.identity]),
      ).toEqual(definition.fields.map((f) => [f.name, f.identity ?? null]));
    }
  });

  it('uploads every generated record, in batches, through the REST ingest route', async () => {
    let total = 0;
    for (const dataset of seeded.county.datasets) {
      const [{ n }] = await broker.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM records.${dataset.slug}`,
      );
      expect({ slug: dataset.slug, n }).toEqual({ slug: dataset.slug, n: dataset.records.length });
      expect(seeded.datasets[dataset.slug]).toMatchObject({
        records: dataset.records.length,
        inserted: dataset.records.length,
        updated: 0,
      });
      total += n;
    }
    // 300 people: a few hundred records, with people recurring across the agencies.
    expect(total).toBeGreaterThan(300);
    expect(seeded.county.datasets.every((d) => d.records.length > 0)).toBe(true);

    // Values survive the CSV round trip: accents, apostrophes, nulls, booleans, dates.
    const bookings = seeded.county.datasets.find((d) => d.slug === 'jail_bookings')!;
    const sample = bookings.records[0];
    const [stored] = await broker.query<Record<string, unknown>>(
      `SELECT booking_id, first_name, middle_name, last_name, to_char(dob, 'YYYY-MM-DD') AS dob, ssn, released,
              age_at_booking FROM records.jail_bookings WHERE booking_id = $1`,
      [sample.booking_id],
    );
    expect(stored).toEqual({
      booking_id: sample.booking_id,
      first_name: sample.first_name,
      middle_name: sample.middle_name,
      last_name: sample.last_name,
      dob: sample.dob,
      ssn: sample.ssn,
      released: sample.released,
      age_at_booking: sample.age_at_booking,
    });
    const courts = seeded.county.datasets.find((d) => d.slug === 'court_cases')!;
    const accented = courts.records.filter((r) => /[^\u0020-\u007e]/.test(r.last_name as string));
    expect(accented.length).toBeGreaterThan(0);
    const names = await broker.query<{ last_name: string }>(
      `SELECT last_name FROM records.court_cases WHERE case_id = ANY($1)`,
      [accented.map((r) => r.case_id)],
    );
    expect(names.map((r) => r.last_name).sort()).toEqual(accented.map((r) => r.last_name as string).sort());
  });

  it('puts the recidivism scenario in force: research reads reduced records; probation reads no CBO records', async () => {
    const key = (handle: string) => seeded.users.find((u) => u.handle === handle)!.apiKey;
    const agreements = await broker.gqlOk(
      key('auditor:OVERSIGHT'),
      '{ agreements { title status oversightRequired inForceVersion } }',
    );
    // Seven in force (five, and the two counts-only agreements of the recidivism question), each
    // signed off by the oversight board where it needs it; one awaits it.
    expect(agreements.agreements).toHaveLength(8);
    const inForce = agreements.agreements.filter((a: { inForceVersion: number | null }) => a.inForceVersion);
    expect(inForce).toHaveLength(7);
    expect(inForce.every((a: { status: string }) => a.status === 'ACTIVE')).toBe(true);
    expect(agreements.agreements.find((a: { inForceVersion: number | null }) => !a.inForceVersion)).toEqual({
      title: COUNTY_PROPOSAL_AWAITING_OVERSIGHT.title,
      status: 'PROPOSED',
      oversightRequired: true,
      inForceVersion: null,
    });
    const rowsOf = (title: string) => seeded.agreements.find((a) => a.title === title)!.id;
    const participationRows = rowsOf('Re-entry program outcomes for recidivism evaluation');

    const research = await broker.gql(
      key('analyst:RESEARCH'),
      `query($a: ID) { reentry_participation(purpose: RECIDIVISM_EVALUATION, agreement: $a, first: 5) { nodes { program completed dob_year last_name_hash } } }`,
      { a: participationRows },
      '/data/graphql',
    );
    expect(research.errors).toBeUndefined();
    expect(research.data!.reentry_participation.nodes).toHaveLength(5);
    expect(research.data!.reentry_participation.nodes[0].last_name_hash).toMatch(/^[0-9a-f]{64}$/);

    const names = await broker.gql(
      key('analyst:RESEARCH'),
      `query($a: ID) { reentry_participation(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { last_name } } }`,
      { a: participationRows },
      '/data/graphql',
    );
    expect(names.data).toBeNull();
    expect(names.errors?.[0].extensions?.code).toBe('FORBIDDEN');

    const probation = await broker.gql(
      key('analyst:PROBATION'),
      `{ reentry_participation(purpose: SUPERVISION) { nodes { program } } }`,
      undefined,
      '/data/graphql',
    );
    expect(probation.data).toBeNull();
    expect(probation.errors?.[0].extensions?.code).toBe('FORBIDDEN');

    const felonies = await broker.gql(
      key('analyst:PROBATION'),
      `{ jail_bookings(purpose: SUPERVISION, first: 10000) { nodes { charge_severity last_name } } }`,
      undefined,
      '/data/graphql',
    );
    const severities = new Set(
      felonies.data!.jail_bookings.nodes.map((n: { charge_severity: string }) => n.charge_severity),
    );
    expect([...severities]).toEqual(['FELONY']);

    // Probation releases counts only: research groups its supervision by risk level, never reads rows.
    const counts = await broker.gql(
      key('analyst:RESEARCH'),
      `{ probation_supervision_aggregate(purpose: RECIDIVISM_EVALUATION, groupBy: [risk_level]) {
           groups { key count suppressed } } }`,
      undefined,
      '/data/graphql',
    );
    expect(counts.errors).toBeUndefined();
    const groups = counts.data!.probation_supervision_aggregate.groups as { key: { risk_level: string } }[];
    // Counts only, perturbed: a risk level with fewer people than the minimum cell size is left out.
    expect(groups.length).toBeGreaterThan(0);
    for (const g of groups) expect(['HIGH', 'LOW', 'MODERATE']).toContain(g.key.risk_level);
    const rows = await broker.gql(
      key('analyst:RESEARCH'),
      `{ probation_supervision(purpose: RECIDIVISM_EVALUATION) { nodes { risk_level } } }`,
      undefined,
      '/data/graphql',
    );
    expect(rows.data).toBeNull();
    expect(rows.errors?.[0].extensions?.code).toBe('FORBIDDEN');
  });

  it('shows the county on the public register: the agreements in force, not the one awaiting oversight', async () => {
    const res = await broker.http.inject({ method: 'GET', url: '/api/register' });
    const register = JSON.parse(res.body) as {
      agreements: { title: string; approvals: { agency: string; oversight: boolean }[] }[];
    };
    expect(register.agreements.map((a) => a.title).sort()).toEqual(
      seeded.agreements.map((a) => a.title).sort(),
    );
    for (const agreement of register.agreements) {
      expect(agreement.approvals.filter((a) => a.oversight).map((a) => a.agency)).toEqual([
        COUNTY_AGENCIES.OVERSIGHT.name,
      ]);
    }
    const page = await broker.http.inject({ method: 'GET', url: '/register' });
    expect(page.body).not.toContain(COUNTY_PROPOSAL_AWAITING_OVERSIGHT.title);
    const datasets = await broker.query<{ slug: string; retention_days: number }>(
      `SELECT slug, retention_days FROM dataset WHERE retention_days IS NOT NULL`,
    );
    expect(datasets).toEqual([
      { slug: COUNTY_RETENTION.dataset, retention_days: COUNTY_RETENTION.retentionDays },
    ]);
  });
});
