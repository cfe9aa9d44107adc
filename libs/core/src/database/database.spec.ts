import type { Socket } from 'node:net';
import { Pool, type PoolClient } from 'pg';
import { DataSource } from 'typeorm';
import { createTestDatabase } from '../../../testing/src/test-database';
import { dropDatabase } from './ensure-database';
import { Database, READER_PREPARED_PER_CONNECTION, type TransactionCarrier, statementName } from './database';

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
    await db.onApplicationShutdown();
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

  describe("read (the readers' pool)", () => {
    const probe = (tag: string) =>
      `SELECT pg_backend_pid() AS pid, $1::int AS k,
              (SELECT count(*)::int FROM pg_prepared_statements) AS prepared /* ${tag} */`;

    it('prepares a statement once per connection and answers it like an unprepared one', async () => {
      const first = await db.read<{ pid: number; k: number; prepared: number }>(probe('same'), [1]);
      const again = await db.read<{ pid: number; k: number; prepared: number }>(probe('same'), [2]);
      expect(first[0].k).toBe(1);
      expect(again[0].k).toBe(2);
      if (again[0].pid === first[0].pid) expect(again[0].prepared).toBe(first[0].prepared);
      const [named] = await db.read<{ name: string; statement: string }>(
        `SELECT name, statement FROM pg_prepared_statements WHERE name = $1`,
        [statementName(probe('same'))],
      );
      // Asked on whichever connection answers: only where the statement ran is it there.
      if (named) expect(named.statement).toBe(probe('same'));
      // Its connections cannot write, prepared or not.
      await expect(db.read(`INSERT INTO tx_probe VALUES (1)`)).rejects.toThrow(/read-only/);
      await expect(db.read(`INSERT INTO tx_probe VALUES (1)`)).rejects.toThrow(/read-only/);
    });

    it('plans a statement for its values on every execution, unless its plan is said to be stable', async () => {
      const mode = `SELECT current_setting('plan_cache_mode') AS mode`;
      expect(await db.read(mode)).toEqual([{ mode: 'force_custom_plan' }]);
      expect(await db.read(mode, [], { stablePlan: false })).toEqual([{ mode: 'force_custom_plan' }]);
      expect(await db.read(mode, [], { stablePlan: true })).toEqual([{ mode: 'auto' }]);
      // Both kinds of connection are read-only.
      await expect(db.read(`INSERT INTO tx_probe VALUES (1)`, [], { stablePlan: true })).rejects.toThrow(
        /read-only/,
      );
    });

    it('writes dates and times in DateStyle ISO on every reader, whatever the server says', async () => {
      const style = `SELECT current_setting('DateStyle') AS style, '2024-03-05 06:07:08.5+00'::timestamptz AT TIME ZONE 'UTC' AS t`;
      for (const stablePlan of [false, true]) {
        const [row] = await db.read<{ style: string; t: unknown }>(
          `SELECT current_setting('DateStyle') AS style, ('2024-03-05 06:07:08.5+00'::timestamptz AT TIME ZONE 'UTC')::text AS t`,
          [],
          { stablePlan },
        );
        expect(row).toEqual({ style: expect.stringMatching(/^ISO/), t: '2024-03-05 06:07:08.5' });
      }
      const tx = await db.begin({ reader: true });
      try {
        expect((await tx.query<{ style: string }>(style))[0].style).toMatch(/^ISO/);
      } finally {
        await tx.rollback();
      }
    });

    it('compiles no statement with JIT on a reader, where the server would', async () => {
      // A statement over the cost at which this session compiles: one the server's own settings
      // would compile (with JIT available, as here) on a connection that is not a reader.
      const costly = `EXPLAIN (ANALYZE, FORMAT JSON) SELECT sum(g) FROM generate_series(1, 1000) g`;
      const jitOf = async (query: (sql: string) => Promise<{ 'QUERY PLAN': [{ JIT?: unknown }] }[]>) => {
        await query(`SET LOCAL jit_above_cost = 0`);
        return (await query(costly))[0]['QUERY PLAN'][0].JIT !== undefined;
      };
      const [{ available }] = await db.query<{ available: boolean }>(
        `SELECT pg_jit_available() AS available`,
      );
      const writer = await db.begin();
      try {
        expect(await jitOf((sql) => writer.query(sql))).toBe(available);
      } finally {
        await writer.rollback();
      }
      const tx = await db.begin({ reader: true });
      try {
        expect(await jitOf((sql) => tx.query(sql))).toBe(false);
      } finally {
        await tx.rollback();
      }
      for (const stablePlan of [false, true]) {
        const [row] = await db.read<{ jit: string }>(`SELECT current_setting('jit') AS jit`, [], {
          stablePlan,
        });
        expect(row).toEqual({ jit: 'off' });
      }
    });

    it('names two statements apart, and one statement alike, whatever their length', () => {
      expect(statementName('SELECT 1')).toBe(statementName('SELECT 1'));
      expect(statementName('SELECT 1')).not.toBe(statementName('SELECT 1 '));
      // PostgreSQL truncates identifiers at 63 bytes: a name must fit whole.
      expect(statementName('x'.repeat(100_000)).length).toBeLessThanOrEqual(63);
    });

    it(`keeps at most ${READER_PREPARED_PER_CONNECTION} statements on a connection, then opens a fresh one`, async () => {
      const pids = new Set<number>();
      let most = 0;
      for (let i = 0; i < READER_PREPARED_PER_CONNECTION + 60; i++) {
        const [row] = await db.read<{ pid: number; prepared: number }>(probe(`n${i}`), [i]);
        pids.add(row.pid);
        most = Math.max(most, row.prepared);
      }
      expect(most).toBeLessThanOrEqual(READER_PREPARED_PER_CONNECTION);
      // One after the other, the same connection answers until it is full.
      expect(pids.size).toBeGreaterThan(1);
    });

    it('answers a statement whose table changed its columns since it was prepared', async () => {
      await db.query(`CREATE TABLE reader_shape (a int)`);
      await db.query(`INSERT INTO reader_shape VALUES (1)`);
      try {
        const sql = `SELECT * FROM reader_shape`;
        // On every connection of the pool that may answer it.
        await Promise.all(Array.from({ length: 30 }, () => db.read(sql)));
        await db.query(`ALTER TABLE reader_shape ADD COLUMN b text DEFAULT 'x'`);
        const after = await Promise.all(Array.from({ length: 30 }, () => db.read(sql)));
        for (const rows of after) expect(rows).toEqual([{ a: 1, b: 'x' }]);
      } finally {
        await db.query(`DROP TABLE reader_shape`);
      }
    });
    it('hands each row over once when a streamed statement is run again for a table that changed', async () => {
      await db.query(`CREATE TABLE reader_stream_shape (a int)`);
      await db.query(`INSERT INTO reader_stream_shape SELECT generate_series(1, 3)`);
      try {
        const sql = `SELECT * FROM reader_stream_shape ORDER BY a`;
        const streamed = async () => {
          const seen: unknown[] = [];
          expect(await db.read(sql, [], { onRow: (row) => seen.push(row) })).toEqual([]);
          return seen;
        };
        // Prepared on every connection that may answer it ...
        await Promise.all(Array.from({ length: 30 }, streamed));
        await db.query(`ALTER TABLE reader_stream_shape ADD COLUMN b text DEFAULT 'x'`);
        // ... each then fails before its first row, and runs again unprepared: every row once.
        const after = await Promise.all(Array.from({ length: 30 }, streamed));
        for (const seen of after) expect(seen).toEqual([1, 2, 3].map((a) => ({ a, b: 'x' })));
      } finally {
        await db.query(`DROP TABLE reader_stream_shape`);
      }
    });

    it('hands rows over one by one, as they arrive, in order, and keeps none', async () => {
      const seen: number[] = [];
      const rows = await db.read<{ n: number }>(`SELECT n FROM generate_series(1, 5000) AS n`, [], {
        onRow: (row) => seen.push(row.n),
      });
      expect(rows).toEqual([]);
      expect(seen).toEqual(Array.from({ length: 5000 }, (_, i) => i + 1));
      // The first rows are handed over before the last has been computed: PostgreSQL is still sending.
      const times: number[] = [];
      await db.read(
        `SELECT n, CASE WHEN n = 2000 THEN pg_sleep(0.2) END FROM generate_series(1, 2000) AS n`,
        [],
        {
          onRow: () => times.push(performance.now()),
        },
      );
      expect(times[times.length - 1] - times[0]).toBeGreaterThan(100);
    });

    it('fails a read whose row handler throws, once the statement is done, and the connection stays sound', async () => {
      let handed = 0;
      await expect(
        db.read(`SELECT n FROM generate_series(1, 10) AS n`, [], {
          onRow: () => {
            handed += 1;
            if (handed === 3) throw new Error('handler failed');
          },
        }),
      ).rejects.toThrow('handler failed');
      // Later rows went to no handler; every reader still answers.
      expect(handed).toBe(3);
      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, i) => db.read<{ k: number }>(`SELECT $1::int AS k`, [i])),
      );
      expect(answers.map(([row]) => row.k)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    });

    it('fails a streamed read that fails after rows were handed over, without running it again', async () => {
      const seen: number[] = [];
      await expect(
        db.read(`SELECT 10 / (3 - n) AS q FROM generate_series(1, 5) AS n`, [], {
          onRow: (row: { q: number }) => seen.push(row.q),
        }),
      ).rejects.toThrow(/division by zero/);
      // Handed over once each, not again by a second run.
      expect(seen).toEqual([5, 10]);
    });

    /** Every reader answers, many at once (more than one pool's connections). */
    const readersAnswer = async () => {
      const answers = await Promise.all(
        Array.from({ length: 25 }, (_, i) => db.read<{ k: number }>(`SELECT $1::int AS k`, [i])),
      );
      expect(answers.map(([row]) => row.k)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    };
    /** Rows, then a pause (the rows before it have been sent), then more rows. */
    const STALLING = `SELECT n, pg_backend_pid() AS pid, CASE WHEN n = 3000 THEN pg_sleep(2) END AS stall,
                             repeat('x', 40) AS pad FROM generate_series(1, 6000) AS n`;

    it.each([
      ['cancelled', 'pg_cancel_backend', /canceling statement due to user request/],
      ['ended by the server', 'pg_terminate_backend', /terminating connection due to administrator command/],
    ])(
      'fails a streamed read %s after rows were handed over, each once, and every reader still answers',
      async (_how, stop, message) => {
        const seen: number[] = [];
        let stopped: Promise<unknown> | undefined;
        await expect(
          db.read<{ n: number; pid: number }>(STALLING, [], {
            onRow: (row) => {
              seen.push(row.n);
              stopped ??= db.query(`SELECT ${stop}($1)`, [row.pid]);
            },
          }),
        ).rejects.toThrow(message);
        await stopped;
        // What was sent before it stopped (at the pause, at the latest) was handed over, in order,
        // once each; nothing after.
        expect(seen.length).toBeGreaterThan(0);
        expect(seen.length).toBeLessThan(3000);
        expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => i + 1));
        await new Promise((resolve) => setTimeout(resolve, 50));
        await readersAnswer();
      },
    );

    it('fails a read whose connection drops midway (no word from the server), and takes nothing down', async () => {
      // The connection is cut as a network failure or a killed server process cuts it: its socket
      // closes with no error message first. The driver then reports it on the connection too, while
      // the read holds it: an 'error' event nobody listened to would end the process.
      const connect = Pool.prototype.connect as (this: Pool) => Promise<PoolClient>;
      let cut: PoolClient | undefined;
      const spy = jest.spyOn(Pool.prototype, 'connect').mockImplementation(async function (this: Pool) {
        const client = await connect.call(this);
        cut ??= client;
        return client;
      } as never);
      const drop = () => (cut as unknown as { connection: { stream: Socket } }).connection.stream.destroy();
      const midway = async (reading: Promise<unknown>) => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        drop();
        await expect(reading).rejects.toThrow(/Connection terminated unexpectedly/);
      };
      try {
        // A streamed read, cut after its first row ...
        let handed = 0;
        await expect(
          db.read(STALLING, [], {
            onRow: () => {
              if (++handed === 1) drop();
            },
          }),
        ).rejects.toThrow(/Connection terminated unexpectedly/);
        expect(handed).toBeGreaterThan(0);
        // ... one read whole, cut while PostgreSQL works on it ...
        cut = undefined;
        await midway(db.read(`SELECT pg_sleep(2)`));
        // ... and a snapshot on the readers' pool, whose end then fails quietly.
        cut = undefined;
        const tx = await db.begin({ reader: true, isolation: 'REPEATABLE READ' });
        await midway(tx.query(`SELECT pg_sleep(2)`));
        await expect(tx.rollback()).resolves.toBeUndefined();
        await new Promise((resolve) => setTimeout(resolve, 50));
      } finally {
        spy.mockRestore();
      }
      await readersAnswer();
    });
  });
});
