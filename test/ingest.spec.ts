import { TestBroker } from '@broker/testing';

const BOOKINGS = {
  slug: 'jail_bookings',
  title: 'Jail bookings',
  keyField: 'booking_id',
  subjectField: 'person_id',
  fields: [
    { name: 'booking_id', type: 'STRING', classification: 'NON_SENSITIVE' },
    { name: 'person_id', type: 'STRING', classification: 'DIRECT_IDENTIFIER' },
    { name: 'last_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'LAST_NAME' },
    { name: 'dob', type: 'DATE', classification: 'QUASI_IDENTIFIER', identity: 'DATE_OF_BIRTH' },
    { name: 'age', type: 'INTEGER', classification: 'QUASI_IDENTIFIER' },
    { name: 'bail', type: 'FLOAT', classification: 'SENSITIVE' },
    { name: 'released', type: 'BOOLEAN', classification: 'SENSITIVE' },
    { name: 'booked_at', type: 'DATETIME', classification: 'NON_SENSITIVE', required: true },
  ],
};

const INGEST = `mutation($id: ID!, $records: [JSONObject!]!) {
  ingestRecords(datasetId: $id, records: $records) { inserted updated rejected errors { row field message } }
}`;

describe('dataset registry and ingestion', () => {
  let broker: TestBroker;
  let sheriff: { id: string };
  let steward: { apiKey: string };
  let otherSteward: { apiKey: string };
  let analyst: { apiKey: string };
  let dataset: { id: string };

  const count = async () =>
    (await broker.query<{ n: number }>(`SELECT count(*)::int AS n FROM records.jail_bookings`))[0].n;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'ingest', INGEST_MAX_BYTES: '64KiB' });
    sheriff = await broker.createAgency('Sheriff');
    const courts = await broker.createAgency('Courts');
    steward = await broker.createUser({ agencyId: sheriff.id, role: 'STEWARD' });
    otherSteward = await broker.createUser({ agencyId: courts.id, role: 'STEWARD' });
    analyst = await broker.createUser({ agencyId: sheriff.id, role: 'ANALYST' });
    dataset = await broker.registerDataset(steward.apiKey, BOOKINGS);
  });
  afterAll(() => broker.close());

  describe('registerDataset', () => {
    it('creates a typed record table and shows the dataset in the catalog to everyone', async () => {
      const columns = await broker.query<{ column_name: string; data_type: string; is_nullable: string }>(
        `SELECT column_name, data_type, is_nullable FROM information_schema.columns
          WHERE table_schema = 'records' AND table_name = 'jail_bookings' ORDER BY ordinal_position`,
      );
      expect(columns.map((c) => [c.column_name, c.data_type, c.is_nullable])).toEqual([
        ['booking_id', 'text', 'NO'],
        ['person_id', 'text', 'YES'],
        ['last_name', 'text', 'YES'],
        ['dob', 'date', 'YES'],
        ['age', 'integer', 'YES'],
        ['bail', 'double precision', 'YES'],
        ['released', 'boolean', 'YES'],
        ['booked_at', 'timestamp with time zone', 'NO'],
        ['_ingested_at', 'timestamp with time zone', 'NO'],
        ['_rid', 'bigint', 'NO'],
        // Its subject's consent in force, kept by the database (a dataset with a subject field).
        ['_consent', 'text', 'YES'],
      ]);
      const data = await broker.gqlOk(
        otherSteward.apiKey,
        `{ datasets { slug keyField subjectField provider { name } fields { name type identity required } } }`,
      );
      expect(data.datasets).toHaveLength(1);
      expect(data.datasets[0]).toMatchObject({
        slug: 'jail_bookings',
        keyField: 'booking_id',
        subjectField: 'person_id',
        provider: { name: 'Sheriff' },
      });
      expect(data.datasets[0].fields[3]).toEqual({
        name: 'dob',
        type: 'DATE',
        identity: 'DATE_OF_BIRTH',
        required: false,
      });
      const one = await broker.gqlOk(analyst.apiKey, `query($id: ID!) { dataset(id: $id) { slug } }`, {
        id: dataset.id,
      });
      expect(one.dataset).toEqual({ slug: 'jail_bookings' });
      // An unknown id is NOT_FOUND, a malformed one BAD_USER_INPUT (DESIGN §4), as for agreements.
      const none = await broker.gql(
        analyst.apiKey,
        `{ dataset(id: "00000000-0000-4000-8000-000000000000") { slug } }`,
      );
      expect(none.errors?.[0].extensions).toMatchObject({ code: 'NOT_FOUND', reason: 'NOT_PARTY' });
      const malformed = await broker.gql(analyst.apiKey, `{ dataset(id: "zz") { slug } }`);
      expect(malformed.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID' });
      for (const id of ['00000000-0000-4000-8000-000000000000', 'zz']) {
        const run = await broker.gql(broker.operatorKey, `query($id: ID!) { linkageRun(id: $id) { id } }`, {
          id,
        });
        expect(run.errors?.[0].extensions?.code).toBe(id === 'zz' ? 'BAD_USER_INPUT' : 'NOT_FOUND');
      }
    });

    it('is for stewards only, and refuses a slug that exists', async () => {
      for (const key of [analyst.apiKey, broker.operatorKey]) {
        const res = await broker.gql(
          key,
          `mutation($i: RegisterDatasetInput!) { registerDataset(input: $i) { id } }`,
          {
            i: { ...BOOKINGS, slug: 'other_bookings' },
          },
        );
        expect(res.errors?.[0].extensions?.code).toBe('FORBIDDEN');
      }
      const dup = await broker.gql(
        otherSteward.apiKey,
        `mutation($i: RegisterDatasetInput!) { registerDataset(input: $i) { id } }`,
        {
          i: BOOKINGS,
        },
      );
      expect(dup.errors?.[0].extensions?.code).toBe('CONFLICT');
    });

    const field = (name: string, type = 'STRING', extra: Record<string, unknown> = {}) => ({
      name,
      type,
      classification: 'NON_SENSITIVE',
      ...extra,
    });
    const invalid: [string, Record<string, unknown>][] = [
      ['slug too short', { slug: 'ab' }],
      ['slug with capitals', { slug: 'JailBookings' }],
      ['slug with SQL', { slug: 'x"; DROP TABLE dataset; --' }],
      ['slug ending in _aggregate', { slug: 'cases_aggregate' }],
      ['slug taking a reserved type name', { slug: 'page_info' }],
      ['slug whose type name ends in Where', { slug: 'cases_where' }],
      ["slug taking the data plane's CountUnit", { slug: 'count_unit' }],
      ['slug whose type name ends in Linked', { slug: 'cases_linked' }],
      ['no fields', { fields: [] }],
      [
        'field with SQL in its name',
        { fields: [field('id'), field('a"; DROP TABLE x; --')], keyField: 'id' },
      ],
      ['reserved SQL word', { fields: [field('id'), field('select')], keyField: 'id' }],
      ['field named personKey', { fields: [field('id'), field('personKey')], keyField: 'id' }],
      ['field named __proto__', { fields: [field('id'), field('__proto__')], keyField: 'id' }],
      ['duplicate field', { fields: [field('id'), field('id')], keyField: 'id' }],
      [
        'released-name collision (year)',
        { fields: [field('id'), field('dob', 'DATE'), field('dob_year', 'INTEGER')], keyField: 'id' },
      ],
      [
        'released-name collision (hash)',
        { fields: [field('id'), field('ssn'), field('ssn_hash')], keyField: 'id' },
      ],
      ['key not a field', { fields: [field('id')], keyField: 'nope' }],
      ['FLOAT key', { fields: [field('id', 'FLOAT')], keyField: 'id' }],
      ['subject not a field', { fields: [field('id')], keyField: 'id', subjectField: 'nope' }],
      [
        'identity role twice',
        {
          fields: [
            field('id'),
            field('a', 'STRING', { identity: 'SSN', classification: 'DIRECT_IDENTIFIER' }),
            field('b', 'STRING', { identity: 'SSN', classification: 'DIRECT_IDENTIFIER' }),
          ],
          keyField: 'id',
        },
      ],
      [
        'identity of the wrong type',
        {
          fields: [
            field('id'),
            field('dob', 'INTEGER', { identity: 'DATE_OF_BIRTH', classification: 'QUASI_IDENTIFIER' }),
          ],
          keyField: 'id',
        },
      ],
      [
        'identity classified non-sensitive',
        { fields: [field('id'), field('ssn', 'STRING', { identity: 'SSN' })], keyField: 'id' },
      ],
      ['empty title', { title: '   ' }],
    ];
    it.each(invalid)('refuses a definition with %s, and creates nothing', async (_label, change) => {
      const input = {
        slug: 'probe_dataset',
        title: 'Probe',
        keyField: 'id',
        fields: [field('id')],
        ...change,
      };
      const res = await broker.gql(
        steward.apiKey,
        `mutation($i: RegisterDatasetInput!) { registerDataset(input: $i) { id } }`,
        { i: input },
      );
      expect(res.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      expect(res.data).toBeNull();
      const rows = await broker.query(`SELECT count(*)::int AS n FROM dataset`);
      expect(rows[0]).toEqual({ n: 1 });
      const tables = await broker.query(
        `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'records'`,
      );
      expect(tables[0]).toEqual({ n: 1 });
    });

    it('accepts school_year beside nothing it could be released from', async () => {
      const created = await broker.registerDataset(steward.apiKey, {
        slug: 'school_enrolments',
        title: 'Enrolments',
        keyField: 'id',
        fields: [field('id'), field('school_year', 'INTEGER'), field('ssn_hashes', 'STRING')],
      });
      expect(created.slug).toBe('school_enrolments');
    });
  });

  describe('ingestRecords (GraphQL)', () => {
    const record = (i: number, extra: Record<string, unknown> = {}) => ({
      booking_id: `B${i}`,
      person_id: `P${i}`,
      last_name: `O'Brien-${i}`,
      dob: '1990-02-28',
      age: 30 + i,
      bail: 1500.5,
      released: i % 2 === 0,
      booked_at: '2024-05-01T13:45:00Z',
      ...extra,
    });

    it('inserts, then updates by key, counting each separately', async () => {
      const first = await broker.gqlOk(steward.apiKey, INGEST, {
        id: dataset.id,
        records: [record(1), record(2), record(3)],
      });
      expect(first.ingestRecords).toEqual({ inserted: 3, updated: 0, rejected: 0, errors: [] });
      const second = await broker.gqlOk(steward.apiKey, INGEST, {
        id: dataset.id,
        records: [record(3, { age: 99 }), record(4)],
      });
      expect(second.ingestRecords).toEqual({ inserted: 1, updated: 1, rejected: 0, errors: [] });
      const events = await broker.query(
        `SELECT action, dataset_id, row_count, reason FROM audit_event WHERE action = 'RECORDS_INGESTED' ORDER BY seq`,
      );
      expect(events).toEqual([
        { action: 'RECORDS_INGESTED', dataset_id: dataset.id, row_count: 3, reason: '3 inserted, 0 updated' },
        { action: 'RECORDS_INGESTED', dataset_id: dataset.id, row_count: 2, reason: '1 inserted, 1 updated' },
      ]);
      const rows = await broker.query(
        `SELECT booking_id, last_name, dob::text, age, bail, released, booked_at FROM records.jail_bookings ORDER BY booking_id`,
      );
      expect(rows).toHaveLength(4);
      expect(rows[2]).toEqual({
        booking_id: 'B3',
        last_name: "O'Brien-3",
        dob: '1990-02-28',
        age: 99,
        bail: 1500.5,
        released: false,
        booked_at: new Date('2024-05-01T13:45:00Z'),
      });
    });

    it('a retried batch changes nothing but counts updates', async () => {
      const retry = await broker.gqlOk(steward.apiKey, INGEST, {
        id: dataset.id,
        records: [record(1), record(2)],
      });
      expect(retry.ingestRecords).toEqual({ inserted: 0, updated: 2, rejected: 0, errors: [] });
      expect(await count()).toBe(4);
    });

    it('refuses the whole batch when one row is invalid, reporting every error', async () => {
      const before = await broker.query(`SELECT * FROM records.jail_bookings ORDER BY booking_id`);
      const res = await broker.gqlOk(steward.apiKey, INGEST, {
        id: dataset.id,
        records: [
          record(10),
          record(11, { age: 'thirty' }),
          record(12, { dob: '1990-02-30', bail: 'NaN' }),
          { ...record(13), booked_at: null },
          record(14, { nickname: 'x', __proto__: { polluted: true } }),
          { last_name: 'no key' },
          record(15, { age: 2 ** 40 }),
          record(16, { released: 'yes' }),
          record(17, { booked_at: 'yesterday' }),
          record(18, { last_name: 'a\u0000b' }),
          record(10),
          record(19, { last_name: "Robert'); DROP TABLE records.jail_bookings; --" }),
        ],
      });
      const report = res.ingestRecords;
      expect(report.inserted).toBe(0);
      expect(report.updated).toBe(0);
      expect(report.rejected).toBe(10);
      expect(report.errors).toEqual([
        { row: 1, field: 'age', message: 'expected an integer' },
        { row: 2, field: 'dob', message: "expected a date 'YYYY-MM-DD'" },
        { row: 2, field: 'bail', message: 'expected a number' },
        { row: 3, field: 'booked_at', message: 'is required' },
        { row: 4, field: 'nickname', message: 'unknown field' },
        { row: 5, field: 'booking_id', message: 'is required' },
        { row: 5, field: 'booked_at', message: 'is required' },
        { row: 6, field: 'age', message: 'is outside the 32-bit integer range' },
        { row: 7, field: 'released', message: 'expected true or false' },
        {
          row: 8,
          field: 'booked_at',
          message: 'expected an ISO 8601 date-time such as 2024-05-01T13:45:00Z',
        },
        { row: 9, field: 'last_name', message: 'contains a NUL character' },
        { row: 10, field: 'booking_id', message: 'duplicate record key: row 0 has the same booking_id' },
      ]);
      expect(await broker.query(`SELECT * FROM records.jail_bookings ORDER BY booking_id`)).toEqual(before);
    });

    it('refuses __proto__ at the door and treats constructor as an unknown field', async () => {
      const before = await count();
      const poisoned = await broker.http.inject({
        method: 'POST',
        url: '/graphql',
        headers: { authorization: `Bearer ${steward.apiKey}`, 'content-type': 'application/json' },
        payload: `{"query":${JSON.stringify(INGEST)},"variables":{"id":"${dataset.id}","records":[{"booking_id":"B50","booked_at":"2024-01-01T00:00:00Z","__proto__":{"x":1}}]}}`,
      });
      expect(poisoned.statusCode).toBe(400);
      expect(JSON.parse(poisoned.body).errors[0].extensions.code).toBe('BAD_USER_INPUT');
      const res = await broker.gqlOk(steward.apiKey, INGEST, {
        id: dataset.id,
        records: [
          { booking_id: 'B51', booked_at: '2024-01-01T00:00:00Z', constructor: 'y', hasOwnProperty: 1 },
        ],
      });
      expect(res.ingestRecords.rejected).toBe(1);
      expect(res.ingestRecords.errors.map((e: { field: string }) => e.field).sort()).toEqual([
        'constructor',
        'hasOwnProperty',
      ]);
      expect(({} as Record<string, unknown>).x).toBeUndefined();
      expect(await count()).toBe(before);
    });

    it('stores SQL-looking values as plain text', async () => {
      const evil = "Robert'); DROP TABLE records.jail_bookings; --\t\\N\n";
      const res = await broker.gqlOk(steward.apiKey, INGEST, {
        id: dataset.id,
        records: [record(60, { last_name: evil })],
      });
      expect(res.ingestRecords.inserted).toBe(1);
      const rows = await broker.query(`SELECT last_name FROM records.jail_bookings WHERE booking_id = 'B60'`);
      expect(rows).toEqual([{ last_name: evil }]);
    });

    it('reports at most 1,000 errors but counts every rejected row', async () => {
      const records = Array.from({ length: 1500 }, (_, i) => record(1000 + i, { age: 'x' }));
      const res = await broker.gqlOk(steward.apiKey, INGEST, { id: dataset.id, records });
      expect(res.ingestRecords.rejected).toBe(1500);
      expect(res.ingestRecords.errors).toHaveLength(1000);
      expect(res.ingestRecords.errors[999].row).toBe(999);
    });

    it('is for the provider’s stewards only', async () => {
      const before = await count();
      // Another agency's dataset answers like a missing one, though its metadata is in the catalog.
      const other = await broker.gql(otherSteward.apiKey, INGEST, { id: dataset.id, records: [record(70)] });
      expect(other.errors?.[0].extensions?.code).toBe('NOT_FOUND');
      const byOperator = await broker.gql(broker.operatorKey, INGEST, {
        id: dataset.id,
        records: [record(70)],
      });
      expect(byOperator.errors?.[0].extensions?.code).toBe('FORBIDDEN');
      const byAnalyst = await broker.gql(analyst.apiKey, INGEST, { id: dataset.id, records: [record(71)] });
      expect(byAnalyst.errors?.[0].extensions?.code).toBe('FORBIDDEN');
      const missing = await broker.gql(steward.apiKey, INGEST, {
        id: '00000000-0000-4000-8000-000000000000',
        records: [record(72)],
      });
      expect(missing.errors?.[0].extensions?.code).toBe('NOT_FOUND');
      const junk = await broker.gql(steward.apiKey, INGEST, { id: "1' OR '1'='1", records: [record(73)] });
      expect(junk.errors?.[0].extensions?.code).toBe('NOT_FOUND');
      expect(await count()).toBe(before);
    });

    it('rejects a GraphQL body over the limit with 413', async () => {
      const small = await TestBroker.start({ LABEL: 'limit', GRAPHQL_MAX_BYTES: '2KiB' });
      try {
        const res = await small.http.inject({
          method: 'POST',
          url: '/graphql',
          headers: { authorization: `Bearer ${small.operatorKey}`, 'content-type': 'application/json' },
          payload: JSON.stringify({ query: '{ me { id } }', variables: { pad: 'x'.repeat(5000) } }),
        });
        expect(res.statusCode).toBe(413);
      } finally {
        await small.close();
      }
    });
  });

  describe('POST /api/datasets/{id}/records', () => {
    const header = 'booking_id,person_id,last_name,dob,age,bail,released,booked_at';

    it('streams CSV: quoted cells, empty cells as null, CRLF, BOM', async () => {
      const csv =
        '\ufeff' +
        [
          header,
          'C1,P1,"Smith, Jr.",1980-01-02,44,,true,2024-01-01T00:00:00Z',
          'C2,,"say ""hi""",,,"2.5",false,2024-01-01 10:00',
        ].join('\r\n') +
        '\r\n';
      const res = await broker.upload(steward.apiKey, dataset.id, 'text/csv', csv);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ inserted: 2, updated: 0, rejected: 0, errors: [] });
      const rows = await broker.query(
        `SELECT booking_id, person_id, last_name, dob, bail, booked_at FROM records.jail_bookings WHERE booking_id IN ('C1','C2') ORDER BY 1`,
      );
      expect(rows).toEqual([
        {
          booking_id: 'C1',
          person_id: 'P1',
          last_name: 'Smith, Jr.',
          dob: expect.anything(),
          bail: null,
          booked_at: new Date('2024-01-01T00:00:00Z'),
        },
        {
          booking_id: 'C2',
          person_id: null,
          last_name: 'say "hi"',
          dob: null,
          bail: 2.5,
          booked_at: new Date('2024-01-01T10:00:00Z'),
        },
      ]);
    });

    it('answers 422 with every error and writes nothing when a CSV row is invalid', async () => {
      const before = await count();
      const csv = [
        header,
        'C3,P3,X,1980-13-01,1,1,true,2024-01-01T00:00:00Z',
        'C4,P4,Y,1980-01-01,1,1,true',
        'C5,P5,Z,1980-01-01,1,1,maybe,2024-01-01T00:00:00Z',
        'C3,P3,X,1980-01-01,1,1,true,2024-01-01T00:00:00Z',
      ].join('\n');
      const res = await broker.upload(steward.apiKey, dataset.id, 'text/csv', csv);
      expect(res.status).toBe(422);
      expect(res.body.rejected).toBe(4);
      expect(res.body.errors).toEqual([
        { row: 0, field: 'dob', message: "expected a date 'YYYY-MM-DD'" },
        { row: 1, field: null, message: 'has 7 cells; the header has 8' },
        { row: 2, field: 'released', message: 'expected true or false' },
        // The key of row 0 repeated: an error of row 3, although row 0 was refused for its date.
        { row: 3, field: 'booking_id', message: 'duplicate record key: row 0 has the same booking_id' },
      ]);
      expect(await count()).toBe(before);
    });

    it('reports a repeated key on its later row whatever else is wrong with either row, into an empty dataset too', async () => {
      const empty = await broker.registerDataset(steward.apiKey, {
        slug: 'jail_visits_dup',
        title: 'Visits',
        keyField: 'visit_id',
        fields: [
          { name: 'visit_id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
          { name: 'n', type: 'INTEGER', classification: 'NON_SENSITIVE' },
        ],
      });
      const csv = ['visit_id,n', 'V1,x', 'V1,2', 'V2,3', 'V1,y', ',4'].join('\n');
      const res = await broker.upload(steward.apiKey, empty.id, 'text/csv', csv);
      expect(res.status).toBe(422);
      expect(res.body).toEqual({
        inserted: 0,
        updated: 0,
        rejected: 4,
        errors: [
          { row: 0, field: 'n', message: 'expected an integer' },
          { row: 1, field: 'visit_id', message: 'duplicate record key: row 0 has the same visit_id' },
          { row: 3, field: 'n', message: 'expected an integer' },
          { row: 3, field: 'visit_id', message: 'duplicate record key: row 0 has the same visit_id' },
          { row: 4, field: 'visit_id', message: 'is required' },
        ],
      });
      const [{ n }] = await broker.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM records.jail_visits_dup`,
      );
      expect(n).toBe(0);
    });

    it('reports unknown CSV columns on every row', async () => {
      const res = await broker.upload(
        steward.apiKey,
        dataset.id,
        'text/csv',
        'booking_id,booked_at,x); DROP TABLE y; --\nC9,2024-01-01T00:00:00Z,x\n',
      );
      expect(res.status).toBe(422);
      expect(res.body.errors).toEqual([
        { row: 0, field: 'x); DROP TABLE y; --', message: 'unknown field (CSV header)' },
      ]);
      // A header alone is refused as well, at row 0, as a file that breaks before its first row.
      const before = await count();
      const alone = await broker.upload(
        steward.apiKey,
        dataset.id,
        'text/csv',
        'booking_id,nope,booking_id\n',
      );
      expect(alone.status).toBe(422);
      expect(alone.body.errors).toEqual([
        { row: 0, field: 'nope', message: 'unknown field (CSV header)' },
        { row: 0, field: 'booking_id', message: 'appears twice in the CSV header' },
      ]);
      expect(await count()).toBe(before);
    });

    it('refuses a charset other than UTF-8, and bytes that are not UTF-8, writing nothing', async () => {
      const before = await count();
      const latin1 = await broker.http.inject({
        method: 'POST',
        url: `/api/datasets/${dataset.id}/records`,
        headers: {
          authorization: `Bearer ${steward.apiKey}`,
          'content-type': 'text/csv; charset=ISO-8859-1',
        },
        payload: 'booking_id,booked_at\nL1,2024-01-01T00:00:00Z\n',
      });
      expect(latin1.statusCode).toBe(415);
      expect(JSON.parse(latin1.body)).toMatchObject({ code: 'BAD_USER_INPUT' });
      expect(JSON.parse(latin1.body).error).toContain('UTF-8');
      const bytes = Buffer.concat([
        Buffer.from('booking_id,booked_at\nL2,2024-01-01T00:00:00Z\nM'),
        Buffer.from([0xfc]),
        Buffer.from('LLER,2024-01-01T00:00:00Z\n'),
      ]);
      const res = await broker.upload(steward.apiKey, dataset.id, 'text/csv; charset=utf-8', bytes);
      expect(res.status).toBe(422);
      expect(res.body.errors[0].message).toContain('not valid UTF-8');
      expect(await count()).toBe(before);
    });

    it('reports malformed CSV at the row where it breaks', async () => {
      const before = await count();
      const res = await broker.upload(
        steward.apiKey,
        dataset.id,
        'text/csv',
        `${header}\nC6,P6,"unclosed,1980-01-01,1,1,true,2024-01-01T00:00:00Z\n`,
      );
      expect(res.status).toBe(422);
      expect(res.body.errors).toEqual([
        { row: 0, field: null, message: 'malformed CSV: a quoted cell is never closed' },
      ]);
      expect(await count()).toBe(before);
    });

    it('streams NDJSON, skipping blank lines and reporting lines that are not JSON', async () => {
      const ok = await broker.upload(
        steward.apiKey,
        dataset.id,
        'application/x-ndjson',
        '{"booking_id":"N1","booked_at":"2024-02-01T00:00:00Z","age":5}\n\n{"booking_id":"N2","booked_at":"2024-02-01T00:00:00+02:00"}\n',
      );
      expect(ok).toEqual({ status: 200, body: { inserted: 2, updated: 0, rejected: 0, errors: [] } });
      const bad = await broker.upload(
        steward.apiKey,
        dataset.id,
        'application/x-ndjson',
        '{"booking_id":"N3","booked_at":"2024-02-01T00:00:00Z"}\n{"booking_id": oops}\n[1,2]\n{"booking_id":"N4","booked_at":"2024-02-01T00:00:00Z","age":1.5}',
      );
      expect(bad.status).toBe(422);
      expect(bad.body.errors).toEqual([
        { row: 1, field: null, message: 'line is not valid JSON' },
        { row: 2, field: null, message: 'a record must be a JSON object' },
        { row: 3, field: 'age', message: 'expected an integer' },
      ]);
      const rows = await broker.query(
        `SELECT booking_id FROM records.jail_bookings WHERE booking_id LIKE 'N%' ORDER BY 1`,
      );
      expect(rows).toEqual([{ booking_id: 'N1' }, { booking_id: 'N2' }]);
    });

    it('answers 413 past INGEST_MAX_BYTES and writes nothing', async () => {
      const before = await count();
      const lines = Array.from(
        { length: 2000 },
        (_, i) => `{"booking_id":"L${i}","booked_at":"2024-02-01T00:00:00Z"}`,
      );
      const res = await broker.upload(steward.apiKey, dataset.id, 'application/x-ndjson', lines.join('\n'));
      expect(res.status).toBe(413);
      expect(res.body.code).toBe('PAYLOAD_TOO_LARGE');
      expect(await count()).toBe(before);
    });

    it('refuses other content types, other agencies, analysts, missing datasets and missing keys', async () => {
      for (const [type, payload] of [
        ['application/xml', '<x/>'],
        ['application/json', '[{"booking_id":"J1"}]'],
        ['application/x-www-form-urlencoded', 'booking_id=J1'],
        ['text/plain', 'J1'],
      ]) {
        const res = await broker.http.inject({
          method: 'POST',
          url: `/api/datasets/${dataset.id}/records`,
          headers: { authorization: `Bearer ${steward.apiKey}`, 'content-type': type },
          payload,
        });
        expect({ type, status: res.statusCode }).toEqual({ type, status: 415 });
      }
      expect((await broker.upload(otherSteward.apiKey, dataset.id, 'text/csv', `${header}\n`)).status).toBe(
        404,
      );
      expect((await broker.upload(analyst.apiKey, dataset.id, 'text/csv', `${header}\n`)).status).toBe(403);
      expect(
        (
          await broker.upload(
            steward.apiKey,
            '00000000-0000-4000-8000-000000000000',
            'text/csv',
            `${header}\n`,
          )
        ).status,
      ).toBe(404);
      const anonymous = await broker.http.inject({
        method: 'POST',
        url: `/api/datasets/${dataset.id}/records`,
        headers: { 'content-type': 'text/csv' },
        payload: `${header}\n`,
      });
      expect(anonymous.statusCode).toBe(401);
    });

    it('keeps serving after bad uploads', async () => {
      const res = await broker.gqlOk(steward.apiKey, '{ me { role } }');
      expect(res.me.role).toBe('STEWARD');
    });
  });
});
