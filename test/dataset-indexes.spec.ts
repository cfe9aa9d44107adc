import { TestBroker } from '@broker/testing';

const UPDATE = `mutation($id: ID!, $input: UpdateDatasetInput!) { updateDataset(id: $id, input: $input) { title } }`;

/** A steward declares more indexes after registration, for the filters and orderings analysts use. */
describe('updateDataset: indexes', () => {
  let broker: TestBroker;
  let steward: { apiKey: string };
  let otherSteward: { apiKey: string };
  let analyst: { apiKey: string };
  let dataset: { id: string };

  // Each index of the record table, as its column list.
  const indexes = async () =>
    (
      await broker.query<{ def: string; valid: boolean }>(
        `SELECT pg_get_indexdef(i.indexrelid) AS def, i.indisvalid AS valid
           FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'records' AND c.relname = 'cases'`,
      )
    )
      .map((r) => `${r.def.replace(/^.* USING btree /, '')}${r.valid ? '' : ' INVALID'}`)
      .sort();

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'dataset_indexes' });
    const parties = await broker.sharingParties('Probation', 'Research', 'RECIDIVISM_EVALUATION');
    steward = parties.providerSteward;
    otherSteward = parties.recipientSteward;
    analyst = parties.analyst;
    dataset = await broker.registerDataset(steward.apiKey, {
      slug: 'cases',
      title: 'Cases',
      keyField: 'case_id',
      fields: [
        { name: 'case_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'officer', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'opened_on', type: 'DATE', classification: 'NON_SENSITIVE' },
      ],
    });
  });
  afterAll(() => broker.close());

  it('builds the declared indexes, valid, and records them in the audit log', async () => {
    const before = await indexes();
    const res = await broker.gql(steward.apiKey, UPDATE, {
      id: dataset.id,
      input: { indexes: [['opened_on'], ['officer', 'opened_on']] },
    });
    expect(res.errors).toBeUndefined();
    const added = (await indexes()).filter((i) => !before.includes(i));
    // Code-point order for strings, and ties broken by the random row id, then the key.
    expect(added).toEqual([
      '(officer COLLATE "C", opened_on, _rid, case_id COLLATE "C")',
      '(opened_on, _rid, case_id COLLATE "C")',
    ]);
    const [event] = await broker.query<{ details: unknown }>(
      `SELECT details FROM audit_event WHERE action = 'DATASET_UPDATED' AND dataset_id = $1 ORDER BY seq DESC LIMIT 1`,
      [dataset.id],
    );
    expect(event.details).toEqual({ indexes: [['opened_on'], ['officer', 'opened_on']] });
    // Declaring one that exists builds nothing more.
    await broker.gqlOk(steward.apiKey, UPDATE, { id: dataset.id, input: { indexes: [['opened_on']] } });
    expect((await indexes()).length).toBe(before.length + 2);
  });

  it('refuses an invalid list with nothing changed, and anyone but the provider steward', async () => {
    const before = await indexes();
    for (const bad of [
      [['nope']],
      [[]],
      [['officer', 'officer', 'officer', 'officer', 'officer']],
      [[null]],
    ]) {
      const res = await broker.gql(steward.apiKey, UPDATE, {
        id: dataset.id,
        input: { title: 'Renamed', indexes: bad },
      });
      expect({ bad, code: res.errors?.[0].extensions?.code }).toEqual({ bad, code: 'BAD_USER_INPUT' });
    }
    const other = await broker.gql(otherSteward.apiKey, UPDATE, {
      id: dataset.id,
      input: { indexes: [['officer']] },
    });
    expect(other.errors?.[0].extensions?.code).toBe('NOT_FOUND');
    const reader = await broker.gql(analyst.apiKey, UPDATE, {
      id: dataset.id,
      input: { indexes: [['officer']] },
    });
    expect(reader.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    expect(await indexes()).toEqual(before);
    const [{ title }] = await broker.query<{ title: string }>(`SELECT title FROM dataset WHERE id = $1`, [
      dataset.id,
    ]);
    expect(title).toBe('Cases');
  });
});
