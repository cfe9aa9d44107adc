import { AuditAction, AuditService, ReleaseIndexer, releaseDigest } from '@broker/audit';
import { TestBroker } from '@broker/testing';

/**
 * A release's list of record ids is written inside the audit append every page waits for: a list
 * that fits a page is kept in its row (no TOAST chunks, no TOAST index entries to write), and a longer
 * one (an export's) is moved out of it as before. Either way it is stored, copied into the index and
 * vouched for by the chain exactly.
 */
describe('release lists: kept in their row when they fit a page', () => {
  let broker: TestBroker;
  let datasetId: string;
  let auditor: { apiKey: string };
  let toast: string;

  const toastChunks = async () =>
    Number((await broker.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${toast}`))[0].n);
  /** `n` distinct row ids as array text, in no particular order, up to 19 digits. */
  const list = (n: number, seed: number) => {
    const ids = new Set<string>();
    let x = BigInt(seed) * 6364136223846793005n + 1442695040888963407n;
    while (ids.size < n) {
      x = (x * 6364136223846793005n + 1442695040888963407n) % 9223372036854775807n;
      ids.add(x.toString());
    }
    return `{${[...ids].join(',')}}`;
  };
  const release = async (rids: string) => {
    const [{ seq }] = await broker.app.get(AuditService).appendGroup([
      {
        action: AuditAction.QUERY,
        decision: 'ALLOW',
        datasetId,
        rowCount: rids.split(',').length,
        details: { releaseDigest: releaseDigest(rids) },
        release: { datasetId, rids },
      },
    ]);
    return seq;
  };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'release_record_inline' });
    auditor = await broker.oversightAuditor();
    const agency = await broker.createAgency('Provider');
    const steward = await broker.createUser({ agencyId: agency.id, role: 'STEWARD' });
    datasetId = (
      await broker.registerDataset(steward.apiKey, {
        slug: 'things',
        title: 'Things',
        keyField: 'k',
        fields: [{ name: 'k', type: 'STRING', classification: 'NON_SENSITIVE' }],
      })
    ).id;
    [{ toast }] = await broker.query<{ toast: string }>(
      `SELECT reltoastrelid::regclass::text AS toast FROM pg_class WHERE oid = 'release_record'::regclass`,
    );
  });
  afterAll(() => broker.close());

  it('is stored by the migration in the row, compressed and moved out only past a page', async () => {
    const [column] = await broker.query<{ storage: string; options: string[] }>(
      `SELECT a.attstorage AS storage, c.reloptions AS options FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid
        WHERE a.attrelid = 'release_record'::regclass AND a.attname = 'rids'`,
    );
    expect(column).toEqual({ storage: 'm', options: ['toast_tuple_target=8160'] });
  });

  it.each([
    [1, true],
    [10, true],
    [1000, true],
    [1100, false],
    [20000, false],
  ])('stores a list of %i ids exactly (in its row: %s)', async (n, inRow) => {
    const rids = list(n, n);
    const chunks = await toastChunks();
    const seq = await release(rids);
    const [stored] = await broker.query<{ rids: string; n: number }>(
      `SELECT rids::text AS rids, cardinality(rids) AS n FROM release_record WHERE audit_seq = $1`,
      [seq],
    );
    expect(stored).toEqual({ rids, n });
    // Kept in its row, or moved out of it into TOAST chunks.
    if (inRow) expect(await toastChunks()).toBe(chunks);
    else expect(await toastChunks()).toBeGreaterThan(chunks);
    // Copied into the index exactly, and vouched for by the chain.
    await broker.app.get(ReleaseIndexer).catchUp();
    const [indexed] = await broker.query<{ rids: string }>(
      `SELECT rids::text AS rids FROM release_index WHERE audit_seq = $1`,
      [seq],
    );
    expect(indexed.rids).toBe(rids);
    expect(await broker.verifyAuditChain(auditor.apiKey)).toMatchObject({
      valid: true,
      firstBrokenSeq: null,
    });
  });
});
