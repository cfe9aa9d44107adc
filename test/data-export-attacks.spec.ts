import type http from 'node:http';
import { ReleaseStaging } from '@broker/audit';
import { TestBroker } from '@broker/testing';
import { exportOverTcp, exportRequest } from './export-over-tcp';

/**
 * Exports (DESIGN §4.2) as an attacker and an unlucky client meet them: records keyed as the pages'
 * nodes are, whatever the operation's shape; CSV and NDJSON checked against writers made here from
 * RFC 4180 and JSON; clients that go away before or during the stream; exports beside each other and
 * beside a revocation; a remembered key rotated before the export.
 */

/** Strings a spreadsheet or a careless CSV reader would trip on. */
const HOSTILE = [
  '=1+1',
  '+SUM(A1)',
  '-2+3',
  '@cmd',
  '\t=x',
  '"quoted"',
  'a,b',
  'line\r\nbreak',
  'cr\ronly',
  'lf\nonly',
  '\uFEFFbom',
  '\\.',
  '\\N',
  'back\\slash',
  '',
  ' lead',
  '\u2028sep\u2029',
  'é ☃ 𝄞',
  '\u0001ctl\u001f\u007f',
  null,
];
const PURPOSE = 'RESEARCH';
type Node = Record<string, string | number | boolean | null>;

