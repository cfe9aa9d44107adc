import { Client } from 'pg';
import { TestBroker } from '@broker/testing';
import { DataSource } from 'typeorm';
import { AgreementService, RecordIndexKeeper } from '@broker/agreements';
import { rowFilterPredicate } from '@broker/policy';
import { DatasetService, INDEX_WAIT_MS, populationIndexes } from '@broker/registry';
import { DeclaredIndexes1765100000000 } from '../libs/core/src/database/migrations/1765100000000-declared-indexes';

/**
 * Runs `work` while another session holds a snapshot (an open REPEATABLE READ transaction that has
 * read), as a long export does: a concurrent index build waits for it to end.
 */
async function whileSnapshotHeld<T>(databaseUrl: string, work: () => Promise<T>): Promise<T> {
  const holder = new Client({ connectionString: databaseUrl });
  await holder.connect();
  try {
    await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await holder.query('SELECT count(*) FROM pg_class');
    return await work();
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end();
  }
}

/** Polls `probe` until it holds (at most 30 s). */
async function eventually(probe: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600 && !(await probe()); i++) await new Promise((r) => setTimeout(r, 50));
  expect(await probe()).toBe(true);
}

const UPDATE = `mutation($id: ID!, $input: UpdateDatasetInput!) { updateDataset(id: $id, input: $input) { title } }`;

