import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AuditAction, AuditService, verifyChain } from '@broker/audit';
import { TestBroker } from '@broker/testing';
import { databaseToVerify, knownHeadsOf, runAuditVerify } from '../scripts/audit-verify';

describe('npm run audit:verify (runAuditVerify) and batched verification', () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'audit_verify' });
    const audit = broker.app.get(AuditService);
    // Whatever else the broker recorded at start stays in the chain; these come after it.
    for (let i = 0; i < 23; i++) {
      await audit.append({ action: AuditAction.LINKAGE_RUN, decision: 'ALLOW', rowCount: i });
    }
  });
  afterAll(() => broker.close());

  const total = async () =>
    Number((await broker.query<{ seq: string }>(`SELECT seq FROM audit_head`))[0].seq);

  /** Verifies with a bare pg client in one snapshot, as the script does, with a given batch size. */
  async function verifyInBatches(batchSize: number) {
    const client = new Client({ connectionString: broker.config.DATABASE_URL });
    await client.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      return await verifyChain(
        async (sql, params) => (await client.query<Record<string, unknown>>(sql, params)).rows,
        { batchSize },
      );
    } finally {
      await client.end();
    }
  }

  it('reports a valid chain with exit code 0', async () => {
    const n = await total();
    expect(n).toBeGreaterThanOrEqual(23);
    expect(await runAuditVerify(broker.config.DATABASE_URL)).toEqual({
      valid: true,
      checked: n,
      firstBrokenSeq: null,
      exitCode: 0,
      message: `audit chain valid: ${n} events checked`,
    });
  });

  it('reads the chain in batches of any size with the same result', async () => {
    const n = await total();
    for (const size of [1, 2, 7, n - 1, n, n + 1]) {
      expect({ size, result: await verifyInBatches(size) }).toEqual({
        size,
        result: { valid: true, checked: n, firstBrokenSeq: null },
      });
    }
  });

  it('checks the log against heads written down earlier (--head SEQ:HASH)', async () => {
    const [head] = await broker.query<{ seq: string; hash: string }>(`SELECT seq, hash FROM audit_head`);
    const n = Number(head.seq);
    expect(knownHeadsOf(['--head', `${n}:${head.hash.toUpperCase()}`, `--head=0:${'0'.repeat(64)}`])).toEqual(
      [
        { seq: n, hash: head.hash },
        { seq: 0, hash: '0'.repeat(64) },
      ],
    );
    for (const args of [['--head'], ['--head', `${n}:abc`], ['--heads', `${n}:${head.hash}`], [`${n}`]]) {
      expect(() => knownHeadsOf(args)).toThrow(/--head/);
    }
    expect(
      await runAuditVerify(broker.config.DATABASE_URL, knownHeadsOf(['--head', `${n}:${head.hash}`])),
    ).toMatchObject({ valid: true, exitCode: 0 });
    // A head the log never reached: everything the log holds is intact, the rest is missing.
    expect(await runAuditVerify(broker.config.DATABASE_URL, [{ seq: n + 5, hash: head.hash }])).toEqual({
      valid: false,
      checked: n,
      firstBrokenSeq: n + 1,
      exitCode: 1,
      message: `audit chain BROKEN at seq ${n + 1} (${n} events checked)`,
    });
    // Another hash at the head's seq: the log was resealed at that seq or before.
    expect(
      await runAuditVerify(broker.config.DATABASE_URL, [{ seq: n, hash: 'f'.repeat(64) }]),
    ).toMatchObject({
      valid: false,
      firstBrokenSeq: n,
      exitCode: 1,
    });
  });

  it('reports a broken chain with exit code 1, wherever the break falls in the batches', async () => {
    const n = await total();
    const target = n - 8;
    await broker.app.get(DataSource).transaction(async (manager) => {
      await manager.query('ALTER TABLE audit_event DISABLE TRIGGER USER');
      await manager.query(`UPDATE audit_event SET decision = 'DENY' WHERE seq = $1`, [target]);
      await manager.query('ALTER TABLE audit_event ENABLE TRIGGER USER');
    });
    expect(await runAuditVerify(broker.config.DATABASE_URL)).toEqual({
      valid: false,
      checked: target - 1,
      firstBrokenSeq: target,
      exitCode: 1,
      message: `audit chain BROKEN at seq ${target} (${target - 1} events checked)`,
    });
    for (const size of [1, 5, target - 1, target, n]) {
      expect((await verifyInBatches(size)).firstBrokenSeq).toBe(target);
    }
  });

  it('fails, rather than reporting on anything, when the database cannot be read', async () => {
    const url = new URL(broker.config.DATABASE_URL);
    url.pathname = '/broker_no_such_database';
    await expect(runAuditVerify(url.toString())).rejects.toThrow(/does not exist/);
  });

  it("verifies the demo's database after npm run demo without settings; DATABASE_URL wins when set", () => {
    const demo = `# Written by npm run demo\nBROKER='http://127.0.0.1:3000'\nDATABASE_URL='postgres://postgres@127.0.0.1:5432/broker_demo'\n`;
    expect(databaseToVerify({}, demo)).toEqual({
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/broker_demo',
      source: "the demo's, from demo.env",
    });
    expect(databaseToVerify({ DATABASE_URL: 'postgres://h/other' }, demo)).toEqual({
      databaseUrl: 'postgres://h/other',
      source: 'DATABASE_URL',
    });
    expect(databaseToVerify({}, null)).toEqual({
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/broker',
      source: 'the default',
    });
  });
});
