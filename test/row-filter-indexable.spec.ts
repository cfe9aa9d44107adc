/**
 * A row filter PostgreSQL cannot index is refused when an agreement is proposed, amended or previewed
 * (docs/disclosure-control.md, "Timing"). PostgreSQL keeps a partial index's predicate in one catalog
 * row of about 8 kB, compressed: a filter the policy accepts (a thousand FLOAT values, one long string
 * of varied characters) may not fit, and without its population's indexes its pages could be timed.
 * The limit is found here, for each kind of filter, by the broker's own trial; then both sides of it
 * are checked against PostgreSQL itself, by building the real indexes on the record table: what is
 * accepted gets every index of its population (the widest a declared index makes included), what is
 * refused could not have had them.
 */
import { AgreementService } from '@broker/agreements';
import { Database } from '@broker/core';
import { DataPlaneService, PolicyCache, pageSql } from '@broker/data-plane';
import { rowFilterPredicate } from '@broker/policy';
import { DatasetService, populationIndexes } from '@broker/registry';
import { TestBroker } from '@broker/testing';

const PROPOSE = `mutation($input: AgreementInput!) { proposeAgreement(input: $input) { id currentVersion } }`;
const AMEND = `mutation($id: ID!, $input: AgreementInput!) { amendAgreement(id: $id, input: $input) { id } }`;
const PREVIEW = `query($input: AgreementInput!) { previewAgreement(input: $input) { purpose } }`;

/** Deterministic values of varied digits and letters: what compresses least, as real values do. */
const float = (i: number) => Number((((i + 1) * 7919.123456789) % 100_000).toFixed(9)) + i;
const letters = (n: number) => {
  let x = 12345;
  let s = '';
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += String.fromCharCode(97 + ((x >> 16) % 26));
  }
  return s;
};
const dateTime = (i: number) => new Date(Date.UTC(2000, 0, 1) + i * 3_601_237).toISOString();

/** Each kind of filter, by its size: `n` values of a list, or a string of `n` characters. */
const KINDS = [
  { kind: 'a FLOAT $in list', filter: (n: number) => ({ score: { $in: range(n).map(float) } }), max: 1000 },
  {
    kind: 'a DATETIME $in list',
    filter: (n: number) => ({ opened: { $in: range(n).map(dateTime) } }),
    max: 1000,
  },
  { kind: 'one long string', filter: (n: number) => ({ note: letters(n) }), max: 65_536 },
];

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

const MESSAGE = (path: string) =>
  `The agreement is invalid: ${path} is too large to index on dataset cases: PostgreSQL keeps an index's ` +
  'condition in one catalog row of about 8 kB, and the broker indexes each row filter so that reads of ' +
  'records outside the agreement do not show in their timing; use fewer or shorter values (a range with ' +
  '$gte and $lt in place of a long $in list), or split the population across agreements';

