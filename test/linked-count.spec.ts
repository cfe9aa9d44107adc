import fc from 'fast-check';
import { TestBroker } from '@broker/testing';

/**
 * Linked counts and PERSONS (DESIGN §4.2) against a reference model built from the linkage result:
 * exact where the caller reads the rows of both datasets (a partner with ROWS grants), within the
 * noise and consistent otherwise (the research office, counts only). Consent withdrawn on either
 * side takes that record out at the next request. The linkage run is written into its tables here
 * (the worker's own tests run it for real).
 */

const DATA = '/data/graphql';
const WINDOW = { validFrom: '2020-01-01T00:00:00Z', validUntil: '2099-01-01T00:00:00Z' };
const PURPOSE = 'RECIDIVISM_EVALUATION';
const CONSENT = `mutation($input: ConsentInput!) { recordConsent(input: $input) { id } }`;
const PROGRAMS = ['HOUSING', 'JOBS', 'MENTORING'];
const M_PARTICIPATION = 3;
const M_BOOKINGS = 5;

function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Enrollment {
  id: string;
  subject: string;
  program: string;
  completed: string | null;
  person: number | null;
}
interface Booking {
  id: string;
  subject: string;
  charge: string;
  booked: string;
  person: number | null;
}

const day = (base: string, plus: number) =>
  new Date(Date.parse(`${base}T00:00:00Z`) + plus * 86_400_000).toISOString().slice(0, 10);
const daysBetween = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 86_400_000;

/** 240 people: most enrol in a program, many are booked, some records are not linked. */
function county() {
  const rnd = random(20261205);
  const enrollments: Enrollment[] = [];
  const bookings: Booking[] = [];
  for (let p = 1; p <= 240; p++) {
    const linked = rnd() < 0.92;
    if (rnd() < 0.8) {
      const n = rnd() < 0.15 ? 2 : 1;
      for (let i = 0; i < n; i++) {
        enrollments.push({
          id: `E${enrollments.length + 1}`,
          subject: `C${p}`,
          program: PROGRAMS[Math.floor(rnd() * PROGRAMS.length)],
          completed: rnd() < 0.8 ? day('2021-01-01', Math.floor(rnd() * 500)) : null,
          person: linked && rnd() < 0.97 ? p : null,
        });
      }
    }
    const booked = Math.floor(rnd() * 3);
    for (let i = 0; i < booked; i++) {
      bookings.push({
        id: `B${bookings.length + 1}`,
        subject: `S${p}`,
        charge: rnd() < 0.6 ? 'THEFT' : 'DUI',
        booked: day('2020-06-01', Math.floor(rnd() * 1200)),
        person: linked ? p : null,
      });
    }
  }
  return { enrollments, bookings };
}

interface Query {
  unit: 'RECORDS' | 'PERSONS';
  exists: boolean;
  window: { minDays: number; maxDays: number | null } | null;
  charge: string | null;
  programs: string[] | null;
  groupBy: string[];
}

