import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestBroker } from '@broker/testing';

/** The control-plane additions the admin UI relies on, and the broker serving the UI itself. */
describe('admin UI: agreement previews, access series and static files', () => {
  let broker: TestBroker;
  let adminDir: string;
  let cbo: { id: string };
  let research: { id: string };
  let cboSteward: { apiKey: string };
  let researchSteward: { apiKey: string };
  let probationSteward: { apiKey: string };
  let analyst: { apiKey: string };
  let auditor: { apiKey: string };
  let dataset: { id: string };

  const PREVIEW = `query($input: AgreementInput!) { previewAgreement(input: $input) {
    purpose datasets { dataset { id slug provider { id } } access rowFilter requireConsent minCellSize personKey
      rowsReleased fields { name type transform sourceField } } } }`;
  const PROPOSE = `mutation($input: AgreementInput!) { proposeAgreement(input: $input) { id } }`;
  const SERIES = `query($from: DateTime, $to: DateTime) { auditAccessSeries(from: $from, to: $to) {
    agreementId day allowed denied } }`;

  const input = (overrides: Record<string, unknown> = {}, grant: Record<string, unknown> = {}) => ({
    title: 'Re-entry outcomes',
    providerAgencyId: cbo.id,
    recipientAgencyId: research.id,
    purposes: ['SUPERVISION', 'RECIDIVISM_EVALUATION'],
    validFrom: '2020-01-01T00:00:00Z',
    validUntil: '2099-01-01T00:00:00Z',
    grants: [
      {
        datasetId: dataset.id,
        fields: [
          { name: 'program' },
          { name: 'dob', transform: 'GENERALIZE' },
          { name: 'last_name', transform: 'HASH' },
          { name: 'score', transform: 'GENERALIZE' },
        ],
        rowFilter: { program: { $in: ['JOBS', 'HOUSING'] } },
        ...grant,
      },
    ],
    ...overrides,
  });

  beforeAll(async () => {
    adminDir = mkdtempSync(join(tmpdir(), 'broker-admin-api-'));
    mkdirSync(join(adminDir, 'assets'));
    writeFileSync(join(adminDir, 'index.html'), '<!doctype html><title>admin</title><div id="root"></div>');
    writeFileSync(join(adminDir, 'assets', 'index-abc123.js'), 'console.log(1);');
    broker = await TestBroker.start({ LABEL: 'admin_api' }, { adminUiDir: adminDir });
    cbo = await broker.createAgency('Second Chance');
    research = await broker.createAgency('Research Office');
    const probation = await broker.createAgency('Probation');
    cboSteward = await broker.createUser({ agencyId: cbo.id, role: 'STEWARD' });
    researchSteward = await broker.createUser({ agencyId: research.id, role: 'STEWARD' });
    probationSteward = await broker.createUser({ agencyId: probation.id, role: 'STEWARD' });
    analyst = await broker.createUser({ agencyId: research.id, role: 'ANALYST' });
    auditor = await broker.createUser({ role: 'AUDITOR' });
    await broker.definePurposes('RECIDIVISM_EVALUATION', 'SUPERVISION');
    dataset = await broker.registerDataset(cboSteward.apiKey, {
      slug: 'reentry_participation',
      title: 'Re-entry participation',
      keyField: 'enrollment_id',
      subjectField: 'person_id',
      fields: [
        { name: 'enrollment_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'person_id', type: 'STRING', classification: 'DIRECT_IDENTIFIER' },
        { name: 'last_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'LAST_NAME' },
        { name: 'dob', type: 'DATE', classification: 'QUASI_IDENTIFIER', identity: 'DATE_OF_BIRTH' },
        { name: 'program', type: 'STRING', classification: 'SENSITIVE' },
        { name: 'score', type: 'FLOAT', classification: 'SENSITIVE' },
      ],
    });
    const csv = [
      'enrollment_id,person_id,last_name,dob,program,score',
      'E1,P1,Smith,1980-02-03,JOBS,12.5',
      'E2,P2,Jones,1975-06-07,HOUSING,3',
      'E3,P3,Brown,1990-01-01,JOBS,',
      'E4,P4,Green,1985-05-05,DETOX,7',
      'E5,P5,White,,HOUSING,1',
    ].join('\n');
    expect((await broker.upload(cboSteward.apiKey, dataset.id, 'text/csv', csv)).status).toBe(200);
    for (const [subject, purpose, granted] of [
      ['P1', 'RECIDIVISM_EVALUATION', true],
      ['P2', 'RECIDIVISM_EVALUATION', true],
      ['P4', 'RECIDIVISM_EVALUATION', true],
      ['P1', 'SUPERVISION', true],
      ['P2', 'SUPERVISION', false],
    ] as const) {
      await broker.gqlOk(
        cboSteward.apiKey,
        `mutation($input: ConsentInput!) { recordConsent(input: $input) { id } }`,
        { input: { datasetId: dataset.id, subjectId: subject, purpose, granted } },
      );
    }
  });
  afterAll(async () => {
    await broker?.close();
    rmSync(adminDir, { recursive: true, force: true });
  });

  describe('previewAgreement', () => {
    it('shows the provider steward, per purpose, the released names and types and the rows released', async () => {
      const { previewAgreement } = await broker.gqlOk(cboSteward.apiKey, PREVIEW, { input: input() });
      expect(previewAgreement.map((p: { purpose: string }) => p.purpose)).toEqual([
        'RECIDIVISM_EVALUATION',
        'SUPERVISION',
      ]);
      for (const purpose of previewAgreement) {
        expect(purpose.datasets).toEqual([
          {
            dataset: { id: dataset.id, slug: 'reentry_participation', provider: { id: cbo.id } },
            access: 'ROWS',
            rowFilter: { program: { $in: ['JOBS', 'HOUSING'] } },
            requireConsent: false,
            minCellSize: 11,
            personKey: false,
            // E1, E2, E3 and E5 are in JOBS or HOUSING; E4 is not.
            rowsReleased: 4,
            fields: [
              { name: 'dob_year', type: 'Int', transform: 'GENERALIZE', sourceField: 'dob' },
              { name: 'last_name_hash', type: 'String', transform: 'HASH', sourceField: 'last_name' },
              { name: 'program', type: 'String', transform: 'RAW', sourceField: 'program' },
              { name: 'score_band', type: 'Int', transform: 'GENERALIZE', sourceField: 'score' },
            ],
          },
        ]);
      }
    });

    it('counts consent per purpose when the grant requires it', async () => {
      const { previewAgreement } = await broker.gqlOk(cboSteward.apiKey, PREVIEW, {
        input: input({}, { requireConsent: true, linkage: true, access: 'AGGREGATE_ONLY', minCellSize: 5 }),
      });
      const byPurpose: Record<string, any> = {};
      for (const p of previewAgreement) byPurpose[p.purpose] = p.datasets[0];
      // Consent to evaluation: P1, P2 (both in the filter) and P4 (outside it).
      expect(byPurpose.RECIDIVISM_EVALUATION.rowsReleased).toBe(2);
      // Consent to supervision: P1 only (P2 refused).
      expect(byPurpose.SUPERVISION.rowsReleased).toBe(1);
      expect(byPurpose.SUPERVISION).toMatchObject({
        access: 'AGGREGATE_ONLY',
        requireConsent: true,
        personKey: true,
        minCellSize: 5,
      });
    });

    it('gives the recipient steward the same preview without record counts', async () => {
      const { previewAgreement } = await broker.gqlOk(researchSteward.apiKey, PREVIEW, { input: input() });
      expect(previewAgreement).toHaveLength(2);
      expect(previewAgreement[0].datasets[0].fields.map((f: { name: string }) => f.name)).toEqual([
        'dob_year',
        'last_name_hash',
        'program',
        'score_band',
      ]);
      expect(previewAgreement[0].datasets[0].rowsReleased).toBeNull();
    });

    it('refuses invalid content with the very message proposeAgreement gives, and changes nothing', async () => {
      const [before] = await broker.query<{ agreements: number; seq: string }>(
        `SELECT (SELECT count(*)::int FROM agreement) AS agreements, (SELECT seq::text FROM audit_head) AS seq`,
      );
      const bad = input(
        { validUntil: '2019-01-01T00:00:00Z', purposes: ['NOPE'] },
        { fields: [{ name: 'missing' }, { name: 'program', transform: 'GENERALIZE' }] },
      );
      const preview = await broker.gql(cboSteward.apiKey, PREVIEW, { input: bad });
      const propose = await broker.gql(cboSteward.apiKey, PROPOSE, { input: bad });
      expect(preview.data).toBeNull();
      expect(preview.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      expect(preview.errors?.[0].message).toBe(propose.errors?.[0].message);
      expect(preview.errors?.[0].message).toContain('validUntil must be after validFrom');
      expect(preview.errors?.[0].message).toContain('grants[0].fields[0].name is not a field of the dataset');
      const [after] = await broker.query<{ agreements: number; seq: string }>(
        `SELECT (SELECT count(*)::int FROM agreement) AS agreements, (SELECT seq::text FROM audit_head) AS seq`,
      );
      expect(after.agreements).toBe(before.agreements);
      // Nothing but the two refusals' DENY events was appended.
      const appended = await broker.query<{ decision: string; reason: string }>(
        `SELECT decision, reason FROM audit_event WHERE seq > $1 ORDER BY seq`,
        [before.seq],
      );
      expect(appended).toEqual([
        { decision: 'DENY', reason: 'INVALID' },
        { decision: 'DENY', reason: 'INVALID' },
      ]);
    });

    it('refuses the oversight board or an unknown agency as a party, as proposeAgreement does', async () => {
      const { agencyId: board } = await broker.oversightAuditor();
      const unknown = '00000000-0000-4000-8000-000000000000';
      for (const [recipient, code, message] of [
        [board, 'BAD_USER_INPUT', 'An oversight agency is party to no agreement'],
        [unknown, 'NOT_FOUND', 'Agency not found'],
      ]) {
        // Content proposeAgreement would otherwise accept (the board's sign-off texts included).
        const bad = input(
          { recipientAgencyId: recipient, communityBenefit: 'Programs that work are funded.' },
          {
            fields: [
              { name: 'program', justification: 'Compared program by program.' },
              { name: 'dob', transform: 'GENERALIZE' },
            ],
          },
        );
        const preview = await broker.gql(cboSteward.apiKey, PREVIEW, { input: bad });
        const propose = await broker.gql(cboSteward.apiKey, PROPOSE, { input: bad });
        for (const answer of [preview, propose]) {
          expect([
            recipient,
            answer.data,
            answer.errors?.[0].extensions?.code,
            answer.errors?.[0].message,
          ]).toEqual([recipient, null, code, message]);
        }
      }
    });

    it('is FORBIDDEN to a steward of neither party and to other roles', async () => {
      const third = await broker.gql(probationSteward.apiKey, PREVIEW, { input: input() });
      expect(third.data).toBeNull();
      expect(third.errors?.[0].extensions?.code).toBe('FORBIDDEN');
      // (The oversight board's AUDITOR previews what it is asked to sign off: see test/oversight.spec.ts.)
      for (const key of [analyst.apiKey, broker.operatorKey]) {
        const other = await broker.gql(key, PREVIEW, { input: input() });
        expect(other.errors?.[0].extensions?.code).toBe('FORBIDDEN');
      }
    });

    it("refuses a dataset that is not the provider's, as proposeAgreement does", async () => {
      const own = await broker.registerDataset(researchSteward.apiKey, {
        slug: 'research_notes',
        title: 'Notes',
        keyField: 'id',
        fields: [{ name: 'id', type: 'STRING', classification: 'NON_SENSITIVE' }],
      });
      const bad = input({}, { datasetId: own.id, fields: [{ name: 'id' }], rowFilter: null });
      const preview = await broker.gql(cboSteward.apiKey, PREVIEW, { input: bad });
      expect(preview.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      expect(preview.errors?.[0].message).toContain(
        "grants[0].datasetId is not one of the provider's datasets",
      );
    });
  });

  describe('auditAccessSeries', () => {
    let agreementId: string;

    beforeAll(async () => {
      agreementId = await broker.activateAgreement(
        cboSteward.apiKey,
        researchSteward.apiKey,
        input({ purposes: ['RECIDIVISM_EVALUATION'] }),
      );
      // A second agreement releases score RAW: the analyst names the agreement it reads under.
      await broker.activateAgreement(
        cboSteward.apiKey,
        researchSteward.apiKey,
        input({ purposes: ['RECIDIVISM_EVALUATION'] }, { fields: [{ name: 'score' }], rowFilter: null }),
      );
      const read = `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, agreement: "${agreementId}", first: 2) { nodes { program } } }`;
      for (let i = 0; i < 3; i++) {
        expect((await broker.gql(analyst.apiKey, read, undefined, '/data/graphql')).errors).toBeUndefined();
      }
      // score is released by the other agreement, not by the chosen one: refused under the chosen one.
      const refused = await broker.gql(
        analyst.apiKey,
        `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, agreement: "${agreementId}") { nodes { score } } }`,
        undefined,
        '/data/graphql',
      );
      expect(refused.data).toBeNull();
    });

    it('counts data requests per agreement and UTC day, allowed and denied', async () => {
      const { auditAccessSeries } = await broker.gqlOk(auditor.apiKey, SERIES);
      const [events] = await broker.query<{ allowed: number; denied: number }>(
        `SELECT count(*) FILTER (WHERE decision = 'ALLOW')::int AS allowed,
                count(*) FILTER (WHERE decision = 'DENY')::int AS denied
           FROM audit_event WHERE action = 'QUERY' AND agreement_id = $1`,
        [agreementId],
      );
      expect(events).toEqual({ allowed: 3, denied: 1 });
      const today = new Date().toISOString().slice(0, 10);
      expect(auditAccessSeries).toEqual([{ agreementId, day: today, allowed: 3, denied: 1 }]);
    });

    it('counts only the events the caller may read', async () => {
      const parties = await Promise.all(
        [cboSteward, researchSteward, analyst].map((u) => broker.gqlOk(u.apiKey, SERIES)),
      );
      for (const { auditAccessSeries } of parties) {
        expect(auditAccessSeries).toHaveLength(1);
        expect(auditAccessSeries[0].allowed).toBe(3);
      }
      expect((await broker.gqlOk(probationSteward.apiKey, SERIES)).auditAccessSeries).toEqual([]);
    });

    it('covers [from, to) and refuses a window that is empty or longer than 366 days', async () => {
      const past = await broker.gqlOk(auditor.apiKey, SERIES, {
        from: '2020-01-01T00:00:00Z',
        to: '2020-02-01T00:00:00Z',
      });
      expect(past.auditAccessSeries).toEqual([]);
      const backwards = await broker.gql(auditor.apiKey, SERIES, {
        from: '2020-02-01T00:00:00Z',
        to: '2020-01-01T00:00:00Z',
      });
      expect(backwards.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      const long = await broker.gql(auditor.apiKey, SERIES, {
        from: '2020-01-01T00:00:00Z',
        to: '2021-06-01T00:00:00Z',
      });
      expect(long.errors?.[0].message).toBe('The window covers at most 366 days');
    });
  });

  describe('GET /admin', () => {
    const get = (url: string, headers: Record<string, string> = {}) =>
      broker.http.inject({ method: 'GET', url, headers });

    it('serves index.html for the app and its pages, with a strict policy and no framing', async () => {
      for (const url of ['/admin/', '/admin/agreements/123', '/admin/datasets?x=1']) {
        const res = await get(url);
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
        expect(res.body).toContain('<div id="root">');
        expect(res.headers['cache-control']).toBe('no-cache');
        expect(res.headers['x-frame-options']).toBe('DENY');
        expect(res.headers['x-content-type-options']).toBe('nosniff');
        const csp = String(res.headers['content-security-policy']);
        expect(csp).toContain("script-src 'self'");
        expect(csp).toContain("frame-ancestors 'none'");
        expect(csp).not.toContain('unsafe-inline');
      }
      const bare = await get('/admin');
      expect(bare.statusCode).toBe(308);
      expect(bare.headers.location).toBe('/admin/');
    });

    it('serves hashed assets as immutable, answers 304 to their etag, and 404 for missing ones', async () => {
      const asset = await get('/admin/assets/index-abc123.js');
      expect(asset.statusCode).toBe(200);
      expect(asset.headers['content-type']).toBe('text/javascript; charset=utf-8');
      expect(asset.body).toBe('console.log(1);');
      expect(asset.headers['cache-control']).toContain('immutable');
      const again = await get('/admin/assets/index-abc123.js', {
        'if-none-match': String(asset.headers.etag),
      });
      expect(again.statusCode).toBe(304);
      expect((await get('/admin/assets/missing.js')).statusCode).toBe(404);
      expect((await get('/admin/favicon.ico')).statusCode).toBe(404);
      const escape = await get('/admin/%2e%2e/package.json');
      expect(escape.statusCode).toBe(404);
      expect(escape.body).not.toContain('data-sharing-broker');
    });

    it('needs no API key, and says how to build it when it is not built', async () => {
      const unbuilt = await TestBroker.start(
        { DATABASE_URL: broker.config.DATABASE_URL, BROKER_BOOTSTRAP_TOKEN: broker.operatorKey },
        { adminUiDir: join(adminDir, 'nowhere') },
      );
      try {
        const res = await unbuilt.http.inject({ method: 'GET', url: '/admin/' });
        expect(res.statusCode).toBe(503);
        expect(res.body).toContain('npm run build');
      } finally {
        await unbuilt.stop();
      }
    });
  });
});
