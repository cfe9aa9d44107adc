import { TestBroker } from '@broker/testing';

const DATA = '/data/graphql';
const WINDOW = { validFrom: '2020-01-01T00:00:00Z', validUntil: '2099-01-01T00:00:00Z' };
/** Names the registry's own patterns accept that mean something to CASL or to Object.prototype. */
const HOSTILE = ['constructor', 'prototype', 'valueof', 'hasownproperty', 'all', 'manage'];
/** The field names among them: `all` is an SQL reserved word, which the registry refuses as a field. */
const FIELDS = HOSTILE.filter((name) => name !== 'all');
const typeName = (slug: string) => slug[0].toUpperCase() + slug.slice(1);

/**
 * CASL's wildcards (`all`, `manage`) and Object.prototype's keys as dataset slugs and field names,
 * through table creation, the per-caller schema, the abilities and the SQL: none may grant anything
 * extra or change a built-in (docs/architecture.md, "CASL").
 */
describe('hostile names as dataset slugs and field names', () => {
  let broker: TestBroker;
  let analyst: { apiKey: string };
  const datasets = new Map<string, string>();

  const data = (query: string) => broker.gql(analyst.apiKey, query, {}, DATA);

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'hostile_names' });
    const provider = await broker.createAgency('Provider');
    const recipient = await broker.createAgency('Recipient');
    const providerSteward = await broker.createUser({ agencyId: provider.id, role: 'STEWARD' });
    const recipientSteward = await broker.createUser({ agencyId: recipient.id, role: 'STEWARD' });
    analyst = await broker.createUser({ agencyId: recipient.id, role: 'ANALYST' });
    await broker.definePurposes('RESEARCH');
    for (const slug of HOSTILE) {
      const { id } = await broker.registerDataset(providerSteward.apiKey, {
        slug,
        title: `Dataset ${slug}`,
        keyField: 'record_id',
        fields: [
          { name: 'record_id', type: 'STRING', classification: 'NON_SENSITIVE' },
          ...FIELDS.map((name) => ({ name, type: 'STRING', classification: 'NON_SENSITIVE' })),
        ],
      });
      datasets.set(slug, id);
      const records = [1, 2].map((i) => ({
        record_id: `${slug}-${i}`,
        ...Object.fromEntries(FIELDS.map((name) => [name, `${slug}.${name}.${i}`])),
      }));
      await broker.gqlOk(
        providerSteward.apiKey,
        `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
        { id, r: records },
      );
    }
    // Every dataset is granted, but of its hostile fields only constructor and valueof RAW, manage as HASH.
    await broker.activateAgreement(providerSteward.apiKey, recipientSteward.apiKey, {
      title: 'Hostile names',
      providerAgencyId: provider.id,
      recipientAgencyId: recipient.id,
      purposes: ['RESEARCH'],
      ...WINDOW,
      grants: HOSTILE.map((slug) => ({
        datasetId: datasets.get(slug),
        fields: [
          { name: 'record_id' },
          { name: 'constructor' },
          { name: 'valueof' },
          { name: 'manage', transform: 'HASH' },
        ],
      })),
    });
  });

  afterAll(() => broker?.close());

  it('makes a schema of exactly the granted datasets and names', async () => {
    const res = await data(`{ __schema { queryType { fields { name } } } }`);
    const roots = (res.data as any).__schema.queryType.fields.map((f: { name: string }) => f.name).sort();
    expect(roots).toEqual([...HOSTILE, ...HOSTILE.map((s) => `${s}_aggregate`)].sort());
    for (const slug of HOSTILE) {
      const type = await data(`{ __type(name: "${typeName(slug)}") { fields { name } } }`);
      const names = (type.data as any).__type.fields.map((f: { name: string }) => f.name).sort();
      expect(names).toEqual(['constructor', 'manage_hash', 'record_id', 'valueof']);
    }
  });

  it('answers the granted names with their stored values, and nothing else', async () => {
    for (const slug of HOSTILE) {
      const res = await data(
        `{ ${slug}(purpose: RESEARCH, orderBy: [{ field: record_id }]) { nodes { record_id constructor valueof manage_hash } } }`,
      );
      expect(res.errors).toBeUndefined();
      const nodes = (res.data as any)[slug].nodes as Record<string, string>[];
      expect(nodes.map((n) => [n.record_id, n.constructor, n.valueof])).toEqual([
        [`${slug}-1`, `${slug}.constructor.1`, `${slug}.valueof.1`],
        [`${slug}-2`, `${slug}.constructor.2`, `${slug}.valueof.2`],
      ]);
      expect(nodes[0].manage_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(Object.keys(nodes[0]).sort()).toEqual(['constructor', 'manage_hash', 'record_id', 'valueof']);
    }
  });

  it('refuses the names not granted, saying what a field is released as', async () => {
    for (const name of ['prototype', 'hasownproperty', 'manage', 'all']) {
      const res = await data(`{ all(purpose: RESEARCH) { nodes { ${name} } } }`);
      expect(res.data).toBeNull();
      expect(res.errors?.[0].extensions).toMatchObject({
        code: 'FORBIDDEN',
        reason: 'FIELD_NOT_RELEASED',
        field: name,
      });
    }
    const manage = await data(`{ all(purpose: RESEARCH) { nodes { manage } } }`);
    expect(manage.errors?.[0].extensions?.releasedAs).toBe('manage_hash');
    const filtered = await data(
      `{ manage(purpose: RESEARCH, where: { prototype: { eq: "x" } }) { nodes { valueof } } }`,
    );
    expect(filtered.data).toBeNull();
    expect(filtered.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    const grouped = await data(
      `{ constructor_aggregate(purpose: RESEARCH, groupBy: [hasownproperty]) { groups { count } } }`,
    );
    expect(grouped.data).toBeNull();
    expect(grouped.errors?.[0].extensions?.code).toBe('FORBIDDEN');
  });

  it("refuses, as any dataset's, a field named like an SQL reserved word", async () => {
    const steward = await broker.createUser({
      agencyId: (await broker.createAgency('Other')).id,
      role: 'STEWARD',
    });
    const res = await broker.gql(
      steward.apiKey,
      `mutation($input: RegisterDatasetInput!) { registerDataset(input: $input) { id } }`,
      {
        input: {
          slug: 'other_all',
          title: 'x',
          keyField: 'k',
          fields: [
            { name: 'k', type: 'STRING', classification: 'NON_SENSITIVE' },
            { name: 'all', type: 'STRING', classification: 'NON_SENSITIVE' },
          ],
        },
      },
    );
    expect(res.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('counts under the same grant, and leaves every built-in as it was', async () => {
    const res = await data(
      `{ all_aggregate(purpose: RESEARCH, groupBy: [constructor]) { groups { key count suppressed } } }`,
    );
    expect(res.errors).toBeUndefined();
    expect((res.data as any).all_aggregate.groups).toHaveLength(2);
    expect({}.constructor).toBe(Object);
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'all')).toBe(false);
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'manage')).toBe(false);
    expect(typeof Object.prototype.valueOf).toBe('function');
    expect(typeof Object.prototype.hasOwnProperty).toBe('function');
  });
});
