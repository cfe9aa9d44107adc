import { createHash } from 'node:crypto';
import { Client } from 'pg';
import { RegisterService } from '@broker/agreements';
import { verifyChain } from '@broker/audit';
import { TestBroker } from '@broker/testing';

/**
 * The public register: exactly what DESIGN §4.4 lists, to anyone, and nothing more. Distinctive
 * values are seeded into records, users, keys and drafts, and the whole output is searched for them.
 */
describe('public register', () => {
  let broker: TestBroker;
  let cbo: { id: string };
  let research: { id: string };
  let cboSteward: { id: string; apiKey: string; email: string };
  let researchSteward: { id: string; apiKey: string; email: string };
  let analyst: { id: string; apiKey: string; email: string };
  let dataset: { id: string };
  let agreementId: string;
  let draftId: string;
  const secrets: string[] = [];

  const get = async (url: string) => {
    const res = await broker.http.inject({ method: 'GET', url });
    return { status: res.statusCode, body: res.body, headers: res.headers };
  };
  const data = (key: string, query: string) => broker.gql(key, query, {}, '/data/graphql');

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'register' });
    // Served fresh every time here; stale-while-revalidate has a test of its own below.
    broker.app.get(RegisterService).maxStaleMs = 0;
    cbo = await broker.createAgency('Second Chance Re-entry');
    research = await broker.createAgency('Research Office');
    cboSteward = await broker.createUser({
      agencyId: cbo.id,
      role: 'STEWARD',
      email: 'plugh.steward@cbo.example',
    });
    researchSteward = await broker.createUser({
      agencyId: research.id,
      role: 'STEWARD',
      email: 'xyzzy.steward@research.example',
    });
    analyst = await broker.createUser({
      agencyId: research.id,
      role: 'ANALYST',
      email: 'frobozz.analyst@research.example',
    });
    const auditor = await broker.oversightAuditor();
    const named = await broker.gqlOk(
      broker.operatorKey,
      `mutation($a: ID!) { createUser(input: { agencyId: $a, email: "zork.auditor@oversight.example", displayName: "Quetzalcoatl Displayname", role: AUDITOR }) { apiKey } }`,
      { a: auditor.agencyId },
    );
    secrets.push(
      'plugh.steward',
      'xyzzy.steward',
      'frobozz.analyst',
      'zork.auditor',
      'Quetzalcoatl',
      cboSteward.id,
      researchSteward.id,
      analyst.id,
      auditor.id,
    );
    for (const key of [
      cboSteward.apiKey,
      researchSteward.apiKey,
      analyst.apiKey,
      auditor.apiKey,
      broker.operatorKey,
      named.createUser.apiKey,
    ]) {
      secrets.push(
        key,
        createHash('sha256').update(key).digest('hex'),
        createHash('sha256').update(key).digest('base64'),
      );
    }
    await broker.definePurposes('RECIDIVISM_EVALUATION');
    dataset = await broker.registerDataset(cboSteward.apiKey, {
      slug: 'reentry_participation',
      title: 'Re-entry participation',
      description: 'Who enrolled in which re-entry programme, and whether they completed it.',
      keyField: 'enrollment_id',
      subjectField: 'person_id',
      fields: [
        { name: 'enrollment_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'person_id', type: 'STRING', classification: 'QUASI_IDENTIFIER' },
        { name: 'last_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'LAST_NAME' },
        {
          name: 'program',
          type: 'STRING',
          classification: 'SENSITIVE',
          description: 'The programme enrolled in',
        },
        { name: 'enrolled_on', type: 'DATE', classification: 'QUASI_IDENTIFIER' },
      ],
    });
    const records = Array.from({ length: 6 }, (_, i) => ({
      enrollment_id: `ENR-GRUE-${i}`,
      person_id: `SUBJ-WUMPUS-${i}`,
      last_name: `Fizzbangle${i}`,
      program: i % 2 ? 'HOUSINGQUUX' : 'JOBSQUUX',
      enrolled_on: `2024-03-0${i + 1}`,
    }));
    await broker.gqlOk(
      cboSteward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      {
        id: dataset.id,
        r: records,
      },
    );
    secrets.push('ENR-GRUE', 'SUBJ-WUMPUS', 'Fizzbangle', 'HOUSINGQUUX', 'JOBSQUUX', '2024-03-0');

    agreementId = await broker.activateAgreement(cboSteward.apiKey, researchSteward.apiKey, {
      title: 'Re-entry outcomes for recidivism evaluation',
      providerAgencyId: cbo.id,
      recipientAgencyId: research.id,
      purposes: ['RECIDIVISM_EVALUATION'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      retentionDays: 30,
      legalBasis: 'County data-sharing ordinance 12.4',
      communityBenefit: 'The county funds the programmes that keep people out of jail.',
      grants: [
        {
          datasetId: dataset.id,
          fields: [
            { name: 'program', justification: 'Outcomes are compared across programmes.' },
            { name: 'last_name', transform: 'HASH' },
            { name: 'enrolled_on', transform: 'GENERALIZE' },
          ],
          rowFilter: {
            $or: [{ program: { $in: ['JOBSQUUX', 'HOUSINGQUUX'] } }, { enrolled_on: { $gte: '2024-03-02' } }],
          },
        },
      ],
    });
    // A second agreement releases person_id, so that the analyst's schema has it and a request for it
    // under the first agreement is a denial under that agreement.
    await broker.activateAgreement(cboSteward.apiKey, researchSteward.apiKey, {
      title: 'Enrolments for programme administration',
      providerAgencyId: cbo.id,
      recipientAgencyId: research.id,
      purposes: ['RECIDIVISM_EVALUATION'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [{ datasetId: dataset.id, fields: [{ name: 'person_id', transform: 'HASH' }] }],
    });
    // A proposal that never came into force, and an amendment that never did.
    draftId = (
      await broker.gqlOk(
        cboSteward.apiKey,
        `mutation($input: AgreementInput!) { proposeAgreement(input: $input) { id } }`,
        {
          input: {
            title: 'Draft PLOVERDRAFT never in force',
            providerAgencyId: cbo.id,
            recipientAgencyId: research.id,
            purposes: ['RECIDIVISM_EVALUATION'],
            validFrom: '2020-01-01T00:00:00Z',
            validUntil: '2099-01-01T00:00:00Z',
            communityBenefit: 'Benefit SPELUNKBENEFIT',
            grants: [
              { datasetId: dataset.id, fields: [{ name: 'program', justification: 'Why BEDQUILTWHY' }] },
            ],
          },
        },
      )
    ).proposeAgreement.id;
    await broker.gqlOk(
      researchSteward.apiKey,
      `mutation($id: ID!, $input: AgreementInput!) { amendAgreement(id: $id, input: $input) { id } }`,
      {
        id: agreementId,
        input: {
          title: 'Amendment MAGICWORDAMEND awaiting approval',
          providerAgencyId: cbo.id,
          recipientAgencyId: research.id,
          purposes: ['RECIDIVISM_EVALUATION'],
          validFrom: '2020-01-01T00:00:00Z',
          validUntil: '2099-01-01T00:00:00Z',
          grants: [{ datasetId: dataset.id, fields: [{ name: 'enrolled_on', transform: 'GENERALIZE' }] }],
        },
      },
    );
    secrets.push('PLOVERDRAFT', 'SPELUNKBENEFIT', 'BEDQUILTWHY', 'MAGICWORDAMEND', draftId);
    const keys = await broker.query<{ hmac_key: Buffer }>(`SELECT hmac_key FROM agreement_secret`);
    for (const { hmac_key } of keys) secrets.push(hmac_key.toString('hex'), hmac_key.toString('base64'));
    const [{ secret }] = await broker.query<{ secret: Buffer }>(`SELECT secret FROM linkage_secret`);
    secrets.push(secret.toString('hex'), secret.toString('base64'));

    // Two allowed requests (6 rows, then 2), one denial by a party's analyst.
    const rows = await data(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, agreement: "${agreementId}") { nodes { program last_name_hash } } }`,
    );
    expect(rows.errors).toBeUndefined();
    for (const node of (rows.data as any).reentry_participation.nodes) secrets.push(node.last_name_hash);
    const two = await data(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, agreement: "${agreementId}", first: 2) { nodes { program } } }`,
    );
    expect(two.errors).toBeUndefined();
    const denied = await data(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, agreement: "${agreementId}") { nodes { person_id_hash } } }`,
    );
    expect(denied.errors?.[0].extensions?.code).toBe('FORBIDDEN');
  });
  afterAll(() => broker.close());

  it('answers anyone, without sign-in, as JSON and as a page', async () => {
    const json = await get('/api/register');
    expect(json.status).toBe(200);
    expect(json.headers['content-type']).toMatch(/application\/json/);
    const page = await get('/register');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(page.body).not.toMatch(/<script/i);
    expect(page.body).toContain('Re-entry outcomes for recidivism evaluation');
    const again = await broker.http.inject({
      method: 'GET',
      url: '/api/register',
      headers: { 'if-none-match': json.headers.etag as string },
    });
    expect(again.statusCode).toBe(304);
  });

  it('lists the agreement in force as of that version, with what §4.4 lists', async () => {
    const register = JSON.parse((await get('/api/register')).body);
    const [head] = await broker.query<{ seq: string; hash: string }>(
      `SELECT seq::text, hash FROM audit_head`,
    );
    expect(register.auditHead).toEqual({ seq: Number(head.seq), hash: head.hash });
    expect(register.agreements).toHaveLength(2);
    const a = register.agreements.find((x: { id: string }) => x.id === agreementId);
    const month = new Date().toISOString().slice(0, 7);
    expect(a).toEqual({
      id: agreementId,
      title: 'Re-entry outcomes for recidivism evaluation',
      provider: 'Second Chance Re-entry',
      recipient: 'Research Office',
      purposes: [{ code: 'RECIDIVISM_EVALUATION', description: 'Test purpose RECIDIVISM_EVALUATION' }],
      legalBasis: 'County data-sharing ordinance 12.4',
      communityBenefit: 'The county funds the programmes that keep people out of jail.',
      validFrom: '2020-01-01T00:00:00.000Z',
      validUntil: '2099-01-01T00:00:00.000Z',
      status: 'ACTIVE',
      version: 1,
      oversightRequired: true,
      approvals: [
        { agency: 'Second Chance Re-entry', oversight: false, at: expect.any(String) },
        { agency: 'Research Office', oversight: false, at: expect.any(String) },
        { agency: expect.stringMatching(/^Oversight board/), oversight: true, at: expect.any(String) },
      ],
      retentionDays: 30,
      grants: [
        {
          dataset: 'Re-entry participation',
          datasetDescription: 'Who enrolled in which re-entry programme, and whether they completed it.',
          access: 'ROWS',
          requireConsent: false,
          minCellSize: 11,
          linkage: false,
          fields: [
            expect.objectContaining({
              released: 'enrolled_on_year',
              field: 'enrolled_on',
              transform: 'GENERALIZE',
            }),
            expect.objectContaining({ released: 'last_name_hash', field: 'last_name', transform: 'HASH' }),
            {
              released: 'program',
              field: 'program',
              transform: 'RAW',
              classification: 'SENSITIVE',
              description: 'The programme enrolled in',
              justification: 'Outcomes are compared across programmes.',
            },
          ],
          rowFilter: {
            fields: [
              { field: 'enrolled_on', operators: ['$gte'] },
              { field: 'program', operators: ['$in'] },
            ],
            combines: ['$or'],
          },
        },
      ],
      months: [{ month, allowed: 2, denied: 1, rowsReleased: 8 }],
      unattestedPastRetention: { rows: 0, oldestDay: null },
      destructionAttestedThrough: null,
      revokedAt: null,
    });
  });

  it('never shows a record value, subject id, user, e-mail, key, hash of a key or a version never in force', async () => {
    const json = (await get('/api/register')).body;
    const page = (await get('/register')).body;
    for (const secret of secrets) {
      expect({ secret, json: json.includes(secret) }).toEqual({ secret, json: false });
      expect({ secret, page: page.includes(secret) }).toEqual({ secret, page: false });
    }
  });

  it('keeps counts in step with the audit log, as a scan of it would give', async () => {
    const scanned = await broker.query<{ allowed: number; denied: number; rows: number }>(
      `SELECT count(*) FILTER (WHERE decision = 'ALLOW')::int AS allowed, count(*) FILTER (WHERE decision = 'DENY')::int AS denied,
              coalesce(sum(row_count) FILTER (WHERE decision = 'ALLOW' AND action = 'QUERY'), 0)::int AS rows
         FROM audit_event WHERE agreement_id = $1 AND action IN ('QUERY', 'AGGREGATE', 'EXPORT')`,
      [agreementId],
    );
    const kept = await broker.query<{ allowed: number; denied: number; rows: number }>(
      `SELECT sum(allowed)::int AS allowed, sum(denied)::int AS denied, sum(rows_released)::int AS rows FROM register_month WHERE agreement_id = $1`,
      [agreementId],
    );
    expect(kept).toEqual(scanned);
  });

  it("breaks the audit chain's verification where the register's counts were changed without the log", async () => {
    /** Runs `tamper` as the database's owner could, verifies in the same transaction, rolls back. */
    const verifyTampered = async (tamper: string) => {
      const client = new Client({ connectionString: broker.config.DATABASE_URL });
      await client.connect();
      try {
        await client.query('BEGIN');
        await client.query(tamper, tamper.includes('$1') ? [agreementId] : []);
        return await verifyChain(
          async (sql, p) => (await client.query<Record<string, unknown>>(sql, p)).rows,
        );
      } finally {
        await client.query('ROLLBACK').catch(() => undefined);
        await client.end();
      }
    };
    const [{ first, head }] = await broker.query<{ first: string; head: string }>(
      `SELECT (SELECT min(seq) FROM audit_event WHERE agreement_id = $1 AND action IN ('QUERY', 'AGGREGATE'))::text AS first,
              (SELECT seq FROM audit_head)::text AS head`,
      [agreementId],
    );
    const n = Number(head);
    const at = Number(first);
    expect(await verifyTampered('SELECT 1')).toEqual({ valid: true, checked: n, firstBrokenSeq: null });
    for (const tamper of [
      `UPDATE register_month SET rows_released = 0 WHERE agreement_id = $1`,
      `UPDATE register_month SET allowed = allowed - 1 WHERE agreement_id = $1`,
      `UPDATE register_month SET denied = 0 WHERE agreement_id = $1`,
      `DELETE FROM register_month WHERE agreement_id = $1`,
      `UPDATE register_release_day SET rows_released = 1 WHERE agreement_id = $1`,
      `UPDATE register_release_day SET day = day - 40 WHERE agreement_id = $1`,
    ]) {
      expect({ tamper, result: await verifyTampered(tamper) }).toEqual({
        tamper,
        result: { valid: false, checked: at - 1, firstBrokenSeq: at },
      });
    }
    // Counts for a month in which the log holds no request under the agreement.
    expect(
      await verifyTampered(
        `INSERT INTO register_month (agreement_id, month, allowed) VALUES ($1, '2001-01-01', 5)`,
      ),
    ).toEqual({ valid: false, checked: n, firstBrokenSeq: n + 1 });
  });

  it('lists releases past retention until a recipient steward attests their destruction', async () => {
    // The releases happened 40 days ago, as far as the counts are concerned.
    await broker.query(`UPDATE register_release_day SET day = day - 40 WHERE agreement_id = $1`, [
      agreementId,
    ]);
    // The register is cached until the audit head moves; any audited change moves it.
    await broker.definePurposes('PROGRAM_ADMINISTRATION');
    const ours = (body: string): Record<string, unknown> =>
      (JSON.parse(body) as { agreements: { id: string }[] }).agreements.find((x) => x.id === agreementId)!;
    const before = ours((await get('/api/register')).body);
    const oldest = new Date(Date.now() - 40 * 86_400_000).toISOString().slice(0, 10);
    expect(before.unattestedPastRetention).toEqual({ rows: 8, oldestDay: oldest });
    expect((await get('/register')).body).toContain('have not been attested as destroyed');

    const ATTEST = `mutation($id: ID!, $t: DateTime!) { attestDestruction(agreementId: $id, through: $t) { destructionAttestedThrough } }`;
    const future = await broker.gql(researchSteward.apiKey, ATTEST, {
      id: agreementId,
      t: '2999-01-01T00:00:00Z',
    });
    expect(future.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    const byProvider = await broker.gql(cboSteward.apiKey, ATTEST, {
      id: agreementId,
      t: new Date().toISOString(),
    });
    expect(byProvider.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    const byAnalyst = await broker.gql(analyst.apiKey, ATTEST, {
      id: agreementId,
      t: new Date().toISOString(),
    });
    expect(byAnalyst.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    const through = new Date(Date.now() - 1000).toISOString();
    const attested = await broker.gqlOk(researchSteward.apiKey, ATTEST, { id: agreementId, t: through });
    expect(attested.attestDestruction.destructionAttestedThrough).toBe(through);
    const earlier = await broker.gql(researchSteward.apiKey, ATTEST, {
      id: agreementId,
      t: '2021-01-01T00:00:00Z',
    });
    expect(earlier.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    const after = ours((await get('/api/register')).body);
    expect(after.unattestedPastRetention).toEqual({ rows: 0, oldestDay: null });
    expect(after.destructionAttestedThrough).toBe(through);
    // Allowed after revocation too.
    await broker.gqlOk(
      cboSteward.apiKey,
      `mutation($id: ID!) { revokeAgreement(id: $id, reason: "done") { id } }`,
      {
        id: agreementId,
      },
    );
    await broker.gqlOk(researchSteward.apiKey, ATTEST, { id: agreementId, t: new Date().toISOString() });
    const revoked = ours((await get('/api/register')).body);
    expect(revoked.status).toBe('REVOKED');
  });

  it('serves a register at most a few seconds stale while a fresh one is computed', async () => {
    const service = broker.app.get(RegisterService);
    service.maxStaleMs = 60_000;
    try {
      const first = await service.current();
      await broker.definePurposes('STALE_CHECK');
      const served = await service.current();
      expect(served.key).toBe(first.key); // stale, at once
      // The refresh that request started lands; from then on the fresh one is served.
      const [{ seq }] = await broker.query<{ seq: string }>(`SELECT seq::text FROM audit_head`);
      const fresh = await waitFor(async () => (await service.current()).key, seq);
      expect(fresh).toBe(seq);
    } finally {
      service.maxStaleMs = 0;
    }
  });
});

async function waitFor<T>(read: () => Promise<T>, expected: T): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const value = await read();
    if (value === expected) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return read();
}
