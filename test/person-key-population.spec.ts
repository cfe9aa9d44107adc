/**
 * personKey lookup tables of a population (docs/disclosure-control.md, "Timing"): a table files only
 * the linked records its grant's row filter admits, so that a filter on a person reads none of that
 * person's records the agreement leaves out (before, a person with 20 records outside took longer
 * than one with none, and told the caller they exist). Checked on the plans PostgreSQL runs
 * (EXPLAIN ANALYZE of the broker's own statement), never with a clock; ingestion keeps the table
 * true as records enter and leave the population (checked on the answers); a table built for
 * another population is not read. The linkage run is written straight into its tables.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { Database } from '@broker/core';
import { DataPlaneService, PolicyCache, pageSql } from '@broker/data-plane';
import { PersonKeyIndex, type PersonKeyTable, personKeyScope } from '@broker/linkage';
import { populationOf } from '@broker/policy';
import { type PlanNode, planNodes, TestBroker } from '@broker/testing';

const DATA = '/data/graphql';
const N = 1200;
/** Keys B00600 to B01199 are the other county's: the agreement leaves them out. */
const outside = (i: number) => i >= 600;
const key = (i: number) => `B${String(i).padStart(5, '0')}`;
const ROWS = Array.from({ length: N }, (_, i) => ({
  id: key(i),
  county: outside(i) ? 'SOUTH' : 'NORTH',
  offense: ['DUI', 'THEFT', 'FRAUD'][i % 3],
}));
/**
 * The run's person of each record: person 1 has one record inside (B00000) and 20 outside (B00600 to
 * B00619); person 2 one inside (B00001) and none outside; every other record a person of its own,
 * but every tenth not linked.
 */
const personOf = (i: number): number | null =>
  i === 0 || (i >= 600 && i < 620) ? 1 : i === 1 ? 2 : i % 10 === 9 ? null : 1000 + i;
const LINKED = Array.from({ length: N }, (_, i) => i).filter((i) => personOf(i) !== null);
/** The linked records the agreement's row filter admits: its population's. */
const POPULATION_LINKED = LINKED.filter((i) => !outside(i)).length;

