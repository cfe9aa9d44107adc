import { TestBroker } from '@broker/testing';

const AGREEMENT = `id title status currentVersion inForceVersion purposes validFrom validUntil
  provider { id } recipient { id } versions { version hash content approvals { agency { id } user { id } at } }`;
const PROPOSE = `mutation($input: AgreementInput!) { proposeAgreement(input: $input) { ${AGREEMENT} } }`;
const AMEND = `mutation($id: ID!, $input: AgreementInput!) { amendAgreement(id: $id, input: $input) { ${AGREEMENT} } }`;
const APPROVE = `mutation($id: ID!, $v: Int!) { approveAgreement(id: $id, version: $v) { ${AGREEMENT} } }`;
const REVOKE = `mutation($id: ID!, $r: String!) { revokeAgreement(id: $id, reason: $r) { ${AGREEMENT} } }`;
const GET = `query($id: ID!) { agreement(id: $id) { ${AGREEMENT} } }`;

describe('agreements: versions, approvals, lifecycle', () => {
  let broker: TestBroker;
  let cbo: { id: string };
  let research: { id: string };
  let probation: { id: string };
  let cboSteward: { id: string; apiKey: string };
  let researchSteward: { id: string; apiKey: string };
  let probationSteward: { apiKey: string };
  let researchAnalyst: { apiKey: string };
  let auditor: { apiKey: string };
  let dataset: { id: string };
  let courtsDataset: { id: string };

  const input = (overrides: Record<string, unknown> = {}) => ({
    title: 'Re-entry outcomes for recidivism evaluation',
    providerAgencyId: cbo.id,
    recipientAgencyId: research.id,
    purposes: ['RECIDIVISM_EVALUATION'],
    validFrom: '2020-01-01T00:00:00Z',
    validUntil: '2099-01-01T00:00:00Z',
    legalBasis: 'County data-sharing ordinance 12.4',
    grants: [
      {
        datasetId: dataset.id,
        fields: [
          { name: 'program' },
          { name: 'dob', transform: 'GENERALIZE' },
          { name: 'last_name', transform: 'HASH' },
        ],
        rowFilter: { program: { $in: ['JOBS', 'HOUSING'] } },
      },
    ],
    ...overrides,
  });

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'agreements' });
    cbo = await broker.createAgency('Second Chance Re-entry');
    research = await broker.createAgency('Research Office');
    probation = await broker.createAgency('Probation');
    const courts = await broker.createAgency('Courts');
    cboSteward = await broker.createUser({ agencyId: cbo.id, role: 'STEWARD' });
    researchSteward = await broker.createUser({ agencyId: research.id, role: 'STEWARD' });
    probationSteward = await broker.createUser({ agencyId: probation.id, role: 'STEWARD' });
    researchAnalyst = await broker.createUser({ agencyId: research.id, role: 'ANALYST' });
    auditor = await broker.createUser({ role: 'AUDITOR' });
    const courtsSteward = await broker.createUser({ agencyId: courts.id, role: 'STEWARD' });
    for (const code of ['RECIDIVISM_EVALUATION', 'SUPERVISION']) {
      await broker.gqlOk(
        broker.operatorKey,
        `mutation { definePurpose(input: { code: "${code}", description: "d" }) { code } }`,
      );
    }
    dataset = await broker.registerDataset(cboSteward.apiKey, {
      slug: 'reentry_participation',
      title: 'Re-entry participation',
      keyField: 'enrollment_id',
      fields: [
        { name: 'enrollment_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'last_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'LAST_NAME' },
        { name: 'dob', type: 'DATE', classification: 'QUASI_IDENTIFIER', identity: 'DATE_OF_BIRTH' },
        // NON_SENSITIVE so that these agreements need no oversight (test/oversight.spec.ts has those).
        { name: 'program', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'completed', type: 'BOOLEAN', classification: 'SENSITIVE' },
      ],
    });
    courtsDataset = await broker.registerDataset(courtsSteward.apiKey, {
      slug: 'court_cases',
      title: 'Cases',
      keyField: 'case_id',
      fields: [{ name: 'case_id', type: 'STRING', classification: 'NON_SENSITIVE' }],
    });
  });
  afterAll(() => broker.close());

  it('runs the whole lifecycle: propose, approve, amend, approve, revoke', async () => {
    const proposed = (await broker.gqlOk(cboSteward.apiKey, PROPOSE, { input: input() })).proposeAgreement;
    expect(proposed).toMatchObject({
      status: 'PROPOSED',
      currentVersion: 1,
      inForceVersion: null,
      purposes: ['RECIDIVISM_EVALUATION'],
      provider: { id: cbo.id },
      recipient: { id: research.id },
    });
    expect(proposed.versions).toHaveLength(1);
    expect(proposed.versions[0].hash).toMatch(/^[0-9a-f]{64}$/);
    expect(proposed.versions[0].approvals).toEqual([
      { agency: { id: cbo.id }, user: { id: cboSteward.id }, at: expect.any(String) },
    ]);
    expect(proposed.versions[0].content.grants[0]).toMatchObject({
      datasetId: dataset.id,
      access: 'ROWS',
      minCellSize: 11,
    });

    // The proposer's side approving again changes nothing.
    const again = (await broker.gqlOk(cboSteward.apiKey, APPROVE, { id: proposed.id, v: 1 }))
      .approveAgreement;
    expect(again.status).toBe('PROPOSED');

    const approved = (await broker.gqlOk(researchSteward.apiKey, APPROVE, { id: proposed.id, v: 1 }))
      .approveAgreement;
    expect(approved).toMatchObject({ status: 'ACTIVE', inForceVersion: 1 });

    const amended = (
      await broker.gqlOk(researchSteward.apiKey, AMEND, {
        id: proposed.id,
        input: input({ purposes: ['RECIDIVISM_EVALUATION', 'SUPERVISION'] }),
      })
    ).amendAgreement;
    // While the amendment awaits approval, version 1 stays in force.
    expect(amended).toMatchObject({ status: 'ACTIVE', currentVersion: 2, inForceVersion: 1 });
    expect(amended.purposes).toEqual(['RECIDIVISM_EVALUATION', 'SUPERVISION']);
    expect(amended.versions[1].hash).not.toBe(amended.versions[0].hash);

    const stale = await broker.gql(cboSteward.apiKey, APPROVE, { id: proposed.id, v: 1 });
    expect(stale.errors?.[0].extensions?.code).toBe('CONFLICT');
    const approved2 = (await broker.gqlOk(cboSteward.apiKey, APPROVE, { id: proposed.id, v: 2 }))
      .approveAgreement;
    expect(approved2).toMatchObject({ status: 'ACTIVE', inForceVersion: 2 });

    const revoked = (
      await broker.gqlOk(cboSteward.apiKey, REVOKE, { id: proposed.id, r: 'Consent withdrawn' })
    ).revokeAgreement;
    expect(revoked.status).toBe('REVOKED');
    for (const [key, query, vars] of [
      [researchSteward.apiKey, APPROVE, { id: proposed.id, v: 2 }],
      [researchSteward.apiKey, REVOKE, { id: proposed.id, r: 'again' }],
      [researchSteward.apiKey, AMEND, { id: proposed.id, input: input() }],
    ] as const) {
      const res = await broker.gql(key, query, vars);
      expect(res.errors?.[0].extensions?.code).toBe('CONFLICT');
    }
  });

  it('hides agreements from third agencies: NOT_FOUND, the same as a missing one', async () => {
    const { id } = (await broker.gqlOk(cboSteward.apiKey, PROPOSE, { input: input() })).proposeAgreement;
    const read = await broker.gql(probationSteward.apiKey, GET, { id });
    const readMissing = await broker.gql(probationSteward.apiKey, GET, {
      id: '00000000-0000-4000-8000-000000000000',
    });
    expect(read.data?.agreement ?? null).toBeNull();
    expect(read.errors?.[0].extensions).toEqual({ code: 'NOT_FOUND', reason: 'NOT_PARTY' });
    expect(read.errors?.[0].extensions).toEqual(readMissing.errors?.[0].extensions);
    expect(read.errors?.[0].message).toBe(readMissing.errors?.[0].message);
    for (const [query, vars] of [
      [APPROVE, { id, v: 1 }],
      [REVOKE, { id, r: 'mine now' }],
      [AMEND, { id, input: input() }],
    ] as const) {
      const third = await broker.gql(probationSteward.apiKey, query, vars);
      const missing = await broker.gql(probationSteward.apiKey, query, {
        ...vars,
        id: '00000000-0000-4000-8000-000000000000',
      });
      expect(third.errors?.[0].extensions?.code).toBe('NOT_FOUND');
      expect(third.errors?.[0].message).toBe(missing.errors?.[0].message);
    }
    const list = await broker.gqlOk(probationSteward.apiKey, '{ agreements { id } }');
    expect(list.agreements).toEqual([]);
    const seenByAuditor = await broker.gqlOk(auditor.apiKey, '{ agreements { id } }');
    expect(seenByAuditor.agreements.map((a: { id: string }) => a.id)).toContain(id);
    const seenByAnalyst = await broker.gqlOk(
      researchAnalyst.apiKey,
      `query($id: ID!) { agreement(id: $id) { id } }`,
      { id },
    );
    expect(seenByAnalyst.agreement).toEqual({ id });
    const proposedOnly = await broker.gqlOk(auditor.apiKey, '{ agreements(status: REVOKED) { status } }');
    expect(proposedOnly.agreements.every((a: { status: string }) => a.status === 'REVOKED')).toBe(true);
  });

  it('computes PENDING and EXPIRED from the window of the version in force', async () => {
    const future = (
      await broker.gqlOk(cboSteward.apiKey, PROPOSE, {
        input: input({ validFrom: '2098-01-01T00:00:00Z', validUntil: '2099-01-01T00:00:00Z' }),
      })
    ).proposeAgreement;
    expect(
      (await broker.gqlOk(researchSteward.apiKey, APPROVE, { id: future.id, v: 1 })).approveAgreement.status,
    ).toBe('PENDING');
    const past = (
      await broker.gqlOk(cboSteward.apiKey, PROPOSE, {
        input: input({ validFrom: '2001-01-01T00:00:00Z', validUntil: '2002-01-01T00:00:00Z' }),
      })
    ).proposeAgreement;
    expect(
      (await broker.gqlOk(researchSteward.apiKey, APPROVE, { id: past.id, v: 1 })).approveAgreement.status,
    ).toBe('EXPIRED');
  });

  it('refuses a destruction attestation of an agreement never in force, audited, changing nothing', async () => {
    const ATTEST = `mutation($id: ID!, $t: DateTime!) { attestDestruction(agreementId: $id, through: $t) { destructionAttestedThrough } }`;
    const through = () => new Date(Date.now() - 1000).toISOString();
    // Only proposed; revoked (withdrawn) before it came into force; declined by oversight.
    const proposed = (await broker.gqlOk(cboSteward.apiKey, PROPOSE, { input: input() })).proposeAgreement;
    const withdrawn = (await broker.gqlOk(cboSteward.apiKey, PROPOSE, { input: input() })).proposeAgreement;
    await broker.gqlOk(cboSteward.apiKey, REVOKE, { id: withdrawn.id, r: 'withdrawn' });
    const board = await broker.oversightAuditor();
    const declined = (
      await broker.gqlOk(cboSteward.apiKey, PROPOSE, {
        input: input({
          communityBenefit: 'Outcomes by programme.',
          grants: [{ datasetId: dataset.id, fields: [{ name: 'completed', justification: 'The outcome.' }] }],
        }),
      })
    ).proposeAgreement;
    await broker.gqlOk(
      board.apiKey,
      `mutation($id: ID!) { declineAgreement(id: $id, version: 1, reason: "no") { id } }`,
      { id: declined.id },
    );
    const [before] = await broker.query<{ attested: number; seq: string }>(
      `SELECT (SELECT count(*)::int FROM destruction_attestation) AS attested, (SELECT seq::text FROM audit_head) AS seq`,
    );
    for (const agreement of [proposed, withdrawn, declined]) {
      const res = await broker.gql(researchSteward.apiKey, ATTEST, { id: agreement.id, t: through() });
      expect(res.data).toBeNull();
      expect(res.errors?.[0].extensions?.code).toBe('CONFLICT');
      expect(res.errors?.[0].message).toContain('never in force');
    }
    const [after] = await broker.query<{ attested: number }>(
      `SELECT count(*)::int AS attested FROM destruction_attestation`,
    );
    expect(after.attested).toBe(before.attested);
    // Nothing but the three refusals' DENY events was appended, each naming its agreement.
    const appended = await broker.query<{ decision: string; reason: string; agreement_id: string }>(
      `SELECT decision, reason, agreement_id FROM audit_event WHERE seq > $1 ORDER BY seq`,
      [before.seq],
    );
    expect(appended).toEqual(
      [proposed, withdrawn, declined].map((a) => ({
        decision: 'DENY',
        reason: 'INVALID',
        agreement_id: a.id,
      })),
    );

    // One that was in force may be attested after it expired, and after it was revoked.
    const past = (
      await broker.gqlOk(cboSteward.apiKey, PROPOSE, {
        input: input({ validFrom: '2001-01-01T00:00:00Z', validUntil: '2002-01-01T00:00:00Z' }),
      })
    ).proposeAgreement;
    await broker.gqlOk(researchSteward.apiKey, APPROVE, { id: past.id, v: 1 });
    const t1 = through();
    const expired = await broker.gqlOk(researchSteward.apiKey, ATTEST, { id: past.id, t: t1 });
    expect(expired.attestDestruction.destructionAttestedThrough).toBe(t1);
    await broker.gqlOk(cboSteward.apiKey, REVOKE, { id: past.id, r: 'ended' });
    const t2 = through();
    const revoked = await broker.gqlOk(researchSteward.apiKey, ATTEST, { id: past.id, t: t2 });
    expect(revoked.attestDestruction.destructionAttestedThrough).toBe(t2);
  });

  it('treats agreement JSON as untrusted', async () => {
    const grant = (g: Record<string, unknown>) => ({
      grants: [{ datasetId: dataset.id, fields: [{ name: 'program' }], ...g }],
    });
    const cases: [string, Record<string, unknown>][] = [
      [
        'a dataset of another provider',
        { grants: [{ datasetId: courtsDataset.id, fields: [{ name: 'case_id' }] }] },
      ],
      [
        'an unknown dataset',
        { grants: [{ datasetId: '00000000-0000-4000-8000-000000000000', fields: [{ name: 'x' }] }] },
      ],
      ['an unknown field', grant({ fields: [{ name: 'ssn' }] })],
      ['a field with SQL in its name', grant({ fields: [{ name: 'program"; DROP TABLE agreement; --' }] })],
      ['GENERALIZE of a BOOLEAN', grant({ fields: [{ name: 'completed', transform: 'GENERALIZE' }] })],
      ['an unknown purpose', { purposes: ['MARKETING'] }],
      ['no purpose', { purposes: [] }],
      ['an inverted window', { validFrom: '2030-01-01T00:00:00Z', validUntil: '2029-01-01T00:00:00Z' }],
      ['the same agency on both sides', { recipientAgencyId: cbo.id }],
      ['no grant', { grants: [] }],
      ['a rowFilter on an unknown field', grant({ rowFilter: { ssn: '123' } })],
      ['a rowFilter with an unknown operator', grant({ rowFilter: { program: { $regex: '.*' } } })],
      ['a rowFilter value of the wrong type', grant({ rowFilter: { dob: { $gt: 5 } } })],
      ['a rowFilter with __proto__', grant({ rowFilter: JSON.parse('{"__proto__": {"program": "JOBS"}}') })],
      ['a rowFilter with unknown top-level keys', grant({ rowFilter: { $where: 'true' } })],
      ['a minCellSize of zero', grant({ minCellSize: 0 })],
    ];
    const before = await broker.query(`SELECT count(*)::int AS n FROM agreement`);
    for (const [label, change] of cases) {
      const res = await broker.gql(cboSteward.apiKey, PROPOSE, { input: input(change) });
      expect({ label, code: res.errors?.[0].extensions?.code }).toEqual({ label, code: 'BAD_USER_INPUT' });
    }
    expect(await broker.query(`SELECT count(*)::int AS n FROM agreement`)).toEqual(before);
  });

  it('lets only stewards of a party propose and decide', async () => {
    const byThird = await broker.gql(probationSteward.apiKey, PROPOSE, { input: input() });
    expect(byThird.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    const byAnalyst = await broker.gql(researchAnalyst.apiKey, PROPOSE, { input: input() });
    expect(byAnalyst.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    const byOperator = await broker.gql(broker.operatorKey, PROPOSE, { input: input() });
    expect(byOperator.errors?.[0].extensions?.code).toBe('FORBIDDEN');
  });

  it('keeps versions immutable in the database', async () => {
    await expect(broker.query(`UPDATE agreement_version SET hash = 'x'`)).rejects.toThrow(/append-only/);
    await expect(broker.query(`DELETE FROM agreement_approval`)).rejects.toThrow(/append-only/);
  });

  it('never returns the HMAC key', async () => {
    const all = await broker.gqlOk(auditor.apiKey, `{ agreements { ${AGREEMENT} } }`);
    const keys = await broker.query<{ hmac_key: Buffer }>(`SELECT hmac_key FROM agreement_secret`);
    const text = JSON.stringify(all);
    for (const { hmac_key } of keys) {
      expect(text).not.toContain(hmac_key.toString('hex'));
      expect(text).not.toContain(hmac_key.toString('base64'));
    }
  });
});

