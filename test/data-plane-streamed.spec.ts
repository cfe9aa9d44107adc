import type { Socket } from 'node:net';
import { Pool, type PoolClient } from 'pg';
import { Database, MOVE_POLICY_STAMP_SQL } from '@broker/core';
import { DataPlaneService } from '@broker/data-plane';
import { TestBroker } from '@broker/testing';
import { shortenNextReaderTimeout } from './reader-timeout';

/**
 * A page read alone (one row root field) is written as its rows arrive, 64 rows at a time, while
 * PostgreSQL sends the rest (DataPlaneService.answerAlone). Its answer must be the very bytes of the
 * same request answered in a snapshot (the path of several root fields, or of a policy that moved),
 * whatever its rows hold and wherever a batch ends; and a read that fails after rows were handed over
 * releases nothing, records no release, and leaves the readers' pool sound.
 */
describe('data plane: a page written as its rows arrive', () => {
  let broker: TestBroker;
  let analyst: string;
  let recipientAgencyId: string;
  let db: Database;
  let service: DataPlaneService;

  /** More rows than the largest page asked below, past several batches of 64. */
  const RECORDS = 300;
  const key = (i: number) => `K${String(i).padStart(4, '0')}`;
  // Multi-byte text in every row (2, 3 and 4 bytes a character in UTF-8), what JSON escapes, and
  // lengths that differ from row to row, so that batches end at every kind of character.
  const texts = [
    'ünïcödé',
    '日本語のテキスト',
    '😀😁😂 emoji',
    'quote " back \\ slash',
    'tab\tline\nbreak',
    '\u0001ctl',
    '',
  ];
  const text = (i: number) => `${texts[i % texts.length]}${'é'.repeat(i % 5)}${'𝔸'.repeat(i % 3)}#${i}`;

  const raw = async (query: string) => {
    const res = await broker.http.inject({
      method: 'POST',
      url: '/data/graphql',
      headers: { authorization: `Bearer ${analyst}` },
      payload: { query },
    });
    return { status: res.statusCode, body: res.rawPayload };
  };

  /** The streamed reads (`Database.read` with a row handler) made while `ask` runs, and its answer. */
  const observed = async <T>(ask: () => Promise<T>) => {
    const read = jest.spyOn(db, 'read');
    try {
      const answer = await ask();
      return { answer, streamed: read.mock.calls.filter(([, , options]) => options?.onRow).length };
    } finally {
      read.mockRestore();
    }
  };
  /** `ask` with every request answered in a snapshot, as when several root fields are asked. */
  const inSnapshot = async <T>(ask: () => Promise<T>) => {
    const alone = jest
      .spyOn(service as unknown as { answerAlone(): Promise<undefined> }, 'answerAlone')
      .mockResolvedValue(undefined);
    try {
      return await ask();
    } finally {
      alone.mockRestore();
    }
  };
  /** The same request answered alone, streamed, and in a snapshot: both answers. */
  const bothWays = async (query: string) => {
    const alone = await observed(() => raw(query));
    expect(alone.streamed).toBe(1);
    const snapshot = await observed(() => inSnapshot(() => raw(query)));
    expect(snapshot.streamed).toBe(0);
    return { alone: alone.answer, snapshot: snapshot.answer };
  };

  const events = (since: number) =>
    broker.query<{ action: string; decision: string; reason: string | null; row_count: number | null }>(
      `SELECT action, decision, reason, row_count FROM audit_event WHERE seq > $1 ORDER BY seq`,
      [since],
    );
  const releases = async () =>
    (await broker.query<{ n: number }>(`SELECT count(*)::int AS n FROM release_record`))[0].n;

  const page = (first: number, nodes = 'k s x n') =>
    `{ things(purpose: RESEARCH, first: ${first}, orderBy: [{ field: k }]) { nodes { ${nodes} } pageInfo { hasNextPage endCursor } } }`;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'streamed', RECORD_RELEASES: 'true' });
    db = broker.app.get(Database);
    service = broker.app.get(DataPlaneService);
    const parties = await broker.sharingParties('Provider', 'Recipient', 'RESEARCH');
    analyst = parties.analyst.apiKey;
    recipientAgencyId = parties.recipientAgency.id;
    const dataset = await broker.registerDataset(parties.providerSteward.apiKey, {
      slug: 'things',
      title: 'Things',
      keyField: 'k',
      fields: [
        { name: 'k', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 's', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'x', type: 'FLOAT', classification: 'NON_SENSITIVE' },
        { name: 'n', type: 'INTEGER', classification: 'NON_SENSITIVE' },
      ],
    });
    await broker.gqlOk(
      parties.providerSteward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      {
        id: dataset.id,
        r: Array.from({ length: RECORDS }, (_, i) => ({
          k: key(i + 1),
          s: i % 11 === 0 ? null : text(i),
          x: i % 13 === 0 ? null : (i - 150) / 7,
          n: i * 1000 - 50_000,
        })),
      },
    );
    await broker.activateAgreement(parties.providerSteward.apiKey, parties.recipientSteward.apiKey, {
      title: 'Things',
      providerAgencyId: parties.providerAgency.id,
      recipientAgencyId: parties.recipientAgency.id,
      purposes: ['RESEARCH'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        { datasetId: dataset.id, fields: [{ name: 'k' }, { name: 's' }, { name: 'x' }, { name: 'n' }] },
      ],
    });
    // The caller's policy compiled: the next requests may be answered alone.
    expect((await raw(page(1))).status).toBe(200);
  });
  afterAll(() => broker.close());

  it.each([1, 2, 63, 64, 65, 127, 128, 129, 200, RECORDS - 1, RECORDS, 10_000])(
    'answers a page of %i rows with the very bytes of the snapshot path',
    async (first) => {
      const { alone, snapshot } = await bothWays(page(first));
      expect(alone.status).toBe(200);
      expect(alone.body.equals(snapshot.body)).toBe(true);
      const parsed = JSON.parse(alone.body.toString('utf8')) as {
        data: { things: { nodes: { k: string; s: string | null }[]; pageInfo: { hasNextPage: boolean } } };
      };
      const { nodes, pageInfo } = parsed.data.things;
      expect(nodes.map((n) => n.k)).toEqual(
        Array.from({ length: Math.min(first, RECORDS) }, (_, i) => key(i + 1)),
      );
      expect(nodes.map((n) => n.s)).toEqual(nodes.map((_, i) => (i % 11 === 0 ? null : text(i))));
      expect(pageInfo.hasNextPage).toBe(first < RECORDS);
    },
  );

  it('answers aliases, a field twice, pageInfo first, a fragment and a filter alike either way', async () => {
    for (const query of [
      `{ t: things(purpose: RESEARCH, first: 130) { pi: pageInfo { e: endCursor h: hasNextPage } items: nodes { value: s k k2: k x } } }`,
      `{ ...F } fragment F on Query { things(purpose: RESEARCH, first: 129) { nodes { s x } pageInfo { endCursor } } }`,
      `{ things(purpose: RESEARCH, first: 70, where: { k: { gt: "${key(250)}" } }) { nodes { k s } pageInfo { hasNextPage endCursor } } }`,
    ]) {
      const { alone, snapshot } = await bothWays(query);
      expect(alone.status).toBe(200);
      expect(alone.body.toString('utf8')).toBe(snapshot.body.toString('utf8'));
    }
  });

  it('refuses a Float GraphQL cannot represent in the last batch of the page, and only in the page', async () => {
    const set = (i: number, x: string) =>
      broker.query(`UPDATE records.things SET x = $2::double precision WHERE k = $1`, [key(i), x]);
    try {
      // The 129th row, alone in the page's third batch: the page of 129 fails, as in a snapshot.
      await set(129, 'NaN');
      await set(131, '-Infinity');
      for (const first of [129, 200]) {
        const { alone, snapshot } = await bothWays(page(first));
        expect(alone.body.toString('utf8')).toBe(snapshot.body.toString('utf8'));
        expect([alone.status, JSON.parse(alone.body.toString('utf8'))]).toEqual([
          200,
          {
            data: null,
            errors: [
              {
                message: 'A value could not be represented in GraphQL',
                extensions: { code: 'INTERNAL_SERVER_ERROR' },
              },
            ],
          },
        ]);
      }
      // The row past the page only says there is a next page: its Float is neither written nor refused.
      await set(129, '1.5');
      await set(130, 'Infinity');
      const { alone, snapshot } = await bothWays(page(129));
      expect(alone.status).toBe(200);
      expect(alone.body.equals(snapshot.body)).toBe(true);
      expect(alone.body.toString('utf8')).not.toContain('Infinity');
    } finally {
      for (const i of [129, 130, 131]) await set(i, String((i - 1 - 150) / 7));
    }
  });

  it('answers an empty page, which says nothing of the stamp, on the snapshot path, alike', async () => {
    const query = `{ things(purpose: RESEARCH, where: { k: { eq: "none" } }) { nodes { k } pageInfo { hasNextPage endCursor } } }`;
    const alone = await observed(() => raw(query));
    const snapshot = await inSnapshot(() => raw(query));
    expect(alone.answer.body.toString('utf8')).toBe(snapshot.body.toString('utf8'));
    expect(JSON.parse(alone.answer.body.toString('utf8'))).toEqual({
      data: { things: { nodes: [], pageInfo: { hasNextPage: false, endCursor: null } } },
    });
  });

  it('releases nothing read under a stamp that moved before the read: the snapshot path answers, once', async () => {
    const query = page(150);
    const reference = await raw(query);
    const [seq, released] = [await broker.auditHeadSeq(), await releases()];
    // Another instance changes the policy (its stamp moves) after this one decided, before it reads.
    const read = db.read.bind(db);
    const spy = jest.spyOn(db, 'read').mockImplementation(async (...args: Parameters<Database['read']>) => {
      if (args[2]?.onRow) await broker.query(MOVE_POLICY_STAMP_SQL, [recipientAgencyId]);
      return read(...args);
    });
    const begin = jest.spyOn(db, 'begin');
    let answer: Awaited<ReturnType<typeof raw>>;
    try {
      answer = await raw(query);
      // The page was read alone, then again in a snapshot under the policy of the new stamp.
      expect(spy.mock.calls.filter(([, , options]) => options?.onRow)).toHaveLength(1);
      expect(begin.mock.calls.filter(([options]) => options?.reader).length).toBeGreaterThan(0);
    } finally {
      spy.mockRestore();
      begin.mockRestore();
    }
    expect(answer.status).toBe(200);
    expect(answer.body.equals(reference.body)).toBe(true);
    // One release, recorded once: nothing of the first read.
    expect(await events(seq)).toEqual([{ action: 'QUERY', decision: 'ALLOW', reason: null, row_count: 150 }]);
    expect(await releases()).toBe(released + 1);
  });

  /** Every request answers, many at once: no reader connection was left unsound. */
  const readersAnswer = async () => {
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => raw(page(1 + (i % 7)))));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    for (const [i, a] of answers.entries()) {
      expect(JSON.parse(a.body.toString('utf8')).data.things.nodes).toHaveLength(1 + (i % 7));
    }
  };

  /**
   * Asks a page of 200 rows alone, its statement made to stop at its 150th row (once 149 are sent):
   * `stall` is what the row computes there. Returns the answer and how many rows were handed over.
   */
  const stalled = async (stall: string, during?: (pid: number) => Promise<unknown>) => {
    const read = db.read.bind(db);
    let handed = 0;
    const spy = jest
      .spyOn(db, 'read')
      .mockImplementation((...[sql, params, options]: Parameters<Database['read']>) => {
        if (!options?.onRow) return read(sql, params, options);
        const onRow = options.onRow;
        return read(
          `SELECT q.*, pg_backend_pid() AS stall_pid,
                CASE WHEN row_number() OVER () = 150 THEN (${stall})::text END AS stall
           FROM (${sql}) AS q`,
          params,
          {
            ...options,
            onRow: (row) => {
              handed += 1;
              if (handed === 1 && during) void during((row as { stall_pid: number }).stall_pid);
              onRow(row);
            },
          },
        );
      });
    try {
      const answer = await raw(page(200));
      return { answer, handed };
    } finally {
      spy.mockRestore();
    }
  };

  const failsMidway = async (
    stall: string,
    expected: { status: number; message: string; events: { decision: string; reason: string | null }[] },
    during?: (pid: number) => Promise<unknown>,
  ) => {
    const [seq, released] = [await broker.auditHeadSeq(), await releases()];
    const { answer, handed } = await stalled(stall, during);
    // Rows were handed over (and written into the page) before the statement failed.
    expect(handed).toBeGreaterThan(0);
    expect(handed).toBeLessThan(150);
    const body = JSON.parse(answer.body.toString('utf8')) as { data: unknown; errors: { message: string }[] };
    expect([answer.status, body.data, body.errors[0].message]).toEqual([
      expected.status,
      null,
      expected.message,
    ]);
    expect(answer.body.toString('utf8')).not.toContain(key(1));
    expect((await events(seq)).map(({ decision, reason }) => ({ decision, reason }))).toEqual(
      expected.events,
    );
    expect(await releases()).toBe(released);
    await readersAnswer();
  };

  it('releases nothing when the statement times out after rows were handed over, and refuses it as too costly', async () => {
    // The readers' statement timeout, shortened on the connection that reads the page.
    const timeout = shortenNextReaderTimeout('1s');
    try {
      await failsMidway('pg_sleep(5)', {
        status: 200,
        message: 'The query is too costly to answer: narrow it',
        events: [{ decision: 'DENY', reason: 'LIMIT' }],
      });
    } finally {
      timeout.restore();
    }
  });

  it('releases nothing when the statement fails after rows were handed over', async () => {
    await failsMidway('1 / (150 - row_number() OVER ())', {
      status: 503,
      message: 'The query could not be answered, so nothing was released',
      events: [],
    });
  });

  it('releases nothing when the server ends the connection after rows were handed over', async () => {
    await failsMidway(
      'pg_sleep(5)',
      { status: 503, message: 'The query could not be answered, so nothing was released', events: [] },
      (pid) => broker.query(`SELECT pg_terminate_backend($1)`, [pid]),
    );
  });

  it('releases nothing, and takes nothing down, when the connection is cut after rows were handed over', async () => {
    // Cut as a network failure cuts it: the socket closes, with no word from the server.
    const connect = Pool.prototype.connect as (this: Pool) => Promise<PoolClient>;
    let cut: PoolClient | undefined;
    const spy = jest.spyOn(Pool.prototype, 'connect').mockImplementation(async function (
      this: Pool,
      ...args: unknown[]
    ) {
      if (args.length) return (connect as (...a: unknown[]) => unknown).apply(this, args);
      const client = await connect.call(this);
      if (this.options.application_name === 'data-sharing-broker-reader') cut ??= client;
      return client;
    } as never);
    try {
      await failsMidway(
        'pg_sleep(5)',
        { status: 503, message: 'The query could not be answered, so nothing was released', events: [] },
        () =>
          Promise.resolve((cut as unknown as { connection: { stream: Socket } }).connection.stream.destroy()),
      );
    } finally {
      spy.mockRestore();
    }
  });
});
