import { createHmac } from 'node:crypto';
import { Client } from 'pg';
import { Database } from '@broker/core';
import { TestBroker } from '@broker/testing';

const REVOKE = `mutation($id: ID!) { revokeAgreement(id: $id, reason: "stop") { status } }`;

const PROGRAMS = ['JOBS', 'HOUSING', 'MENTORING'];
const ROWS = Array.from({ length: 30 }, (_, i) => ({
  enrollment_id: `E${String(i).padStart(3, '0')}`,
  first_name: ['Ana', 'Bob', 'Chen', 'Dee'][i % 4],
  last_name: i % 7 === 0 ? null : ['Smith', 'Núñez', "O'Brien"][i % 3],
  dob: i % 5 === 0 ? null : `19${70 + (i % 25)}-0${1 + (i % 9)}-1${i % 9}`,
  zip: `9${String(1000 + i * 37).slice(0, 4)}`,
  program: PROGRAMS[i % 3],
  completed: i % 4 === 0 ? null : i % 2 === 0,
  services: i % 6 === 0 ? null : i * 3,
  score: i / 4,
  enrolled_at: `2024-0${1 + (i % 9)}-0${1 + (i % 8)}T1${i % 10}:30:00Z`,
}));

describe('data plane: each party sees only what its agreement allows', () => {
  let broker: TestBroker;
  let cbo: { id: string };
  let research: { id: string };
  let cboSteward: { apiKey: string };
  let researchSteward: { apiKey: string };
  let analyst: { id: string; apiKey: string };
  let probationAnalyst: { apiKey: string };
  let cboAnalyst: { apiKey: string };
  let dataset: { id: string };
  let agreementId: string;
  let hmacKey: Buffer;

  const data = (key: string, query: string, variables?: Record<string, unknown>) =>
    broker.gql(key, query, variables, '/data/graphql');

  const agreementInput = (overrides: Record<string, unknown> = {}) => ({
    title: 'CBO to research office',
    providerAgencyId: cbo.id,
    recipientAgencyId: research.id,
    purposes: ['RECIDIVISM_EVALUATION'],
    validFrom: '2020-01-01T00:00:00Z',
    validUntil: '2099-01-01T00:00:00Z',
    grants: [
      {
        datasetId: dataset.id,
        fields: [
          { name: 'program' },
          { name: 'completed' },
          { name: 'score' },
          { name: 'enrolled_at' },
          { name: 'dob', transform: 'GENERALIZE' },
          { name: 'last_name', transform: 'HASH' },
          { name: 'zip', transform: 'GENERALIZE' },
          { name: 'services', transform: 'GENERALIZE' },
        ],
        rowFilter: { program: { $in: ['JOBS', 'HOUSING'] } },
      },
    ],
    ...overrides,
  });

  const activate = (input: Record<string, unknown>) =>
    broker.activateAgreement(cboSteward.apiKey, researchSteward.apiKey, input);

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'dataplane' });
    cbo = await broker.createAgency('Second Chance Re-entry');
    research = await broker.createAgency('Research Office');
    const probation = await broker.createAgency('Probation');
    cboSteward = await broker.createUser({ agencyId: cbo.id, role: 'STEWARD' });
    researchSteward = await broker.createUser({ agencyId: research.id, role: 'STEWARD' });
    analyst = await broker.createUser({ agencyId: research.id, role: 'ANALYST' });
    probationAnalyst = await broker.createUser({ agencyId: probation.id, role: 'ANALYST' });
    cboAnalyst = await broker.createUser({ agencyId: cbo.id, role: 'ANALYST' });
    await broker.definePurposes('RECIDIVISM_EVALUATION', 'SUPERVISION', 'PROGRAM_ADMINISTRATION');
    dataset = await broker.registerDataset(cboSteward.apiKey, {
      slug: 'reentry_participation',
      title: 'Re-entry participation',
      keyField: 'enrollment_id',
      fields: [
        { name: 'enrollment_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'first_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'FIRST_NAME' },
        { name: 'last_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'LAST_NAME' },
        { name: 'dob', type: 'DATE', classification: 'QUASI_IDENTIFIER', identity: 'DATE_OF_BIRTH' },
        { name: 'zip', type: 'STRING', classification: 'QUASI_IDENTIFIER', identity: 'ZIP' },
        { name: 'program', type: 'STRING', classification: 'SENSITIVE' },
        { name: 'completed', type: 'BOOLEAN', classification: 'SENSITIVE' },
        { name: 'services', type: 'INTEGER', classification: 'SENSITIVE' },
        { name: 'score', type: 'FLOAT', classification: 'SENSITIVE' },
        { name: 'enrolled_at', type: 'DATETIME', classification: 'NON_SENSITIVE' },
      ],
    });
    await broker.gqlOk(
      cboSteward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: dataset.id, r: ROWS },
    );
    agreementId = await activate(agreementInput());
    [{ hmac_key: hmacKey }] = await broker.query<{ hmac_key: Buffer }>(
      `SELECT hmac_key FROM agreement_secret WHERE agreement_id = $1`,
      [agreementId],
    );
  });
  afterAll(() => broker.close());

  const expected = () =>
    ROWS.filter((r) => r.program === 'JOBS' || r.program === 'HOUSING').map((r) => ({
      program: r.program,
      completed: r.completed,
      score: r.score,
      enrolled_at: new Date(r.enrolled_at).toISOString(),
      dob_year: r.dob ? Number(r.dob.slice(0, 4)) : null,
      last_name_hash: r.last_name ? createHmac('sha256', hmacKey).update(r.last_name).digest('hex') : null,
      zip_prefix: r.zip.slice(0, 3),
      services_band: r.services === null ? null : Math.floor(r.services / 5) * 5,
    }));
  const sortKey = (r: Record<string, unknown>) => JSON.stringify(r);

  it('releases exactly the granted fields, transformed, for the rows the filter allows', async () => {
    const res = await data(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, first: 100) {
          nodes { program completed score enrolled_at dob_year last_name_hash zip_prefix services_band }
          pageInfo { hasNextPage endCursor } } }`,
    );
    expect(res.errors).toBeUndefined();
    const page = res.data!.reentry_participation;
    expect(page.pageInfo.hasNextPage).toBe(false);
    expect([...page.nodes].sort((a: any, b: any) => sortKey(a).localeCompare(sortKey(b)))).toEqual(
      expected().sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
    );
  });

  it('shows in its schema only what is granted', async () => {
    const res = await data(
      analyst.apiKey,
      `{ __schema { queryType { fields { name } } types { name } } __type(name: "ReentryParticipation") { fields { name type { name } } } }`,
    );
    expect(res.data!.__schema.queryType.fields.map((f: { name: string }) => f.name)).toEqual([
      'reentry_participation',
      'reentry_participation_aggregate',
    ]);
    expect(res.data!.__type.fields).toEqual([
      { name: 'completed', type: { name: 'Boolean' } },
      { name: 'dob_year', type: { name: 'Int' } },
      { name: 'enrolled_at', type: { name: 'DateTime' } },
      { name: 'last_name_hash', type: { name: 'String' } },
      { name: 'program', type: { name: 'String' } },
      { name: 'score', type: { name: 'Float' } },
      { name: 'services_band', type: { name: 'Int' } },
      { name: 'zip_prefix', type: { name: 'String' } },
    ]);
    const text = JSON.stringify(res.data);
    for (const hidden of ['first_name', 'enrollment_id', '"dob"', 'SUPERVISION'])
      expect(text).not.toContain(hidden);
  });

  const refused = async (
    key: string,
    query: string,
    code = 'FORBIDDEN',
    variables?: Record<string, unknown>,
  ) => {
    const res = await data(key, query, variables);
    expect({ query, data: res.data, code: res.errors?.[0]?.extensions?.code }).toEqual({
      query,
      data: null,
      code,
    });
    expect(JSON.stringify(res.errors)).not.toMatch(/Did you mean/i);
    return res;
  };

  it('refuses fields, filters and orderings that are not released, with data: null', async () => {
    const q = (body: string) =>
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION${body}) { nodes { program } } }`;
    await refused(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { first_name } } }`,
    );
    await refused(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { dob } } }`,
    );
    await refused(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { last_name } } }`,
    );
    await refused(analyst.apiKey, q(`, where: { dob: { gt: "1980-01-01" } }`));
    await refused(analyst.apiKey, q(`, where: { last_name: { eq: "Smith" } }`));
    await refused(analyst.apiKey, q(`, where: { first_name: { eq: "Ana" } }`));
    await refused(analyst.apiKey, q(`, orderBy: [{ field: dob }]`));
    await refused(analyst.apiKey, q(`, where: { not: { enrollment_id: { eq: "E001" } } }`));
    // A partial answer is never given: one refused root field refuses the whole request.
    await refused(
      analyst.apiKey,
      `{ a: reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } } b: reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { first_name } } }`,
    );
  });

  it('filters and orders on released values, never raw ones', async () => {
    const res = await data(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, where: { dob_year: { gte: 1980 }, zip_prefix: { in: ["910", "911"] } },
          orderBy: [{ field: dob_year, direction: DESC }, { field: program }]) { nodes { dob_year program zip_prefix } } }`,
    );
    expect(res.errors).toBeUndefined();
    const want = expected()
      .filter((r) => r.dob_year !== null && r.dob_year >= 1980 && ['910', '911'].includes(r.zip_prefix))
      .map((r) => r.dob_year as number);
    const got = res.data!.reentry_participation.nodes.map((n: { dob_year: number }) => n.dob_year);
    expect(got).toEqual([...want].sort((a, b) => b - a));
  });

  it('follows three-valued logic: a null matches neither a comparison nor its not', async () => {
    const ask = async (where: string): Promise<number> =>
      (
        await data(
          analyst.apiKey,
          `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, where: ${where}) { nodes { completed } } }`,
        )
      ).data!.reentry_participation.nodes.length as number;
    const all = expected();
    expect(await ask(`{ completed: { eq: true } }`)).toBe(all.filter((r) => r.completed === true).length);
    expect(await ask(`{ not: { completed: { eq: true } } }`)).toBe(
      all.filter((r) => r.completed === false).length,
    );
    expect(await ask(`{ completed: { isNull: true } }`)).toBe(all.filter((r) => r.completed === null).length);
  });

  it('pages with cursors', async () => {
    const seen: unknown[] = [];
    let after: string | null = null;
    for (let i = 0; i < 10; i++) {
      const res: any = await data(
        analyst.apiKey,
        `query($after: String) { reentry_participation(purpose: RECIDIVISM_EVALUATION, first: 7, after: $after) { nodes { last_name_hash services_band score } pageInfo { hasNextPage endCursor } } }`,
        { after },
      );
      const page = res.data.reentry_participation;
      seen.push(...page.nodes);
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toHaveLength(expected().length);
    await refused(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, after: "bm90IGEgY3Vyc29y") { nodes { program } } }`,
      'BAD_USER_INPUT',
    );
    await refused(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, first: 10001) { nodes { program } } }`,
      'BAD_USER_INPUT',
    );
    await refused(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, first: -1) { nodes { program } } }`,
      'BAD_USER_INPUT',
    );
  });

  it('refuses purposes it holds no grant for, other agencies, and roles that read no records', async () => {
    await refused(analyst.apiKey, `{ reentry_participation(purpose: SUPERVISION) { nodes { program } } }`);
    await refused(
      probationAnalyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } } }`,
    );
    // The provider's own analysts hold no agreement as recipient either.
    await refused(
      cboAnalyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } } }`,
    );
    for (const key of [broker.operatorKey, cboSteward.apiKey, researchSteward.apiKey]) {
      await refused(key, `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } } }`);
    }
    await refused(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, agreement: "00000000-0000-4000-8000-000000000000") { nodes { program } } }`,
    );
  });

  it('refuses oversized and over-deep queries without saying where the limits are', async () => {
    const aliases = Array.from(
      { length: 40 },
      (_, i) => `a${i}: reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } }`,
    ).join(' ');
    const res = await refused(analyst.apiKey, `{ ${aliases} }`, 'BAD_USER_INPUT');
    expect(JSON.stringify(res.errors)).not.toMatch(/\d/);
    const huge = `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { ${'program '.repeat(6000)} } } }`;
    await refused(analyst.apiKey, huge, 'BAD_USER_INPUT');
    await refused(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } `,
      'BAD_USER_INPUT',
    );
    // Over the size limit: a LIMIT, like depth and aliases, answered 400 and without the number.
    const tooLong = await broker.http.inject({
      method: 'POST',
      url: '/data/graphql',
      headers: { authorization: `Bearer ${analyst.apiKey}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ query: `{ __typename }${' '.repeat(100_001)}` }),
    });
    const body = JSON.parse(tooLong.body) as {
      data: unknown;
      errors: { extensions: Record<string, unknown> }[];
    };
    expect([tooLong.statusCode, body.data, body.errors[0].extensions]).toEqual([
      400,
      null,
      { code: 'BAD_USER_INPUT', reason: 'LIMIT' },
    ]);
    expect(tooLong.body).not.toMatch(/\d/);
  });

  it('writes every access and denial to the audit log before answering', async () => {
    const before = await broker.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_event`);
    await data(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, first: 3) { nodes { program dob_year } } }`,
    );
    await data(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { first_name } } }`,
    );
    const events = await broker.query<Record<string, unknown>>(
      `SELECT action, decision, purpose, dataset_id, agreement_id, agreement_version, fields, row_count, actor_user_id
         FROM audit_event WHERE seq > (SELECT max(seq) FROM audit_event) - 2 ORDER BY seq`,
    );
    expect((await broker.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_event`))[0].n).toBe(
      before[0].n + 2,
    );
    expect(events[0]).toEqual({
      action: 'QUERY',
      decision: 'ALLOW',
      purpose: 'RECIDIVISM_EVALUATION',
      dataset_id: dataset.id,
      agreement_id: agreementId,
      agreement_version: 1,
      fields: ['dob_year', 'program'],
      row_count: 3,
      actor_user_id: analyst.id,
    });
    expect(events[1]).toMatchObject({ action: 'QUERY', decision: 'DENY', actor_user_id: analyst.id });
  });

  it('answers only once its release is committed, however long the append waits', async () => {
    // The chain head held by another transaction: every append waits for it.
    const holder = new Client({ connectionString: broker.config.DATABASE_URL });
    await holder.connect();
    try {
      for (const query of [
        `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } } }`,
        `{ a: reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } }
           b: reentry_participation(purpose: RECIDIVISM_EVALUATION, first: 1) { nodes { program } } }`,
      ]) {
        await holder.query('BEGIN');
        const [{ seq }] = (
          await holder.query<{ seq: string }>(`SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE`)
        ).rows;
        let answered = false;
        const pending = data(analyst.apiKey, query).then((res) => {
          answered = true;
          return res;
        });
        // Long enough for the rows to be read and the page written: still no answer, no event.
        await new Promise((resolve) => setTimeout(resolve, 400));
        expect(answered).toBe(false);
        const [{ events }] = await broker.query<{ events: number }>(
          `SELECT count(*)::int AS events FROM audit_event WHERE seq > $1`,
          [seq],
        );
        expect(events).toBe(0);
        await holder.query('ROLLBACK');
        const res = await pending;
        expect(JSON.stringify(res.data)).toContain('JOBS');
        const [latest] = await broker.query<{ action: string; decision: string }>(
          `SELECT action, decision FROM audit_event WHERE seq > $1 ORDER BY seq DESC LIMIT 1`,
          [seq],
        );
        expect(latest).toEqual({ action: 'QUERY', decision: 'ALLOW' });
      }
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
  });

  it('returns nothing when the audit write fails', async () => {
    await broker.query(`ALTER TABLE audit_event RENAME TO audit_event_away`);
    try {
      const res = await data(
        analyst.apiKey,
        `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } } }`,
      );
      expect(res.data).toBeNull();
      expect(JSON.stringify(res)).not.toContain('JOBS');
      expect(res.errors?.[0].message).toBe('The access could not be recorded, so nothing was released');
      // Two root fields: read in one snapshot, their pages written while the append fails.
      const both = await data(
        analyst.apiKey,
        `{ a: reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } }
           b: reentry_participation(purpose: RECIDIVISM_EVALUATION, first: 1) { nodes { program } pageInfo { endCursor } } }`,
      );
      expect(both.data).toBeNull();
      expect(JSON.stringify(both)).not.toContain('JOBS');
      expect(both.errors?.[0].message).toBe('The access could not be recorded, so nothing was released');
    } finally {
      await broker.query(`ALTER TABLE audit_event_away RENAME TO audit_event`);
    }
  });

  it('needs the agreement named when several grant the same dataset for the purpose', async () => {
    const second = await activate(
      agreementInput({ title: 'Second', grants: [{ datasetId: dataset.id, fields: [{ name: 'program' }] }] }),
    );
    await refused(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } } }`,
      'BAD_USER_INPUT',
    );
    const named = await data(
      analyst.apiKey,
      `query($a: ID) { reentry_participation(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { program } } }`,
      { a: second },
    );
    // The second agreement has no row filter: MENTORING rows appear under it, and only under it.
    expect(named.data!.reentry_participation.nodes.map((n: { program: string }) => n.program)).toContain(
      'MENTORING',
    );
    // A field the second agreement does not release is refused under it, though the first releases it.
    await refused(
      analyst.apiKey,
      `query($a: ID) { reentry_participation(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { dob_year } } }`,
      'FORBIDDEN',
      { a: second },
    );
    await broker.gqlOk(cboSteward.apiKey, REVOKE, { id: second });
  });

  it('answers one row root field in one statement of its own, and several in one snapshot', async () => {
    const db = broker.app.get(Database);
    // A first request compiles the caller's policy at the current stamp.
    await data(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, first: 1) { nodes { program } } }`,
    );
    const begin = jest.spyOn(db, 'begin');
    const read = jest.spyOn(db, 'read');
    // Snapshots on the readers' pool (the audit's group commits are transactions too, not counted).
    const snapshots = () => begin.mock.calls.filter(([options]) => options?.reader).length;
    try {
      const one = await data(
        analyst.apiKey,
        `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, orderBy: [{ field: score }]) { nodes { score } } }`,
      );
      expect(one.data!.reentry_participation.nodes).toEqual(
        expected()
          .map((r) => ({ score: r.score }))
          .sort((a, b) => a.score - b.score),
      );
      // One statement (the page, reading the policy stamp), and no transaction around it.
      expect([snapshots(), read.mock.calls.length]).toEqual([0, 1]);
      const two = await data(
        analyst.apiKey,
        `{ a: reentry_participation(purpose: RECIDIVISM_EVALUATION, first: 2) { nodes { program } }
           b: reentry_participation_aggregate(purpose: RECIDIVISM_EVALUATION, groupBy: [program]) { groups { key count } } }`,
      );
      expect(two.errors).toBeUndefined();
      expect(two.data!.a.nodes).toHaveLength(2);
      // Two root fields: one read-only snapshot, so that both answers are of the same instant.
      expect([snapshots(), read.mock.calls.length]).toEqual([1, 1]);
      expect(begin.mock.calls.find(([o]) => o?.reader)![0]).toMatchObject({ isolation: 'REPEATABLE READ' });
    } finally {
      begin.mockRestore();
      read.mockRestore();
    }
  });

  it('never answers under a policy another instance has changed since it was compiled', async () => {
    const other = await broker.startAnother();
    try {
      const second = await activate(
        agreementInput({
          title: 'Wider',
          grants: [{ datasetId: dataset.id, fields: [{ name: 'program' }] }],
        }),
      );
      const q = `query($a: ID) { reentry_participation(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { program } } }`;
      // The other instance compiles the policy with both agreements in force...
      const before = await other.gql(analyst.apiKey, q, { a: second }, '/data/graphql');
      expect(before.data!.reentry_participation.nodes.map((n: { program: string }) => n.program)).toContain(
        'MENTORING',
      );
      // ...this one revokes the wider one; the other's next request reads the moved stamp in the
      // same statement as the rows, and answers under the policy of now: refused, nothing released.
      await broker.gqlOk(cboSteward.apiKey, REVOKE, { id: second });
      const [{ seq }] = await broker.query<{ seq: string }>(`SELECT seq FROM audit_head`);
      const after = await other.gql(analyst.apiKey, q, { a: second }, '/data/graphql');
      expect(after.data).toBeNull();
      expect(JSON.stringify(after)).not.toContain('MENTORING');
      const events = await broker.query<{ decision: string; action: string }>(
        `SELECT decision, action FROM audit_event WHERE seq > $1 ORDER BY seq`,
        [seq],
      );
      expect(events).toEqual([{ decision: 'DENY', action: 'QUERY' }]);
    } finally {
      await other.stop();
    }
  });

  it('stops at once on every broker instance when a party revokes', async () => {
    const other = await broker.startAnother();
    try {
      const q = `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } } }`;
      const before = await other.gql(analyst.apiKey, q, undefined, '/data/graphql');
      expect(before.data!.reentry_participation.nodes.length).toBeGreaterThan(0);
      await broker.gqlOk(researchSteward.apiKey, REVOKE, { id: agreementId });
      const after = await other.gql(analyst.apiKey, q, undefined, '/data/graphql');
      expect(after.data).toBeNull();
      expect(after.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    } finally {
      await other.stop();
    }
  });
});
