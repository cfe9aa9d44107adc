import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { Pool, type PoolClient, Query, type QueryConfig, type QueryResult } from 'pg';
import { DataSource, type EntityManager, type QueryRunner } from 'typeorm';

export type Isolation = 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE';

export interface TransactionOptions {
  /** READ COMMITTED (PostgreSQL's default) unless said. */
  isolation?: Isolation;
  readOnly?: boolean;
  /**
   * Statements sent in the same round trip as BEGIN (simple protocol, no parameters): `SET LOCAL`s
   * and a first read. {@link Transaction.opening} holds the last one's rows. Such a transaction has
   * no entity manager (TypeORM begins its own transactions).
   */
  with?: string;
  /**
   * What carries the transaction while the work runs (the request's context): work that finds one
   * there joins it instead of beginning its own.
   */
  carrier?: TransactionCarrier;
  /**
   * On the readers' pool (see {@link Database.read}): connections that cannot write and whose
   * statements stop after {@link READER_STATEMENT_TIMEOUT}. Implies `readOnly` and `with`-style
   * (no entity manager).
   */
  reader?: boolean;
}

/** How long a statement on the readers' pool (the data plane's reads) may run. */
export const READER_STATEMENT_TIMEOUT = '30s';
/**
 * What the readers' connections set besides being read-only and their plan caching: the statements'
 * time limit, dates and times as text in one form whatever the server's default (a page's Date and
 * DateTime, see releasedTextExpression in libs/policy), and no JIT compilation. PostgreSQL compiles a
 * statement whose estimated cost passes `jit_above_cost`, and the data plane's statements carry
 * branches that never run behind one-time filters (a lookup table's and the hashing without it, for
 * HASH and personKey filters), whose estimates count: a page of a few rows found through its lookup
 * table in under a millisecond was compiled for 44 ms at every request.
 */
const READER_SETTINGS: Readonly<Record<string, string>> = {
  statement_timeout: READER_STATEMENT_TIMEOUT,
  DateStyle: 'ISO',
  jit: 'off',
};

/**
 * {@link READER_SETTINGS} as `SET LOCAL`s, for a statement that reads what a reader would, with the
 * same results, on a writing connection (an export's release list, staged by PostgreSQL).
 */
export const READER_SETTINGS_SQL = Object.entries(READER_SETTINGS)
  .map(([name, value]) => `SET LOCAL ${name} = '${value}'`)
  .join('; ');

/** How the readers' connections plan a prepared statement (see {@link Database.read}). */
type PlanCacheMode = 'auto' | 'force_custom_plan';
/**
 * Connections of the readers' pools: the one whose statements are planned for their values, and the
 * one whose statements keep a generic plan (see {@link Database.read}), which are short ones.
 */
const READER_POOL_SIZE: Record<PlanCacheMode, number> = { force_custom_plan: 20, auto: 10 };
/**
 * Statements {@link Database.read} keeps prepared on one reader connection. A connection that would
 * need more is closed once its statement has run (the pool opens a fresh one), which bounds the
 * server's memory for them whatever the mix of statements: a page statement prepared takes 64 KB of
 * its backend's memory (99 KB with its generic plan), so at most 5 MB per connection.
 */
export const READER_PREPARED_PER_CONNECTION = 50;
/** PostgreSQL's error when a prepared statement's result columns changed under it. */
const CACHED_PLAN_CHANGED = '0A000';

/** What a transaction is carried on while work runs in it: a request's context, as a rule. */
export interface TransactionCarrier {
  transaction?: Transaction;
}

/**
 * One transaction on one pooled connection. Statements run on it in order; it ends with
 * {@link commit} or {@link rollback}, which give the connection back (destroyed if it failed).
 * For COPY streams and cursors, {@link client} is the pg connection itself.
 */
export class Transaction {
  private ended = false;
  /** The rows of the last statement of {@link TransactionOptions.with}, if any. */
  opening: Record<string, unknown>[] = [];

  constructor(
    /** The connection, for COPY streams and cursors; statements through {@link query}. */
    readonly client: PoolClient,
    /** Gives the connection back (destroyed if `error`). */
    private readonly release: (error?: unknown) => void,
    /** TypeORM's query runner that began it, whose entity manager then works inside it. */
    private readonly runner?: QueryRunner,
  ) {}

