import fc from 'fast-check';
import { Client } from 'pg';
import { AuditAction, AuditService, ReleaseIndexer, releaseDigest, verifyChain } from '@broker/audit';
import { TestBroker } from '@broker/testing';
import { runAuditVerify } from '../scripts/audit-verify';

/**
 * A release's record list is stored beside its event (`release_record`, copied later into
 * `release_index`), and the event seals only its digest. Subject access reports name whom a release
 * returned from those lists, so verification checks every list against its event: a list changed,
 * removed, added, moved to another dataset, or copied wrongly into the index breaks the chain at that
 * event, as a changed event does.
 */
describe('audit verification: release lists against the digests the chain seals', () => {
  let broker: TestBroker;
  let datasetId: string;
  let otherDatasetId: string;
  /** The appended releases: their event's seq and their list, as stored. */
  const releases: { seq: number; rids: string }[] = [];
  /** An event with no release, after the first releases. */
  let plainSeq: number;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'audit_verify_releases' });
    const agency = await broker.createAgency('Provider');
    const steward = await broker.createUser({ agencyId: agency.id, role: 'STEWARD' });
    const dataset = (name: string) =>
      broker.registerDataset(steward.apiKey, {
        slug: name,
        title: name,
        keyField: 'k',
        fields: [{ name: 'k', type: 'STRING', classification: 'NON_SENSITIVE' }],
      });
    datasetId = (await dataset('released_things')).id;
    otherDatasetId = (await dataset('other_things')).id;
    const audit = broker.app.get(AuditService);
    const lists = ['{1}', '{5,3,9007199254740993}', '{42,7,1000000000000000000}', '{2,3}'];
    for (const [i, rids] of lists.entries()) {
      const [{ seq }] = await audit.appendGroup([
        {
          action: AuditAction.QUERY,
          decision: 'ALLOW',
          datasetId,
          rowCount: rids.split(',').length,
          details: { releaseDigest: releaseDigest(rids) },
          release: { datasetId, rids },
        },
      ]);
      releases.push({ seq, rids });
      if (i === 1) {
        [{ seq: plainSeq }] = await audit.appendGroup([
          { action: AuditAction.AGGREGATE, decision: 'ALLOW', datasetId, rowCount: 3 },
        ]);
      }
    }
    // Every list copied into the index, as the broker does after each release.
    await broker.app.get(ReleaseIndexer).catchUp();
  });
  afterAll(() => broker.close());

  /**
   * Runs `tamper` as the database's owner could (triggers and foreign keys off), verifies in the
   * same transaction, and rolls it all back.
   */
  async function verifyTampered(tamper: string, params: unknown[] = []) {
    const client = new Client({ connectionString: broker.config.DATABASE_URL });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL session_replication_role = replica`);
      await client.query(tamper, params);
      return await verifyChain(async (sql, p) => (await client.query<Record<string, unknown>>(sql, p)).rows, {
        batchSize: 2,
      });
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
  }

  const head = async () => Number((await broker.query<{ seq: string }>(`SELECT seq FROM audit_head`))[0].seq);
  const brokenAt = (seq: number) => ({ valid: false, checked: seq - 1, firstBrokenSeq: seq });

  it('finds the chain valid with its release lists and their copies in the index', async () => {
    const n = await head();
    expect(await verifyTampered('SELECT 1')).toEqual({ valid: true, checked: n, firstBrokenSeq: null });
    await expect(runAuditVerify(broker.config.DATABASE_URL)).resolves.toMatchObject({
      valid: true,
      exitCode: 0,
    });
  });

  it('breaks at a release whose list was changed, shortened, lengthened or reordered', async () => {
    for (const [i, list] of [
      [0, '{2}'],
      [1, '{5,3}'],
      [2, '{42,7,1000000000000000000,11}'],
      [2, '{7,42,1000000000000000000}'],
    ] as const) {
      const { seq } = releases[i];
      expect(
        await verifyTampered(`UPDATE release_record SET rids = $2::bigint[] WHERE audit_seq = $1`, [
          seq,
          list,
        ]),
      ).toEqual(brokenAt(seq));
    }
  });

  it('breaks at a release whose list was removed, or moved to another dataset', async () => {
    const { seq } = releases[2];
    expect(await verifyTampered(`DELETE FROM release_record WHERE audit_seq = $1`, [seq])).toEqual(
      brokenAt(seq),
    );
    // Removed with its copy in the index too.
    const first = releases[0].seq;
    expect(
      await verifyTampered(
        `WITH i AS (DELETE FROM release_index WHERE audit_seq = $1) DELETE FROM release_record WHERE audit_seq = $1`,
        [first],
      ),
    ).toEqual(brokenAt(first));
    // Moved with its copy in the index: only the event's own dataset tells.
    expect(
      await verifyTampered(
        `WITH i AS (UPDATE release_index SET dataset_id = $2 WHERE audit_seq = $1)
         UPDATE release_record SET dataset_id = $2 WHERE audit_seq = $1`,
        [seq, otherDatasetId],
      ),
    ).toEqual(brokenAt(seq));
  });

  it('breaks at an event that released nothing but now has a list, and at a list of no event', async () => {
    expect(
      await verifyTampered(
        `INSERT INTO release_record (audit_seq, dataset_id, rids) VALUES ($1, $2, '{1}')`,
        [plainSeq, datasetId],
      ),
    ).toEqual(brokenAt(plainSeq));
    const n = await head();
    expect(
      await verifyTampered(
        `INSERT INTO release_record (audit_seq, dataset_id, rids) VALUES ($1, $2, '{1}')`,
        [n + 7, datasetId],
      ),
    ).toEqual({ valid: false, checked: n, firstBrokenSeq: n + 7 });
    // A copy in the index of a list that does not exist.
    expect(
      await verifyTampered(`INSERT INTO release_index (audit_seq, dataset_id, rids) VALUES ($1, $2, '{1}')`, [
        n + 9,
        datasetId,
      ]),
    ).toEqual({ valid: false, checked: n, firstBrokenSeq: n + 9 });
  });

  it('breaks at a release whose copy in the index is not its list', async () => {
    const { seq } = releases[1];
    expect(
      await verifyTampered(`UPDATE release_index SET rids = '{5,3}' WHERE audit_seq = $1`, [seq]),
    ).toEqual(brokenAt(seq));
    expect(
      await verifyTampered(`UPDATE release_index SET dataset_id = $2 WHERE audit_seq = $1`, [
        seq,
        otherDatasetId,
      ]),
    ).toEqual(brokenAt(seq));
    // The index may lag behind the record (the last lists not copied yet), never skip a list.
    const last = releases[3].seq;
    const n = await head();
    expect(
      await verifyTampered(`DELETE FROM release_index WHERE audit_seq >= $1`, [releases[2].seq]),
    ).toEqual({
      valid: true,
      checked: n,
      firstBrokenSeq: null,
    });
    expect(await verifyTampered(`DELETE FROM release_index WHERE audit_seq = $1`, [seq])).toEqual(
      brokenAt(seq),
    );
    expect(
      await verifyTampered(`DELETE FROM release_index WHERE audit_seq IN ($1, $2)`, [releases[2].seq, last]),
    ).toEqual({ valid: true, checked: n, firstBrokenSeq: null });
  });

  it('detects any edit of any release list, wherever it falls in the batches (property)', async () => {
    const edit = fc.oneof(
      fc.record({
        kind: fc.constant('replace' as const),
        at: fc.nat(),
        id: fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n),
      }),
      fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
      fc.record({
        kind: fc.constant('add' as const),
        at: fc.nat(),
        id: fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: releases.length - 1 }), edit, async (which, change) => {
        const { seq, rids } = releases[which];
        const ids = rids.slice(1, -1).split(',');
        const at = change.at % (ids.length + 1);
        const edited = [...ids];
        if (change.kind === 'replace') edited[at % ids.length] = String(change.id);
        if (change.kind === 'drop') edited.splice(at % ids.length, 1);
        if (change.kind === 'add') edited.splice(at, 0, String(change.id));
        const list = `{${edited.join(',')}}`;
        fc.pre(list !== rids);
        expect(
          await verifyTampered(`UPDATE release_record SET rids = $2::bigint[] WHERE audit_seq = $1`, [
            seq,
            list,
          ]),
        ).toEqual(brokenAt(seq));
      }),
      { numRuns: 40 },
    );
  });
});
