import {
  type BrokerClient,
  RECIDIVISM_COUNT_AGREEMENTS,
  RECIDIVISM_QUERY,
  type SeededCounty,
  TestBroker,
  recidivismLines,
  recidivismTruth,
  seedCounty,
} from '@broker/testing';

/**
 * The demo answers the county's question (issue 13, DESIGN §5): per re-entry program, how many
 * completers were booked again within 365 days, as counts under counts-only agreements, checked
 * against the generator's ground truth within the noise. The linkage result is written from the
 * generator's truth here, so the test checks the broker's counting; linkage's own accuracy is
 * measured in test/linkage.spec.ts and docs/linkage.md.
 */
describe('demo: the recidivism question', () => {
  let broker: TestBroker;
  let seeded: SeededCounty;
  let analystKey: string;
  let ids: { cohort: string; outcome: string };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'demo_recidivism' });
    const client: BrokerClient = {
      gql: (apiKey, query, variables) => broker.gqlOk(apiKey, query, variables),
      upload: (apiKey, datasetId, contentType, body) => broker.upload(apiKey, datasetId, contentType, body),
    };
    seeded = await seedCounty(client, { operatorKey: broker.operatorKey, seed: 2025, people: 5000 });
    analystKey = seeded.users.find((u) => u.handle === 'analyst:RESEARCH')!.apiKey;
    const idOf = (title: string) => seeded.agreements.find((a) => a.title === title)!.id;
    ids = {
      cohort: idOf(RECIDIVISM_COUNT_AGREEMENTS[0].title),
      outcome: idOf(RECIDIVISM_COUNT_AGREEMENTS[1].title),
    };
    const [run] = await broker.query<{ id: string }>(
      `INSERT INTO linkage_run (status, trigger) VALUES ('SUCCEEDED', 'MANUAL') RETURNING id`,
    );
    for (const dataset of seeded.county.datasets) {
      const keyField = dataset.definition.keyField;
      await broker.query(
        `INSERT INTO linkage_person (run_id, dataset_id, record_key, person_id)
         SELECT $1, $2, k, p FROM unnest($3::text[], $4::bigint[]) AS a(k, p)`,
        [
          run.id,
          seeded.datasets[dataset.slug].id,
          dataset.records.map((r) => String(r[keyField])),
          dataset.truth.map((t) => t + 1),
        ],
      );
    }
    await broker.query(`UPDATE linkage_state SET current_run_id = $1 WHERE id = 1`, [run.id]);
    await broker.query(`ANALYZE linkage_person`);
  }, 600_000);
  afterAll(() => broker.close());

  it('answers per program, within the noise of the ground truth, with no row of either agency', async () => {
    const res = await broker.gql(analystKey, RECIDIVISM_QUERY, ids, '/data/graphql');
    expect(res.errors).toBeUndefined();
    const data = res.data as any;
    expect(data.completers.noise).toBe(2);
    expect(data.rebooked.noise).toBe(2);
    const lines = recidivismLines(data);
    const truth = recidivismTruth(seeded.county);
    for (const [program, t] of truth) {
      const line = lines.find((l) => l.program === program);
      for (const [shown, actual] of [
        [line?.completers ?? null, t.completers],
        [line?.rebooked ?? null, t.rebooked],
      ] as const) {
        if (actual >= 5) {
          expect(shown).not.toBeNull();
          expect(Math.abs(shown! - actual)).toBeLessThanOrEqual(2);
        } else {
          expect(shown).toBeNull();
        }
      }
    }
    expect(lines.filter((l) => l.rate !== null).length).toBeGreaterThanOrEqual(3);
    // The research office holds no row under these agreements.
    const rows = await broker.gql(
      analystKey,
      `query($a: ID) { reentry_participation(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { program } } }`,
      { a: ids.cohort },
      '/data/graphql',
    );
    expect(rows.data).toBeNull();
    expect(rows.errors?.[0].extensions?.reason).toBe('ROWS_NOT_GRANTED');
  });
});
