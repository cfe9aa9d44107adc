import { type DataPlaneResponse, DataPlaneService } from '@broker/data-plane';
import { TestBroker } from '@broker/testing';

/**
 * Plain operations are answered by splicing PostgreSQL's JSON of each page into the response;
 * everything else by graphql-js. Both must write the same JSON value, members in the same order.
 * A fragment spread over the same selection forces graphql-js, so each query is asked both ways.
 */
describe('data plane: spliced responses equal graphql-js responses', () => {
  let broker: TestBroker;
  let analyst: string;
  let datasetId: string;

  const raw = async (query: string, variables?: Record<string, unknown>) => {
    const res = await broker.http.inject({
      method: 'POST',
      url: '/data/graphql',
      headers: { authorization: `Bearer ${analyst}` },
      payload: { query, variables },
    });
    return { status: res.statusCode, text: res.body, type: String(res.headers['content-type']) };
  };

  /** Whether the data plane answered the request by splicing its pages' JSON (else graphql-js). */
  const spliced = async (ask: () => Promise<unknown>) => {
    const handle = jest.spyOn(broker.app.get(DataPlaneService), 'handle');
    try {
      await ask();
      expect(handle).toHaveBeenCalledTimes(1);
      return 'json' in (await (handle.mock.results[0].value as Promise<DataPlaneResponse>));
    } finally {
      handle.mockRestore();
    }
  };

  /** Asks `selection` plainly and through a fragment; returns both bodies, and which was spliced. */
  const both = async (selection: string) => {
    let plain!: Awaited<ReturnType<typeof raw>>;
    let generic!: Awaited<ReturnType<typeof raw>>;
    const splices = [
      await spliced(async () => (plain = await raw(`{ ${selection} }`))),
      await spliced(async () => (generic = await raw(`{ ...F } fragment F on Query { ${selection} }`))),
    ];
    return { plain, generic, splices };
  };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'splice' });
    const provider = await broker.createAgency('Provider');
    const recipient = await broker.createAgency('Recipient');
    const providerSteward = await broker.createUser({ agencyId: provider.id, role: 'STEWARD' });
    const recipientSteward = await broker.createUser({ agencyId: recipient.id, role: 'STEWARD' });
    analyst = (await broker.createUser({ agencyId: recipient.id, role: 'ANALYST' })).apiKey;
    await broker.gqlOk(
      broker.operatorKey,
      `mutation { definePurpose(input: { code: "RESEARCH", description: "d" }) { code } }`,
    );
    datasetId = (
      await broker.registerDataset(providerSteward.apiKey, {
        slug: 'things',
        title: 'Things',
        keyField: 'k',
        fields: [
          { name: 'k', type: 'STRING', classification: 'NON_SENSITIVE' },
          { name: 'label', type: 'STRING', classification: 'NON_SENSITIVE' },
          { name: 'n', type: 'INTEGER', classification: 'NON_SENSITIVE' },
          { name: 'x', type: 'FLOAT', classification: 'NON_SENSITIVE' },
          { name: 'ok', type: 'BOOLEAN', classification: 'NON_SENSITIVE' },
          { name: 'day', type: 'DATE', classification: 'NON_SENSITIVE' },
          { name: 'at', type: 'DATETIME', classification: 'NON_SENSITIVE' },
          { name: 'secret', type: 'STRING', classification: 'DIRECT_IDENTIFIER' },
        ],
      })
    ).id;
    const labels = ['plain', 'quote " and \\ back', 'tab\there', 'line\nbreak', 'ünïcödé ✓', '\u0001ctl', ''];
    const records = Array.from({ length: 12 }, (_, i) => ({
      k: `K${i}`,
      label: i === 11 ? null : labels[i % labels.length],
      n: i === 10 ? null : i * 1000 - 5000,
      x: [0.1, -2.5, 1e20, 1.5e-7, 123456.789, 0, 3][i % 7],
      ok: i % 3 === 0 ? null : i % 2 === 0,
      day: `20${10 + i}-0${1 + (i % 9)}-1${i % 9}`,
      at: `2024-0${1 + (i % 9)}-0${1 + (i % 8)}T1${i % 10}:30:00.250Z`,
      secret: `S${i}`,
    }));
    await broker.gqlOk(
      providerSteward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: datasetId, r: records },
    );
    const { proposeAgreement } = await broker.gqlOk(
      providerSteward.apiKey,
      `mutation($input: AgreementInput!) { proposeAgreement(input: $input) { id } }`,
      {
        input: {
          title: 'Things',
          providerAgencyId: provider.id,
          recipientAgencyId: recipient.id,
          purposes: ['RESEARCH'],
          validFrom: '2020-01-01T00:00:00Z',
          validUntil: '2099-01-01T00:00:00Z',
          grants: [
            {
              datasetId,
              fields: [
                { name: 'k' },
                { name: 'label' },
                { name: 'n' },
                { name: 'x' },
                { name: 'ok' },
                { name: 'day' },
                { name: 'at', transform: 'GENERALIZE' },
                { name: 'secret', transform: 'HASH' },
              ],
              rowFilter: { k: { $ne: 'K5' } },
            },
          ],
        },
      },
    );
    await broker.gqlOk(
      recipientSteward.apiKey,
      `mutation($id: ID!) { approveAgreement(id: $id, version: 1) { status } }`,
      { id: proposeAgreement.id },
    );
  });
  afterAll(() => broker.close());

  const ALL = 'k label n x ok day at_year secret_hash';
  const cases: [string, string][] = [
    [
      'every field and pageInfo',
      `things(purpose: RESEARCH, first: 20) { nodes { ${ALL} } pageInfo { hasNextPage endCursor } }`,
    ],
    [
      'pageInfo first, a short page',
      `things(purpose: RESEARCH, first: 3) { pageInfo { endCursor hasNextPage } nodes { x k } }`,
    ],
    [
      'aliases at every level, a field twice',
      `t: things(purpose: RESEARCH, first: 4, orderBy: [{ field: n, direction: DESC }]) { pi: pageInfo { e: endCursor h: hasNextPage } items: nodes { value: x k k2: k label } }`,
    ],
    [
      'several roots, a filter and a cursor',
      `a: things(purpose: RESEARCH, first: 2, where: { ok: { eq: true } }) { nodes { k ok } } b: things(purpose: RESEARCH, first: 5, after: CURSOR) { nodes { day } pageInfo { hasNextPage } }`,
    ],
    ['only pageInfo', `things(purpose: RESEARCH, first: 5) { pageInfo { hasNextPage endCursor } }`],
    [
      'a page of one row',
      `things(purpose: RESEARCH, first: 1) { nodes { k } pageInfo { hasNextPage endCursor } }`,
    ],
    [
      'no rows match',
      `things(purpose: RESEARCH, where: { k: { eq: "none" } }) { nodes { k } pageInfo { endCursor } }`,
    ],
    ['a field the page does not have', `things(purpose: RESEARCH) { nodes { x } }`],
  ];

  it.each(cases)('%s', async (_name, template) => {
    // A keyset cursor of the same query (`things` in the default order, first page of 2).
    const first = JSON.parse(
      (await raw(`{ things(purpose: RESEARCH, first: 2) { pageInfo { endCursor } } }`)).text,
    ) as {
      data: { things: { pageInfo: { endCursor: string } } };
    };
    const selection = template.replace('CURSOR', JSON.stringify(first.data.things.pageInfo.endCursor));
    const { plain, generic, splices } = await both(selection);
    expect(plain.status).toBe(200);
    expect(generic.status).toBe(200);
    // The plain operation is spliced, the one with a fragment answered by graphql-js.
    expect(splices).toEqual([true, false]);
    expect(plain.type).toMatch(/^application\/json/);
    const parsed = JSON.parse(plain.text) as { data: unknown; errors?: unknown };
    expect(parsed.errors).toBeUndefined();
    // Same value, members in the same order.
    expect(JSON.stringify(parsed)).toBe(JSON.stringify(JSON.parse(generic.text)));
  });

  it('falls back to graphql-js for __typename, directives and variables, with the same answer', async () => {
    const selection = `things(purpose: RESEARCH, first: 4) { nodes { k x } pageInfo { endCursor } }`;
    const reference = JSON.parse((await raw(`{ ${selection} }`)).text) as { data: { things: object } };
    const typed = JSON.parse(
      (
        await raw(
          `{ things(purpose: RESEARCH, first: 4) { __typename nodes { k x } pageInfo { endCursor } } }`,
        )
      ).text,
    ) as { data: { things: object } };
    expect(typed.data.things).toEqual({ __typename: 'ThingsConnection', ...reference.data.things });
    const skipped = await raw(
      `query($no: Boolean!) { things(purpose: RESEARCH, first: 4) { nodes { k x label @skip(if: $no) } pageInfo { endCursor } } }`,
      { no: true },
    );
    expect(JSON.parse(skipped.text)).toEqual(reference);
    const variable = await raw(
      `query($first: Int) { things(purpose: RESEARCH, first: $first) { nodes { k x } pageInfo { endCursor } } }`,
      { first: 4 },
    );
    expect(JSON.stringify(JSON.parse(variable.text))).toBe(JSON.stringify(reference));
  });

  it('answers a float GraphQL cannot represent with the same error either way, and no data', async () => {
    await broker.query(`UPDATE records.things SET x = 'NaN' WHERE k = 'K1'`);
    try {
      const { plain, generic } = await both(`things(purpose: RESEARCH, first: 20) { nodes { k x } }`);
      for (const res of [plain, generic]) {
        // An execution error as GraphQL answers one (200, no data), never an HTTP 500.
        expect(res.status).toBe(200);
        expect(JSON.parse(res.text)).toEqual({
          data: null,
          errors: [
            {
              message: 'A value could not be represented in GraphQL',
              extensions: { code: 'INTERNAL_SERVER_ERROR' },
            },
          ],
        });
      }
      // A page without the float is still answered.
      const without = await raw(`{ things(purpose: RESEARCH, first: 20) { nodes { k } } }`);
      expect(without.status).toBe(200);
    } finally {
      await broker.query(`UPDATE records.things SET x = 0.1 WHERE k = 'K1'`);
    }
  });
});