describe('personKey lookup tables of a population', () => {
  let broker: TestBroker;
  let analyst: string;
  let provider: string;
  let agencyId: string;
  let datasetId: string;
  let agreementId: string;
  let secret: Buffer;
  let index: PersonKeyIndex;

  const scope = () => personKeyScope(agencyId, 'RESEARCH');
  const keyOf = (person: number) =>
    createHmac('sha256', createHmac('sha256', secret).update(scope(), 'utf8').digest())
      .update(String(person), 'utf8')
      .digest('hex');
  const byPerson = (person: number) =>
    `{ bookings(purpose: RESEARCH, agreement: "${agreementId}", where: { personKey: { eq: "${keyOf(person)}" } },
         orderBy: [{ field: id }], first: 100) { nodes { id } } }`;

  /** The page statement of a filter on a person, as the broker writes it. */
  const statementOf = async (person: number) => {
    const policy = await broker.app.get(PolicyCache).forAgency(agencyId, new Date());
    const decision = broker.app.get(DataPlaneService).decide(policy, { query: byPerson(person) });
    if (decision.kind !== 'run') throw new Error(JSON.stringify(decision));
    return pageSql(decision.plans[0], true, agencyId);
  };
  /**
   * The statement's plan, run (EXPLAIN ANALYZE, planned for its values); `settings` are the planner's
   * (`SET LOCAL`s), with the table dropped first where `unbuilt` (in a transaction rolled back).
   */
  const planOf = async (person: number, settings: string[] = [], unbuilt = false) => {
    const { text, values } = await statementOf(person);
    const plan = await broker.app.get(Database).connection(async (client) => {
      await client.query('BEGIN');
      try {
        if (unbuilt)
          await client.query(`DELETE FROM person_key_scope WHERE agreement_id = $1`, [agreementId]);
        for (const setting of settings) await client.query(`SET LOCAL ${setting}`);
        const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
          `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`,
          values,
        );
        return rows[0]['QUERY PLAN'][0].Plan;
      } finally {
        await client.query('ROLLBACK');
      }
    });
    return planNodes(plan);
  };
  /**
   * What the statement read: the lookup table's entries (its prefix index's rows), the linked records
   * it hashed without the table (the other branch), and the records of the page read and then
   * dropped (outside the population). The other branch first finds the population's linked records
   * (its join, `pr`, reads every linked record's record alike): not the page's records.
   */
  const readBy = async (person: number, settings: string[] = [], unbuilt = false) => {
    const nodes = await planOf(person, settings, unbuilt);
    const rows = (n: PlanNode) => (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1);
    return {
      entries: nodes.filter((n) => n['Relation Name'] === 'person_key').reduce((sum, n) => sum + rows(n), 0),
      // The scan that hashes linked records: its filter is an HMAC (not the personKey of a record
      // found, a correlated lookup by its key).
      hashedLinked: nodes
        .filter(
          (n) => (n['Relation Name'] === 'linkage_person' || n.Alias === 'l') && n.Filter?.includes('hmac'),
        )
        .reduce((sum, n) => sum + rows(n) + (n['Rows Removed by Filter'] ?? 0), 0),
      dropped: nodes
        .filter(
          (n) =>
            n.Alias !== 'pr' &&
            (n['Relation Name'] === 'bookings' || n['Index Name']?.startsWith('bookings')),
        )
        .reduce(
          (sum, n) =>
            sum +
            ((n['Rows Removed by Filter'] ?? 0) + (n['Rows Removed by Index Recheck'] ?? 0)) *
              (n['Actual Loops'] ?? 1),
          0,
        ),
    };
  };
  /**
   * Every scan of the statement's plan, run, with the rows it gave and dropped and its loops: what
   * the statement read, node by node (the HMAC's operand written out, as it differs per person).
   */
  const scansOf = async (person: number) =>
    (await planOf(person))
      .filter((n) => /Scan/.test(n['Node Type']))
      .map((n) => ({
        scan: `${n['Node Type']} ${n['Index Name'] ?? n['Relation Name'] ?? ''} ${n.Alias ?? ''}`,
        rows: n['Actual Rows'],
        loops: n['Actual Loops'],
        dropped: (n['Rows Removed by Filter'] ?? 0) + (n['Rows Removed by Index Recheck'] ?? 0),
      }));
  /** The records a filter on a person answers, through the data plane. */
  const answer = async (person: number) => {
    const res = await broker.gql<{ bookings: { nodes: { id: string }[] } }>(
      analyst,
      byPerson(person),
      undefined,
      DATA,
    );
    if (res.errors) throw new Error(JSON.stringify(res.errors));
    return res.data!.bookings.nodes.map((n) => n.id);
  };
  /**
   * The records the broker's statement of a filter on a person selects, run here: unlike a request,
   * it asks for no table to be built in the background.
   */
  const selected = async (person: number) => {
    const { text, values } = await statementOf(person);
    return (await broker.query<{ n: number }>(`SELECT count(*)::int AS n FROM (${text}) p`, values))[0].n;
  };
  /** The lookup tables of the agreement, with their populations and entries. */
  const tables = () =>
    broker.query<{ population: string; entries: number }>(
      `SELECT s.population, (SELECT count(*) FROM person_key k WHERE k.scope_id = s.id)::int AS entries
         FROM person_key_scope s WHERE s.agreement_id = $1 ORDER BY s.id`,
      [agreementId],
    );
  const ingest = (records: Record<string, unknown>[]) =>
    broker.gqlOk(
      provider,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted updated } }`,
      { id: datasetId, r: records },
    );

  let table: PersonKeyTable;

  beforeAll(async () => {
    // No linkage run is scheduled by the test's ingestions: the run in force is the one written below.
    process.env.LINKAGE_DEBOUNCE_MS = '86400000';
    broker = await TestBroker.start({ LABEL: 'person_key_population' });
    delete process.env.LINKAGE_DEBOUNCE_MS;
    index = broker.app.get(PersonKeyIndex);
    const parties = await broker.sharingParties('Sheriff', 'Research', 'RESEARCH');
    analyst = parties.analyst.apiKey;
    provider = parties.providerSteward.apiKey;
    agencyId = parties.recipientAgency.id;
    ({ id: datasetId } = await broker.registerDataset(provider, {
      slug: 'bookings',
      title: 'Bookings',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'county', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'offense', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    }));
    await ingest(ROWS);
    agreementId = await broker.activateAgreement(provider, parties.recipientSteward.apiKey, {
      title: 'Bookings of the north county',
      providerAgencyId: parties.providerAgency.id,
      recipientAgencyId: agencyId,
      purposes: ['RESEARCH'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId,
          access: 'ROWS',
          fields: [{ name: 'id' }, { name: 'offense' }],
          rowFilter: { county: 'NORTH' },
          linkage: true,
        },
      ],
    });
    const [run] = await broker.query<{ id: string }>(
      `INSERT INTO linkage_run (status, trigger) VALUES ('SUCCEEDED', 'MANUAL') RETURNING id`,
    );
    await broker.query(
      `INSERT INTO linkage_person (run_id, dataset_id, record_key, person_id)
       SELECT $1, $2, k, p FROM unnest($3::text[], $4::bigint[]) AS u (k, p)`,
      [run.id, datasetId, LINKED.map(key), LINKED.map((i) => personOf(i))],
    );
    await broker.query(`UPDATE linkage_state SET current_run_id = $1 WHERE id = 1`, [run.id]);
    [{ secret }] = await broker.query<{ secret: Buffer }>(`SELECT secret FROM linkage_secret WHERE id = 1`);
    await broker.query(`ANALYZE records.bookings`);
    const statement = await statementOf(1);
    expect(statement.personKeyTable).toEqual({
      agreementId,
      scope: scope(),
      datasetId,
      rowFilter: { county: 'NORTH' },
    });
    table = statement.personKeyTable!;
  });
  afterAll(() => broker?.close());

  /** The keys of the records the agreement's table files, in order. */
  const filed = async () =>
    (
      await broker.query<{ k: string }>(
        `SELECT k.record_key AS k FROM person_key k JOIN person_key_scope s ON s.id = k.scope_id
          WHERE s.agreement_id = $1 ORDER BY k.record_key COLLATE "C"`,
        [agreementId],
      )
    ).map((r) => r.k);
  const northLinked = () => LINKED.filter((i) => !outside(i)).map(key);

  it('files the population only, and a filter on a person reads none of its records outside it', async () => {
    // Before the table, every linked record of the population is hashed whoever is asked for (the
    // one-time filter's other branch), found by a join that reads every linked record's record
    // alike; the records of the persons asked are not fetched on their own, those outside
    // included. Person 1 (20 records outside) and person 2 (none) read exactly the same, scan by
    // scan: before, person 1's 20 were read and dropped.
    const [before1, before2] = [await readBy(1), await readBy(2)];
    expect(before1).toEqual({ entries: 0, hashedLinked: POPULATION_LINKED, dropped: 0 });
    expect(before2).toEqual({ entries: 0, hashedLinked: POPULATION_LINKED, dropped: 0 });
    expect(await scansOf(1)).toEqual(await scansOf(2));
    // The first filter asks for the table; built here rather than in the background.
    const persons = new Set(LINKED.filter((i) => !outside(i)).map(personOf)).size;
    expect(await index.build(table)).toBe(persons);
    expect(await tables()).toEqual([{ population: populationOf({ county: 'NORTH' }), entries: 540 }]);
    expect(await filed()).toEqual(northLinked());
    // Person 1 (20 records outside) and person 2 (none) read the same: one entry, one record, none
    // dropped, no linked record hashed.
    for (const person of [1, 2]) {
      expect([person, await readBy(person)]).toEqual([person, { entries: 1, hashedLinked: 0, dropped: 0 }]);
    }
    expect(await answer(1)).toEqual(['B00000']);
    expect(await answer(2)).toEqual(['B00001']);
  });

  it('hashes the whole population without the table, whichever plan PostgreSQL chooses', async () => {
    // Plans that join the records to the persons' records found (a semi-join) stop reading the
    // hashing branch at its first match: it would read and drop the linked records before the asked
    // person's first record in its scan's order, those outside the population among them. Here
    // forced by the planner's settings (a dataset keyed by an INTEGER gets such a plan by default).
    for (const settings of [
      ['enable_indexscan = off', 'enable_bitmapscan = off'],
      ['random_page_cost = 1000'],
      ['enable_hashjoin = off', 'enable_mergejoin = off'],
    ]) {
      for (const person of [1, 2]) {
        expect([settings, person, (await readBy(person, settings, true)).hashedLinked]).toEqual([
          settings,
          person,
          POPULATION_LINKED,
        ]);
      }
    }
  });

  it('selects the population records of the persons asked, with the table as without it, for any keys (fast-check)', async () => {
    // Keys of persons with records inside and outside the filter, of persons with none inside, of no
    // person in the run, of another scope, upper-cased, and random hex: the statement the broker
    // writes, run with the table and as if none were built (dropped in a transaction rolled back),
    // against a model written here from the run and the filter.
    const persons = [...new Set(LINKED.map(personOf))] as number[];
    const someone = fc.constantFrom(1, 2, ...persons);
    const asked = fc.oneof(
      someone.map(keyOf),
      fc.integer({ min: 5000, max: 9000 }).map(keyOf),
      someone.map((p) => keyOf(p).toUpperCase()),
      someone.map((p) =>
        createHmac('sha256', createHmac('sha256', secret).update(`${agencyId}/OTHER`, 'utf8').digest())
          .update(String(p), 'utf8')
          .digest('hex'),
      ),
      fc.stringMatching(/^[0-9a-f]{64}$/),
    );
    const model = (keys: string[]) =>
      LINKED.filter((i) => !outside(i) && keys.includes(keyOf(personOf(i)!)))
        .map(key)
        .sort();
    const statement = async (keys: string[]) => {
      const policy = await broker.app.get(PolicyCache).forAgency(agencyId, new Date());
      const decision = broker.app.get(DataPlaneService).decide(policy, {
        query: `{ bookings(purpose: RESEARCH, agreement: "${agreementId}", where: { personKey: { in: ${JSON.stringify(keys)} } },
            orderBy: [{ field: id }], first: 1000) { nodes { id } } }`,
      });
      if (decision.kind !== 'run') throw new Error(JSON.stringify(decision));
      return pageSql(decision.plans[0], true, agencyId);
    };
    const run = (unbuilt: boolean, keys: string[]) =>
      broker.app.get(Database).connection(async (client) => {
        const { text, values, positionColumns } = await statement(keys);
        await client.query('BEGIN');
        try {
          if (unbuilt)
            await client.query(`DELETE FROM person_key_scope WHERE agreement_id = $1`, [agreementId]);
          // Ordered by the key: the row's position is its key.
          const { rows } = await client.query<{ k: string }>(
            `SELECT x.${positionColumns[0]} AS k FROM (${text}) x`,
            values,
          );
          return rows.map((r) => r.k).sort();
        } finally {
          await client.query('ROLLBACK');
        }
      });
    // The table the test above built (or built here, run alone).
    await index.build(table);
    expect(await tables()).toEqual([{ population: populationOf({ county: 'NORTH' }), entries: 540 }]);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(asked, { minLength: 1, maxLength: 4 }), async (keys) => {
        const expected = model(keys);
        expect(await run(false, keys)).toEqual(expected);
        expect(await run(true, keys)).toEqual(expected);
      }),
      { numRuns: 40, seed: 20261207 },
    );
  });

  it('is not read when built for another population, and is built anew', async () => {
    // A table of every linked record, as a grant without a row filter (or the release before
    // populations) would have it built.
    await broker.query(`DELETE FROM person_key_scope WHERE agreement_id = $1`, [agreementId]);
    expect(await index.build({ ...table, rowFilter: null })).toBeGreaterThan(0);
    expect(await tables()).toEqual([{ population: '', entries: LINKED.length }]);
    // The statement asks for its own population's table: this one is not read (the population's
    // linked records hashed instead), and the answer is the same.
    const { text } = await statementOf(1);
    expect(text).toContain('ks.population = $');
    expect(await readBy(1)).toEqual({ entries: 0, hashedLinked: POPULATION_LINKED, dropped: 0 });
    expect(await selected(1)).toBe(1);
    // Read as if it were the population's, it would read person 1's 21 entries and look up 21
    // records by key, 20 of them outside (read from the key's index and dropped, by a filter or by
    // the population's index ANDed with it): what the test above would see of a table of every record.
    await broker.query(`UPDATE person_key_scope SET population = $2 WHERE agreement_id = $1`, [
      agreementId,
      populationOf({ county: 'NORTH' }),
    ]);
    expect(await readBy(1)).toMatchObject({ entries: 21 });
    const byKey = (await planOf(1))
      .filter((n) => n.Alias !== 'pr' && n['Index Name'] === 'bookings_pkey')
      .reduce(
        (sum, n) =>
          sum + ((n['Actual Rows'] ?? 0) + (n['Rows Removed by Filter'] ?? 0)) * (n['Actual Loops'] ?? 1),
        0,
      );
    expect(byKey).toBe(21);
    await broker.query(`UPDATE person_key_scope SET population = '' WHERE agreement_id = $1`, [agreementId]);
    // The next build replaces it with the population's.
    expect(await index.build(table)).toBeGreaterThan(0);
    expect(await tables()).toEqual([{ population: populationOf({ county: 'NORTH' }), entries: 540 }]);
    expect(await readBy(1)).toEqual({ entries: 1, hashedLinked: 0, dropped: 0 });
  });

  it('is kept by ingestion: a record that enters the population is found by personKey, one that leaves it is not', async () => {
    expect(await answer(1)).toEqual(['B00000']);
    // B00600 (person 1, outside) moves in; B00009 (not linked) moves out; a new record outside.
    await ingest([
      { ...ROWS[600], county: 'NORTH' },
      { ...ROWS[9], county: 'SOUTH' },
      { id: 'B09999', county: 'SOUTH', offense: 'DUI' },
    ]);
    expect(await answer(1)).toEqual(['B00000', 'B00600']);
    expect(await filed()).toEqual([...northLinked(), 'B00600'].sort());
    // B00000 moves out: person 1's filter finds B00600 only, and reads nothing else.
    await ingest([{ ...ROWS[0], county: 'SOUTH' }]);
    expect(await answer(1)).toEqual(['B00600']);
    expect(await filed()).toEqual([...northLinked().filter((k) => k !== 'B00000'), 'B00600'].sort());
    expect(await readBy(1)).toEqual({ entries: 1, hashedLinked: 0, dropped: 0 });
    // A change of a field the row filter does not read changes nothing in the table.
    await ingest([{ ...ROWS[1], offense: 'FRAUD' }]);
    expect(await answer(2)).toEqual(['B00001']);
    // Put back as they were, for the tests after.
    await ingest([ROWS[0], ROWS[600], ROWS[9]]);
    expect(await answer(1)).toEqual(['B00000']);
    expect(await filed()).toEqual(northLinked());
  });

  it('is dropped by an ingestion too large to keep it, and filters answer the same without it', async () => {
    const { keepPersonKeys } = await import('@broker/registry');
    await broker.app.get(Database).connection(async (client) => {
      await client.query('BEGIN');
      const upkeep = await keepPersonKeys(
        client,
        { id: datasetId, slug: 'bookings', keyField: 'id', fields: [] },
        10,
        5,
      );
      await upkeep.afterChange(null);
      await client.query('COMMIT');
    });
    expect(await tables()).toEqual([]);
    expect(await selected(1)).toBe(1);
    expect(await readBy(1)).toEqual({ entries: 0, hashedLinked: POPULATION_LINKED, dropped: 0 });
    expect(await index.build(table)).toBeGreaterThan(0);
    expect(await filed()).toEqual(northLinked());
  });

  it('comes into force with the next run for the same population, and goes with its agreement', async () => {
    const [run] = await broker.query<{ id: string }>(
      `INSERT INTO linkage_run (status, trigger) VALUES ('SUCCEEDED', 'MANUAL') RETURNING id`,
    );
    await broker.query(
      `INSERT INTO linkage_person (run_id, dataset_id, record_key, person_id)
       SELECT $1, dataset_id, record_key, person_id FROM linkage_person
        WHERE run_id = (SELECT current_run_id FROM linkage_state WHERE id = 1)`,
      [run.id],
    );
    await broker.query(`UPDATE linkage_state SET current_run_id = $1 WHERE id = 1`, [run.id]);
    const pass = await index.afterRun();
    expect(pass.built).toEqual([{ ...table, persons: expect.any(Number) }]);
    expect(pass.dropped).toBe(1);
    expect(await filed()).toEqual(northLinked());
    expect(await readBy(1)).toEqual({ entries: 1, hashedLinked: 0, dropped: 0 });
    await broker.gqlOk(provider, `mutation($id: ID!) { revokeAgreement(id: $id, reason: "ended") { id } }`, {
      id: agreementId,
    });
    expect(await index.sweep()).toBe(1);
    expect(await tables()).toEqual([]);
  });
});