describe('agreements: the defaults of a grant', () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'agreements_defaults' });
  });
  afterAll(() => broker.close());

  it('declares the defaulted arguments of GrantInput and FieldGrantInput nullable, as the contract does', async () => {
    type InputField = {
      name: string;
      defaultValue: string | null;
      type: { kind: string; name: string | null };
    };
    const data = await broker.gqlOk<{
      __schema: { types: { name: string; inputFields: InputField[] | null }[] };
    }>(
      broker.operatorKey,
      `{ __schema { types { name inputFields { name defaultValue type { kind name } } } } }`,
    );
    const field = (type: string, name: string) =>
      data.__schema.types.find((t) => t.name === type)?.inputFields?.find((f) => f.name === name);
    expect(field('FieldGrantInput', 'transform')).toEqual({
      name: 'transform',
      defaultValue: 'RAW',
      type: { kind: 'ENUM', name: 'FieldTransform' },
    });
    expect(field('GrantInput', 'access')).toEqual({
      name: 'access',
      defaultValue: 'ROWS',
      type: { kind: 'ENUM', name: 'GrantAccess' },
    });
    for (const [name, defaultValue, type] of [
      ['requireConsent', 'false', 'Boolean'],
      ['minCellSize', '11', 'Int'],
      ['linkage', 'false', 'Boolean'],
    ]) {
      expect(field('GrantInput', name)).toEqual({ name, defaultValue, type: { kind: 'SCALAR', name: type } });
    }
  });

  it('takes an explicit null for a defaulted grant argument as its default', async () => {
    const provider = await broker.createAgency('Provider');
    const recipient = await broker.createAgency('Recipient');
    const steward = await broker.createUser({ agencyId: provider.id, role: 'STEWARD' });
    await broker.gqlOk(
      broker.operatorKey,
      `mutation { definePurpose(input: { code: "RESEARCH", description: "d" }) { code } }`,
    );
    const dataset = await broker.registerDataset(steward.apiKey, {
      slug: 'programs',
      title: 'Programs',
      keyField: 'k',
      fields: [
        { name: 'k', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'program', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    });
    const res = await broker.gql(steward.apiKey, PROPOSE, {
      input: {
        title: 'Nulls',
        providerAgencyId: provider.id,
        recipientAgencyId: recipient.id,
        purposes: ['RESEARCH'],
        validFrom: '2020-01-01T00:00:00Z',
        validUntil: '2099-01-01T00:00:00Z',
        grants: [
          {
            datasetId: dataset.id,
            fields: [{ name: 'program', transform: null }],
            access: null,
            requireConsent: null,
            minCellSize: null,
            linkage: null,
          },
        ],
      },
    });
    expect(res.errors).toBeUndefined();
    const [grant] = (res.data as { proposeAgreement: { versions: { content: { grants: unknown[] } }[] } })
      .proposeAgreement.versions[0].content.grants;
    expect(grant).toMatchObject({
      access: 'ROWS',
      requireConsent: false,
      minCellSize: 11,
      linkage: false,
      fields: [{ name: 'program', transform: 'RAW' }],
    });
  });
});
