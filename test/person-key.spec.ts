import fc from 'fast-check';
import { PersonKeyIndex, personKeyScope } from '@broker/linkage';
import { TestBroker } from '@broker/testing';

const DATA = '/data/graphql';
const WINDOW = { validFrom: '2020-01-01T00:00:00Z', validUntil: '2099-01-01T00:00:00Z' };

/**
 * personKey in the data plane: the linkage pseudonym of a record, the same for one person across the
 * datasets one recipient reads for one purpose, and unrelated for any other recipient or purpose.
 * The linkage run is written straight into its tables here (the worker's own tests run it for real).
 */
describe('data plane: personKey, one pseudonym per recipient and purpose', () => {
  let broker: TestBroker;
  let researchAnalyst: { apiKey: string };
  let probationAnalyst: { apiKey: string };
  let bookings: { id: string };
  /** The agreement that releases the bookings to research. */
  let researchBookings: string;
  let participation: { id: string };
  let cboSteward: { apiKey: string };
  let probationSteward: { apiKey: string };
  let ids: { cbo: string; probation: string; research: string };

  const read = async (key: string, query: string) => {
    const res = await broker.gql(key, query, {}, DATA);
    if (res.errors) throw new Error(JSON.stringify(res.errors));
    return res.data as Record<string, { nodes: Record<string, string | null>[] }>;
  };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'person_key' });
    const sheriff = await broker.createAgency('Sheriff');
    const cbo = await broker.createAgency('CBO');
    const research = await broker.createAgency('Research');
    const probation = await broker.createAgency('Probation');
    const sheriffSteward = await broker.createUser({ agencyId: sheriff.id, role: 'STEWARD' });
    cboSteward = await broker.createUser({ agencyId: cbo.id, role: 'STEWARD' });
    const researchSteward = await broker.createUser({ agencyId: research.id, role: 'STEWARD' });
    probationSteward = await broker.createUser({ agencyId: probation.id, role: 'STEWARD' });
    ids = { cbo: cbo.id, probation: probation.id, research: research.id };
    researchAnalyst = await broker.createUser({ agencyId: research.id, role: 'ANALYST' });
    probationAnalyst = await broker.createUser({ agencyId: probation.id, role: 'ANALYST' });
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
    participation = await broker.registerDataset(cboSteward.apiKey, {
      slug: 'participation',
      title: 'Participation',
      keyField: 'enrollment_id',
      fields: [
        { name: 'enrollment_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'last_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'LAST_NAME' },
        { name: 'program', type: 'STRING', classification: 'SENSITIVE' },
      ],
    });
    const csv = (rows: string[]) => rows.join('\n');
    await broker.upload(
      sheriffSteward.apiKey,
      bookings.id,
      'text/csv',
      csv(['booking_id,last_name,charge', 'B1,Smith,THEFT', 'B2,Jones,DUI']),
    );
    await broker.upload(
      cboSteward.apiKey,
      participation.id,
      'text/csv',
      csv(['enrollment_id,last_name,program', 'E1,Smith,JOBS', 'E2,Brown,HOUSING']),
    );
    const grant = (datasetId: string, fields: string[], linkage = true) => ({
      datasetId,
      fields: fields.map((name) => ({ name })),
      linkage,
    });
    researchBookings = await broker.activateAgreement(sheriffSteward.apiKey, researchSteward.apiKey, {
      title: 'Bookings for research',
      providerAgencyId: sheriff.id,
      recipientAgencyId: research.id,
      purposes: ['RECIDIVISM_EVALUATION', 'PROGRAM_EVALUATION'],
      ...WINDOW,
      grants: [grant(bookings.id, ['booking_id', 'charge'])],
    });
    await broker.activateAgreement(cboSteward.apiKey, researchSteward.apiKey, {
      title: 'Participation for research',
      providerAgencyId: cbo.id,
      recipientAgencyId: research.id,
      purposes: ['RECIDIVISM_EVALUATION', 'PROGRAM_EVALUATION'],
      ...WINDOW,
      grants: [grant(participation.id, ['enrollment_id', 'program'])],
    });
    await broker.activateAgreement(sheriffSteward.apiKey, probationSteward.apiKey, {
      title: 'Bookings for supervision',
      providerAgencyId: sheriff.id,
      recipientAgencyId: probation.id,
      purposes: ['SUPERVISION'],
      ...WINDOW,
      grants: [grant(bookings.id, ['booking_id', 'charge'])],
    });
    // A finished linkage run: B1 and E1 are person 1, B2 is person 2; E2 is not linked.
    const [run] = await broker.query<{ id: string }>(
      `INSERT INTO linkage_run (status, trigger) VALUES ('SUCCEEDED', 'MANUAL') RETURNING id`,
    );
    await broker.query(
      `INSERT INTO linkage_person (run_id, dataset_id, record_key, person_id)
       VALUES ($1, $2, 'B1', 1), ($1, $2, 'B2', 2), ($1, $3, 'E1', 1)`,
      [run.id, bookings.id, participation.id],
    );
    await broker.query(`UPDATE linkage_state SET current_run_id = $1 WHERE id = 1`, [run.id]);
  });
  afterAll(() => broker.close());

  it('gives one person the same key across the datasets one recipient reads for one purpose', async () => {
    const data = await read(
      researchAnalyst.apiKey,
      `{ bookings(purpose: RECIDIVISM_EVALUATION, orderBy: [{ field: booking_id }]) { nodes { booking_id personKey } }
         participation(purpose: RECIDIVISM_EVALUATION, orderBy: [{ field: enrollment_id }]) { nodes { enrollment_id personKey } } }`,
    );
    const [b1, b2] = data.bookings.nodes;
    const [e1, e2] = data.participation.nodes;
    expect(b1.personKey).toMatch(/^[0-9a-f]{64}$/);
    expect(e1.personKey).toBe(b1.personKey);
    expect(b2.personKey).toMatch(/^[0-9a-f]{64}$/);
    expect(b2.personKey).not.toBe(b1.personKey);
    expect(e2.personKey).toBeNull();

    // A filter on the pseudonym joins the datasets.
    const joined = await read(
      researchAnalyst.apiKey,
      `{ participation(purpose: RECIDIVISM_EVALUATION, where: { personKey: { eq: "${b1.personKey}" } }) { nodes { enrollment_id } } }`,
    );
    expect(joined.participation.nodes).toEqual([{ enrollment_id: 'E1' }]);
    // An aggregate counts persons (unit: PERSONS) and filters by no pseudonym: it says so.
    const counted = await broker.gql(
      researchAnalyst.apiKey,
      `{ participation_aggregate(purpose: RECIDIVISM_EVALUATION, groupBy: [], where: { personKey: { eq: "${b1.personKey}" } }) { groups { count } } }`,
      undefined,
      '/data/graphql',
    );
    expect(counted.data).toBeNull();
    expect(counted.errors?.[0]).toMatchObject({
      message: 'personKey filters and orders rows only, not aggregates',
      extensions: { code: 'FORBIDDEN' },
    });
  });

  it("filters on personKey exactly as each record's own key says, whatever the shape of the filter", async () => {
    const all = (
      await read(
        researchAnalyst.apiKey,
        `{ bookings(purpose: RECIDIVISM_EVALUATION, orderBy: [{ field: booking_id }]) { nodes { booking_id personKey } } }`,
      )
    ).bookings.nodes as { booking_id: string; personKey: string | null }[];
    const [k1, k2] = all.map((n) => n.personKey!);
    const unknown = 'f'.repeat(64);
    const ids = async (where: string) =>
      (
        await read(
          researchAnalyst.apiKey,
          `{ bookings(purpose: RECIDIVISM_EVALUATION, orderBy: [{ field: booking_id }], where: ${where}) { nodes { booking_id } } }`,
        )
      ).bookings.nodes.map((n) => n.booking_id);
    // Equalities and in lists (where the linked records of those persons are read first) and every
    // other shape (where they are not) answer as the per-record key does.
    expect(await ids(`{ personKey: { eq: "${k1}" } }`)).toEqual(['B1']);
    expect(await ids(`{ personKey: { eq: "${k1.toUpperCase()}" } }`)).toEqual([]);
    expect(await ids(`{ personKey: { in: ["${k1}", "${k2}"] } }`)).toEqual(['B1', 'B2']);
    expect(await ids(`{ personKey: { in: ["${unknown}", "${k2}"] } }`)).toEqual(['B2']);
    expect(await ids(`{ personKey: { in: [] } }`)).toEqual([]);
    expect(
      await ids(`{ and: [{ personKey: { in: ["${k1}", "${k2}"] } }, { booking_id: { eq: "B2" } }] }`),
    ).toEqual(['B2']);
    expect(await ids(`{ or: [{ personKey: { eq: "${k1}" } }, { booking_id: { eq: "B2" } }] }`)).toEqual([
      'B1',
      'B2',
    ]);
    expect(await ids(`{ not: { personKey: { eq: "${k1}" } } }`)).toEqual(['B2']);
    expect(await ids(`{ personKey: { neq: "${k1}" } }`)).toEqual(['B2']);
    expect(await ids(`{ personKey: { nin: ["${k2}"] } }`)).toEqual(['B1']);
    // Another recipient's or purpose's key of the same person finds nothing here.
    const other = (
      await read(
        researchAnalyst.apiKey,
        `{ bookings(purpose: PROGRAM_EVALUATION, where: { booking_id: { eq: "B1" } }) { nodes { personKey } } }`,
      )
    ).bookings.nodes[0].personKey as string;
    expect(other).not.toBe(k1);
    expect(await ids(`{ personKey: { eq: "${other}" } }`)).toEqual([]);
    expect(await ids(`{ personKey: { in: ["${other}"] } }`)).toEqual([]);
  });

  it('answers random filters mixing personKey with other names as each record says (fast-check)', async () => {
    const all = (
      await read(
        researchAnalyst.apiKey,
        `{ participation(purpose: RECIDIVISM_EVALUATION, orderBy: [{ field: enrollment_id }]) { nodes { enrollment_id personKey } } }`,
      )
    ).participation.nodes as { enrollment_id: string; personKey: string | null }[];
    const booked = (
      await read(
        researchAnalyst.apiKey,
        `{ bookings(purpose: RECIDIVISM_EVALUATION, orderBy: [{ field: booking_id }]) { nodes { personKey } } }`,
      )
    ).bookings.nodes.map((n) => n.personKey!);
    // Keys of linked persons, of a person with no record here, and of nobody.
    const key = fc.constantFrom(...booked, 'f'.repeat(64), booked[0].toUpperCase());
    type Filter = { sql: string; holds: (n: (typeof all)[number]) => boolean | null };
    // SQL's three-valued logic: a comparison with a null personKey is unknown (null).
    const cmp = (pk: string | null, f: (pk: string) => boolean) => (pk === null ? null : f(pk));
    const leaf: fc.Arbitrary<Filter> = fc.oneof(
      key.map((k): Filter => ({
        sql: `{ personKey: { eq: "${k}" } }`,
        holds: (n) => cmp(n.personKey, (p) => p === k),
      })),
      key.map((k): Filter => ({
        sql: `{ personKey: { neq: "${k}" } }`,
        holds: (n) => cmp(n.personKey, (p) => p !== k),
      })),
      fc.array(key, { maxLength: 3 }).map((ks): Filter => ({
        sql: `{ personKey: { in: ${JSON.stringify(ks)} } }`,
        holds: (n) => cmp(n.personKey, (p) => ks.includes(p)),
      })),
      fc.array(key, { maxLength: 3 }).map((ks): Filter => ({
        sql: `{ personKey: { nin: ${JSON.stringify(ks)} } }`,
        holds: (n) => cmp(n.personKey, (p) => !ks.includes(p)),
      })),
      fc.boolean().map((isNull): Filter => ({
        sql: `{ personKey: { isNull: ${isNull} } }`,
        holds: (n) => (n.personKey === null) === isNull,
      })),
      fc.constantFrom('E1', 'E2').map((id): Filter => ({
        sql: `{ enrollment_id: { eq: "${id}" } }`,
        holds: (n) => n.enrollment_id === id,
      })),
    );
    const and3 = (a: boolean | null, b: boolean | null) =>
      a === false || b === false ? false : a === null || b === null ? null : true;
    const or3 = (a: boolean | null, b: boolean | null) =>
      a === true || b === true ? true : a === null || b === null ? null : false;
    const filter: fc.Arbitrary<Filter> = fc.letrec<{ f: Filter }>((tie) => ({
      f: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc.tuple(tie('f'), tie('f')).map(([a, b]): Filter => ({
          sql: `{ and: [${a.sql}, ${b.sql}] }`,
          holds: (n) => and3(a.holds(n), b.holds(n)),
        })),
        fc.tuple(tie('f'), tie('f')).map(([a, b]): Filter => ({
          sql: `{ or: [${a.sql}, ${b.sql}] }`,
          holds: (n) => or3(a.holds(n), b.holds(n)),
        })),
        tie('f').map((a): Filter => ({
          sql: `{ not: ${a.sql} }`,
          holds: (n) => {
            const h = a.holds(n);
            return h === null ? null : !h;
          },
        })),
      ),
    })).f;
    await fc.assert(
      fc.asyncProperty(filter, async (f) => {
        const got = (
          await read(
            researchAnalyst.apiKey,
            `{ participation(purpose: RECIDIVISM_EVALUATION, orderBy: [{ field: enrollment_id }], where: ${f.sql}) { nodes { enrollment_id } } }`,
          )
        ).participation.nodes.map((n) => n.enrollment_id);
        expect(got).toEqual(all.filter((n) => f.holds(n) === true).map((n) => n.enrollment_id));
      }),
      { numRuns: 60 },
    );
  });

  it('exports by a personKey filter the rows its page holds', async () => {
    const [b1] = (
      await read(
        researchAnalyst.apiKey,
        `{ bookings(purpose: RECIDIVISM_EVALUATION, where: { booking_id: { eq: "B1" } }) { nodes { personKey } } }`,
      )
    ).bookings.nodes;
    const payload = {
      query: `{ bookings(purpose: RECIDIVISM_EVALUATION, where: { personKey: { in: ["${b1.personKey}", "${'0'.repeat(64)}"] } }) { nodes { booking_id personKey } } }`,
    };
    const exported = (url: string, accept: string) =>
      broker.http.inject({
        method: 'POST',
        url,
        headers: {
          authorization: `Bearer ${researchAnalyst.apiKey}`,
          accept,
          'content-type': 'application/json',
        },
        payload,
      });
    const res = await exported('/data/export', 'application/x-ndjson');
    expect(res.statusCode).toBe(200);
    const lines = res.body
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as unknown);
    expect(lines).toEqual([{ booking_id: 'B1', personKey: b1.personKey }]);
    // As CSV with formulas escaped: personKey is text, read through the escape, and no formula.
    const csv = await exported('/data/export?formulas=escape', 'text/csv');
    expect(csv.statusCode).toBe(200);
    expect(csv.body).toBe(`booking_id,personKey\n"B1","${b1.personKey}"\n`);
  });

  it('gives unrelated keys to another purpose and to another recipient', async () => {
    const key = async (analyst: string, purpose: string) =>
      (
        await read(
          analyst,
          `{ bookings(purpose: ${purpose}, where: { booking_id: { eq: "B1" } }) { nodes { personKey } } }`,
        )
      ).bookings.nodes[0].personKey;
    const research = await key(researchAnalyst.apiKey, 'RECIDIVISM_EVALUATION');
    const otherPurpose = await key(researchAnalyst.apiKey, 'PROGRAM_EVALUATION');
    const probation = await key(probationAnalyst.apiKey, 'SUPERVISION');
    expect(new Set([research, otherPurpose, probation]).size).toBe(3);
    // The other recipient cannot find research's person with research's key.
    const probe = await read(
      probationAnalyst.apiKey,
      `{ bookings(purpose: SUPERVISION, where: { personKey: { eq: "${research}" } }) { nodes { booking_id } } }`,
    );
    expect(probe.bookings.nodes).toEqual([]);
  });

  it('has no personKey where the grant does not release linkage', async () => {
    await broker.activateAgreement(cboSteward.apiKey, probationSteward.apiKey, {
      title: 'Participation without linkage',
      providerAgencyId: ids.cbo,
      recipientAgencyId: ids.probation,
      purposes: ['SUPERVISION'],
      ...WINDOW,
      grants: [{ datasetId: participation.id, fields: [{ name: 'enrollment_id' }], linkage: false }],
    });
    const rows = await read(
      probationAnalyst.apiKey,
      `{ participation(purpose: SUPERVISION) { nodes { enrollment_id } } }`,
    );
    expect(rows.participation.nodes).toHaveLength(2);
    for (const query of [
      `{ participation(purpose: SUPERVISION) { nodes { personKey } } }`,
      `{ participation(purpose: SUPERVISION, where: { personKey: { isNull: false } }) { nodes { enrollment_id } } }`,
    ]) {
      const res = await broker.gql(probationAnalyst.apiKey, query, {}, DATA);
      expect(res.data).toBeNull();
      expect(res.errors![0].extensions!.code).toBe('FORBIDDEN');
    }
  });

  it('reads a lookup table of pseudonyms only for its own dataset', async () => {
    const { bookings: b } = await read(
      researchAnalyst.apiKey,
      `{ bookings(purpose: RECIDIVISM_EVALUATION, where: { booking_id: { eq: "B1" } }) { nodes { personKey } } }`,
    );
    const key = b.nodes[0].personKey!;
    // Only the bookings' table is built: a filter on participation must not read it.
    await broker.query(`DELETE FROM person_key_scope`);
    const scope = personKeyScope(ids.research, 'RECIDIVISM_EVALUATION');
    expect(
      await broker.app
        .get(PersonKeyIndex)
        .build({ agreementId: researchBookings, scope, datasetId: bookings.id, rowFilter: null }),
    ).toBe(2);
    const joined = await read(
      researchAnalyst.apiKey,
      `{ participation(purpose: RECIDIVISM_EVALUATION, where: { personKey: { eq: "${key}" } }) { nodes { enrollment_id } } }`,
    );
    expect(joined.participation.nodes).toEqual([{ enrollment_id: 'E1' }]);
    const again = await read(
      researchAnalyst.apiKey,
      `{ bookings(purpose: RECIDIVISM_EVALUATION, where: { personKey: { in: ["${key}"] } }) { nodes { booking_id } } }`,
    );
    expect(again.bookings.nodes).toEqual([{ booking_id: 'B1' }]);
  });
});