  private get managed(): boolean {
    return this.runner !== undefined;
  }

  /**
   * TypeORM's entity manager inside this transaction (repositories, `manager.query`), for the
   * control plane's entity work. Not available on a transaction begun with `with` statements.
   */
  get manager(): EntityManager {
    if (!this.runner) throw new Error('this transaction has no entity manager');
    return this.runner.manager;
  }

  /** True once committed or rolled back. */
  get done(): boolean {
    return this.ended;
  }

  /** Runs one statement; rows as objects. */
  async query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]> {
    return (await this.client.query(sql, params)).rows as T[];
  }

  /** Runs one statement; rows as arrays (no object per row: bulk reads). */
  async queryArrays(sql: string, params?: unknown[]): Promise<unknown[][]> {
    return (await this.client.query({ text: sql, values: params, rowMode: 'array' })).rows as unknown[][];
  }

  /** Commits and gives the connection back; throws if the commit failed (nothing was written). */
  async commit(): Promise<void> {
    this.assertOpen();
    try {
      if (this.runner) await this.runner.commitTransaction();
      else await this.client.query('COMMIT');
    } catch (error) {
      this.finish(error);
      throw error;
    }
    this.finish();
  }

  /** Rolls back and gives the connection back; never throws (a connection that fails is destroyed). */
  async rollback(): Promise<void> {
    if (this.ended) return;
    try {
      if (this.runner) await this.runner.rollbackTransaction();
      else await this.client.query('ROLLBACK');
      this.finish();
    } catch (error) {
      this.finish(error);
    }
  }

  /**
   * Ends it with `command` (COMMIT of a read-only snapshot, whose outcome changes nothing) and
   * never throws.
   */
  async end(command: 'COMMIT' | 'ROLLBACK' = 'COMMIT'): Promise<void> {
    if (command === 'ROLLBACK') return this.rollback();
    return this.commit().catch(() => undefined);
  }

  /**
   * Gives the connection back without ending the transaction on the server: for a connection whose
   * transaction must die with it (an export cut midway). Destroys the connection.
   */
  abandon(error?: unknown): void {
    if (this.ended) return;
    this.finish(error ?? new Error('transaction abandoned'));
  }

  private assertOpen() {
    if (this.ended) throw new Error('the transaction has ended');
  }

  private finish(error?: unknown) {
    this.ended = true;
    this.release(error);
  }
}

/**
 * The one way to the database outside TypeORM's entities: transactions on pooled connections
 * (from TypeORM's data source, through its public query runner API, so both share one pool and
 * its limits), single statements, and connections for COPY. Every statement the policy compiler,
 * the audit log, ingestion and linkage build runs through it.
 *
 * @example
 * await db.transaction(async (tx) => {
 *   await tx.query('UPDATE ...', [id]);
 *   await audit.append(event, tx); // last, right before COMMIT
 * });
 */
@Injectable()
export class Database implements OnApplicationShutdown {
  /** The readers' pools, one per plan cache mode (see {@link read}). */
  private readonly readers = new Map<PlanCacheMode, Pool>();
  /** The statements prepared on each reader connection (see {@link read}). */
  private readonly prepared = new WeakMap<PoolClient, Set<string>>();

  constructor(private readonly dataSource: DataSource) {}

  /**
   * Begins a transaction; the caller ends it with commit or rollback. For a transaction that
   * outlives one function (an export streams from its cursor); otherwise use {@link transaction}.
   */
  async begin(options: TransactionOptions = {}): Promise<Transaction> {
    const tx = options.reader ? await this.readerTransaction() : await this.runnerTransaction(!options.with);
    try {
      if (options.with || options.reader) {
        // One round trip: BEGIN, its settings and the first read.
        const begin = [
          'BEGIN',
          options.isolation ? `ISOLATION LEVEL ${isolationOf(options.isolation)}` : '',
          options.readOnly || options.reader ? 'READ ONLY' : '',
        ]
          .filter(Boolean)
          .join(' ');
        if (options.with) {
          const results = (await tx.client.query(`${begin};\n${options.with}`)) as unknown as QueryResult[];
          tx.opening = (Array.isArray(results) ? results[results.length - 1] : (results as QueryResult))
            .rows as Record<string, unknown>[];
        } else {
          await tx.client.query(begin);
        }
      } else {
        await tx.manager.queryRunner!.startTransaction(options.isolation && isolationOf(options.isolation));
        if (options.readOnly) await tx.client.query('SET TRANSACTION READ ONLY');
      }
    } catch (error) {
      await tx.rollback();
      throw error;
    }
    return tx;
  }

