import { DataSource } from 'typeorm';
import { createTestDatabase } from '../../../testing/src/test-database';
import { dropDatabase } from './ensure-database';
import { Database, type TransactionCarrier } from './database';

/** The one transaction helper, against real PostgreSQL. */
describe('Database', () => {
  let url: string;
  let dataSource: DataSource;
  let db: Database;
  const count = async () =>
    Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM tx_probe`))[0].n);
  const backends = async () =>
    Number(
      (
        await db.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()`,
        )
      )[0].n,
    );

  beforeAll(async () => {
    url = await createTestDatabase('database');
    dataSource = new DataSource({ type: 'postgres', url, extra: { max: 4 } });
    await dataSource.initialize();
    db = new Database(dataSource);
    await db.query(`CREATE TABLE tx_probe (id int PRIMARY KEY)`);
  });
  afterAll(async () => {
    await dataSource.destroy();
    await dropDatabase(url);
  });
  beforeEach(() => db.query(`TRUNCATE tx_probe`));

  it('commits what the work returns and rolls back what it throws', async () => {
    expect(
      await db.transaction(async (tx) => (await tx.query(`INSERT INTO tx_probe VALUES (1) RETURNING id`))[0]),
    ).toEqual({ id: 1 });
    await expect(
      db.transaction(async (tx) => {
        await tx.query(`INSERT INTO tx_probe VALUES (2)`);
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(await db.query(`SELECT id FROM tx_probe ORDER BY id`)).toEqual([{ id: 1 }]);
  });

  it('gives the entity manager the same transaction', async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.manager.query(`INSERT INTO tx_probe VALUES (3)`);
        const seen = await tx.query<{ n: string }>(`SELECT count(*) AS n FROM tx_probe`);
        expect(seen).toEqual([{ n: '1' }]);
        expect(tx.manager.queryRunner?.isTransactionActive).toBe(true);
        throw new Error('undo');
      }),
    ).rejects.toThrow('undo');
    expect(await count()).toBe(0);
  });

  it('sets the isolation level and read-only mode it is asked for', async () => {
    const [settings] = await db.transaction(
      (tx) =>
        tx.query<{ iso: string; ro: string }>(
          `SELECT current_setting('transaction_isolation') AS iso, current_setting('transaction_read_only') AS ro`,
        ),
      { isolation: 'REPEATABLE READ', readOnly: true },
    );
    expect(settings).toEqual({ iso: 'repeatable read', ro: 'on' });
    await expect(
      db.transaction((tx) => tx.query(`INSERT INTO tx_probe VALUES (4)`), { readOnly: true }),
    ).rejects.toThrow(/read-only transaction/);
    await expect(db.transaction(() => Promise.resolve(1), { isolation: 'CHAOS' as never })).rejects.toThrow(
      TypeError,
    );
  });

  it('sends BEGIN, its settings and a first read in one round trip, without an entity manager', async () => {
    const tx = await db.begin({
      isolation: 'REPEATABLE READ',
      readOnly: true,
      with: `SET LOCAL statement_timeout = '5s'; SELECT 41 + 1 AS answer`,
    });
    expect(tx.opening).toEqual([{ answer: 42 }]);
    expect(await tx.query(`SELECT current_setting('statement_timeout') AS t`)).toEqual([{ t: '5s' }]);
    expect(() => tx.manager).toThrow(/no entity manager/);
    await tx.end('COMMIT');
    expect(tx.done).toBe(true);
    await expect(tx.commit()).rejects.toThrow(/has ended/);
  });

  it('joins the transaction its carrier holds, and lets go of it after', async () => {
    const ctx: TransactionCarrier = {};
    await expect(
      db.transaction(
        async (outer) => {
          expect(ctx.transaction).toBe(outer);
          await outer.query(`INSERT INTO tx_probe VALUES (5)`);
          // A nested call on the same carrier joins: its insert is undone with the outer failure.
          await db.transaction(
            (inner) => {
              expect(inner).toBe(outer);
              return inner.query(`INSERT INTO tx_probe VALUES (6)`);
            },
            { carrier: ctx },
          );
          throw new Error('outer fails');
        },
        { carrier: ctx },
      ),
    ).rejects.toThrow('outer fails');
    expect(ctx.transaction).toBeUndefined();
    expect(await count()).toBe(0);
    // Without a carrier, a nested transaction is its own, on another connection.
    await db.transaction(async (outer) => {
      await outer.query(`INSERT INTO tx_probe VALUES (7)`);
      await db.transaction((inner) => inner.query(`INSERT INTO tx_probe VALUES (8)`));
    });
    expect(await count()).toBe(2);
  });

  it('gives every connection back, and destroys an abandoned one whose transaction dies with it', async () => {
    const before = await backends();
    for (let i = 0; i < 20; i++) {
      await db.transaction((tx) => tx.query(`SELECT 1`)).catch(() => undefined);
      await db.transaction(() => Promise.reject(new Error('x'))).catch(() => undefined);
    }
    // The pool holds at most 4: nothing leaked, or the 41st transaction would wait forever.
    expect(await backends()).toBeLessThanOrEqual(Math.max(before, 4) + 1);
    const tx = await db.begin();
    await tx.query(`INSERT INTO tx_probe VALUES (9)`);
    const [{ pid }] = await tx.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`);
    tx.abandon(new Error('cut midway'));
    expect(tx.done).toBe(true);
    for (let i = 0; i < 50; i++) {
      const alive = await db.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1`, [pid]);
      if (!alive.length) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await db.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1`, [pid])).toEqual([]);
    expect(await count()).toBe(0);
  });

  it('rolls back without throwing when the connection is gone, and the pool recovers', async () => {
    const tx = await db.begin();
    const [{ pid }] = await tx.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`);
    await db.query(`SELECT pg_terminate_backend($1)`, [pid]);
    await expect(tx.query(`SELECT 1`)).rejects.toThrow();
    await expect(tx.rollback()).resolves.toBeUndefined();
    expect(await db.queryArrays(`SELECT 1, 'two'`)).toEqual([[1, 'two']]);
  });
});