describe('data plane: linked counts and persons', () => {
  let broker: TestBroker;
  let research: { id: string; apiKey: string };
  let partner: { apiKey: string };
  let sheriffSteward: { apiKey: string };
  let cboSteward: { apiKey: string };
  let ids: Record<string, string>;
  const data = county();
  /** Consent of each bookings subject for the purpose (the bookings grants require it). */
  const consent = new Map<string, boolean>();
  /** Consent of each participation subject (the participation grants require it too). */
  const participationConsent = new Map<string, boolean>();

  const linkedQuery = (q: Query, agreements?: { self: string; other: string }) => {
    const where = q.programs ? { program: { in: q.programs } } : undefined;
    const linked = {
      bookings: {
        exists: q.exists,
        ...(agreements ? { agreement: agreements.other } : {}),
        ...(q.charge ? { where: { charge: { eq: q.charge } } } : {}),
        ...(q.window ? { on: 'booked_on', after: 'completed_on', ...q.window } : {}),
      },
    };
    return {
      query: `query($g: [ParticipationField!]!, $w: ParticipationWhere, $l: ParticipationLinked, $u: CountUnit, $a: ID) {
        participation_aggregate(purpose: ${PURPOSE}, agreement: $a, groupBy: $g, where: $w, unit: $u, linked: $l) {
          groups { key count suppressed } noise } }`,
      variables: { g: q.groupBy, w: where, l: linked, u: q.unit, a: agreements?.self },
    };
  };

  const ask = async (apiKey: string, q: Query, agreements?: { self: string; other: string }) => {
    const { query, variables } = linkedQuery(q, agreements);
    const res = await broker.gql(apiKey, query, variables, DATA);
    if (res.errors) throw new Error(JSON.stringify(res.errors));
    return (res.data as any).participation_aggregate as {
      groups: { key: Record<string, unknown>; count: number | null; suppressed: boolean }[];
      noise: number;
    };
  };

  /** The reference model: the linkage result, both populations, the window; counts per group. */
  const model = (q: Query): Map<string, number> => {
    const match = (e: Enrollment) =>
      e.person !== null &&
      data.bookings.some(
        (b) =>
          b.person === e.person &&
          consent.get(b.subject) === true &&
          (q.charge === null || b.charge === q.charge) &&
          (q.window === null ||
            (e.completed !== null &&
              daysBetween(e.completed, b.booked) >= q.window.minDays &&
              (q.window.maxDays === null || daysBetween(e.completed, b.booked) <= q.window.maxDays))),
      );
    const key = (e: Enrollment) => JSON.stringify(q.groupBy.map((g) => (g === 'program' ? e.program : null)));
    const counts = new Map<string, number>();
    const selected = data.enrollments.filter(
      (e) =>
        participationConsent.get(e.subject) === true &&
        (q.programs === null || q.programs.includes(e.program)),
    );
    if (q.unit === 'RECORDS') {
      for (const e of selected) {
        if (match(e) === q.exists) counts.set(key(e), (counts.get(key(e)) ?? 0) + 1);
      }
    } else {
      const persons = new Map<string, boolean>();
      for (const e of selected) {
        if (e.person === null) continue;
        const pair = `${key(e)}#${e.person}`;
        persons.set(pair, (persons.get(pair) ?? false) || match(e));
      }
      for (const [pair, matched] of persons) {
        const k = pair.split('#')[0];
        if (matched === q.exists) counts.set(k, (counts.get(k) ?? 0) + 1);
      }
    }
    if (!q.groupBy.length && !counts.size) counts.set('[]', 0);
    return counts;
  };
  const keyText = (groupBy: string[], key: Record<string, unknown>) =>
    JSON.stringify(groupBy.map((g) => key[g]));

  const query = fc.record<Query>({
    unit: fc.constantFrom('RECORDS', 'PERSONS'),
    exists: fc.boolean(),
    window: fc.option(
      fc
        .tuple(fc.integer({ min: -30, max: 200 }), fc.option(fc.integer({ min: 0, max: 400 })))
        .map(([minDays, span]) => ({ minDays, maxDays: span === null ? null : minDays + span })),
    ),
    charge: fc.option(fc.constantFrom('THEFT', 'DUI')),
    programs: fc.option(fc.subarray(PROGRAMS, { minLength: 1 })),
    groupBy: fc.constantFrom([], ['program']),
  });

  beforeAll(async () => {
    broker = await TestBroker.start({
      LABEL: 'linked_count',
      AGGREGATE_DAILY_BUDGET: '100000',
      AGGREGATE_AGREEMENT_DAILY_BUDGET: '100000',
    });
    const sheriff = await broker.createAgency('Sheriff');
    const cbo = await broker.createAgency('CBO');
    const researchAgency = await broker.createAgency('Research');
    const partnerAgency = await broker.createAgency('Partner');
    sheriffSteward = await broker.createUser({ agencyId: sheriff.id, role: 'STEWARD' });
    cboSteward = await broker.createUser({ agencyId: cbo.id, role: 'STEWARD' });
    const researchSteward = await broker.createUser({ agencyId: researchAgency.id, role: 'STEWARD' });
    const partnerSteward = await broker.createUser({ agencyId: partnerAgency.id, role: 'STEWARD' });
    research = await broker.createUser({ agencyId: researchAgency.id, role: 'ANALYST' });
    partner = await broker.createUser({ agencyId: partnerAgency.id, role: 'ANALYST' });
    await broker.definePurposes(PURPOSE);
    const bookings = await broker.registerDataset(sheriffSteward.apiKey, {
      slug: 'bookings',
      title: 'Bookings',
      keyField: 'booking_id',
      subjectField: 'subject_id',
      fields: [
        { name: 'booking_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'subject_id', type: 'STRING', classification: 'DIRECT_IDENTIFIER' },
        { name: 'charge', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'booked_on', type: 'DATE', classification: 'NON_SENSITIVE' },
      ],
    });
    const participation = await broker.registerDataset(cboSteward.apiKey, {
      slug: 'participation',
      title: 'Participation',
      keyField: 'enrollment_id',
      subjectField: 'subject_id',
      fields: [
        { name: 'enrollment_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'subject_id', type: 'STRING', classification: 'DIRECT_IDENTIFIER' },
        { name: 'program', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'completed_on', type: 'DATE', classification: 'NON_SENSITIVE' },
      ],
    });
    ids = { bookings: bookings.id, participation: participation.id };
    await broker.upload(
      sheriffSteward.apiKey,
      bookings.id,
      'text/csv',
      [
        'booking_id,subject_id,charge,booked_on',
        ...data.bookings.map((b) => `${b.id},${b.subject},${b.charge},${b.booked}`),
      ].join('\n'),
    );
    await broker.upload(
      cboSteward.apiKey,
      participation.id,
      'text/csv',
      [
        'enrollment_id,subject_id,program,completed_on',
        ...data.enrollments.map((e) => `${e.id},${e.subject},${e.program},${e.completed ?? ''}`),
      ].join('\n'),
    );
    const grants = (access: 'ROWS' | 'AGGREGATE_ONLY') => ({
      bookings: {
        datasetId: bookings.id,
        access,
        linkage: true,
        requireConsent: true,
        minCellSize: M_BOOKINGS,
        fields: [{ name: 'charge' }, { name: 'booked_on' }],
      },
      participation: {
        datasetId: participation.id,
        access,
        linkage: true,
        requireConsent: true,
        minCellSize: M_PARTICIPATION,
        fields: [{ name: 'program' }, { name: 'completed_on' }],
      },
    });
    const share = async (
      steward: { apiKey: string },
      provider: string,
      recipient: string,
      recipientSteward: { apiKey: string },
      grant: unknown,
      title: string,
    ) =>
      broker.activateAgreement(steward.apiKey, recipientSteward.apiKey, {
        title,
        providerAgencyId: provider,
        recipientAgencyId: recipient,
        purposes: [PURPOSE],
        ...WINDOW,
        grants: [grant],
      });
    ids.researchBookings = await share(
      sheriffSteward,
      sheriff.id,
      researchAgency.id,
      researchSteward,
      grants('AGGREGATE_ONLY').bookings,
      'Bookings, counts',
    );
    ids.researchParticipation = await share(
      cboSteward,
      cbo.id,
      researchAgency.id,
      researchSteward,
      grants('AGGREGATE_ONLY').participation,
      'Participation, counts',
    );
    ids.partnerBookings = await share(
      sheriffSteward,
      sheriff.id,
      partnerAgency.id,
      partnerSteward,
      grants('ROWS').bookings,
      'Bookings, rows',
    );
    ids.partnerParticipation = await share(
      cboSteward,
      cbo.id,
      partnerAgency.id,
      partnerSteward,
      grants('ROWS').participation,
      'Participation, rows',
    );

    const rnd = random(7);
    for (const subject of new Set(data.bookings.map((b) => b.subject))) {
      const granted = rnd() < 0.9;
      consent.set(subject, granted);
      if (granted) {
        await broker.gqlOk(sheriffSteward.apiKey, CONSENT, {
          input: { datasetId: bookings.id, subjectId: subject, purpose: PURPOSE, granted: true },
        });
      }
    }
    for (const subject of new Set(data.enrollments.map((e) => e.subject))) {
      participationConsent.set(subject, true);
      await broker.gqlOk(cboSteward.apiKey, CONSENT, {
        input: { datasetId: participation.id, subjectId: subject, purpose: PURPOSE, granted: true },
      });
    }
    const [run] = await broker.query<{ id: string }>(
      `INSERT INTO linkage_run (status, trigger) VALUES ('SUCCEEDED', 'MANUAL') RETURNING id`,
    );
    const assignments = [
      ...data.bookings.filter((b) => b.person !== null).map((b) => [ids.bookings, b.id, b.person]),
      ...data.enrollments.filter((e) => e.person !== null).map((e) => [ids.participation, e.id, e.person]),
    ];
    await broker.query(
      `INSERT INTO linkage_person (run_id, dataset_id, record_key, person_id)
       SELECT $1, d, k, p FROM unnest($2::uuid[], $3::text[], $4::bigint[]) AS a(d, k, p)`,
      [run.id, assignments.map((a) => a[0]), assignments.map((a) => a[1]), assignments.map((a) => a[2])],
    );
    await broker.query(`UPDATE linkage_state SET current_run_id = $1 WHERE id = 1`, [run.id]);
    // As autovacuum would: statistics, so that the planner joins by hash rather than by loops.
    await broker.query(`ANALYZE linkage_person`);
    await broker.query(`ANALYZE records.bookings`);
    await broker.query(`ANALYZE records.participation`);
    await broker.query(`ANALYZE consent_current`);
  }, 120_000);
  afterAll(() => broker.close());

  const partnerAgreements = () => ({ self: ids.partnerParticipation, other: ids.partnerBookings });
  const researchAgreements = () => ({ self: ids.researchParticipation, other: ids.researchBookings });

  it('offers unit and linked: one field per other dataset with linkage', async () => {
    const res = await broker.gql(
      research.apiKey,
      `{ __type(name: "ParticipationLinked") { inputFields { name } } }`,
      {},
      DATA,
    );
    const names = (res.data as any).__type.inputFields.map((f: { name: string }) => f.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'bookings',
        'exists',
        'agreement',
        'where',
        'on',
        'after',
        'minDays',
        'maxDays',
      ]),
    );
  });

  it('counts exactly where the rows of both are readable, and within the noise otherwise (property)', async () => {
    await fc.assert(
      fc.asyncProperty(query, async (q) => {
        const truth = model(q);
        const exact = await ask(partner.apiKey, q, partnerAgreements());
        expect(exact.noise).toBe(0);
        for (const group of exact.groups) {
          const n = truth.get(keyText(q.groupBy, group.key)) ?? 0;
          if (!group.suppressed) expect(group.count).toBe(n);
        }
        const listedExact = new Set(exact.groups.map((g) => keyText(q.groupBy, g.key)));
        for (const [k, n] of truth) if (n > 0) expect(listedExact.has(k)).toBe(true);

        const perturbed = await ask(research.apiKey, q, researchAgreements());
        expect(perturbed.noise).toBe(2);
        // The larger minimum cell size of the two grants.
        const m = Math.max(M_BOOKINGS, M_PARTICIPATION);
        const listed = new Set<string>();
        for (const group of perturbed.groups) {
          const k = keyText(q.groupBy, group.key);
          listed.add(k);
          const n = truth.get(k) ?? 0;
          expect(n).toBeGreaterThanOrEqual(m);
          expect(group.count!).toBeGreaterThanOrEqual(m);
          expect(Math.abs(group.count! - n)).toBeLessThanOrEqual(2);
        }
        // Every group of two above the minimum or more is listed; one of the minimum or one above may
        // be drawn below it and left out (docs/disclosure-control.md, "The threshold oracle").
        for (const [k, n] of truth) if (n >= m + 2) expect(listed.has(k)).toBe(true);
        // Consistent: the same question, the same answer.
        expect(await ask(research.apiKey, q, researchAgreements())).toEqual(perturbed);
      }),
      { numRuns: 30, seed: 13 },
    );
  }, 300_000);

  it('makes exists: false the exact complement of exists: true for persons, within each group', async () => {
    const base: Query = {
      unit: 'PERSONS',
      exists: true,
      window: { minDays: 1, maxDays: 365 },
      charge: null,
      programs: null,
      groupBy: ['program'],
    };
    const yes = await ask(partner.apiKey, base, partnerAgreements());
    const no = await ask(partner.apiKey, { ...base, exists: false }, partnerAgreements());
    const all = await ask(
      partner.apiKey,
      { ...base, window: null, charge: null, exists: true },
      partnerAgreements(),
    );
    const persons = new Map<string, Set<number>>();
    for (const e of data.enrollments) {
      if (e.person === null || participationConsent.get(e.subject) !== true) continue;
      persons.set(e.program, (persons.get(e.program) ?? new Set()).add(e.person));
    }
    for (const program of PROGRAMS) {
      const y = yes.groups.find((g) => g.key.program === program)?.count ?? 0;
      const n = no.groups.find((g) => g.key.program === program)?.count ?? 0;
      expect(y + n).toBe(persons.get(program)!.size);
    }
    expect(all.groups.length).toBe(PROGRAMS.length);
  });

  it('audits each side as its own event under its own agreement', async () => {
    const [{ seq }] = await broker.query<{ seq: number }>(`SELECT max(seq)::int AS seq FROM audit_event`);
    await ask(
      research.apiKey,
      {
        unit: 'RECORDS',
        exists: true,
        window: { minDays: 0, maxDays: 365 },
        charge: 'THEFT',
        programs: null,
        groupBy: ['program'],
      },
      researchAgreements(),
    );
    const events = await broker.query<{
      dataset_id: string;
      agreement_id: string;
      decision: string;
      fields: string[];
    }>(`SELECT dataset_id, agreement_id, decision, fields FROM audit_event WHERE seq > $1 ORDER BY seq`, [
      seq,
    ]);
    expect(events).toEqual([
      {
        dataset_id: ids.participation,
        agreement_id: ids.researchParticipation,
        decision: 'ALLOW',
        fields: ['program'],
      },
      {
        dataset_id: ids.bookings,
        agreement_id: ids.researchBookings,
        decision: 'ALLOW',
        fields: ['booked_on', 'charge'],
      },
    ]);
  });

  it("types a condition's `after` as the counted dataset's field enum: variables `$after: ParticipationField`", async () => {
    const types = await broker.gql(
      research.apiKey,
      `{ b: __type(name: "BookingsLinked") { inputFields { name type { name } } }
         p: __type(name: "ParticipationLinked") { inputFields { name type { name } } }
         l: __type(name: "LinkedField") { name } }`,
      {},
      DATA,
    );
    type Fields = { inputFields: { name: string; type: { name: string | null } }[] };
    const typeOf = (key: 'b' | 'p', name: string): string | null | undefined =>
      (types.data as Record<'b' | 'p', Fields>)[key].inputFields.find((f) => f.name === name)?.type.name;
    // Two datasets with linkage: each condition is used only in the other's `linked`.
    expect(typeOf('b', 'after')).toBe('ParticipationField');
    expect(typeOf('b', 'on')).toBe('BookingsField');
    expect(typeOf('p', 'after')).toBe('BookingsField');
    expect((types.data as any).l).toBeNull();

    const q: Query = {
      unit: 'RECORDS',
      exists: true,
      window: { minDays: 0, maxDays: 365 },
      charge: null,
      programs: null,
      groupBy: ['program'],
    };
    const byVariables = `query($a: ID, $b: ID, $on: BookingsField!, $after: ParticipationField!, $min: Int, $max: Int) {
      participation_aggregate(purpose: ${PURPOSE}, agreement: $a, groupBy: [program],
        linked: { bookings: { agreement: $b, on: $on, after: $after, minDays: $min, maxDays: $max } }) {
        groups { key count suppressed } noise } }`;
    const variables = {
      a: ids.partnerParticipation,
      b: ids.partnerBookings,
      on: 'booked_on',
      after: 'completed_on',
      min: 0,
      max: 365,
    };
    const res = await broker.gql(partner.apiKey, byVariables, variables, DATA);
    expect(res.errors).toBeUndefined();
    const answer = (res.data as any).participation_aggregate;
    expect(answer).toEqual(await ask(partner.apiKey, q, partnerAgreements()));
    const truth = model(q);
    expect(answer.groups.length).toBe(PROGRAMS.length);
    for (const group of answer.groups) {
      expect(group.count).toBe(truth.get(keyText(q.groupBy, group.key)));
    }

    // A variable of the other dataset's enum does not fit there.
    const wrong = await broker.gql(
      partner.apiKey,
      byVariables.replace('$after: ParticipationField!', '$after: BookingsField!'),
      { ...variables, after: 'booked_on' },
      DATA,
    );
    expect(wrong.data ?? null).toBeNull();
    expect(wrong.errors![0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID' });
    // A name of the counted dataset that is not a date released as is: policy refuses it.
    const notDate = await broker.gql(partner.apiKey, byVariables, { ...variables, after: 'program' }, DATA);
    expect(notDate.data).toBeNull();
    expect(notDate.errors![0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID' });
  });

  it('refuses a window on a name that is not a date released as is, and linked without linkage', async () => {
    const res = await broker.gql(
      research.apiKey,
      `{ participation_aggregate(purpose: ${PURPOSE}, groupBy: [], linked: { bookings: { on: charge, after: completed_on } }) { noise } }`,
      {},
      DATA,
    );
    expect(res.data).toBeNull();
    expect(res.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
    const half = await broker.gql(
      research.apiKey,
      `{ participation_aggregate(purpose: ${PURPOSE}, groupBy: [], linked: { bookings: { on: booked_on } }) { noise } }`,
      {},
      DATA,
    );
    expect(half.errors![0].extensions!.reason).toBe('INVALID');
  });

  it('drops a record whose consent is withdrawn, on either side, at the next request', async () => {
    const q: Query = {
      unit: 'RECORDS',
      exists: true,
      window: null,
      charge: null,
      programs: null,
      groupBy: [],
    };
    const before = (await ask(partner.apiKey, q, partnerAgreements())).groups[0].count!;
    expect(before).toBe(model(q).get('[]'));
    // A booked subject whose only linked person has one enrollment that matches: withdrawing their
    // bookings consent takes that enrollment out of the linked count.
    const target = data.enrollments.find(
      (e) =>
        e.person !== null &&
        data.enrollments.filter((x) => x.person === e.person).length === 1 &&
        data.bookings.filter((b) => b.person === e.person).length === 1 &&
        consent.get(data.bookings.find((b) => b.person === e.person)!.subject) === true,
    )!;
    const booking = data.bookings.find((b) => b.person === target.person)!;
    await broker.gqlOk(sheriffSteward.apiKey, CONSENT, {
      input: { datasetId: ids.bookings, subjectId: booking.subject, purpose: PURPOSE, granted: false },
    });
    consent.set(booking.subject, false);
    const after = (await ask(partner.apiKey, q, partnerAgreements())).groups[0].count!;
    expect(after).toBe(before - 1);
    expect(after).toBe(model(q).get('[]'));
    // On the other side: the CBO records a withdrawal of a participant with a matching booking.
    const other = data.enrollments.find(
      (e) =>
        e.person !== null &&
        e.person !== target.person &&
        data.enrollments.filter((x) => x.subject === e.subject).length === 1 &&
        data.bookings.some((b) => b.person === e.person && consent.get(b.subject) === true),
    )!;
    await broker.gqlOk(cboSteward.apiKey, CONSENT, {
      input: { datasetId: ids.participation, subjectId: other.subject, purpose: PURPOSE, granted: false },
    });
    participationConsent.set(other.subject, false);
    const last = (await ask(partner.apiKey, q, partnerAgreements())).groups[0].count!;
    expect(last).toBe(after - 1);
    expect(last).toBe(model(q).get('[]'));
  });

  it("charges both agreements' shared budgets too: past the other side's, LIMIT under it, and nothing spent", async () => {
    const q: Query = {
      unit: 'RECORDS',
      exists: true,
      window: null,
      charge: null,
      programs: null,
      groupBy: [],
    };
    const sides = [ids.researchParticipation, ids.researchBookings];
    /** The research analyst's own budget under each side, and each side's shared one. */
    const spent = async () => {
      const own = await broker.query<{ agreement_id: string; used: number }>(
        `SELECT agreement_id, used FROM aggregate_budget WHERE user_id = $1`,
        [research.id],
      );
      const shared = await broker.query<{ agreement_id: string; used: number }>(
        `SELECT agreement_id, used FROM aggregate_budget_agreement`,
      );
      const of = (rows: { agreement_id: string; used: number }[], id: string) =>
        rows.find((r) => r.agreement_id === id)?.used ?? 0;
      return sides.map((id) => [of(own, id), of(shared, id)]);
    };
    const before = await spent();
    expect((await ask(research.apiKey, q, researchAgreements())).noise).toBe(2);
    const after = await spent();
    expect(after).toEqual(before.map(([own, shared]) => [own + 1, shared + 1]));

    // The bookings side's shared budget spent (by the research office's other analysts, say).
    const cap = broker.config.AGGREGATE_AGREEMENT_DAILY_BUDGET;
    await broker.query(`UPDATE aggregate_budget_agreement SET used = $2 WHERE agreement_id = $1`, [
      ids.researchBookings,
      cap,
    ]);
    const { query: text, variables } = linkedQuery(q, researchAgreements());
    const refused = await broker.gql(research.apiKey, text, variables, DATA);
    expect(refused.data).toBeNull();
    expect(refused.errors![0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'LIMIT' });
    expect(refused.errors![0].message).toMatch(/^The budget of aggregates this agreement shares/);
    const [denial] = await broker.query<{ reason: string; agreement_id: string }>(
      `SELECT reason, agreement_id FROM audit_event WHERE decision = 'DENY' ORDER BY seq DESC LIMIT 1`,
    );
    expect(denial).toEqual({ reason: 'LIMIT', agreement_id: ids.researchBookings });
    // Refused, it spent nothing: not the analyst's own, not the participation side's shared budget.
    expect(await spent()).toEqual([after[0], [after[1][0], cap]]);
    await broker.query(`UPDATE aggregate_budget_agreement SET used = $2 WHERE agreement_id = $1`, [
      ids.researchBookings,
      after[1][1],
    ]);
  });

  it('counts perturbed aggregates against a daily budget per analyst and agreement: LIMIT past it', async () => {
    const q: Query = {
      unit: 'RECORDS',
      exists: true,
      window: null,
      charge: null,
      programs: null,
      groupBy: [],
    };
    await broker.query(`UPDATE aggregate_budget SET used = 99999 WHERE agreement_id = $1`, [
      ids.researchBookings,
    ]);
    expect((await ask(research.apiKey, q, researchAgreements())).noise).toBe(2);
    const { query: text, variables } = linkedQuery(q, researchAgreements());
    const refused = await broker.gql(research.apiKey, text, variables, DATA);
    expect(refused.data).toBeNull();
    expect(refused.errors![0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'LIMIT' });
    expect(refused.errors![0].message).not.toMatch(/\d/);
    const [denial] = await broker.query<{ reason: string; agreement_id: string }>(
      `SELECT reason, agreement_id FROM audit_event WHERE decision = 'DENY' ORDER BY seq DESC LIMIT 1`,
    );
    expect(denial).toEqual({ reason: 'LIMIT', agreement_id: ids.researchBookings });
    // Exact counts tell nothing the caller cannot read: they cost nothing.
    expect((await ask(partner.apiKey, q, partnerAgreements())).noise).toBe(0);
  });
});