describe('row filters too large to index', () => {
  let broker: TestBroker;
  let provider: { id: string; apiKey: string };
  let recipient: { apiKey: string };
  let analyst: { apiKey: string };
  let providerAgencyId: string;
  let recipientAgencyId: string;
  let datasetId: string;
  /** The largest size of each kind PostgreSQL can index, and the agreement accepted with it. */
  const limits = new Map<string, { n: number; agreementId: string }>();

  const input = (rowFilter: Record<string, unknown>, title = 'Cases of a population') => ({
    title,
    providerAgencyId,
    recipientAgencyId,
    purposes: ['RESEARCH'],
    validFrom: '2020-01-01T00:00:00Z',
    validUntil: '2099-01-01T00:00:00Z',
    grants: [{ datasetId, fields: [{ name: 'id' }, { name: 'score' }], rowFilter }],
  });
  const shape = async () => (await broker.app.get(DatasetService).shapes([datasetId])).get(datasetId)!;
  const predicate = async (filter: Record<string, unknown>) => {
    const s = await shape();
    return rowFilterPredicate(filter as never, s, s.slug);
  };
  /** Whether the broker's trial finds the filter indexable. */
  const indexable = async (filter: Record<string, unknown>) =>
    (await broker.app.get(DatasetService).unindexablePopulations('cases', [await predicate(filter)])).size ===
    0;
  /** Everything a refused change must leave as it was. */
  const state = () =>
    broker.query(
      `SELECT (SELECT count(*)::int FROM agreement) AS agreements,
              (SELECT count(*)::int FROM agreement_version) AS versions,
              (SELECT count(*)::int FROM agreement_approval) AS approvals,
              (SELECT array_agg(stamp ORDER BY agency_id) FROM agency_policy_stamp) AS stamps,
              (SELECT stamp FROM policy_stamp) AS stamp,
              (SELECT count(*)::int FROM pg_class WHERE relname LIKE 'cases%') AS relations`,
    );
  /** The population indexes of a filter (every index the dataset's declarations make), valid or not. */
  const populationIndexState = async (filter: Record<string, unknown>) => {
    const names = populationIndexes(await shape(), await predicate(filter), [
      ['score', 'note', 'opened', 'county'],
    ]).map((ix) => ix.name);
    const rows = await broker.query<{ name: string; valid: boolean; columns: number }>(
      `SELECT c.relname AS name, i.indisvalid AS valid, i.indnatts AS columns
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY($1) ORDER BY columns`,
      [names],
    );
    return { names, rows };
  };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'row_filter_indexable' });
    const parties = await broker.sharingParties('Courts', 'Research', 'RESEARCH');
    provider = parties.providerSteward;
    recipient = parties.recipientSteward;
    analyst = parties.analyst;
    providerAgencyId = parties.providerAgency.id;
    recipientAgencyId = parties.recipientAgency.id;
    ({ id: datasetId } = await broker.registerDataset(provider.apiKey, {
      slug: 'cases',
      title: 'Cases',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'score', type: 'FLOAT', classification: 'NON_SENSITIVE' },
        { name: 'note', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'opened', type: 'DATETIME', classification: 'NON_SENSITIVE' },
        { name: 'county', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    }));
    // The widest index of a population: a declared index of four fields, then the page order's two.
    await broker.gqlOk(
      provider.apiKey,
      `mutation($id: ID!, $input: UpdateDatasetInput!) { updateDataset(id: $id, input: $input) { id } }`,
      { id: datasetId, input: { indexes: [['score', 'note', 'opened', 'county']] } },
    );
    // 2,000 records scored within a FLOAT list of 600 values, 4,000 outside it, interleaved by key.
    const records = range(6000).map((i) => ({
      id: `C${String(i).padStart(5, '0')}`,
      score: i % 3 === 0 ? float(i % 600) : 1_000_000 + i,
      note: `n${i}`,
      opened: dateTime(i),
      county: i % 2 ? 'NORTH' : 'SOUTH',
    }));
    for (let i = 0; i < records.length; i += 2000) {
      await broker.gqlOk(
        provider.apiKey,
        `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
        { id: datasetId, r: records.slice(i, i + 2000) },
      );
    }
    await broker.query(`ANALYZE records.cases`);
  });
  afterAll(() => broker.close());

  for (const { kind, filter, max } of KINDS) {
    it(`accepts ${kind} just small enough to index, and it gets its population's indexes`, async () => {
      // The policy takes the largest; PostgreSQL cannot index it.
      expect(await indexable(filter(1))).toBe(true);
      expect(await indexable(filter(max))).toBe(false);
      // Where the trial's answer changes: n fits, n + 1 does not.
      let [lo, hi] = [1, max];
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (await indexable(filter(mid))) lo = mid;
        else hi = mid;
      }
      const agreementId = await broker.activateAgreement(provider.apiKey, recipient.apiKey, {
        ...input(filter(lo), `Cases, ${kind} of ${lo}`),
      });
      limits.set(kind, { n: lo, agreementId });
      // Every index of the population is built, the widest (six columns) included.
      expect(await broker.app.get(AgreementService).ensureIndexesInForce()).toMatchObject({ failed: 0 });
      const { names, rows } = await populationIndexState(filter(lo));
      expect(names).toHaveLength(3);
      expect(rows.map((r) => [r.columns, r.valid])).toEqual([
        [1, true],
        [2, true],
        [6, true],
      ]);
      expect(rows.every((r) => r.name.startsWith('cases_pp_'))).toBe(true);
    });

    it(`refuses ${kind} one step too large: proposed, amended or previewed, audited, nothing changed`, async () => {
      const { n, agreementId } = limits.get(kind)!;
      const tooLarge = filter(n + 1);
      const before = await state();
      for (const [operation, key, query, variables] of [
        ['proposeAgreement', provider.apiKey, PROPOSE, { input: input(tooLarge) }],
        ['proposeAgreement', recipient.apiKey, PROPOSE, { input: input(tooLarge) }],
        ['amendAgreement', provider.apiKey, AMEND, { id: agreementId, input: input(tooLarge) }],
        ['previewAgreement', provider.apiKey, PREVIEW, { input: input(tooLarge) }],
      ] as const) {
        const seq = await broker.auditHeadSeq();
        const res = await broker.gql(key, query, variables);
        expect({ operation, data: res.data, codes: res.errors?.map((e) => e.extensions?.code) }).toEqual({
          operation,
          data: null,
          codes: ['BAD_USER_INPUT'],
        });
        expect(res.errors![0].message).toBe(MESSAGE('grants[0].rowFilter'));
        expect(res.errors![0].extensions).toMatchObject({
          reason: 'INVALID',
          details: [
            { path: 'grants[0].rowFilter', message: expect.stringMatching(/^is too large to index/) },
          ],
        });
        // The refusal is the one event: no change was recorded, for none happened.
        expect(
          await broker.query(
            `SELECT action, decision, reason, details->'operations' AS operations FROM audit_event WHERE seq > $1 ORDER BY seq`,
            [seq],
          ),
        ).toEqual([
          { action: 'REQUEST_REFUSED', decision: 'DENY', reason: 'INVALID', operations: [operation] },
        ]);
      }
      expect(await state()).toEqual(before);
      expect(
        (
          await broker.query<{ current_version: number }>(
            `SELECT current_version FROM agreement WHERE id = $1`,
            [agreementId],
          )
        )[0].current_version,
      ).toBe(1);
      // PostgreSQL agrees: on the record table, the widest index of that population cannot be built.
      const outcomes = await broker.app
        .get(DatasetService)
        .ensureIndexes(datasetId, [{ predicate: await predicate(tooLarge) }]);
      const { rows } = await populationIndexState(tooLarge);
      expect(outcomes.filter((o) => o.outcome === 'failed')).not.toEqual([]);
      expect(rows.filter((r) => r.columns === 6)).toEqual([]);
      await broker.query(
        `DROP INDEX IF EXISTS ${rows.map((r) => `records."${r.name}"`).join(', ') || 'records.none'}`,
      );
    });
  }

  it('names each grant whose filter is too large, among grants of other datasets', async () => {
    const { id: other } = await broker.registerDataset(provider.apiKey, {
      slug: 'hearings',
      title: 'Hearings',
      keyField: 'id',
      fields: [{ name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true }],
    });
    const tooLarge = KINDS[2].filter(limits.get(KINDS[2].kind)!.n + 1);
    const res = await broker.gql(provider.apiKey, PROPOSE, {
      input: {
        ...input(tooLarge),
        grants: [
          { datasetId: other, fields: [{ name: 'id' }], rowFilter: { id: { $gte: 'H' } } },
          { datasetId, fields: [{ name: 'id' }], rowFilter: tooLarge },
        ],
      },
    });
    expect(res.errors?.map((e) => [e.extensions?.code, e.message])).toEqual([
      ['BAD_USER_INPUT', MESSAGE('grants[1].rowFilter')],
    ]);
  });

  it('lets a page under a filter of more than 100 values walk its population index, reading nothing outside it', async () => {
    // PostgreSQL expands a list of at most 100 values to prove a predicate; a statement carrying the
    // very clause of the index (its values written in) is proven equal to it whatever its length.
    const agreementId = await broker.activateAgreement(provider.apiKey, recipient.apiKey, {
      ...input(KINDS[0].filter(600), 'Cases scored in 600 values'),
    });
    await broker.app.get(AgreementService).ensureIndexesInForce();
    const policy = await broker.app.get(PolicyCache).forAgency(recipientAgencyId, new Date());
    const query = `{ cases(purpose: RESEARCH, agreement: "${agreementId}", where: { id: { gt: "C01000" } }, orderBy: [{ field: id }], first: 10) { nodes { id } } }`;
    const decision = broker.app.get(DataPlaneService).decide(policy, { query });
    if (decision.kind !== 'run') throw new Error(JSON.stringify(decision));
    const statement = pageSql(decision.plans[0], true, recipientAgencyId);
    type Node = {
      'Index Name'?: string;
      'Relation Name'?: string;
      'Rows Removed by Filter'?: number;
      Plans?: Node[];
    };
    const flatten = (node: Node): Node[] => [node, ...(node.Plans ?? []).flatMap(flatten)];
    // Planned for its values, and generic (a prepared page keeps one plan: Database.read).
    const plans = await broker.app.get(Database).connection(async (client) => {
      const explain = async (text: string, values?: unknown[]) =>
        (
          await client.query<{ 'QUERY PLAN': [{ Plan: Node }] }>(
            `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`,
            values,
          )
        ).rows[0]['QUERY PLAN'][0].Plan;
      const custom = await explain(statement.text, statement.values);
      await client.query({ name: 'indexable_page', text: statement.text, values: statement.values });
      await client.query(`SET plan_cache_mode = force_generic_plan`);
      try {
        const literals = statement.values.map((v) => client.escapeLiteral(String(v)));
        return [custom, await explain(`EXECUTE indexable_page(${literals.join(', ')})`)];
      } finally {
        await client.query(`RESET plan_cache_mode`);
        await client.query(`DEALLOCATE indexable_page`);
      }
    });
    for (const plan of plans) {
      const scans = flatten(plan).filter((n) => n['Relation Name'] === 'cases');
      expect(scans.map((n) => n['Index Name'])).toEqual([expect.stringMatching(/^cases_pp_/)]);
      expect(scans.map((n) => n['Rows Removed by Filter'] ?? 0)).toEqual([0]);
    }
    const page = await broker.gql<{ cases: { nodes: { id: string }[] } }>(
      analyst.apiKey,
      query,
      undefined,
      '/data/graphql',
    );
    expect(page.data!.cases.nodes.map((r) => r.id)).toEqual(
      range(10).map((i) => `C${String(1002 + 3 * i).padStart(5, '0')}`),
    );
  });
});
