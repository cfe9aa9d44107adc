import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Client } from 'pg';
import { PersonKeyIndex, personKeyParts, personKeyScope } from '@broker/linkage';
import { SqlParams, keyPrefixSql } from '@broker/policy';
import { TestBroker } from '@broker/testing';

const DATA = '/data/graphql';
const WINDOW = { validFrom: '2020-01-01T00:00:00Z', validUntil: '2099-01-01T00:00:00Z' };
const RECORDS = 1500;

/**
 * The personKey lookup tables (libs/linkage/src/person-key-index.ts): a filter on personKey answers
 * the same records whether its scope's table is built or not, and whatever keys it is given, checked
 * against pseudonyms computed here with Node's crypto from the secret, not with the broker's SQL.
 * The linkage runs are written straight into their tables.
 */
describe('personKey lookup tables', () => {
  let broker: TestBroker;
  let pg: Client;
  let index: PersonKeyIndex;
  let secret: Buffer;
  let bookings: { id: string };
  let ids: { research: string; probation: string };
  /** The agreements that release personKey to each recipient. */
  let agreements: { research: string; probation: string };
  let analysts: { research: string; probation: string };
  /** The person of each linked record in the run in force (a tenth of the records are not linked). */
  let personOf: Map<string, number>;
  let run: string;

  const keyOf = (scope: string, person: number) =>
    createHmac('sha256', createHmac('sha256', secret).update(scope, 'utf8').digest())
      .update(String(person), 'utf8')
      .digest('hex');
  const research = () => personKeyScope(ids.research, 'RECIDIVISM_EVALUATION');
  /** The lookup table of a scope for the bookings, under its recipient's agreement (no row filter). */
  const table = (scope: string) => ({
    agreementId: scope.startsWith(ids.research) ? agreements.research : agreements.probation,
    scope,
    datasetId: bookings.id,
    rowFilter: null,
  });
  const probation = () => personKeyScope(ids.probation, 'SUPERVISION');
  /** The records whose person's key, in `scope`, is one of `keys`: the truth, from Node's crypto. */
  const truth = (scope: string, keys: string[]) =>
    [...personOf]
      .filter(([, person]) => keys.includes(keyOf(scope, person)))
      .map(([key]) => key)
      .sort();

  /** Writes a run in force assigning each record `person(i)` (null: not linked). */
  const writeRun = async (person: (i: number) => number | null, options = { current: true }) => {
    const [row] = await broker.query<{ id: string }>(
      `INSERT INTO linkage_run (status, trigger) VALUES ('SUCCEEDED', 'MANUAL') RETURNING id`,
    );
    personOf = new Map();
    for (let i = 0; i < RECORDS; i++) {
      const p = person(i);
      if (p !== null) personOf.set(recordKey(i), p);
    }
    await broker.query(
      `INSERT INTO linkage_person (run_id, dataset_id, record_key, person_id)
       SELECT $1, $2, k, p FROM unnest($3::text[], $4::bigint[]) AS u (k, p)`,
      [row.id, bookings.id, [...personOf.keys()], [...personOf.values()]],
    );
    if (!options.current) return row.id;
    await broker.query(`UPDATE linkage_state SET current_run_id = $1 WHERE id = 1`, [row.id]);
    run = row.id;
    return row.id;
  };

  /** `among` as the data plane writes it, over every record key of the dataset and one that is none. */
  const amongSql = (scope: 'research' | 'probation', keys: string[]) => {
    const params = new SqlParams();
    const [agency, purpose] =
      scope === 'research' ? [ids.research, 'RECIDIVISM_EVALUATION'] : [ids.probation, 'SUPERVISION'];
    const parts = personKeyParts(params, bookings.id, agency, purpose, 'x.k', {
      agreementId: scope === 'research' ? agreements.research : agreements.probation,
      rowFilter: null,
      shape: { slug: 'bookings', keyField: 'booking_id', fields: [] },
    });
    const condition = parts.among(params.add(keys, 'text[]'));
    return {
      text: `SELECT x.k FROM (SELECT booking_id AS k FROM records.bookings UNION ALL SELECT 'nope') x
              WHERE ${condition} ORDER BY x.k COLLATE "C"`,
      values: params.values,
    };
  };
  const among = async (scope: 'research' | 'probation', keys: string[]) => {
    const { text, values } = amongSql(scope, keys);
    return (await pg.query<{ k: string }>(text, values)).rows.map((r) => r.k);
  };
  /** The same, as if the scope's table were not built (dropped in a transaction rolled back). */
  const amongUnbuilt = async (scope: 'research' | 'probation', keys: string[]) => {
    await pg.query('BEGIN');
    try {
      await pg.query(`DELETE FROM person_key_scope`);
      return await among(scope, keys);
    } finally {
      await pg.query('ROLLBACK');
    }
  };
  const built = () =>
    broker.query<{ scope: string; run_id: string; persons: string; rows: string }>(
      `SELECT s.scope, s.run_id,
              (SELECT count(DISTINCT k.person_id) FROM person_key k WHERE k.scope_id = s.id)::text AS persons,
              (SELECT count(*) FROM person_key k WHERE k.scope_id = s.id)::text AS rows
         FROM person_key_scope s ORDER BY s.scope, s.run_id`,
    );
  const filter = async (analyst: string, field: string, purpose: string, keys: string[]) => {
    const res = await broker.gql(
      analyst,
      `query($k: [String!]!) { ${field}(purpose: ${purpose}, first: 1000, where: { personKey: { in: $k } },
          orderBy: [{ field: booking_id }]) { nodes { booking_id } } }`,
      { k: keys },
      DATA,
    );
    if (res.errors) throw new Error(JSON.stringify(res.errors));
    return (res.data as Record<string, { nodes: { booking_id: string }[] }>)[field].nodes.map(
      (n) => n.booking_id,
    );
  };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'person_key_index' });
    index = broker.app.get(PersonKeyIndex);
    const sheriff = await broker.createAgency('Sheriff');
    const researchAgency = await broker.createAgency('Research');
    const probationAgency = await broker.createAgency('Probation');
    ids = { research: researchAgency.id, probation: probationAgency.id };
    const sheriffSteward = await broker.createUser({ agencyId: sheriff.id, role: 'STEWARD' });
    const researchSteward = await broker.createUser({ agencyId: researchAgency.id, role: 'STEWARD' });
    const probationSteward = await broker.createUser({ agencyId: probationAgency.id, role: 'STEWARD' });
    analysts = {
      research: (await broker.createUser({ agencyId: researchAgency.id, role: 'ANALYST' })).apiKey,
      probation: (await broker.createUser({ agencyId: probationAgency.id, role: 'ANALYST' })).apiKey,
    };
    await broker.definePurposes('RECIDIVISM_EVALUATION', 'PROGRAM_EVALUATION', 'SUPERVISION');
    bookings = await broker.registerDataset(sheriffSteward.apiKey, {
      slug: 'bookings',
      title: 'Bookings',
      keyField: 'booking_id',
      fields: [
        { name: 'booking_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'last_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'LAST_NAME' },
        { name: 'charge', type: 'STRING', classification: 'SENSITIVE' },
      ],
    });
    const lines = ['booking_id,last_name,charge'];
    for (let i = 0; i < RECORDS; i++) lines.push(`${recordKey(i)},N${i % 97},C${i % 5}`);
    await broker.upload(sheriffSteward.apiKey, bookings.id, 'text/csv', lines.join('\n'));
    const grant = {
      datasetId: bookings.id,
      fields: [{ name: 'booking_id' }, { name: 'charge' }],
      linkage: true,
    };
    const researchAgreement = await broker.activateAgreement(sheriffSteward.apiKey, researchSteward.apiKey, {
      title: 'Bookings for research',
      providerAgencyId: sheriff.id,
      recipientAgencyId: researchAgency.id,
      purposes: ['RECIDIVISM_EVALUATION', 'PROGRAM_EVALUATION'],
      ...WINDOW,
      grants: [grant],
    });
    const probationAgreement = await broker.activateAgreement(
      sheriffSteward.apiKey,
      probationSteward.apiKey,
      {
        title: 'Bookings for supervision',
        providerAgencyId: sheriff.id,
        recipientAgencyId: probationAgency.id,
        purposes: ['SUPERVISION'],
        ...WINDOW,
        grants: [grant],
      },
    );
    agreements = { research: researchAgreement, probation: probationAgreement };
    pg = new Client({ connectionString: broker.config.DATABASE_URL });
    await pg.connect();
    [{ secret }] = await broker.query<{ secret: Buffer }>(`SELECT secret FROM linkage_secret WHERE id = 1`);
    // One to four records a person; every tenth record not linked.
    await writeRun((i) => (i % 10 === 9 ? null : 1 + ((i * 7919) % 600)));
  });
  afterAll(async () => {
    await pg?.end();
    await broker?.close();
  });

  it('is built for a scope once an analyst filters by it, and for no other scope', async () => {
    expect(await built()).toEqual([]);
    const keys = [keyOf(probation(), 17), keyOf(probation(), 18)];
    // Answered by hashing every record (the table is not there yet).
    expect(await filter(analysts.probation, 'bookings', 'SUPERVISION', keys)).toEqual(
      truth(probation(), keys),
    );
    const persons = String(new Set(personOf.values()).size);
    for (let i = 0; i < 100 && !(await built()).length; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await built()).toEqual([
      { scope: probation(), run_id: run, persons, rows: String(personOf.size) },
    ]);
    // And then by it, alike.
    expect(await filter(analysts.probation, 'bookings', 'SUPERVISION', keys)).toEqual(
      truth(probation(), keys),
    );
    // Built once: asking again within the check interval, or building again, writes nothing.
    expect(await index.build(table(probation()))).toBeNull();
  });

  it('finds the same records with the table as without it, for any keys (fast-check)', async () => {
    expect(await index.build(table(research()))).toBe(new Set(personOf.values()).size);
    const persons = [...new Set(personOf.values())];
    const someone = fc.constantFrom(...persons);
    const key = fc.oneof(
      someone.map((p) => keyOf(research(), p)),
      // Another scope's key of the same person, a person not in the run, its key upper-cased, cut,
      // lengthened; random hex; anything at all.
      someone.map((p) => keyOf(probation(), p)),
      fc.integer({ min: 601, max: 10_000 }).map((p) => keyOf(research(), p)),
      someone.map((p) => keyOf(research(), p).toUpperCase()),
      someone.map((p) => keyOf(research(), p).slice(0, 63)),
      someone.map((p) => `${keyOf(research(), p)}0`),
      fc.stringMatching(/^[0-9a-f]{64}$/),
      fc.string({ maxLength: 70 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(key, { maxLength: 6 }), async (keys) => {
        const expected = truth(research(), keys);
        expect(await among('research', keys)).toEqual(expected);
        expect(await amongUnbuilt('research', keys)).toEqual(expected);
      }),
      { numRuns: 60 },
    );
  });

  it("checks every candidate whole: a record whose person's key shares the first 64 bits is not taken", async () => {
    const target = keyOf(research(), 5);
    const expected = truth(research(), [target]);
    expect(expected.length).toBeGreaterThan(0);
    await pg.query('BEGIN');
    try {
      // Every other record of the run filed under the target's prefix, as a collision would.
      await pg.query(
        `UPDATE person_key k SET prefix = ${keyPrefixSql('$1::text')}
           FROM person_key_scope s WHERE k.scope_id = s.id AND s.scope = $2`,
        [target, research()],
      );
      expect(await among('research', [target])).toEqual(expected);
    } finally {
      await pg.query('ROLLBACK');
    }
  });

  it('runs one branch: by the table when it is built, by hashing every record only when not', async () => {
    const explain = async (unbuilt: boolean) => {
      const { text, values } = amongSql('research', [keyOf(research(), 5)]);
      await pg.query('BEGIN');
      try {
        if (unbuilt) await pg.query(`DELETE FROM person_key_scope`);
        const { rows } = await pg.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN (ANALYZE, COSTS OFF) ${text}`,
          values,
        );
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      } finally {
        await pg.query('ROLLBACK');
      }
    };
    // The scan that hashes every linked record of the dataset: its filter is the hash alone.
    const hashingAll =
      /on linkage_person (\w+) \((actual|never)[^\n]*\n[^\n]*Index Cond[^\n]*\n\s*Filter: \(encode\(hmac/;
    const fast = await explain(false);
    expect(fast).toMatch(/Index Cond: \(\(scope_id = \$\d+\) AND \(prefix = ANY \(\$\d+\)\)\)/);
    expect(fast.match(hashingAll)?.[2]).toBe('never');
    // The other reads no linked record at all: the table holds the records of each prefix.
    expect(fast).not.toMatch(/on linkage_person \w+ \(actual/);
    const slow = await explain(true);
    expect(slow.match(hashingAll)?.[2]).toBe('actual');
  });

  it('builds one scope once when two builds race', async () => {
    await broker.query(`DELETE FROM person_key_scope WHERE scope = $1`, [research()]);
    const results = await Promise.all([index.build(table(research())), index.build(table(research()))]);
    const persons = new Set(personOf.values()).size;
    expect(results.sort()).toEqual([persons, null]);
    const rows = (await built()).filter((b) => b.scope === research());
    expect(rows).toEqual([
      { scope: research(), run_id: run, persons: String(persons), rows: String(personOf.size) },
    ]);
  });

  it("moves to the next run in force: its scopes built again, the last run's tables dropped", async () => {
    const before = run;
    // The next run assigns the records to other persons.
    await writeRun((i) => (i % 7 === 0 ? null : 1 + ((i * 104_729) % 450)));
    // Until the tables are renewed, the old run's are not used: the filters hash every record.
    const keys = [keyOf(research(), 3), keyOf(research(), 449)];
    expect(truth(research(), keys).length).toBeGreaterThan(1);
    expect(await among('research', keys)).toEqual(truth(research(), keys));
    const pass = await index.afterRun();
    const persons = String(new Set(personOf.values()).size);
    expect(pass.built).toEqual(
      [probation(), research()].sort().map((scope) => ({ ...table(scope), persons: Number(persons) })),
    );
    expect(pass.dropped).toBe(2);
    expect((await built()).map((b) => [b.scope, b.run_id, b.persons, b.rows])).toEqual(
      [probation(), research()].sort().map((scope) => [scope, run, persons, String(personOf.size)]),
    );
    expect(run).not.toBe(before);
    expect(await filter(analysts.research, 'bookings', 'RECIDIVISM_EVALUATION', keys)).toEqual(
      truth(research(), keys),
    );
    expect(await among('research', keys)).toEqual(truth(research(), keys));
    // A second pass has nothing to do.
    expect(await index.afterRun()).toEqual({ built: [], dropped: 0 });
  });

  it('puts a run in force with its tables, built in its transaction; a scope that fails waits for the clean-up', async () => {
    const next = await writeRun((i) => (i % 5 === 0 ? null : 1 + ((i * 31) % 300)), { current: false });
    const persons = new Set(personOf.values()).size;
    const keys = [keyOf(research(), 7), keyOf(research(), 299)];
    let made: unknown;
    await pg.query('BEGIN');
    try {
      // Supervision's table cannot be built: its savepoint is rolled back, and the run goes on.
      await pg.query(`CREATE FUNCTION refuse_supervision() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF (SELECT scope FROM person_key_scope WHERE id = NEW.scope_id) LIKE '%/SUPERVISION' THEN
            RAISE EXCEPTION 'refused';
          END IF;
          RETURN NEW;
        END $$`);
      await pg.query(
        `CREATE TRIGGER refuse BEFORE INSERT ON person_key FOR EACH ROW EXECUTE FUNCTION refuse_supervision()`,
      );
      made = await index.prepareRun(pg, next);
      await pg.query(`DROP TRIGGER refuse ON person_key`);
      await pg.query(`DROP FUNCTION refuse_supervision()`);
      await pg.query(`UPDATE linkage_state SET current_run_id = $1 WHERE id = 1`, [next]);
      await pg.query('COMMIT');
    } catch (error) {
      await pg.query('ROLLBACK');
      throw error;
    }
    run = next;
    expect(made).toEqual([{ ...table(research()), persons }]);
    // In force with the run: the filters use research's table at once.
    expect((await built()).filter((b) => b.run_id === next).map((b) => b.scope)).toEqual([research()]);
    expect(await among('research', keys)).toEqual(truth(research(), keys));
    expect(truth(research(), keys).length).toBeGreaterThan(1);
    // The clean-up after the run builds the one that failed, and drops the last run's two.
    expect(await index.afterRun()).toEqual({ built: [{ ...table(probation()), persons }], dropped: 2 });
    expect((await built()).map((b) => [b.scope, b.run_id])).toEqual(
      [probation(), research()].sort().map((scope) => [scope, next]),
    );
  });

  it('keeps no table without a run in force', async () => {
    await broker.query(`UPDATE linkage_state SET current_run_id = NULL WHERE id = 1`);
    try {
      expect(await index.build(table(personKeyScope(ids.research, 'PROGRAM_EVALUATION')))).toBeNull();
      expect(await index.afterRun()).toEqual({ built: [], dropped: 2 });
      expect(await built()).toEqual([]);
    } finally {
      await broker.query(`UPDATE linkage_state SET current_run_id = $1 WHERE id = 1`, [run]);
    }
    // Not a key: what the tables keep is no secret (a random value never matches).
    expect(await among('research', [randomBytes(32).toString('hex')])).toEqual([]);
  });
});

function recordKey(i: number): string {
  return `B${String(i).padStart(4, '0')}`;
}
