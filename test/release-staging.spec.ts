import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { Client } from 'pg';
import {
  AuditAction,
  type AuditEventInput,
  AuditService,
  ReleaseStaging,
  STAGED_RELEASE_TTL_MINUTES,
  releaseDigest,
  verifyChain,
} from '@broker/audit';
import { Database } from '@broker/core';
import { TestBroker } from '@broker/testing';

/**
 * An export's release list is staged by PostgreSQL from the export's snapshot (ReleaseStaging) and
 * moved into release_record by the append of its EXPORT event: the list never passes through the
 * broker's memory. What is staged must be exactly the rows the snapshot sees; what the append
 * records must be exactly what was staged, sealed by a digest the verifier accepts; and an append
 * whose list is gone or another dataset's must write nothing at all.
 */
describe('release lists staged by PostgreSQL (exports)', () => {
  let broker: TestBroker;
  let audit: AuditService;
  let staging: ReleaseStaging;
  let db: Database;
  let datasetId: string;
  let otherDatasetId: string;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'release_staging' });
    audit = broker.app.get(AuditService);
    staging = broker.app.get(ReleaseStaging);
    db = broker.app.get(Database);
    const agency = await broker.createAgency('Provider');
    const steward = await broker.createUser({ agencyId: agency.id, role: 'STEWARD' });
    const dataset = (name: string) =>
      broker.registerDataset(steward.apiKey, {
        slug: name,
        title: name,
        keyField: 'k',
        fields: [{ name: 'k', type: 'STRING', classification: 'NON_SENSITIVE' }],
      });
    datasetId = (await dataset('staged_things')).id;
    otherDatasetId = (await dataset('other_staged_things')).id;
    await broker.query(`CREATE TABLE public.staging_probe (rid bigint NOT NULL, tag text NOT NULL)`);
  });
  afterAll(() => broker.close());

  /** A snapshot as an export holds one: REPEATABLE READ on the readers' pool. */
  const snapshot = () => db.begin({ reader: true, isolation: 'REPEATABLE READ', with: 'SELECT 1' });
  const stagedRows = () => broker.query<{ id: string }>(`SELECT id::text FROM release_staged`);
  const head = async () => (await broker.query<{ seq: string }>(`SELECT seq::text FROM audit_head`))[0].seq;
  const exportEvent = (staged: string, dataset = datasetId, digest = 'x'): AuditEventInput => ({
    action: AuditAction.EXPORT,
    decision: 'ALLOW',
    datasetId,
    rowCount: 1,
    details: { releaseDigest: digest },
    release: { datasetId: dataset, staged },
  });

  it("stages exactly the ids the snapshot sees, with PostgreSQL's digest of the list as Node computes it", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }), { maxLength: 40 }),
        fc.array(fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }), { maxLength: 10 }),
        async (before, after) => {
          const tag = randomUUID();
          for (const rid of before) {
            await broker.query(`INSERT INTO public.staging_probe VALUES ($1, $2)`, [rid.toString(), tag]);
          }
          const tx = await snapshot();
          try {
            // Written after the snapshot was taken, before the list is staged: not in it.
            for (const rid of after) {
              await broker.query(`INSERT INTO public.staging_probe VALUES ($1, $2)`, [rid.toString(), tag]);
            }
            const staged = await staging.stage(tx, datasetId, {
              text: `SELECT p.rid AS "_rid" FROM public.staging_probe p WHERE p.tag = $1`,
              values: [tag],
            });
            const [row] = await broker.query<{ rids: string; dataset_id: string }>(
              `SELECT rids::text, dataset_id::text FROM release_staged WHERE id = $1`,
              [staged.staged],
            );
            const listed = row.rids === '{}' ? [] : row.rids.slice(1, -1).split(',');
            expect(listed.sort()).toEqual(before.map(String).sort());
            expect(staged.rowCount).toBe(before.length);
            expect(staged.digest).toBe(releaseDigest(row.rids));
            expect(row.dataset_id).toBe(datasetId);
            await staging.discard(staged.staged);
          } finally {
            await tx.end();
          }
        },
      ),
      { numRuns: 15 },
    );
    expect(await stagedRows()).toEqual([]);
  });

  it('records the staged list with its event, deletes it, and the chain verifies', async () => {
    const tag = randomUUID();
    await broker.query(`INSERT INTO public.staging_probe SELECT g, $1 FROM generate_series(1000, 1999) g`, [
      tag,
    ]);
    const tx = await snapshot();
    const staged = await staging.stage(tx, datasetId, {
      text: `SELECT p.rid AS "_rid" FROM public.staging_probe p WHERE p.tag = $1`,
      values: [tag],
    });
    await tx.end();
    // Among page releases, as the data plane's groups hold them.
    const page: AuditEventInput = {
      action: AuditAction.QUERY,
      decision: 'ALLOW',
      datasetId,
      rowCount: 2,
      details: { releaseDigest: releaseDigest('{7,8}') },
      release: { datasetId, rids: '{7,8}' },
    };
    const sealed = await audit.appendGroup([
      page,
      exportEvent(staged.staged, datasetId, staged.digest),
      page,
    ]);
    const records = await broker.query<{ audit_seq: string; n: number; dataset_id: string }>(
      `SELECT audit_seq::text, cardinality(rids) AS n, dataset_id::text FROM release_record
        WHERE audit_seq = ANY($1::bigint[]) ORDER BY audit_seq`,
      [sealed.map((s) => s.seq)],
    );
    expect(records).toEqual(
      sealed.map((s, i) => ({ audit_seq: String(s.seq), n: i === 1 ? 1000 : 2, dataset_id: datasetId })),
    );
    expect(await stagedRows()).toEqual([]);
    const client = new Client({ connectionString: broker.config.DATABASE_URL });
    await client.connect();
    try {
      const verified = await verifyChain(
        async (sql, p) => (await client.query<Record<string, unknown>>(sql, p)).rows,
      );
      expect(verified).toMatchObject({ valid: true, firstBrokenSeq: null });
    } finally {
      await client.end();
    }
  });

  it('writes nothing for a list that is gone or is another dataset’s, and keeps the other dataset’s list', async () => {
    const tx = await snapshot();
    const staged = await staging.stage(tx, datasetId, { text: `SELECT 5::bigint AS "_rid"`, values: [] });
    await tx.end();
    const seq = await head();
    const records = async () =>
      (await broker.query<{ n: number }>(`SELECT count(*)::int AS n FROM release_record`))[0].n;
    const recorded = await records();
    await expect(audit.appendGroup([exportEvent(randomUUID())])).rejects.toThrow(/null value|not-null/);
    await expect(audit.appendGroup([exportEvent(staged.staged, otherDatasetId)])).rejects.toThrow(
      /null value|not-null/,
    );
    expect(await head()).toBe(seq);
    expect(await records()).toBe(recorded);
    expect((await stagedRows()).map((r) => r.id)).toEqual([staged.staged]);
    await staging.discard(staged.staged);
    expect(await stagedRows()).toEqual([]);
  });

  it('refuses a release that names a staged list badly before any statement', async () => {
    const seq = await head();
    const bad = [
      { datasetId, staged: 'not-a-uuid' },
      { datasetId, staged: "'; DROP TABLE release_staged; --" },
      { datasetId, staged: randomUUID(), rids: '{1}' },
      { datasetId, staged: 42 },
    ];
    for (const release of bad) {
      await expect(
        audit.appendGroup([{ ...exportEvent(randomUUID()), release: release as never }]),
      ).rejects.toThrow(TypeError);
    }
    expect(await head()).toBe(seq);
  });

  it(`sweeps only the lists no append took within ${STAGED_RELEASE_TTL_MINUTES} minutes`, async () => {
    const tx = await snapshot();
    const fresh = await staging.stage(tx, datasetId, { text: `SELECT 1::bigint AS "_rid"`, values: [] });
    const old = await staging.stage(tx, datasetId, { text: `SELECT 2::bigint AS "_rid"`, values: [] });
    await tx.end();
    await broker.query(
      `UPDATE release_staged SET staged_at = clock_timestamp() - make_interval(mins => $2 + 1) WHERE id = $1`,
      [old.staged, STAGED_RELEASE_TTL_MINUTES],
    );
    expect(await staging.sweep()).toBe(1);
    expect((await stagedRows()).map((r) => r.id)).toEqual([fresh.staged]);
    await staging.discard(fresh.staged);
  });

  it("reads with the readers' settings (time limit, date style), as the export's own reader does", async () => {
    const tx = await snapshot();
    try {
      const staged = await staging.stage(tx, datasetId, {
        text: `SELECT 9::bigint AS "_rid"
                WHERE current_setting('statement_timeout') = '30s'
                  AND (date '2020-01-02')::text = '2020-01-02'`,
        values: [],
      });
      expect(staged.rowCount).toBe(1);
      await staging.discard(staged.staged);
    } finally {
      await tx.end();
    }
  });

  it('stages nothing from a snapshot that has ended, and refuses a dataset that is not a uuid', async () => {
    const tx = await snapshot();
    await tx.end();
    await expect(
      staging.stage(tx, datasetId, { text: `SELECT 1::bigint AS "_rid"`, values: [] }),
    ).rejects.toThrow();
    const open = await snapshot();
    try {
      await expect(
        staging.stage(open, "x'::uuid; --", { text: `SELECT 1::bigint AS "_rid"`, values: [] }),
      ).rejects.toThrow(TypeError);
    } finally {
      await open.end();
    }
    expect(await stagedRows()).toEqual([]);
  });
});
