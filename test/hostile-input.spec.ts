import fc from 'fast-check';
import { RefusalRecorder } from '@broker/audit';
import { TestBroker } from '@broker/testing';

const CODES = new Set(['UNAUTHENTICATED', 'FORBIDDEN', 'BAD_USER_INPUT', 'NOT_FOUND', 'CONFLICT']);
const REASONS = new Set([
  'ROLE',
  'PURPOSE_NOT_GRANTED',
  'NO_AGREEMENT_IN_FORCE',
  'FIELD_NOT_RELEASED',
  'ROWS_NOT_GRANTED',
  'AGREEMENT_AMBIGUOUS',
  'LIMIT',
  'INVALID',
  'NOT_PARTY',
]);
const UNKNOWN = '00000000-0000-4000-8000-000000000000';

/**
 * Hostile input on every endpoint: malformed and oversized documents, variables, ids and bodies.
 * Whatever arrives, no answer is a 5xx; each is in its endpoint's shape with a contract code and
 * reason; and each refusal of a signed-in caller is in the audit log before the answer.
 */
describe('hostile input: never 500, always the endpoint shape, every refusal audited', () => {
  let broker: TestBroker;
  let provider: { id: string };
  let recipient: { id: string };
  let third: { id: string };
  let providerSteward: { id: string; apiKey: string };
  let recipientSteward: { id: string; apiKey: string };
  let thirdSteward: { id: string; apiKey: string };
  let analyst: { id: string; apiKey: string };
  let datasetId: string;
  let agreementId: string;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'hostile' });
    provider = await broker.createAgency('Provider');
    recipient = await broker.createAgency('Recipient');
    third = await broker.createAgency('Third');
    providerSteward = await broker.createUser({ agencyId: provider.id, role: 'STEWARD' });
    recipientSteward = await broker.createUser({ agencyId: recipient.id, role: 'STEWARD' });
    thirdSteward = await broker.createUser({ agencyId: third.id, role: 'STEWARD' });
    analyst = await broker.createUser({ agencyId: recipient.id, role: 'ANALYST' });
    await broker.definePurposes('RESEARCH');
    datasetId = (
      await broker.registerDataset(providerSteward.apiKey, {
        slug: 'people',
        title: 'People',
        keyField: 'k',
        subjectField: 'k',
        fields: [
          { name: 'k', type: 'STRING', classification: 'NON_SENSITIVE' },
          { name: 'n', type: 'INTEGER', classification: 'NON_SENSITIVE' },
          { name: 'day', type: 'DATE', classification: 'NON_SENSITIVE' },
        ],
      })
    ).id;
    await broker.gqlOk(
      providerSteward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      {
        id: datasetId,
        r: Array.from({ length: 5 }, (_, i) => ({ k: `K${i}`, n: i, day: '2020-01-0' + (i + 1) })),
      },
    );
    agreementId = await broker.activateAgreement(providerSteward.apiKey, recipientSteward.apiKey, {
      title: 'People',
      providerAgencyId: provider.id,
      recipientAgencyId: recipient.id,
      purposes: ['RESEARCH'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [{ datasetId, fields: [{ name: 'k' }, { name: 'n' }, { name: 'day' }] }],
    });
  });
  afterAll(() => broker.close());

  async function deniesOf(userId: string): Promise<number> {
    const [row] = await broker.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_event WHERE decision = 'DENY' AND actor_user_id = $1`,
      [userId],
    );
    return row.n;
  }

  /** A data-plane request as the analyst, asking for CSV where it is an export. */
  const asAnalyst = (url: string, payload: Record<string, unknown>) =>
    broker.http.inject({
      method: 'POST',
      url,
      headers: {
        authorization: `Bearer ${analyst.apiKey}`,
        'content-type': 'application/json',
        accept: 'text/csv',
      },
      payload,
    });

  /** Sends a request and checks the invariants; returns the parsed body. */
  async function check(
    user: { id: string; apiKey: string } | null,
    request: { url: string; contentType?: string; payload: string | Buffer },
  ) {
    const before = user ? await deniesOf(user.id) : 0;
    const response = await broker.http.inject({
      method: 'POST',
      url: request.url,
      headers: {
        ...(user ? { authorization: `Bearer ${user.apiKey}` } : {}),
        'content-type': request.contentType ?? 'application/json',
      },
      payload: request.payload,
    });
    const context = `${request.url} ${response.statusCode} ${response.body.slice(0, 300)} <- ${String(request.payload).slice(0, 300)}`;
    if (response.statusCode >= 500) throw new Error(`5xx: ${context}`);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(response.body) as Record<string, unknown>;
    } catch {
      throw new Error(`not JSON: ${context}`);
    }
    const graphql = !request.url.startsWith('/api/');
    let reasons: string[] = [];
    if (graphql) {
      if (!('data' in body)) throw new Error(`no data member: ${context}`);
      const errors = body.errors as { extensions?: { code?: string; reason?: string } }[] | undefined;
      if (response.statusCode !== 200 && !errors?.length)
        throw new Error(`refusal without errors: ${context}`);
      for (const e of errors ?? []) {
        if (!CODES.has(e.extensions?.code ?? '')) throw new Error(`code not in the contract: ${context}`);
        if (!REASONS.has(e.extensions?.reason ?? ''))
          throw new Error(`reason not in the contract: ${context}`);
        if (/Did you mean/.test(JSON.stringify(e))) throw new Error(`suggestion: ${context}`);
      }
      if (errors?.length && body.data !== null && request.url.startsWith('/data/')) {
        throw new Error(`partial data on the data plane: ${context}`);
      }
      reasons = (errors ?? []).map((e) => e.extensions!.reason!);
    } else if (response.statusCode >= 400) {
      const code = body.code as string;
      if (!CODES.has(code) && code !== 'PAYLOAD_TOO_LARGE') throw new Error(`REST code: ${context}`);
      reasons = [body.reason as string];
    }
    if (user && reasons.length) {
      const after = await deniesOf(user.id);
      // LIMIT refusals of a caller merge into one event per minute, counted in the recorder.
      if (reasons.some((r) => r !== 'LIMIT') && after <= before) throw new Error(`not audited: ${context}`);
    }
    return body;
  }

  const id = fc.oneof(
    fc.constant(UNKNOWN),
    fc.uuid(),
    fc.string({ maxLength: 40 }),
    fc.constantFrom("1' OR '1'='1", '', ' ', '\u0000', 'null', '-1', '9'.repeat(400)),
  );
  const anyValue = fc.jsonValue({ maxDepth: 4 });

  it('answers hostile control-plane operations with a contract refusal, audited', async () => {
    const operations = fc.oneof(
      id.map((x) => ({ query: `query($x: ID!) { agreement(id: $x) { id } }`, variables: { x: x } })),
      id.map((x) => ({ query: `query($x: ID!) { dataset(id: $x) { id } }`, variables: { x } })),
      id.map((x) => ({ query: `query($x: ID!) { linkageRun(id: $x) { id } }`, variables: { x } })),
      id.map((x) => ({ query: `mutation($x: ID!) { deactivateUser(id: $x) { id } }`, variables: { x } })),
      fc.tuple(id, fc.string({ maxLength: 20 })).map(([x, s]) => ({
        query: `query($x: ID!, $s: String!) { subjectAccessReport(datasetId: $x, subjectId: $s) { at } }`,
        variables: { x, s },
      })),
      fc.tuple(id, fc.array(anyValue, { maxLength: 3 })).map(([x, r]) => ({
        query: `mutation($x: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $x, records: $r) { inserted } }`,
        variables: { x, r },
      })),
      fc
        .tuple(fc.integer({ min: -5, max: 5_000 }), fc.string({ maxLength: 20 }), id)
        .map(([first, after, x]) => ({
          query: `query($f: Int, $a: String, $d: ID) { auditEvents(first: $f, after: $a, filter: { datasetId: $d }) { nodes { seq } pageInfo { hasNextPage } } }`,
          variables: { f: first, a: after, d: x },
        })),
      fc.tuple(id, id, anyValue).map(([p, r, rowFilter]) => ({
        query: `mutation($i: AgreementInput!) { proposeAgreement(input: $i) { id } }`,
        variables: {
          i: {
            title: 'x',
            providerAgencyId: p,
            recipientAgencyId: r,
            purposes: ['RESEARCH'],
            validFrom: '2020-01-01T00:00:00Z',
            validUntil: '2030-01-01T00:00:00Z',
            grants: [{ datasetId, fields: [{ name: 'k' }], rowFilter }],
          },
        },
      })),
      fc
        .tuple(
          id,
          fc.string({ maxLength: 30 }),
          fc.constantFrom('OPERATOR', 'STEWARD', 'ANALYST', 'AUDITOR', 'X'),
        )
        .map(([a, email, role]) => ({
          query: `mutation($i: CreateUserInput!) { createUser(input: $i) { apiKey } }`,
          variables: { i: { agencyId: a, email, role } },
        })),
      fc.record({ query: fc.string({ maxLength: 200 }), variables: anyValue }),
      fc
        .integer({ min: 1, max: 60 })
        .map((n) => ({ query: `{ me ${'{ agency '.repeat(n)}{ id }${' }'.repeat(n)} }` })),
      fc.integer({ min: 1, max: 3_000 }).map((n) => ({
        query: `{ ${Array.from({ length: n }, (_, i) => `a${i}: me { id }`).join(' ')} }`,
      })),
    );
    const callers = fc.constantFrom(providerSteward, thirdSteward, analyst);
    await fc.assert(
      fc.asyncProperty(callers, operations, async (user, operation) => {
        await check(user, { url: '/graphql', payload: JSON.stringify(operation) });
      }),
      { numRuns: 150 },
    );
  });

  it('answers hostile data-plane requests in GraphQL shape, audited', async () => {
    const where = fc.letrec((tie) => ({
      where: fc.oneof(
        { depthSize: 'small' },
        fc.record({ n: fc.record({ gt: fc.oneof(fc.integer(), fc.string()) }) }),
        fc.record({ k: fc.record({ in: fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }) }) }),
        fc.record({ not: tie('where') }),
        fc.record({ and: fc.array(tie('where'), { maxLength: 2 }) }),
      ),
    })).where;
    const deepWhere = fc.integer({ min: 1, max: 40 }).map((n) => {
      let w: Record<string, unknown> = { n: { eq: 1 } };
      for (let i = 0; i < n; i++) w = { not: w };
      return w;
    });
    const requests = fc.oneof(
      fc
        .tuple(fc.oneof(where, deepWhere, anyValue), fc.integer({ min: -3, max: 20_000 }), id)
        .map(([w, first, a]) => ({
          query: `query($w: PeopleWhere, $f: Int, $a: ID) { people(purpose: RESEARCH, where: $w, first: $f, agreement: $a) { nodes { k } pageInfo { hasNextPage } } }`,
          variables: { w, f: first, a },
        })),
      fc.string({ maxLength: 40 }).map((after) => ({
        query: `query($a: String) { people(purpose: RESEARCH, after: $a) { nodes { k } } }`,
        variables: { a: after },
      })),
      fc
        .constantFrom(
          `{ people(purpose: SUPERVISION) { nodes { k } } }`,
          `{ people(purpose: RESEARCH) { nodes { ssn } } }`,
          `{ people(purpose: RESEARCH, first: 0) { pageInfo { hasNextPage } } }`,
          `{ secrets(purpose: RESEARCH) { nodes { k } } }`,
          `{ people(purpose: RESEARCH, where: ${'{ not: '.repeat(17)}{ n: { eq: 1 } }${' }'.repeat(17)}) { nodes { k } } }`,
        )
        .map((query) => ({ query })),
      fc.record({ query: fc.string({ maxLength: 200 }), variables: anyValue, operationName: anyValue }),
      fc.integer({ min: 1, max: 200 }).map((n) => ({
        query: `{ ${Array.from({ length: n }, (_, i) => `a${i}: people(purpose: RESEARCH) { nodes { k } }`).join(' ')} }`,
      })),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(analyst, providerSteward), requests, async (user, request) => {
        await check(user, { url: '/data/graphql', payload: JSON.stringify(request) });
      }),
      { numRuns: 120 },
    );
  });

  it('refuses mutations and subscriptions on the data plane as INVALID, audited, with no row', async () => {
    for (const query of [
      `mutation { people(purpose: RESEARCH) { nodes { k } } }`,
      `mutation { people }`,
      `mutation { __typename }`,
      `subscription { people(purpose: RESEARCH) { nodes { k } } }`,
      `query q { people(purpose: RESEARCH) { nodes { k } } } mutation m { people(purpose: RESEARCH) { nodes { k } } }`,
    ]) {
      for (const url of ['/data/graphql', '/data/export']) {
        const before = await deniesOf(analyst.id);
        const request = { query, ...(query.startsWith('query q') ? { operationName: 'm' } : {}) };
        const response = await asAnalyst(url, request);
        const context = `${url} ${query}`;
        expect({ context, status: response.statusCode }).toEqual({ context, status: 400 });
        const body = JSON.parse(response.body) as {
          data: unknown;
          errors: { extensions: Record<string, string> }[];
        };
        expect(body.data).toBeNull();
        expect(body.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID' });
        expect(response.body).not.toContain('K1');
        expect({ context, denies: await deniesOf(analyst.id) }).toEqual({ context, denies: before + 1 });
      }
    }
  });

  it('records in a refusal made before analysis what was asked: dataset, purpose, agreement, names', async () => {
    const lastDeny = async () =>
      (
        await broker.query<Record<string, unknown>>(
          `SELECT action, reason, dataset_id, purpose, agreement_id, agreement_version, fields FROM audit_event
            WHERE decision = 'DENY' AND actor_user_id = $1 ORDER BY seq DESC LIMIT 1`,
          [analyst.id],
        )
      )[0];
    const asked = (query: string, variables?: Record<string, unknown>, url = '/data/graphql') =>
      asAnalyst(url, { query, variables });
    // A name the agreement does not release, refused by validation, named agreement or not.
    for (const [query, url] of [
      [`{ people(purpose: RESEARCH, agreement: "${agreementId}") { nodes { k secret } } }`, '/data/graphql'],
      [`query($p: Purpose!) { people(purpose: $p) { nodes { secret n } } }`, '/data/export'],
    ]) {
      const response = await asked(query, { p: 'RESEARCH' }, url);
      expect(response.statusCode).toBeGreaterThanOrEqual(400);
      expect(await lastDeny()).toEqual({
        action: url === '/data/export' ? 'EXPORT' : 'QUERY',
        reason: 'FIELD_NOT_RELEASED',
        dataset_id: datasetId,
        purpose: 'RESEARCH',
        agreement_id: agreementId,
        agreement_version: 1,
        fields: url === '/data/export' ? ['secret', 'n'] : ['secret', 'k'],
      });
    }
    // A variable of the wrong type: the request's dataset and purpose, no name refused, and never
    // the value (graphql-js's message quotes it; the event keeps the code alone).
    await asked(`query($f: Int) { people(purpose: RESEARCH, first: $f) { nodes { k } } }`, {
      f: '123-45-6789',
    });
    const [{ details }] = await broker.query<{ details: unknown }>(
      `SELECT details FROM audit_event WHERE decision = 'DENY' AND actor_user_id = $1 ORDER BY seq DESC LIMIT 1`,
      [analyst.id],
    );
    expect(details).toEqual({ code: 'BAD_USER_INPUT' });
    await asked(`{ people(purpose: RESEARCH, where: { k: { eq: SECRET_VALUE_ZZ } }) { nodes { k } } }`);
    expect(JSON.stringify(await broker.query(`SELECT details FROM audit_event`))).not.toMatch(
      /123-45-6789|SECRET_VALUE_ZZ/,
    );
    expect(await lastDeny()).toMatchObject({
      reason: 'INVALID',
      dataset_id: datasetId,
      purpose: 'RESEARCH',
      fields: ['k'],
    });
    // What is not the caller's is not named: a dataset outside its schema, an agreement it is no party
    // to, a purpose the catalog does not define.
    await asked(`{ secrets(purpose: RESEARCH) { nodes { k } } }`);
    expect(await lastDeny()).toMatchObject({
      dataset_id: null,
      purpose: null,
      agreement_id: null,
      fields: null,
    });
    await asked(`{ people(purpose: SUPERVISION, agreement: "${UNKNOWN}") { nodes { k } } }`);
    expect(await lastDeny()).toMatchObject({
      reason: 'PURPOSE_NOT_GRANTED',
      dataset_id: datasetId,
      purpose: null,
      agreement_id: null,
    });
    // A purpose the catalog defines (public) but no agreement of the caller's grants: what was asked.
    await broker.definePurposes('EVALUATION');
    await asked(`{ people(purpose: EVALUATION) { nodes { k } } }`);
    expect(await lastDeny()).toMatchObject({
      reason: 'PURPOSE_NOT_GRANTED',
      dataset_id: datasetId,
      purpose: 'EVALUATION',
      fields: ['k'],
    });
    await asked(`query($p: Purpose!) { people(purpose: $p) { nodes { k } } }`, { p: 'EVALUATION' });
    expect(await lastDeny()).toMatchObject({ dataset_id: datasetId, purpose: 'EVALUATION' });
  });

  it('refuses a DateTime the calendar does not have, a number, or no date at all, never moving it', async () => {
    const propose = (validFrom: unknown) =>
      broker.gql(
        providerSteward.apiKey,
        `mutation($input: AgreementInput!) { proposeAgreement(input: $input) { id validFrom } }`,
        {
          input: {
            title: 'Dates',
            providerAgencyId: provider.id,
            recipientAgencyId: recipient.id,
            purposes: ['RESEARCH'],
            validFrom,
            validUntil: '2099-01-01T00:00:00Z',
            grants: [{ datasetId, fields: [{ name: 'k' }] }],
          },
        },
      );
    for (const validFrom of ['2024-02-30T00:00:00Z', 5, 'x']) {
      const res = await propose(validFrom);
      expect({ validFrom, data: res.data, code: res.errors?.[0].extensions?.code }).toEqual({
        validFrom,
        data: null,
        code: 'BAD_USER_INPUT',
      });
    }
    const auditor = await broker.createUser({ agencyId: third.id, role: 'STEWARD' });
    const filtered = await broker.gql(
      auditor.apiKey,
      `{ auditEvents(filter: { from: 5 }) { nodes { seq } } }`,
    );
    expect(filtered.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    const ok = await propose('2024-02-29T00:00:00Z');
    expect((ok.data as { proposeAgreement: { validFrom: string } }).proposeAgreement.validFrom).toBe(
      '2024-02-29T00:00:00.000Z',
    );
  });

  it('answers malformed bodies in each endpoint shape', async () => {
    const bodies = fc.oneof(
      fc.string({ maxLength: 100 }),
      fc.constantFrom(
        '',
        '{',
        '[]',
        '[1,2]',
        'null',
        '42',
        '"q"',
        '{"query":',
        '{"__proto__":{"x":1}}',
        '\u0000',
      ),
      anyValue.map((v) => JSON.stringify(v)),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/graphql', '/data/graphql'),
        fc.constantFrom(analyst, providerSteward),
        bodies,
        async (url, user, payload) => {
          await check(user, { url, payload });
        },
      ),
      { numRuns: 120 },
    );
    const rest = fc.tuple(
      id,
      fc.constantFrom('text/csv', 'application/x-ndjson', 'application/json', 'text/plain'),
      fc.oneof(fc.string({ maxLength: 200 }), fc.constant('k,n,day\nK9,notanumber,2020-13-45\n')),
    );
    await fc.assert(
      fc.asyncProperty(
        rest,
        fc.constantFrom(providerSteward, thirdSteward, analyst),
        async ([dataset, type, body], user) => {
          await check(user, {
            url: `/api/datasets/${encodeURIComponent(dataset)}/records`,
            contentType: type,
            payload: body,
          });
        },
      ),
      { numRuns: 80 },
    );
    // Over the body limits: refused as LIMIT.
    const big = await broker.http.inject({
      method: 'POST',
      url: '/data/graphql',
      headers: { authorization: `Bearer ${analyst.apiKey}`, 'content-type': 'application/json' },
      payload: JSON.stringify({
        query: '{ people(purpose: RESEARCH) { nodes { k } } }',
        variables: { x: 'x'.repeat(2_000_000) },
      }),
    });
    expect(big.statusCode).toBe(413);
    expect(JSON.parse(big.body)).toMatchObject({
      data: null,
      errors: [{ extensions: { code: 'BAD_USER_INPUT', reason: 'LIMIT' } }],
    });
    // A form's body is no request of the broker's: refused before anything runs (no key is made).
    const keys = async () =>
      Number((await broker.query<{ n: string }>(`SELECT count(*) AS n FROM api_key`))[0].n);
    const keysBefore = await keys();
    const denials = async () =>
      Number(
        (
          await broker.query<{ n: string }>(
            `SELECT count(*) AS n FROM audit_event WHERE decision = 'DENY' AND actor_user_id = $1`,
            [analyst.id],
          )
        )[0].n,
      );
    const denialsBefore = await denials();
    for (const [url, query] of [
      ['/graphql', 'mutation { rotateApiKey { apiKey } }'],
      ['/data/graphql', '{ people(purpose: RESEARCH) { nodes { k } } }'],
    ]) {
      const form = await broker.http.inject({
        method: 'POST',
        url,
        headers: {
          authorization: `Bearer ${analyst.apiKey}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload: new URLSearchParams({ query }).toString(),
      });
      expect(form.statusCode).toBe(415);
      expect(JSON.parse(form.body)).toMatchObject({
        data: null,
        errors: [
          {
            message: 'Unsupported Media Type application/x-www-form-urlencoded',
            extensions: { code: 'BAD_USER_INPUT', reason: 'INVALID' },
          },
        ],
      });
      expect(form.body).not.toContain('"k"');
    }
    expect(await keys()).toBe(keysBefore);
    expect(await denials()).toBe(denialsBefore + 2);
    // Not rotated: the key still works.
    expect((await broker.gqlOk(analyst.apiKey, '{ me { role } }')).me.role).toBe('ANALYST');
  });

  it("refuses, and audits, the attacks of issue 11 on other agencies' objects", async () => {
    const cases: [{ id: string; apiKey: string }, string, Record<string, unknown>, string, string][] = [
      [
        thirdSteward,
        `mutation($d: ID!) { ingestRecords(datasetId: $d, records: [{ k: "X" }]) { inserted } }`,
        { d: datasetId },
        'NOT_FOUND',
        'NOT_PARTY',
      ],
      [
        thirdSteward,
        `query($d: ID!) { subjectAccessReport(datasetId: $d, subjectId: "K1") { at } }`,
        { d: datasetId },
        'NOT_FOUND',
        'NOT_PARTY',
      ],
      [
        thirdSteward,
        `mutation($a: ID!) { revokeAgreement(id: $a, reason: "x") { id } }`,
        { a: agreementId },
        'NOT_FOUND',
        'NOT_PARTY',
      ],
      [
        thirdSteward,
        `mutation($a: ID!) { createUser(input: { agencyId: $a, email: "x@y.example", role: ANALYST }) { apiKey } }`,
        { a: provider.id },
        'NOT_FOUND',
        'NOT_PARTY',
      ],
      [analyst, `mutation { startLinkage { id } }`, {}, 'FORBIDDEN', 'ROLE'],
    ];
    for (const [user, query, variables, code, reason] of cases) {
      const before = await deniesOf(user.id);
      const res = await broker.gql(user.apiKey, query, variables);
      expect({ query, ext: res.errors?.[0].extensions }).toEqual({ query, ext: { code, reason } });
      const events = await broker.query<{
        reason: string;
        details: { operations: string[]; ids: string[] };
        agreement_id: string | null;
        dataset_id: string | null;
      }>(
        `SELECT reason, details, agreement_id, dataset_id FROM audit_event
          WHERE decision = 'DENY' AND actor_user_id = $1 ORDER BY seq DESC LIMIT 1`,
        [user.id],
      );
      expect(await deniesOf(user.id)).toBe(before + 1);
      expect(events[0].reason).toBe(reason);
      expect(Object.values(variables).every((v) => events[0].details.ids.includes(v as string))).toBe(true);
      // The object it was about, where it is an agreement or a dataset: its parties see the attempt.
      expect({ query, agreement: events[0].agreement_id, dataset: events[0].dataset_id }).toEqual({
        query,
        agreement: variables.a === agreementId ? agreementId : null,
        dataset: variables.d ?? null,
      });
    }
    await broker.app.get(RefusalRecorder).flush(true);
    // The provider's steward, a party, reads the third agency's attempt on its agreement.
    const { auditEvents } = await broker.gqlOk<{ auditEvents: { nodes: { actorAgencyId: string }[] } }>(
      providerSteward.apiKey,
      `query($a: ID!) { auditEvents(filter: { agreementId: $a, decision: DENY }) { nodes { actorAgencyId } } }`,
      { a: agreementId },
    );
    expect(auditEvents.nodes.map((e) => e.actorAgencyId)).toContain(third.id);
  });

  it('answers proposeAgreement with an unknown or malformed recipient as NOT_FOUND or BAD_USER_INPUT', async () => {
    const propose = (recipientAgencyId: string) =>
      broker.gql(
        providerSteward.apiKey,
        `mutation($i: AgreementInput!) { proposeAgreement(input: $i) { id } }`,
        {
          i: {
            title: 'x',
            providerAgencyId: provider.id,
            recipientAgencyId,
            purposes: ['RESEARCH'],
            validFrom: '2020-01-01T00:00:00Z',
            validUntil: '2030-01-01T00:00:00Z',
            grants: [{ datasetId, fields: [{ name: 'k' }] }],
          },
        },
      );
    expect((await propose(UNKNOWN)).errors?.[0].extensions).toEqual({
      code: 'NOT_FOUND',
      reason: 'NOT_PARTY',
    });
    expect((await propose('not-a-uuid')).errors?.[0].extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      reason: 'INVALID',
    });
    // The same for an agreement's id in a change: unknown NOT_FOUND, malformed BAD_USER_INPUT.
    for (const [id, code] of [
      [UNKNOWN, 'NOT_FOUND'],
      ['not-a-uuid', 'BAD_USER_INPUT'],
    ]) {
      for (const mutation of [
        `mutation($id: ID!) { approveAgreement(id: $id, version: 1) { id } }`,
        `mutation($id: ID!) { revokeAgreement(id: $id, reason: "no") { id } }`,
      ]) {
        const res = await broker.gql(providerSteward.apiKey, mutation, { id });
        expect(res.errors?.[0].extensions?.code).toBe(code);
      }
    }
  });

  it('refuses first below 1 and a where nested 17 levels deep, before any row is read', async () => {
    for (const query of [
      `{ people(purpose: RESEARCH, first: 0) { pageInfo { hasNextPage } } }`,
      `{ people(purpose: RESEARCH, first: -1) { nodes { k } } }`,
    ]) {
      const res = await broker.gql(analyst.apiKey, query, undefined, '/data/graphql');
      expect(res.data).toBeNull();
      expect(res.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    }
    const deep = await broker.gql(
      analyst.apiKey,
      `{ people(purpose: RESEARCH, where: ${'{ not: '.repeat(17)}{ n: { eq: 1 } }${' }'.repeat(17)}) { nodes { k } } }`,
      undefined,
      '/data/graphql',
    );
    expect(deep.status).toBeLessThan(500);
    expect(deep.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'LIMIT' });
  });

  it('refuses as a LIMIT, naming no internals, what nests past the stack or the token limit', async () => {
    // Written as text: JSON.stringify itself would overflow the stack on it.
    const w = `${'{"not":'.repeat(10_000)}{"n":{"eq":1}}${'}'.repeat(10_000)}`;
    const nested = `${'{ me '.repeat(3000)}{ id }${' }'.repeat(3000)}`;
    for (const [url, body] of [
      [
        '/data/graphql',
        `{"query":${JSON.stringify(`query($w: PeopleWhere) { people(purpose: RESEARCH, where: $w) { nodes { k } } }`)},"variables":{"w":${w}}}`,
      ],
      [
        '/data/graphql',
        {
          query: `{ ${Array.from({ length: 2000 }, (_, i) => `a${i}: people(purpose: RESEARCH) { nodes { k } }`).join(' ')} }`,
        },
      ],
      ['/graphql', { query: nested }],
    ] as const) {
      const body_ = await check(analyst, {
        url,
        payload: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const errors = body_.errors as { message: string; extensions: Record<string, string> }[];
      expect({ url, extensions: errors[0].extensions }).toMatchObject({
        url,
        extensions: { code: 'BAD_USER_INPUT', reason: 'LIMIT' },
      });
      expect(errors[0].message).not.toMatch(/stack|Maximum/);
    }
  });
});
