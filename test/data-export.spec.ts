import type http from 'node:http';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { ReleaseIndexer, ReleaseStaging } from '@broker/audit';
import type { Logger } from 'pino';
import { Database, LOGGER, Transaction } from '@broker/core';
import { FORMULA_START } from '@broker/data-plane';
import { csvSource } from '@broker/registry';
import { TestBroker } from '@broker/testing';
import { runAuditVerify } from '../scripts/audit-verify';
import { exportOverTcp as overTcp } from './export-over-tcp';

const N = 300;
const WORDS = ['plain', 'with, comma', 'with "quote"', '', 'line\nbreak', 'é ☃'];
// Instants at the edges of what the response writes, shared by several rows (ties), and none.
const INSTANTS = [
  '0001-01-01T00:00:00Z',
  '9999-12-31T23:59:59.999Z',
  '2024-02-29T12:00:00.5Z',
  '1969-12-31T23:59:59.001Z',
  '2021-06-01T08:30:00.120Z',
  null,
];
const ROWS = Array.from({ length: N }, (_, i) => ({
  id: `R${String(i).padStart(4, '0')}`,
  person: `P${i % 40}`,
  s: i % 9 === 0 ? null : WORDS[i % WORDS.length],
  n: i % 7 === 0 ? null : (i * 13) % 100,
  x: i % 5 === 0 ? null : i / 8,
  ok: i % 6 === 0 ? null : i % 2 === 0,
  d: `2021-0${1 + (i % 9)}-1${i % 10}`,
  at: INSTANTS[i % INSTANTS.length],
  secret: `s${i % 11}`,
}));
const CONSENTED = Array.from({ length: 40 }, (_, i) => `P${i}`).filter((_, i) => i % 3 !== 0);

const RECORD = `mutation($input: ConsentInput!) { recordConsent(input: $input) { id } }`;
const FIELDS = 'id s n x ok d at secret_hash';
type Node = Record<string, string | number | boolean | null>;