describe('data plane: exports under attack', () => {
  let broker: TestBroker;
  let parties: Awaited<ReturnType<TestBroker['sharingParties']>>;
  let analyst: { id: string; apiKey: string };
  let longAgreement: string;

  const exportRaw = (payload: unknown, accept = 'text/csv', key = analyst.apiKey, on = broker) =>
    on.http.inject({
      method: 'POST',
      url: '/data/export',
      headers: { authorization: `Bearer ${key}`, accept, 'content-type': 'application/json' },
      payload: JSON.stringify(payload),
    });
  /** Every node of the pages of `query` (a query whose root field takes `$after` and `first`). */
  const pages = async (query: string, variables: Record<string, unknown> = {}) => {
    const all: Node[] = [];
    let after: string | null = null;
    for (;;) {
      const res = await broker.gql(analyst.apiKey, query, { ...variables, after }, '/data/graphql');
      expect(res.errors).toBeUndefined();
      const page = res.data!.things as {
        nodes: Node[];
        pageInfo: { hasNextPage: boolean; endCursor: string };
      };
      all.push(...page.nodes);
      if (!page.pageInfo.hasNextPage) return all;
      after = page.pageInfo.endCursor;
    }
  };
  const eventsAfter = (seq: string) =>
    broker.query<{ action: string; decision: string; reason: string | null; row_count: number | null }>(
      `SELECT action, decision, reason, row_count FROM audit_event WHERE seq > $1 AND actor_user_id = $2 ORDER BY seq`,
      [seq, analyst.id],
    );
  const head = async () =>
    (await broker.query<{ seq: string }>(`SELECT max(seq)::text AS seq FROM audit_event`))[0].seq;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'export_attacks' });
    parties = await broker.sharingParties('Provider', 'Recipient', PURPOSE);
    analyst = parties.analyst;
    const things = await broker.registerDataset(parties.providerSteward.apiKey, {
      slug: 'things',
      title: 'Things',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 's', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'n', type: 'INTEGER', classification: 'NON_SENSITIVE' },
        { name: 'd', type: 'DATE', classification: 'NON_SENSITIVE' },
        { name: 'secret', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    });
    await broker.gqlOk(
      parties.providerSteward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      {
        id: things.id,
        r: HOSTILE.map((s, i) => ({
          id: `R${String(i).padStart(2, '0')}`,
          s,
          n: i % 4 === 0 ? null : i * 7,
          d: `2021-0${1 + (i % 9)}-1${i % 10}`,
          secret: s,
        })),
      },
    );
    const long = await broker.registerDataset(parties.providerSteward.apiKey, {
      slug: 'long_things',
      title: 'Long things',
      keyField: 'k',
      fields: [
        { name: 'k', type: 'INTEGER', classification: 'NON_SENSITIVE', required: true },
        { name: 'v', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    });
    expect(
      (await broker.upload(parties.providerSteward.apiKey, long.id, 'text/csv', `k,v\n0,zero`)).status,
    ).toBe(200);
    await broker.query(
      `INSERT INTO records.long_things (k, v) SELECT g, 'value-' || g || '-' || repeat('z', 40) FROM generate_series(1, 149999) g`,
    );
    const agreement = (datasetId: string, fields: unknown[], title: string) =>
      broker.activateAgreement(parties.providerSteward.apiKey, parties.recipientSteward.apiKey, {
        title,
        providerAgencyId: parties.providerAgency.id,
        recipientAgencyId: parties.recipientAgency.id,
        purposes: [PURPOSE],
        validFrom: '2020-01-01T00:00:00Z',
        validUntil: '2099-01-01T00:00:00Z',
        grants: [{ datasetId, fields }],
      });
    await agreement(
      things.id,
      [
        { name: 'id' },
        { name: 's' },
        { name: 'n', transform: 'GENERALIZE' },
        { name: 'd', transform: 'GENERALIZE' },
        { name: 'secret', transform: 'HASH' },
      ],
      'Things',
    );
    longAgreement = await agreement(long.id, [{ name: 'k' }, { name: 'v' }], 'Long things');
  });
  afterAll(() => broker.close());

  const PAGE = `query($after: String) { things(purpose: ${PURPOSE}, first: 6, after: $after) { pageInfo { hasNextPage endCursor } nodes { SELECTION } } }`;

  it("keys an export's records as its pages key their nodes: aliases, fragments, directives, repeated keys", async () => {
    for (const [selection, fragment] of [
      ['b: s a: id', ''],
      ['...F', 'fragment F on Things { z: secret_hash id }'],
      ['x: id x: id s', ''],
      ['s @skip(if: true) id n_band @include(if: true)', ''],
      ['... on Things { d_year } id', ''],
      ['n_band s d_year ...F', 'fragment F on Things { d_year id }'],
    ]) {
      const expected = await pages(`${PAGE.replace('SELECTION', selection)} ${fragment}`);
      const query = `{ things(purpose: ${PURPOSE}) { nodes { ${selection} } } } ${fragment}`;
      const ndjson = await exportRaw({ query }, 'application/x-ndjson');
      expect({ selection, status: ndjson.statusCode }).toEqual({ selection, status: 200 });
      const records = ndjson.body
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Node);
      // Key order included: the same keys, in the same order, as graphql-js writes a page's node.
      expect(records.map((r) => Object.keys(r))).toEqual(expected.map((node) => Object.keys(node)));
      expect(records).toEqual(expected);
      const csv = await exportRaw({ query }, 'text/csv');
      expect(csv.body.split('\n')[0]).toBe(Object.keys(expected[0]).join(','));
    }
  });

  it('refuses, audited, an export whose nodes are no flat record of released names, and sends no row', async () => {
    for (const query of [
      `{ things(purpose: ${PURPOSE}) { pageInfo { endCursor } } }`,
      `{ things(purpose: ${PURPOSE}) { nodes { __typename } } }`,
      `{ things(purpose: ${PURPOSE}) { nodes { __typename id } } }`,
      `{ things(purpose: ${PURPOSE}) { nodes { id @skip(if: true) } } }`,
      `{ things(purpose: ${PURPOSE}) { a: nodes { id } b: nodes { s } } }`,
    ]) {
      const before = await head();
      const res = await exportRaw({ query }, 'text/csv');
      expect({ query, status: res.statusCode }).toEqual({ query, status: 400 });
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(res.body)).toMatchObject({
        data: null,
        errors: [{ extensions: { code: 'BAD_USER_INPUT', reason: 'INVALID' } }],
      });
      expect(await eventsAfter(before)).toEqual([
        { action: 'EXPORT', decision: 'DENY', reason: 'INVALID', row_count: null },
      ]);
    }
  });

  it("counts an export's decisions with the data plane's, allowed and refused", async () => {
    const decisions = async (outcome: string, reason: string) => {
      const text = (await broker.http.inject({ method: 'GET', url: '/metrics' })).body;
      const line = text
        .split('\n')
        .find(
          (l) =>
            l.startsWith('broker_data_plane_decisions_total{') &&
            l.includes(`outcome="${outcome}"`) &&
            l.includes(`reason="${reason}"`),
        );
      return line ? Number(line.split(' ').pop()) : 0;
    };
    const [allowed, refused] = [
      await decisions('ALLOW', 'NONE'),
      await decisions('DENY', 'FIELD_NOT_RELEASED'),
    ];
    expect((await exportRaw({ query: `{ things(purpose: ${PURPOSE}) { nodes { id } } }` })).statusCode).toBe(
      200,
    );
    expect(
      (await exportRaw({ query: `{ things(purpose: ${PURPOSE}) { nodes { secret } } }` })).statusCode,
    ).toBe(403);
    expect([await decisions('ALLOW', 'NONE'), await decisions('DENY', 'FIELD_NOT_RELEASED')]).toEqual([
      allowed + 1,
      refused + 1,
    ]);
  });

  it('writes CSV as RFC 4180 and NDJSON as JSON: the pages, byte for byte through writers made here', async () => {
    const selection = 'id s n_band d_year secret_hash';
    const expected = await pages(PAGE.replace('SELECTION', selection));
    expect(expected).toHaveLength(HOSTILE.length);
    const query = `{ things(purpose: ${PURPOSE}) { nodes { ${selection} } } }`;
    // RFC 4180: every text field quoted, a quote doubled, CR and LF kept inside the quotes; a
    // number its decimal text; null an empty field; records end with LF (the header too).
    const cell = (v: Node[string]) =>
      v === null ? '' : typeof v === 'string' ? `"${v.replace(/"/g, '""')}"` : String(v);
    const csv = [
      selection.split(' ').join(','),
      ...expected.map((node) =>
        selection
          .split(' ')
          .map((f) => cell(node[f]))
          .join(','),
      ),
    ]
      .map((line) => `${line}\n`)
      .join('');
    const asCsv = await exportRaw({ query }, 'text/csv');
    expect(asCsv.statusCode).toBe(200);
    expect(asCsv.rawPayload.equals(Buffer.from(csv, 'utf8'))).toBe(true);
    // A formula is data: by default it leaves exactly as released (`?formulas=escape` is the
    // spreadsheet's opt-in: test/data-export.spec.ts).
    expect(asCsv.body).toContain('"=1+1"');
    // NDJSON: one JSON text per LF-terminated line; a line break, U+2028 or control character inside
    // a value is escaped, never raw.
    const asNdjson = await exportRaw({ query }, 'application/x-ndjson');
    const lines = asNdjson.body.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((line) => JSON.parse(line) as Node)).toEqual(expected);
    for (const line of lines) expect([...line].some((c) => c.charCodeAt(0) < 0x20)).toBe(false);
  });

  /** A CSV export of `query` over TCP; `onFirst` is called once with the response when its first bytes are in. */
  const overTcp = async (
    query: string,
    onFirst: (res: http.IncomingMessage, req: http.ClientRequest) => void,
  ): Promise<{ lines: number; complete: boolean }> => {
    let first = true;
    const { lines, complete } = await exportOverTcp(broker, analyst.apiKey, query, (res, req) => {
      if (!first) return;
      first = false;
      onFirst(res, req);
    });
    return { lines, complete };
  };
  /** The broker's connections still busy with an export (its COPY, or a transaction left open). */
  const exportBackends = () =>
    broker.query<{ state: string; query: string }>(
      `SELECT state, query FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
          AND (query LIKE 'COPY%' OR state LIKE 'idle in transaction%')`,
    );
  const settled = async () => {
    for (let i = 0; i < 100; i++) {
      if (!(await exportBackends()).length) return [];
      await new Promise((done) => setTimeout(done, 50));
    }
    return exportBackends();
  };
  const LONG = `{ long_things(purpose: ${PURPOSE}) { nodes { k v } } }`;

  it('lets go of the connection of a client that leaves midway, its release recorded whole, nothing locked', async () => {
    const before = await head();
    const outcome = await overTcp(LONG, (_res, req) => req.destroy());
    expect(outcome.complete).toBe(false);
    expect(outcome.lines).toBeLessThan(150_001);
    expect(await settled()).toEqual([]);
    expect(await eventsAfter(before)).toEqual([
      { action: 'EXPORT', decision: 'ALLOW', reason: null, row_count: 150_000 },
    ]);
    expect(await broker.query(`SELECT id FROM release_staged`)).toEqual([]);
    // Nothing is left locked: the agreement can be changed, and the next export runs whole.
    const next = await exportRaw({ query: `{ long_things(purpose: ${PURPOSE}, first: 3) { nodes { k } } }` });
    expect(next.body.split('\n').filter(Boolean)).toHaveLength(4);
  });

  it('lets go of the connection of a client that left before the first byte', async () => {
    const before = await head();
    const stage = ReleaseStaging.prototype.stage;
    let left!: () => void;
    const gone = new Promise<void>((done) => (left = done));
    const spy = jest.spyOn(ReleaseStaging.prototype, 'stage').mockImplementation(async function (
      this: ReleaseStaging,
      ...args: Parameters<ReleaseStaging['stage']>
    ) {
      // The client is gone while the list is staged.
      await gone;
      await new Promise((done) => setTimeout(done, 100));
      return stage.apply(this, args);
    });
    const req = await exportRequest(broker, analyst.apiKey);
    try {
      await new Promise<void>((resolve) => {
        req.on('error', () => resolve());
        req.end(JSON.stringify({ query: LONG }));
        setTimeout(() => {
          req.destroy();
          left();
        }, 200);
      });
      // The export went on to record its release (decided before the client left), then let go.
      for (let i = 0; i < 100 && (await eventsAfter(before)).length === 0; i++) {
        await new Promise((done) => setTimeout(done, 50));
      }
      expect(await settled()).toEqual([]);
    } finally {
      spy.mockRestore();
    }
    expect(await broker.query(`SELECT id FROM release_staged`)).toEqual([]);
  });

  it('runs two exports at once, each whole, each its own event', async () => {
    const before = await head();
    const [a, b] = await Promise.all([
      exportRaw({ query: LONG }, 'text/csv'),
      exportRaw(
        { query: `{ long_things(purpose: ${PURPOSE}, first: 5000) { nodes { k } } }` },
        'application/x-ndjson',
      ),
    ]);
    expect(a.statusCode).toBe(200);
    expect(b.statusCode).toBe(200);
    expect(a.body.split('\n').filter(Boolean)).toHaveLength(150_001);
    expect(b.body.split('\n').filter(Boolean)).toHaveLength(5000);
    const events = await eventsAfter(before);
    expect(events.map((e) => e.row_count).sort((x, y) => x! - y!)).toEqual([5000, 150_000]);
    expect(await settled()).toEqual([]);
  });

  it('is not held up by, nor holds up, a revocation: the export in flight ends whole, the next is refused', async () => {
    const before = await head();
    let revoked: number | null = null;
    const outcome = await overTcp(LONG, (res) => {
      res.pause();
      void (async () => {
        const started = Date.now();
        await broker.gqlOk(
          parties.recipientSteward.apiKey,
          `mutation($id: ID!) { revokeAgreement(id: $id, reason: "ended") { status } }`,
          { id: longAgreement },
        );
        revoked = Date.now() - started;
        res.resume();
      })();
    });
    // Counted, recorded and sent in the snapshot it began in.
    expect(outcome).toEqual({ lines: 150_001, complete: true });
    expect(revoked).not.toBeNull();
    expect(revoked!).toBeLessThan(5000);
    const after = await exportRaw({ query: LONG });
    expect(after.statusCode).toBe(403);
    expect(after.body).not.toContain('value-');
    expect(await eventsAfter(before)).toEqual([
      { action: 'EXPORT', decision: 'ALLOW', reason: null, row_count: 150_000 },
      { action: 'EXPORT', decision: 'DENY', reason: 'FIELD_NOT_RELEASED', row_count: null },
    ]);
    expect(await settled()).toEqual([]);
  });

  it('answers 401, sending and auditing nothing, to a remembered key rotated before the export', async () => {
    const other = await broker.startAnother();
    try {
      const query = `{ things(purpose: ${PURPOSE}) { nodes { id } } }`;
      expect((await exportRaw({ query }, 'text/csv', analyst.apiKey, other)).statusCode).toBe(200);
      const rotated = await broker.rotate(analyst.apiKey);
      const before = await head();
      for (const q of [query, `{ things(purpose: ${PURPOSE}) { nodes { nope } } }`, '{']) {
        const res = await exportRaw({ query: q }, 'text/csv', analyst.apiKey, other);
        expect({ q, status: res.statusCode }).toEqual({ q, status: 401 });
        expect(res.body).not.toContain('R0');
      }
      expect(await eventsAfter(before)).toEqual([]);
      analyst.apiKey = rotated;
      expect((await exportRaw({ query }, 'text/csv', rotated, other)).statusCode).toBe(200);
    } finally {
      await other.stop();
    }
  });
});