/** A steward declares more indexes after registration, for the filters and orderings analysts use. */
describe('updateDataset: indexes', () => {
  let broker: TestBroker;
  let steward: { apiKey: string };
  let otherSteward: { apiKey: string };
  let analyst: { apiKey: string };
  let dataset: { id: string };

  // Each index of the record table, as its column list.
  const indexes = async () =>
    (
      await broker.query<{ def: string; valid: boolean }>(
        `SELECT pg_get_indexdef(i.indexrelid) AS def, i.indisvalid AS valid
           FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'records' AND c.relname = 'cases'`,
      )
    )
      .map((r) => `${r.def.replace(/^.* USING btree /, '')}${r.valid ? '' : ' INVALID'}`)
      .sort();

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'dataset_indexes' });
    const parties = await broker.sharingParties('Probation', 'Research', 'RECIDIVISM_EVALUATION');
    steward = parties.providerSteward;
    otherSteward = parties.recipientSteward;
    analyst = parties.analyst;
    dataset = await broker.registerDataset(steward.apiKey, {
      slug: 'cases',
      title: 'Cases',
      keyField: 'case_id',
      fields: [
        { name: 'case_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'officer', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'opened_on', type: 'DATE', classification: 'NON_SENSITIVE' },
      ],
    });
  });
  afterAll(() => broker.close());

  it('builds the declared indexes, valid, and records them in the audit log', async () => {
    const before = await indexes();
    const res = await broker.gql(steward.apiKey, UPDATE, {
      id: dataset.id,
      input: { indexes: [['opened_on'], ['officer', 'opened_on']] },
    });
    expect(res.errors).toBeUndefined();
    const added = (await indexes()).filter((i) => !before.includes(i));
    // Code-point order for strings, and ties broken by the random row id, then the key.
    expect(added).toEqual([
      '(officer COLLATE "C", opened_on, _rid, case_id COLLATE "C")',
      '(opened_on, _rid, case_id COLLATE "C")',
    ]);
    const [event] = await broker.query<{ details: unknown }>(
      `SELECT details FROM audit_event WHERE action = 'DATASET_UPDATED' AND dataset_id = $1 ORDER BY seq DESC LIMIT 1`,
      [dataset.id],
    );
    expect(event.details).toEqual({ indexes: [['opened_on'], ['officer', 'opened_on']] });
    // Declaring one that exists builds nothing more.
    await broker.gqlOk(steward.apiKey, UPDATE, { id: dataset.id, input: { indexes: [['opened_on']] } });
    expect((await indexes()).length).toBe(before.length + 2);
  });

  it('keeps what was declared, and builds a declared index again where a failed build left it invalid', async () => {
    const declared = async () =>
      (
        await broker.query<{ declared_indexes: string[][] }>(
          `SELECT declared_indexes FROM dataset WHERE id = $1`,
          [dataset.id],
        )
      )[0].declared_indexes;
    // Each list once, in the order first declared (the test above declared opened_on twice).
    expect(await declared()).toEqual([['opened_on'], ['officer', 'opened_on']]);
    const name = (
      await broker.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          WHERE pg_get_indexdef(i.indexrelid) LIKE '%records.cases USING btree (officer COLLATE "C", opened_on,%'`,
      )
    )[0].name;
    await broker.query(`DROP INDEX records."${name}"`);
    // What a failed CREATE INDEX CONCURRENTLY leaves: the index, invalid, under the same name.
    await broker.gqlOk(
      steward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: dataset.id, r: [{ case_id: 'c1' }, { case_id: 'c2' }] },
    );
    await expect(
      broker.query(`CREATE UNIQUE INDEX CONCURRENTLY "${name}" ON records.cases ((1))`),
    ).rejects.toThrow(/could not create unique index/);
    expect((await indexes()).filter((i) => i.endsWith('INVALID'))).toHaveLength(1);
    expect(await broker.app.get(DatasetService).ensureDeclaredIndexes()).toEqual({
      present: 1,
      built: 0,
      rebuilt: 1,
      failed: 0,
    });
    expect((await indexes()).filter((i) => i.endsWith('INVALID'))).toEqual([]);
    expect(await indexes()).toContain('(officer COLLATE "C", opened_on, _rid, case_id COLLATE "C")');
  });

  it('takes the indexes declared before they were kept from the audit log (the migration)', async () => {
    await broker.query(`ALTER TABLE dataset DROP COLUMN declared_indexes`);
    const runner = broker.app.get(DataSource).createQueryRunner();
    try {
      await new DeclaredIndexes1765100000000().up(runner);
    } finally {
      await runner.release();
    }
    const [row] = await broker.query<{ declared_indexes: string[][] }>(
      `SELECT declared_indexes FROM dataset WHERE id = $1`,
      [dataset.id],
    );
    // jsonb_agg(DISTINCT) orders as jsonb compares: the two lists, once each.
    expect([...row.declared_indexes].sort()).toEqual([['officer', 'opened_on'], ['opened_on']].sort());
  });

  it('refuses an invalid list with nothing changed, and anyone but the provider steward', async () => {
    const before = await indexes();
    for (const bad of [
      [['nope']],
      [[]],
      [['officer', 'officer', 'officer', 'officer', 'officer']],
      [[null]],
    ]) {
      const res = await broker.gql(steward.apiKey, UPDATE, {
        id: dataset.id,
        input: { title: 'Renamed', indexes: bad },
      });
      expect({ bad, code: res.errors?.[0].extensions?.code }).toEqual({ bad, code: 'BAD_USER_INPUT' });
    }
    const other = await broker.gql(otherSteward.apiKey, UPDATE, {
      id: dataset.id,
      input: { indexes: [['officer']] },
    });
    expect(other.errors?.[0].extensions?.code).toBe('NOT_FOUND');
    const reader = await broker.gql(analyst.apiKey, UPDATE, {
      id: dataset.id,
      input: { indexes: [['officer']] },
    });
    expect(reader.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    expect(await indexes()).toEqual(before);
    const [{ title }] = await broker.query<{ title: string }>(`SELECT title FROM dataset WHERE id = $1`, [
      dataset.id,
    ]);
    expect(title).toBe('Cases');
  });

  it('answers a declaration without waiting for a build held up by an older snapshot, and builds it after', async () => {
    const service = broker.app.get(DatasetService);
    service.indexWaitMs = 200;
    const wanted = '(case_id COLLATE "C", officer COLLATE "C")';
    try {
      // Were the mutation to wait for the build, it would wait for the snapshot, which outlives it.
      const during = await whileSnapshotHeld(broker.config.DATABASE_URL, async () => {
        const res = await broker.gql(steward.apiKey, UPDATE, {
          id: dataset.id,
          input: { indexes: [['case_id', 'officer']] },
        });
        expect(res.errors).toBeUndefined();
        return indexes();
      });
      // Not there yet, or there but not yet valid: the build was waiting.
      expect(during).not.toContain(wanted);
      await eventually(async () => (await indexes()).includes(wanted));
      const [{ declared }] = await broker.query<{ declared: unknown }>(
        `SELECT declared_indexes AS declared FROM dataset WHERE id = $1`,
        [dataset.id],
      );
      expect(declared).toEqual(expect.arrayContaining([['case_id', 'officer']]));
    } finally {
      service.indexWaitMs = INDEX_WAIT_MS;
    }
  });
});

/**
 * The row-filter indexes of the versions in force: built at approval, and brought up to date by
 * every broker as it starts (a version in force before they were built, a build that failed).
 */
describe('record indexes of the agreements in force', () => {
  let broker: TestBroker;
  let agreementId: string;
  let steward: { apiKey: string };

  // The record table's indexes led by `officer` (the row filter's field): definition and validity.
  const officerIndexes = async () =>
    (
      await broker.query<{ name: string; def: string; valid: boolean }>(
        `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def, i.indisvalid AS valid
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
          WHERE n.nspname = 'records' AND t.relname = 'visits'
            AND pg_get_indexdef(i.indexrelid) LIKE '%(officer%' AND i.indpred IS NULL`,
      )
    ).map((r) => ({ ...r, def: r.def.replace(/^.* USING btree /, '') }));
  const EXPECTED = { def: '(officer COLLATE "C", _rid, visit_id COLLATE "C")', valid: true };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'indexes_in_force' });
    const parties = await broker.sharingParties('Sheriff', 'Research', 'RECIDIVISM_EVALUATION');
    steward = parties.providerSteward;
    const dataset = await broker.registerDataset(steward.apiKey, {
      slug: 'visits',
      title: 'Visits',
      keyField: 'visit_id',
      fields: [
        { name: 'visit_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'officer', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    });
    await broker.gqlOk(
      steward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      // Two visits share an officer: a UNIQUE build on the field fails, as a real failed build would.
      { id: dataset.id, r: [1, 2, 3].map((i) => ({ visit_id: `v${i}`, officer: i < 3 ? 'o1' : 'o2' })) },
    );
    agreementId = await broker.activateAgreement(
      parties.providerSteward.apiKey,
      parties.recipientSteward.apiKey,
      {
        title: 'Visits by officer',
        providerAgencyId: parties.providerAgency.id,
        recipientAgencyId: parties.recipientAgency.id,
        purposes: ['RECIDIVISM_EVALUATION'],
        validFrom: '2020-01-01T00:00:00Z',
        validUntil: '2099-01-01T00:00:00Z',
        grants: [
          { datasetId: dataset.id, fields: [{ name: 'visit_id' }], rowFilter: { officer: { $ne: 'o9' } } },
        ],
      },
    );
  });
  afterAll(() => broker.close());

  const ensure = () => broker.app.get(AgreementService).ensureIndexesInForce();

  /**
   * Leaves the officer index as a failed CREATE INDEX CONCURRENTLY leaves it: in the catalog, marked
   * invalid, which CREATE INDEX IF NOT EXISTS would keep as it is. Resolves to its name.
   */
  const failBuild = async () => {
    const [{ name }] = await officerIndexes();
    await broker.query(`DROP INDEX records."${name}"`);
    await expect(
      broker.query(`CREATE UNIQUE INDEX CONCURRENTLY "${name}" ON records.visits (officer)`),
    ).rejects.toThrow(/could not create unique index/);
    expect(await officerIndexes()).toEqual([{ name, def: '(officer)', valid: false }]);
    return name;
  };

  it('are built at approval, and found there afterwards', async () => {
    expect(await officerIndexes()).toEqual([expect.objectContaining(EXPECTED)]);
    // The field's index, and the population's two (the default order and the key, partial on the filter).
    expect(await ensure()).toEqual({ present: 3, built: 0, rebuilt: 0, failed: 0 });
    // Asked for the same dataset twice (a row filter's and a declaration), an index is checked once.
    const [[datasetId, lists]] = [...(await broker.app.get(AgreementService).indexesInForce())];
    expect(lists).toEqual([['officer'], { predicate: `("visits"."officer" COLLATE "C" <> 'o9'::text)` }]);
    expect(
      await broker.app.get(DatasetService).ensureIndexesOf([
        [datasetId, lists],
        [datasetId, [['officer']]],
      ]),
    ).toEqual({ present: 3, built: 0, rebuilt: 0, failed: 0 });
  });

  it('are built when missing, once, however many instances ask at the same time', async () => {
    const [{ name }] = await officerIndexes();
    await broker.query(`DROP INDEX records."${name}"`);
    const both = await Promise.all([ensure(), ensure()]);
    expect(both.map((c) => c.built).sort()).toEqual([0, 1]);
    expect(both.map((c) => c.present).sort()).toEqual([2, 3]);
    expect(await officerIndexes()).toEqual([{ name, ...EXPECTED }]);
  });

  it('are rebuilt when a concurrent build failed and left the index invalid', async () => {
    const name = await failBuild();
    expect(await ensure()).toEqual({ present: 2, built: 0, rebuilt: 1, failed: 0 });
    expect(await officerIndexes()).toEqual([{ name, ...EXPECTED }]);
  });

  it('are built by a broker that starts on a database whose version in force lacks them', async () => {
    const [{ name }] = await officerIndexes();
    await broker.query(`DROP INDEX records."${name}"`);
    const second = await TestBroker.start({
      DATABASE_URL: broker.config.DATABASE_URL,
      BROKER_BOOTSTRAP_TOKEN: broker.operatorKey,
    });
    try {
      // Off the start-up path: it comes shortly after (built concurrently: invalid until it is done).
      for (let i = 0; i < 100 && !(await officerIndexes()).some((ix) => ix.valid); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(await officerIndexes()).toEqual([{ name, ...EXPECTED }]);
    } finally {
      await second.stop();
    }
  });

  it('are repaired without a restart, at the next check', async () => {
    const second = await TestBroker.start({
      DATABASE_URL: broker.config.DATABASE_URL,
      BROKER_BOOTSTRAP_TOKEN: broker.operatorKey,
      RECORD_INDEX_CHECK_MS: '1000',
    });
    try {
      const keeper = second.app.get(RecordIndexKeeper);
      // One pass at a time: asked again while one runs, the keeper answers with that one.
      const [first, again] = [keeper.pass(), keeper.pass()];
      expect(again).toBe(first);
      expect(await first).toEqual({ present: 3, built: 0, rebuilt: 0, failed: 0 });
      // A concurrent build fails after the broker started: nothing but its next check repairs it.
      const name = await failBuild();
      for (let i = 0; i < 100 && !(await officerIndexes())[0]?.valid; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(await officerIndexes()).toEqual([{ name, ...EXPECTED }]);
    } finally {
      await second.stop();
    }
  });

  it('are built beside a population whose index PostgreSQL cannot store, which is counted as failed', async () => {
    // A row filter validation accepts (1,000 values of 20 characters) whose predicate is too large
    // for the catalog row of an index (PostgreSQL: "row is too big"): its indexes fail, and must not
    // hold up the indexes another agreement's population needs on the same dataset.
    const datasets = broker.app.get(DatasetService);
    const [[datasetId, lists]] = [...(await broker.app.get(AgreementService).indexesInForce())];
    const [shape] = (await datasets.shapes([datasetId])).values();
    const big = rowFilterPredicate(
      {
        officer: {
          $in: Array.from({ length: 1000 }, (_, i) => `o${i}-${'x'.repeat(12)}${(i * 7919) % 9973}`),
        },
      },
      shape,
      shape.slug,
    );
    const good = rowFilterPredicate({ officer: { $ne: 'o8' } }, shape, shape.slug);
    const population = async (predicate: string) =>
      (
        await broker.query<{ valid: boolean }>(
          `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE c.relname = ANY($1)`,
          [populationIndexes(shape, predicate, []).map((ix) => ix.name)],
        )
      ).map((r) => r.valid);
    expect(
      await datasets.ensureIndexesOf([[datasetId, [{ predicate: big }, ...lists, { predicate: good }]]]),
    ).toEqual({ present: 3, built: 2, rebuilt: 0, failed: 2 });
    expect(await population(big)).toEqual([]);
    expect(await population(good)).toEqual([true, true]);
    await broker.query(
      `DROP INDEX ${populationIndexes(shape, good, [])
        .map((ix) => ix.qualified)
        .join(', ')}`,
    );
  });

  it('are not asked of a revoked agreement', async () => {
    await broker.gqlOk(
      steward.apiKey,
      `mutation($id: ID!) { revokeAgreement(id: $id, reason: "Ended") { id } }`,
      {
        id: agreementId,
      },
    );
    const [{ name }] = await officerIndexes();
    await broker.query(`DROP INDEX records."${name}"`);
    expect(await ensure()).toEqual({ present: 0, built: 0, rebuilt: 0, failed: 0 });
    expect(await officerIndexes()).toEqual([]);
  });

  it('are built after an approval that did not wait for them, held up by an older snapshot', async () => {
    const service = broker.app.get(DatasetService);
    service.indexWaitMs = 200;
    try {
      const parties = await broker.sharingParties('Jail', 'Courts', 'PROGRAM_EVALUATION');
      const patrols = await broker.registerDataset(parties.providerSteward.apiKey, {
        slug: 'patrols',
        title: 'Patrols',
        keyField: 'patrol_id',
        fields: [
          { name: 'patrol_id', type: 'STRING', classification: 'NON_SENSITIVE' },
          { name: 'unit', type: 'STRING', classification: 'NON_SENSITIVE' },
        ],
      });
      const unitIndexes = () =>
        broker.query<{ valid: boolean }>(
          `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = 'records' AND t.relname = 'patrols'
              AND pg_get_indexdef(i.indexrelid) LIKE '%(unit%'`,
        );
      const during = await whileSnapshotHeld(broker.config.DATABASE_URL, async () => {
        await broker.activateAgreement(parties.providerSteward.apiKey, parties.recipientSteward.apiKey, {
          title: 'Patrols by unit',
          providerAgencyId: parties.providerAgency.id,
          recipientAgencyId: parties.recipientAgency.id,
          purposes: ['PROGRAM_EVALUATION'],
          validFrom: '2020-01-01T00:00:00Z',
          validUntil: '2099-01-01T00:00:00Z',
          grants: [
            { datasetId: patrols.id, fields: [{ name: 'patrol_id' }], rowFilter: { unit: { $ne: 'u9' } } },
          ],
        });
        return unitIndexes();
      });
      expect(during.filter((i) => i.valid)).toEqual([]);
      await eventually(async () => (await unitIndexes()).some((i) => i.valid));
    } finally {
      service.indexWaitMs = INDEX_WAIT_MS;
    }
  });
});