describe('data plane: exports (POST /data/export)', () => {
  let broker: TestBroker;
  let analyst: { apiKey: string };
  let providerSteward: { apiKey: string };
  let recipientSteward: { apiKey: string };
  let agencies: { provider: string; recipient: string };
  let dataset: { id: string };
  let agreement: string;

  const exportRaw = (query: string, accept = 'text/csv', key = analyst.apiKey) =>
    broker.http.inject({
      method: 'POST',
      url: '/data/export',
      headers: { authorization: `Bearer ${key}`, accept, 'content-type': 'application/json' },
      payload: { query },
    });

  const pages = async (args: string) => {
    const all: Node[] = [];
    let after: string | null = null;
    for (;;) {
      const res = await broker.gql(
        analyst.apiKey,
        `query($after: String) { things(purpose: RESEARCH, first: 37, after: $after${args}) { nodes { ${FIELDS} } pageInfo { hasNextPage endCursor } } }`,
        { after },
        '/data/graphql',
      );
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

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'export' });
    const provider = await broker.createAgency('Provider');
    const recipient = await broker.createAgency('Recipient');
    providerSteward = await broker.createUser({ agencyId: provider.id, role: 'STEWARD' });
    recipientSteward = await broker.createUser({ agencyId: recipient.id, role: 'STEWARD' });
    agencies = { provider: provider.id, recipient: recipient.id };
    analyst = await broker.createUser({ agencyId: recipient.id, role: 'ANALYST' });
    await broker.definePurposes('RESEARCH');
    dataset = await broker.registerDataset(providerSteward.apiKey, {
      slug: 'things',
      title: 'Things',
      keyField: 'id',
      subjectField: 'person',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'person', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 's', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'n', type: 'INTEGER', classification: 'NON_SENSITIVE' },
        { name: 'x', type: 'FLOAT', classification: 'NON_SENSITIVE' },
        { name: 'ok', type: 'BOOLEAN', classification: 'NON_SENSITIVE' },
        { name: 'd', type: 'DATE', classification: 'NON_SENSITIVE' },
        { name: 'at', type: 'DATETIME', classification: 'NON_SENSITIVE' },
        { name: 'secret', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    });
    await broker.gqlOk(
      providerSteward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: dataset.id, r: ROWS },
    );
    for (const subjectId of CONSENTED) {
      await broker.gqlOk(providerSteward.apiKey, RECORD, {
        input: { datasetId: dataset.id, subjectId, purpose: 'RESEARCH', granted: true },
      });
    }
    agreement = await broker.activateAgreement(providerSteward.apiKey, recipientSteward.apiKey, {
      title: 'Things for research',
      providerAgencyId: provider.id,
      recipientAgencyId: recipient.id,
      purposes: ['RESEARCH'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId: dataset.id,
          fields: ['id', 's', 'n', 'x', 'ok', 'd', 'at']
            .map((name) => ({ name }))
            .concat([{ name: 'secret', transform: 'HASH' }] as never),
          rowFilter: { n: { $gte: 10 } },
          requireConsent: true,
        },
      ],
    });
  });
  afterAll(() => broker.close());

  const expectedCount = ROWS.filter((r) => r.n !== null && r.n >= 10 && CONSENTED.includes(r.person)).length;

  it('exports as NDJSON exactly the rows of the concatenated pages, under the row filter and consent', async () => {
    for (const args of [
      '',
      ', orderBy: [{ field: s, direction: DESC }, { field: x }]',
      // Instants: written by the page from their text, by the export by to_char; cursors on them.
      ', orderBy: [{ field: at }]',
      ', orderBy: [{ field: at, direction: DESC }, { field: d }]',
      ', where: { n: { lt: 60 } }',
      // Lists: bound to a COPY as settings, they must still be lists to ANY and ALL.
      ', where: { n: { in: [13, 26, 39] }, s: { nin: ["plain"] } }',
      ', where: { or: [{ s: { in: ["plain", ""] } }, { n: { nin: [] } }] }',
    ]) {
      const expected = await pages(args);
      const res = await exportRaw(
        `{ things(purpose: RESEARCH${args}) { nodes { ${FIELDS} } } }`,
        'application/x-ndjson',
      );
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
      const lines = res.body.split('\n');
      expect(lines.pop()).toBe('');
      expect(lines.map((l) => JSON.parse(l) as Node)).toEqual(expected);
      if (!args) expect(lines).toHaveLength(expectedCount);
    }
  });

  it('exports as CSV: a header of released names, null as an empty cell, an empty string as ""', async () => {
    const expected = await pages('');
    const res = await exportRaw(`{ things(purpose: RESEARCH) { nodes { ${FIELDS} } } }`, 'text/csv');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    const records = parseCsv(res.body);
    expect(records[0]).toEqual(FIELDS.split(' '));
    const cell = (v: string | number | boolean | null) => (v === null ? null : String(v));
    expect(records.slice(1)).toEqual(expected.map((node) => FIELDS.split(' ').map((f) => cell(node[f]))));
    expect(res.body).toContain(',"",');
    // Aliases name the columns, as they name a page's keys; the values are the released name's.
    const aliased = parseCsv(
      (await exportRaw(`{ things(purpose: RESEARCH) { nodes { ref: id again: id } } }`, 'text/csv')).body,
    );
    expect(aliased[0]).toEqual(['ref', 'again']);
    expect(aliased.slice(1)).toEqual(expected.map((node) => [cell(node.id), cell(node.id)]));
  });

  it('honours first when given, and a cursor', async () => {
    const res = await exportRaw(
      `{ things(purpose: RESEARCH, first: 7) { nodes { id } } }`,
      'application/x-ndjson',
    );
    expect(res.body.trim().split('\n')).toHaveLength(7);
    // From a page's cursor on: the rest of the pages.
    const all = await pages('');
    const first = await broker.gql(
      analyst.apiKey,
      `{ things(purpose: RESEARCH, first: 10) { pageInfo { endCursor } } }`,
      undefined,
      '/data/graphql',
    );
    const cursor = (first.data!.things as { pageInfo: { endCursor: string } }).pageInfo.endCursor;
    const rest = await exportRaw(
      `{ things(purpose: RESEARCH, after: ${JSON.stringify(cursor)}) { nodes { ${FIELDS} } } }`,
      'application/x-ndjson',
    );
    expect(
      rest.body
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Node),
    ).toEqual(all.slice(10));
  });

  it('is audited before the first byte: one EXPORT event with the total, and recorded like a page', async () => {
    const before = await broker.query<{ seq: string }>(`SELECT max(seq)::text AS seq FROM audit_event`);
    const logged = jest.spyOn(broker.app.get<Logger>(LOGGER), 'info');
    const res = await exportRaw(`{ things(purpose: RESEARCH) { nodes { id n } } }`, 'text/csv');
    expect(res.statusCode).toBe(200);
    // Its steps are logged once it is sent, in order: staged, planned, recorded (before the first
    // byte), sent.
    const sent = logged.mock.calls.find(([, msg]) => msg === 'export sent');
    logged.mockRestore();
    const line = sent?.[0] as { rows: number; format: string; ms: Record<string, number> };
    expect(line).toMatchObject({ rows: expectedCount, format: 'csv', formulas: 'verbatim' });
    expect(Object.keys(line.ms)).toEqual(['staged', 'planned', 'recorded', 'sent']);
    const at = Object.values(line.ms);
    expect([...at].sort((x, y) => x - y)).toEqual(at);
    const events = await broker.query<{
      action: string;
      decision: string;
      row_count: number;
      agreement_id: string;
      seq: string;
    }>(
      `SELECT action, decision, row_count, agreement_id, seq::text FROM audit_event WHERE seq > $1 ORDER BY seq`,
      [before[0].seq],
    );
    expect(events).toMatchObject([
      { action: 'EXPORT', decision: 'ALLOW', row_count: expectedCount, agreement_id: agreement },
    ]);
    const [release] = await broker.query<{ n: number }>(
      `SELECT cardinality(rids) AS n FROM release_record WHERE audit_seq = $1`,
      [events[0].seq],
    );
    expect(release.n).toBe(expectedCount);
    // The list was staged by PostgreSQL and taken by the append: nothing is left staged.
    expect(await broker.query(`SELECT id FROM release_staged`)).toEqual([]);
    const report = await broker.gqlOk<{ subjectAccessReport: { action: string }[] }>(
      providerSteward.apiKey,
      `query($d: ID!, $s: String!) { subjectAccessReport(datasetId: $d, subjectId: $s) { action fields } }`,
      { d: dataset.id, s: CONSENTED[1] },
    );
    expect(report.subjectAccessReport.map((r) => r.action)).toContain('EXPORT');
  });

  it('refuses with the JSON refusal of /data/graphql and a 4xx, exports nothing, and audits the refusal', async () => {
    const before = await broker.query<{ seq: string }>(`SELECT max(seq)::text AS seq FROM audit_event`);
    const refused = await exportRaw(`{ things(purpose: RESEARCH) { nodes { id secret } } }`);
    expect(refused.statusCode).toBeGreaterThanOrEqual(400);
    expect(refused.statusCode).toBeLessThan(500);
    expect(refused.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(refused.body) as {
      data: null;
      errors: { extensions: Record<string, unknown> }[];
    };
    expect(body.data).toBeNull();
    expect(body.errors[0].extensions.code).toBe('FORBIDDEN');

    const notReleased = await exportRaw(
      `{ things(purpose: RESEARCH, orderBy: [{ field: person }]) { nodes { id } } }`,
    );
    expect(notReleased.statusCode).toBe(403);
    const byRole = await exportRaw(
      `{ things(purpose: RESEARCH) { nodes { id } } }`,
      'text/csv',
      providerSteward.apiKey,
    );
    expect(byRole.statusCode).toBe(403);
    expect(
      (JSON.parse(byRole.body) as { errors: { extensions: { reason: string } }[] }).errors[0].extensions
        .reason,
    ).toBe('ROLE');
    const badCursor = await exportRaw(`{ things(purpose: RESEARCH, after: "bzoy") { nodes { id } } }`);
    expect(badCursor.statusCode).toBe(400);
    expect(
      (JSON.parse(badCursor.body) as { errors: { extensions: { reason: string } }[] }).errors[0].extensions
        .reason,
    ).toBe('INVALID');

    const events = await broker.query<{ action: string; decision: string; row_count: number | null }>(
      `SELECT action, decision, row_count FROM audit_event WHERE seq > $1 ORDER BY seq`,
      [before[0].seq],
    );
    expect(events.length).toBeGreaterThanOrEqual(4);
    for (const event of events) expect(event).toMatchObject({ action: 'EXPORT', decision: 'DENY' });
    const [{ n }] = await broker.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM release_record r JOIN audit_event e ON e.seq = r.audit_seq WHERE e.seq > $1`,
      [before[0].seq],
    );
    expect(n).toBe(0);
  });

  it('answers 406 unless Accept names CSV or NDJSON, and never 500 on odd input', async () => {
    for (const accept of ['application/json', '*/*', 'text/csv;q=0', '']) {
      const res = await exportRaw(`{ things(purpose: RESEARCH) { nodes { id } } }`, accept);
      expect(res.statusCode).toBe(406);
    }
    const two = await exportRaw(
      `{ a: things(purpose: RESEARCH) { nodes { id } } b: things(purpose: RESEARCH) { nodes { id } } }`,
    );
    expect(two.statusCode).toBe(400);
    for (const payload of ['not json', '{"query": 5}', '{"query": "{"}', '[]']) {
      const res = await broker.http.inject({
        method: 'POST',
        url: '/data/export',
        headers: {
          authorization: `Bearer ${analyst.apiKey}`,
          accept: 'text/csv',
          'content-type': 'application/json',
        },
        payload,
      });
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expect(res.statusCode).toBeLessThan(500);
    }
  });

  describe('?formulas=escape: text cells a spreadsheet would run as formulas', () => {
    // Strings a spreadsheet reads as a formula (the first six), and the ones it does not.
    const VALUES: (string | null)[] = [
      '=1+1',
      '+x',
      '-y',
      '@z',
      '\tq',
      '\rr',
      'normal',
      null,
      '',
      "'=quoted already",
      'a=b',
      '\n=x',
    ];
    const dangerous = (v: string | null) => v !== null && FORMULA_START.includes(v.charAt(0));
    const escaped = (v: string | null) => (dangerous(v) ? `'${v}` : v);
    const COLUMNS = 'id s p_prefix h_hash n x ok d';
    // Text columns (released Strings: RAW, GENERALIZE's prefix, HASH), then the others.
    const TEXT = new Set(['id', 's', 'p_prefix', 'h_hash']);
    let run = 0;

    const exportCsv = (query: string, formulas?: string, accept = 'text/csv') =>
      broker.http.inject({
        method: 'POST',
        url: `/data/export${formulas === undefined ? '' : `?${formulas}`}`,
        headers: { authorization: `Bearer ${analyst.apiKey}`, accept, 'content-type': 'application/json' },
        payload: { query },
      });
    const query = (runNumber: number, columns = COLUMNS) =>
      `{ formulas(purpose: RESEARCH, where: { run: { eq: ${runNumber} } }, orderBy: [{ field: id }]) { nodes { ${columns} } } }`;
    /** Rows of one run of their own, read back by `query(run)`. */
    const ingest = async (rows: Record<string, unknown>[]) => {
      run++;
      await broker.gqlOk(
        providerSteward.apiKey,
        `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
        {
          id: formulaDataset.id,
          r: rows.map((row, i) => ({ id: `F${run}-${String(i).padStart(3, '0')}`, run, ...row })),
        },
      );
      return run;
    };
    /** The records the broker's own CSV reader (its uploads') reads in `text`: an empty cell is ''. */
    const readByBroker = async (text: string) => {
      const source = await csvSource(Readable.from([Buffer.from(text, 'utf8')]));
      const records: string[][] = [source.header!];
      for await (const group of source.groups)
        for (const row of group) {
          if (row.kind !== 'cells') throw new Error(`not a record: ${JSON.stringify(row)}`);
          records.push(row.cells);
        }
      return records;
    };
    let formulaDataset: { id: string };

    beforeAll(async () => {
      formulaDataset = await broker.registerDataset(providerSteward.apiKey, {
        slug: 'formulas',
        title: 'Formulas',
        keyField: 'id',
        fields: [
          { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
          { name: 'run', type: 'INTEGER', classification: 'NON_SENSITIVE' },
          { name: 's', type: 'STRING', classification: 'NON_SENSITIVE' },
          { name: 'p', type: 'STRING', classification: 'NON_SENSITIVE' },
          { name: 'h', type: 'STRING', classification: 'NON_SENSITIVE' },
          { name: 'n', type: 'INTEGER', classification: 'NON_SENSITIVE' },
          { name: 'x', type: 'FLOAT', classification: 'NON_SENSITIVE' },
          { name: 'ok', type: 'BOOLEAN', classification: 'NON_SENSITIVE' },
          { name: 'd', type: 'DATE', classification: 'NON_SENSITIVE' },
        ],
      });
      await broker.activateAgreement(providerSteward.apiKey, recipientSteward.apiKey, {
        title: 'Formulas for research',
        providerAgencyId: agencies.provider,
        recipientAgencyId: agencies.recipient,
        purposes: ['RESEARCH'],
        validFrom: '2020-01-01T00:00:00Z',
        validUntil: '2099-01-01T00:00:00Z',
        grants: [
          {
            datasetId: formulaDataset.id,
            fields: [
              { name: 'id' },
              { name: 'run' },
              { name: 's' },
              { name: 'p', transform: 'GENERALIZE' },
              { name: 'h', transform: 'HASH' },
              { name: 'n' },
              { name: 'x' },
              { name: 'ok' },
              { name: 'd' },
            ],
          },
        ],
      });
    });

    it('prefixes a quote to each text cell that begins a formula, and to nothing else; verbatim without it', async () => {
      const r = await ingest(
        VALUES.map((v, i) => ({
          s: v,
          p: v,
          h: v,
          n: i === 0 ? -5 : i,
          x: i === 0 ? -2.5 : null,
          ok: i === 0 ? false : null,
          d: i === 0 ? '2021-03-04' : null,
        })),
      );
      const verbatim = await exportCsv(query(r));
      const safe = await exportCsv(query(r), 'formulas=escape');
      for (const res of [verbatim, safe]) {
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-type']).toMatch(/^text\/csv/);
      }
      const [header, ...rows] = parseCsv(verbatim.body);
      const [safeHeader, ...safeRows] = parseCsv(safe.body);
      expect(header).toEqual(COLUMNS.split(' '));
      expect(safeHeader).toEqual(header);
      const hashes = rows.map((row) => row[3]);
      expect(hashes.filter((h) => h !== null)).toEqual(
        VALUES.filter((v) => v !== null).map((): unknown => expect.stringMatching(/^[0-9a-f]{64}$/)),
      );
      const id = (i: number) => `F${r}-${String(i).padStart(3, '0')}`;
      const prefix = (v: string | null) => (v === null ? null : v.slice(0, 3));
      // Without the option: every cell as released.
      expect(rows).toEqual(
        VALUES.map((v, i) => [
          id(i),
          v,
          prefix(v),
          hashes[i],
          i === 0 ? '-5' : String(i),
          i === 0 ? '-2.5' : null,
          i === 0 ? 'false' : null,
          i === 0 ? '2021-03-04' : null,
        ]),
      );
      // With it: a quote before the six formulas' text (and their prefixes'), nothing else changed.
      expect(safeRows).toEqual(
        VALUES.map((v, i) => [
          id(i),
          escaped(v),
          escaped(prefix(v)),
          hashes[i],
          i === 0 ? '-5' : String(i),
          i === 0 ? '-2.5' : null,
          i === 0 ? 'false' : null,
          i === 0 ? '2021-03-04' : null,
        ]),
      );
      expect(safeRows.map((row) => row[1])).toEqual([
        "'=1+1",
        "'+x",
        "'-y",
        "'@z",
        "'\tq",
        "'\rr",
        'normal',
        null,
        '',
        "'=quoted already",
        'a=b',
        '\n=x',
      ]);
      // A negative number is still a number (unquoted), text still quoted, null still an empty cell.
      expect(safe.body.split('\n')[1]).toBe(
        `"${id(0)}","'=1+1","'=1+","${hashes[0]}",-5,-2.5,false,2021-03-04`,
      );
      expect(safe.body).toContain(`"${id(7)}",,,,7,,,\n"${id(8)}","","","${hashes[8]}",8,,,\n`);
      // The broker's own CSV reader (its uploads') reads the same cells, null as ''.
      const blank = (records: (string | null)[][]) => records.map((row) => row.map((c) => c ?? ''));
      expect(await readByBroker(safe.body)).toEqual(blank([safeHeader, ...safeRows]));
      expect(await readByBroker(verbatim.body)).toEqual(blank([header, ...rows]));
      // Aliases name the columns with or without it: GraphQL names, which begin with no formula.
      const aliased = await exportCsv(query(r, 'formula: s id'), 'formulas=escape');
      expect(parseCsv(aliased.body)).toEqual([
        ['formula', 'id'],
        ...VALUES.map((v, i) => [escaped(v), id(i)]),
      ]);
    });

    it('refuses any other value of formulas, or formulas with NDJSON, as INVALID (audited), exporting nothing', async () => {
      const r = await ingest([{ s: '=1+1' }]);
      const before = await broker.query<{ seq: string }>(`SELECT max(seq)::text AS seq FROM audit_event`);
      const cases: [string, string][] = [
        ['formulas=', 'text/csv'],
        ['formulas', 'text/csv'],
        ['formulas=ESCAPE', 'text/csv'],
        ['formulas=verbatim', 'text/csv'],
        ['formulas=escape%20', 'text/csv'],
        ['formulas=escape&formulas=escape', 'text/csv'],
        ['formulas=escape', 'application/x-ndjson'],
        ['formulas=verbatim', 'application/x-ndjson'],
      ];
      for (const [formulas, accept] of cases) {
        const res = await exportCsv(query(r), formulas, accept);
        expect({ formulas, accept, status: res.statusCode }).toEqual({ formulas, accept, status: 400 });
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        expect(JSON.parse(res.body)).toEqual({
          data: null,
          errors: [
            {
              message:
                formulas === 'formulas=escape'
                  ? 'formulas=escape applies to a CSV export (Accept: text/csv) only'
                  : 'formulas takes one value: escape',
              extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', reason: 'INVALID' }),
            },
          ],
        });
        expect(res.body).not.toContain('=1+1');
      }
      const events = await broker.query<{ action: string; decision: string; reason: string }>(
        `SELECT action, decision, reason FROM audit_event WHERE seq > $1 ORDER BY seq`,
        [before[0].seq],
      );
      expect(events).toEqual(cases.map(() => ({ action: 'EXPORT', decision: 'DENY', reason: 'INVALID' })));
      const [{ n }] = await broker.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM release_record WHERE audit_seq > $1`,
        [before[0].seq],
      );
      expect(n).toBe(0);
      // Other parameters are none of the export's business, as before.
      expect((await exportCsv(query(r), 'other=1')).statusCode).toBe(200);
    });

    it('with formulas=escape, no text cell begins a formula, and taking the added quote away gives the verbatim export (property)', async () => {
      const start = fc.constantFrom(...FORMULA_START, "'", '\n', ' ', '"', ',', '\\', 'a', '1', '');
      const text = fc.oneof(
        fc.constant(null),
        fc
          .tuple(
            start,
            fc.string({ unit: 'grapheme', maxLength: 6 }).filter((t) => !t.includes('\u0000')),
          )
          .map(([a, b]) => a + b),
        fc.constantFrom(...VALUES),
      );
      const row = fc.record({ s: text, p: text, n: fc.option(fc.integer(), { nil: null }) });
      await fc.assert(
        fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 8 }), async (rows) => {
          const r = await ingest(rows);
          const columns = 'id s p_prefix h_hash n';
          const verbatim = await exportCsv(query(r, columns));
          const safe = await exportCsv(query(r, columns), 'formulas=escape');
          expect([verbatim.statusCode, safe.statusCode]).toEqual([200, 200]);
          const [header, ...plain] = parseCsv(verbatim.body);
          const [safeHeader, ...quoted] = parseCsv(safe.body);
          expect(safeHeader).toEqual(header);
          // The verbatim export is the values as ingested.
          expect(plain.map((cells) => [cells[1], cells[4]])).toEqual(
            rows.map((v) => [v.s, v.n === null ? null : String(v.n)]),
          );
          expect(quoted).toHaveLength(plain.length);
          for (const [i, cells] of quoted.entries()) {
            for (const [j, cell] of cells.entries()) {
              const name = header[j]!;
              if (TEXT.has(name)) {
                expect({ name, cell, dangerous: dangerous(cell) }).toEqual({ name, cell, dangerous: false });
                // Taking the added quote away (where the verbatim cell begins a formula) gives it back.
                const original = plain[i][j];
                const restored = dangerous(original) ? cell!.slice(1) : cell;
                expect(restored).toBe(original);
                expect(cell).toBe(escaped(original));
              } else {
                // Numbers, negative ones too, are as released.
                expect(cell).toBe(plain[i][j]);
              }
            }
          }
        }),
        { numRuns: Number(process.env.FC_RUNS ?? 25), seed: Number(process.env.FC_SEED ?? 20261228) },
      );
    });
  });

  it('records a large release without indexing its ids in the request, and indexes them after', async () => {
    // The append writes the release to release_record, which has no index on the ids (see the
    // migration release-index-deferred); ReleaseIndexer copies it into release_index afterwards.
    const indexes = await broker.query<{ name: string }>(
      `SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = 'release_record'::regclass`,
    );
    expect(indexes.map((i) => i.name)).toEqual(['release_record_pkey']);
    const [{ options }] = await broker.query<{ options: string[] }>(
      `SELECT reloptions AS options FROM pg_class WHERE relname = 'release_index_rids_idx'`,
    );
    expect(options).toEqual(expect.arrayContaining(['fastupdate=on', 'gin_pending_list_limit=32768']));
    const indexer = broker.app.get(ReleaseIndexer);
    await indexer.catchUp();
    // Every release recorded so far is in the index, with the same ids.
    const [{ missing, differing }] = await broker.query<{ missing: number; differing: number }>(
      `SELECT count(*) FILTER (WHERE i.audit_seq IS NULL)::int AS missing,
              count(*) FILTER (WHERE i.rids IS DISTINCT FROM r.rids)::int AS differing
         FROM release_record r LEFT JOIN release_index i USING (audit_seq)`,
    );
    expect({ missing, differing }).toEqual({ missing: 0, differing: 0 });
    // And every list, of the pages and the exports, has the digest its event seals in the chain.
    const [{ releases }] = await broker.query<{ releases: number }>(
      `SELECT count(*)::int AS releases FROM release_record`,
    );
    expect(releases).toBeGreaterThan(5);
    const total = Number(
      (await broker.query<{ seq: string }>(`SELECT seq::text AS seq FROM audit_head`))[0].seq,
    );
    await expect(runAuditVerify(broker.config.DATABASE_URL)).resolves.toMatchObject({
      valid: true,
      checked: total,
      firstBrokenSeq: null,
    });
    // The broker merges the pending list itself after a large export, with its own privileges.
    await expect(indexer.merge()).resolves.toBeGreaterThanOrEqual(0);
    // Nothing is left pending once merged.
    await expect(indexer.merge()).resolves.toBe(0);
  });

  it('answers 503 with nothing recorded or sent when PostgreSQL refuses the COPY, never 500', async () => {
    const before = await broker.query<{ seq: string }>(`SELECT max(seq)::text AS seq FROM audit_event`);
    // A COPY query PostgreSQL refuses once the values are set (as a list read back as a subquery
    // once was): found by its probe, before the EXPORT event, not after the first byte.
    const query = Transaction.prototype.query;
    const spy = jest.spyOn(Transaction.prototype, 'query').mockImplementation(function (
      this: Transaction,
      sql: string,
      params?: unknown[],
    ) {
      const refused = /^SELECT 1 FROM \(/.test(sql) ? `SELECT 1 = ANY((SELECT ARRAY[1]))` : sql;
      return query.call(this, refused, params);
    });
    try {
      const res = await exportRaw(`{ things(purpose: RESEARCH) { nodes { ${FIELDS} } } }`);
      expect(res.statusCode).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(res.body)).toMatchObject({
        data: null,
        errors: [{ extensions: { code: expect.any(String) } }],
      });
    } finally {
      spy.mockRestore();
    }
    const events = await broker.query<{ action: string; decision: string }>(
      `SELECT action, decision FROM audit_event WHERE seq > $1 AND action = 'EXPORT'`,
      [before[0].seq],
    );
    expect(events).toEqual([]);
    // The list staged for the release that never was is gone too.
    expect(await broker.query(`SELECT id FROM release_staged`)).toEqual([]);
    // And the next export goes through.
    expect((await exportRaw(`{ things(purpose: RESEARCH, first: 3) { nodes { id } } }`)).statusCode).toBe(
      200,
    );
  });

  it('refuses a read stopped at its time limit as LIMIT (audited DENY), a page or an export, never 500', async () => {
    const failure = (message: string, code: string) => () => Object.assign(new Error(message), { code });
    const timedOut = failure('canceling statement due to statement timeout', '57014');
    /** A page whose statement fails with `error()`, on either path (the one-statement read, or in a snapshot). */
    const pageWhenReadsFail = async (error: () => Error) => {
      const read = jest.spyOn(Database.prototype, 'read').mockRejectedValue(error());
      const inSnapshot = Transaction.prototype.query;
      const query = jest.spyOn(Transaction.prototype, 'query').mockImplementation(function (
        this: Transaction,
        sql: string,
        params?: unknown[],
      ) {
        if (/FROM "?records"?\./.test(sql)) return Promise.reject(error());
        return inSnapshot.call(this, sql, params);
      });
      try {
        return await broker.http.inject({
          method: 'POST',
          url: '/data/graphql',
          headers: { authorization: `Bearer ${analyst.apiKey}`, 'content-type': 'application/json' },
          payload: { query: `{ things(purpose: RESEARCH, first: 5) { nodes { id } } }` },
        });
      } finally {
        read.mockRestore();
        query.mockRestore();
      }
    };
    /** An export whose list is staged (or its rows counted) with `error()`. */
    const exportWhenStagingFails = async (error: () => Error) => {
      const stage = jest.spyOn(ReleaseStaging.prototype, 'stage').mockRejectedValue(error());
      try {
        return await exportRaw(`{ things(purpose: RESEARCH) { nodes { id } } }`);
      } finally {
        stage.mockRestore();
      }
    };
    const limited = (body: {
      data: unknown;
      errors?: { message: string; extensions: Record<string, unknown> }[];
    }) => {
      expect(body.data).toBeNull();
      expect(body.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'LIMIT' });
      // Without saying where the limit is.
      expect(body.errors?.[0].message).not.toMatch(/\d/);
    };

    const before = await broker.query<{ seq: string }>(`SELECT max(seq)::text AS seq FROM audit_event`);
    const page = await pageWhenReadsFail(timedOut);
    // As every refusal found once the request runs: GraphQL's 200, data null, the reason.
    expect(page.statusCode).toBe(200);
    limited(JSON.parse(page.body));
    const exported = await exportWhenStagingFails(timedOut);
    expect(exported.statusCode).toBe(400);
    limited(JSON.parse(exported.body));
    const events = await broker.query<{ action: string; decision: string; reason: string }>(
      `SELECT action, decision, reason FROM audit_event WHERE seq > $1 ORDER BY seq`,
      [before[0].seq],
    );
    expect(events).toEqual([
      { action: 'QUERY', decision: 'DENY', reason: 'LIMIT' },
      { action: 'EXPORT', decision: 'DENY', reason: 'LIMIT' },
    ]);
    expect(await broker.query(`SELECT id FROM release_staged`)).toEqual([]);

    // Any other failure of the database is not a refusal: unavailable (503), nothing leaves.
    const lost = await pageWhenReadsFail(
      failure('terminating connection due to administrator command', '57P01'),
    );
    expect(lost.statusCode).toBe(503);
    expect(JSON.parse(lost.body)).toMatchObject({
      data: null,
      errors: [{ extensions: { code: expect.any(String) } }],
    });
    const cancelled = await exportWhenStagingFails(
      failure('canceling statement due to user request', '57014'),
    );
    expect(cancelled.statusCode).toBe(503);
  });

  /**
   * A dataset `slug` (k INTEGER key, v STRING) of `rows` rows, released whole to the analyst's agency
   * for RESEARCH by an agreement of its own: far more rows than the sockets between PostgreSQL and a
   * client that stopped reading can hold.
   */
  const longDataset = async (slug: string, rows: number, filler: string) => {
    const long = await broker.registerDataset(providerSteward.apiKey, {
      slug,
      title: slug,
      keyField: 'k',
      fields: [
        { name: 'k', type: 'INTEGER', classification: 'NON_SENSITIVE', required: true },
        { name: 'v', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    });
    expect(
      (await broker.upload(providerSteward.apiKey, long.id, 'text/csv', `k,v\n0,${filler}`)).status,
    ).toBe(200);
    await broker.query(
      `INSERT INTO records.${slug} (k, v)
       SELECT g, 'value-' || g || '-' || $2 FROM generate_series(1, $1::int - 1) AS g`,
      [rows, filler],
    );
    const [{ provider, recipient }] = await broker.query<{ provider: string; recipient: string }>(
      `SELECT d.provider_agency_id AS provider, a.recipient_agency_id AS recipient
         FROM dataset d, agreement a WHERE d.id = $1 AND a.id = $2`,
      [long.id, agreement],
    );
    const recipientSteward = await broker.createUser({ agencyId: recipient, role: 'STEWARD' });
    await broker.activateAgreement(providerSteward.apiKey, recipientSteward.apiKey, {
      title: `${slug} for research`,
      providerAgencyId: provider,
      recipientAgencyId: recipient,
      purposes: ['RESEARCH'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [{ datasetId: long.id, fields: [{ name: 'k' }, { name: 'v' }] }],
    });
  };

  /** The analyst's CSV export of `query` over TCP (see exportOverTcp). */
  const exportOverTcp = (query: string, onChunk: (res: http.IncomingMessage) => void) =>
    overTcp(broker, analyst.apiKey, query, onChunk);

  it('ends a stream that fails midway without its final chunk', async () => {
    // About 23 MB: the COPY is still sending when its connection is killed, whatever the machine's speed.
    await longDataset('big_things', 500_000, 'x'.repeat(30));
    let killed = false;
    const outcome = await exportOverTcp(`{ big_things(purpose: RESEARCH) { nodes { k v } } }`, (res) => {
      if (killed) return;
      killed = true;
      // The first bytes are in: the export's connection is killed while it waits for the client. The
      // first bytes may be the header, written before the COPY reaches PostgreSQL: its backend is
      // waited for, so that the kill never misses it.
      res.pause();
      void (async () => {
        for (let tries = 0; tries < 200; tries++) {
          const ended = await broker.query<{ ended: boolean }>(
            `SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity
              WHERE datname = current_database() AND query LIKE 'COPY%' AND pid <> pg_backend_pid()`,
          );
          if (ended.some((e) => e.ended)) break;
          await new Promise((done) => setTimeout(done, 25));
        }
      })().finally(() => res.resume());
    });
    expect(outcome.bytes).toBeGreaterThan(0);
    expect(outcome.complete).toBe(false);
    expect(outcome.failed).toBe(true);
    // The cut export's release was recorded before its first byte: its ids still reach the index.
    await expect(indexedSoon(await newestRelease())).resolves.toBe(true);
  });

  it("copies an export's ids into the release index once it is sent, not while its COPY runs", async () => {
    await longDataset('long_things', 300_000, 'y'.repeat(40));
    let seq = '';
    let paused = false;
    let indexedWhilePaused: boolean | null = null;
    const outcome = await exportOverTcp(`{ long_things(purpose: RESEARCH) { nodes { k v } } }`, (res) => {
      if (paused) return;
      paused = true;
      // The release is recorded and the rows are on their way: the client stops reading for far
      // longer than the indexer's delay, and the index must not have the list meanwhile.
      res.pause();
      void (async () => {
        seq = await newestRelease();
        await new Promise((done) => setTimeout(done, 600));
        indexedWhilePaused = await indexed(seq);
        res.resume();
      })();
    });
    expect(outcome).toMatchObject({ lines: 300_001, complete: true, failed: false });
    expect(indexedWhilePaused).toBe(false);
    // Sent: the list is copied (and, this large, merged) without any other release to prompt it.
    await expect(indexedSoon(seq)).resolves.toBe(true);
    const [{ same }] = await broker.query<{ same: boolean }>(
      `SELECT i.rids = r.rids AS same FROM release_index i JOIN release_record r USING (audit_seq)
        WHERE audit_seq = $1`,
      [seq],
    );
    expect(same).toBe(true);
  });

  /** The audit seq of the newest release recorded. */
  const newestRelease = async () =>
    (await broker.query<{ seq: string }>(`SELECT max(audit_seq)::text AS seq FROM release_record`))[0].seq;
  /** Whether the release of `seq` is in the index. */
  const indexed = async (seq: string) =>
    (await broker.query(`SELECT 1 FROM release_index WHERE audit_seq = $1`, [seq])).length === 1;
  /** Whether the release of `seq` is in the index within 10 s. */
  const indexedSoon = async (seq: string) => {
    for (let i = 0; i < 100; i++) {
      if (await indexed(seq)) return true;
      await new Promise((done) => setTimeout(done, 100));
    }
    return false;
  };
});

/** A small RFC 4180 reader: null for an empty unquoted cell, '' for `""`. */
function parseCsv(text: string): (string | null)[][] {
  const records: (string | null)[][] = [];
  let record: (string | null)[] = [];
  let i = 0;
  while (i < text.length) {
    let value: string | null;
    if (text[i] === '"') {
      let out = '';
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        out += text.slice(i, q);
        i = q + 1;
        if (text[i] === '"') {
          out += '"';
          i++;
        } else break;
      }
      value = out;
    } else {
      let j = i;
      while (j < text.length && text[j] !== ',' && text[j] !== '\n') j++;
      value = j === i ? null : text.slice(i, j);
      i = j;
    }
    record.push(value);
    if (text[i] === ',') i++;
    else {
      records.push(record);
      record = [];
      i++;
    }
  }
  return records;
}