  /**
   * Runs `work` in a transaction and commits what it returns, or rolls back what it throws. With a
   * carrier (a request's context) that holds one already, `work` joins it instead (and its options
   * are those of the transaction it joins); the carrier holds the new one while `work` runs, so
   * everything the request does on its way joins it.
   */
  async transaction<T>(work: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const { carrier } = options;
    if (carrier?.transaction && !carrier.transaction.done) return work(carrier.transaction);
    const tx = await this.begin(options);
    if (carrier) carrier.transaction = tx;
    try {
      const result = await work(tx);
      await tx.commit();
      return result;
    } catch (error) {
      await tx.rollback();
      throw error;
    } finally {
      if (carrier?.transaction === tx) carrier.transaction = undefined;
    }
  }

  /** Runs `work` on one connection outside any transaction (a COPY out, a session setting). */
  async connection<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    try {
      const client = (await runner.connect()) as PoolClient;
      return await work(client);
    } finally {
      await runner.release();
    }
  }

  /** Runs one statement on a pooled connection; rows as objects. */
  async query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]> {
    return this.connection(async (client) => (await client.query(sql, params)).rows as T[]);
  }

  /** Runs one statement; rows as arrays. */
  async queryArrays(sql: string, params?: unknown[]): Promise<unknown[][]> {
    return this.connection(
      async (client) =>
        (await client.query({ text: sql, values: params, rowMode: 'array' })).rows as unknown[][],
    );
  }

  /**
   * Runs one read-only statement on the readers' pool: the data plane's reads. Its connections
   * cannot write (`default_transaction_read_only`), and their statements stop after
   * {@link READER_STATEMENT_TIMEOUT}; they are apart from the pool of the control plane, the audit
   * log and the jobs, so a flood of either never starves the other. A single statement is its own
   * snapshot.
   *
   * The statement is prepared once per connection (named by its text), then only bound and run:
   * PostgreSQL does not parse it again. It is planned for its values on every execution, as an
   * unprepared statement is, unless `stablePlan` says one plan is best whatever the values: then it
   * runs on connections that let PostgreSQL keep a generic plan once that plan is as good as fresh
   * ones (`plan_cache_mode = auto`), and is not planned again.
   *
   * With `onRow`, each row is handed to it as it arrives, while PostgreSQL is still sending the rest,
   * and none is kept: the promise then resolves to an empty array once the last has come. A read that
   * fails after rows were handed over fails as it is (it is not run again).
   */
  async read<T = Record<string, unknown>>(
    sql: string,
    params?: unknown[],
    options: { stablePlan?: boolean; onRow?: (row: T) => void } = {},
  ): Promise<T[]> {
    const client = await this.readerPool(options.stablePlan ? 'auto' : 'force_custom_plan').connect();
    const { onRow } = options;
    let handed = false;
    const run = async (config: QueryConfig): Promise<T[]> => {
      if (!onRow) return (await client.query(config)).rows as T[];
      const query = new Query(config);
      // A row that fails its handler fails the read once the statement is done (an exception thrown
      // into the driver's message handling would take the connection down with it).
      let failed: Error | undefined;
      query.on('row', (row: T) => {
        handed = true;
        if (failed) return;
        try {
          onRow(row);
        } catch (error) {
          failed = error instanceof Error ? error : new Error(String(error));
        }
      });
      await new Promise<void>((resolve, reject) => {
        query.once('end', () => (failed ? reject(failed) : resolve()));
        // Every error is listened to (a connection lost after an error may report a second one): an
        // 'error' event without a listener would take the process down.
        query.on('error', reject);
        void client.query(query);
      });
      return [];
    };
    let retire = false;
    try {
      const name = statementName(sql);
      let prepared = this.prepared.get(client);
      if (!prepared) this.prepared.set(client, (prepared = new Set()));
      if (!prepared.has(name) && prepared.size >= READER_PREPARED_PER_CONNECTION) {
        retire = true;
        return await run({ text: sql, values: params });
      }
      prepared.add(name);
      try {
        return await run({ name, text: sql, values: params });
      } catch (error) {
        // A table whose columns changed since: the statement runs once more, unprepared, and the
        // connection, which keeps the stale one, is closed. (PostgreSQL says so before any row.)
        if ((error as { code?: string }).code !== CACHED_PLAN_CHANGED || handed) throw error;
        retire = true;
        return await run({ text: sql, values: params });
      }
    } catch (error) {
      retire = true;
      throw error;
    } finally {
      client.release(retire);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    const pools = [...this.readers.values()];
    this.readers.clear();
    await Promise.all(pools.map((pool) => pool.end()));
  }

  private async runnerTransaction(managed: boolean): Promise<Transaction> {
    const runner = this.dataSource.createQueryRunner();
    let client: PoolClient;
    try {
      client = (await runner.connect()) as PoolClient;
    } catch (error) {
      await runner.release();
      throw error;
    }
    const release = (error?: unknown) => {
      // pg-pool drops a connection that is ending instead of reusing it.
      if (error) client.end().catch(() => undefined);
      void runner.release();
    };
    return new Transaction(client, release, managed ? runner : undefined);
  }

  private async readerTransaction(): Promise<Transaction> {
    const client = await this.readerPool().connect();
    return new Transaction(client, (error) => client.release(error ? (error as Error) : undefined));
  }

  private readerPool(mode: PlanCacheMode = 'force_custom_plan'): Pool {
    let pool = this.readers.get(mode);
    if (!pool) {
      const options = this.dataSource.options;
      if (options.type !== 'postgres') throw new Error('the broker runs on PostgreSQL');
      pool = new Pool({
        connectionString: options.url,
        host: options.host,
        port: options.port,
        user: options.username,
        password: typeof options.password === 'string' ? options.password : undefined,
        database: options.database,
        max: READER_POOL_SIZE[mode],
        application_name: 'data-sharing-broker-reader',
        options: [
          '-c default_transaction_read_only=on',
          `-c plan_cache_mode=${mode}`,
          ...Object.entries(READER_SETTINGS).map(([name, value]) => `-c ${name}=${value}`),
        ].join(' '),
      });
      // An idle connection that fails (a restarted server) is dropped by the pool; nothing to do.
      pool.on('error', () => undefined);
      // A connection in use that fails (its socket cut with no word from the server: a network
      // failure, a killed server process) is reported to its statement, which fails, and on the
      // connection itself, where the pool listens only while it is idle: an 'error' event nobody
      // listens to would end the process. Such a connection is not queryable, so the pool closes it
      // when it is given back.
      pool.on('connect', (client) => client.on('error', () => undefined));
      this.readers.set(mode, pool);
    }
    return pool;
  }
}

/** A prepared statement's name: its text's digest, so that one name never means two statements. */
export function statementName(sql: string): string {
  let name = statementNames.get(sql);
  if (name === undefined) {
    name = `r_${createHash('sha256').update(sql).digest('base64url').slice(0, 32)}`;
    // The texts of the statements in use, remembered so that each is digested once; bounded.
    if (statementNames.size >= READER_PREPARED_PER_CONNECTION * 4) statementNames.clear();
    statementNames.set(sql, name);
  }
  return name;
}
const statementNames = new Map<string, string>();

function isolationOf(level: Isolation): Isolation {
  // A closed set: never text from outside.
  const levels: Record<Isolation, Isolation> = {
    'READ COMMITTED': 'READ COMMITTED',
    'REPEATABLE READ': 'REPEATABLE READ',
    SERIALIZABLE: 'SERIALIZABLE',
  };
  const sql = levels[level];
  if (!sql) throw new TypeError(`unknown isolation level ${String(level)}`);
  return sql;
}
