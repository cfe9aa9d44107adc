import { TestBroker } from '@broker/testing';

const AGREEMENT = `id status currentVersion inForceVersion oversightRequired
  inForce { version } versions { version oversightRequired approvals { agency { id } } decline { reason agency { id } } }`;
const PROPOSE = `mutation($input: AgreementInput!) { proposeAgreement(input: $input) { ${AGREEMENT} } }`;
const AMEND = `mutation($id: ID!, $input: AgreementInput!) { amendAgreement(id: $id, input: $input) { ${AGREEMENT} } }`;
const APPROVE = `mutation($id: ID!, $v: Int!) { approveAgreement(id: $id, version: $v) { ${AGREEMENT} } }`;
const DECLINE = `mutation($id: ID!, $v: Int!, $r: String!) { declineAgreement(id: $id, version: $v, reason: $r) { ${AGREEMENT} } }`;

describe('oversight: sign-off of versions that release identifiers or sensitive fields, or link', () => {
  let broker: TestBroker;
  let cbo: { id: string };
  let research: { id: string };
  let cboSteward: { apiKey: string };
  let researchSteward: { apiKey: string };
  let auditor: { apiKey: string; agencyId: string };
  let dataset: { id: string };

  const BENEFIT = 'Re-entry programmes that work get funded; families see fewer returns to jail.';
  const input = (overrides: Record<string, unknown> = {}, fields?: unknown[]) => ({
    title: 'Participation for recidivism evaluation',
    providerAgencyId: cbo.id,
    recipientAgencyId: research.id,
    purposes: ['RECIDIVISM_EVALUATION'],
    validFrom: '2020-01-01T00:00:00Z',
    validUntil: '2099-01-01T00:00:00Z',
    communityBenefit: BENEFIT,
    grants: [
      {
        datasetId: dataset.id,
        fields: fields ?? [
          { name: 'program' },
          {
            name: 'offence',
            justification: 'Outcomes differ by offence; the evaluation must adjust for it.',
          },
          { name: 'last_name', transform: 'HASH' },
        ],
      },
    ],
    ...overrides,
  });
  const code = (res: { errors?: { extensions?: { code?: string } }[] }) => res.errors?.[0]?.extensions?.code;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'oversight' });
    cbo = await broker.createAgency('Second Chance Re-entry');
    research = await broker.createAgency('Research Office');
    cboSteward = await broker.createUser({ agencyId: cbo.id, role: 'STEWARD' });
    researchSteward = await broker.createUser({ agencyId: research.id, role: 'STEWARD' });
    auditor = await broker.oversightAuditor();
    await broker.definePurposes('RECIDIVISM_EVALUATION');
    dataset = await broker.registerDataset(cboSteward.apiKey, {
      slug: 'reentry_participation',
      title: 'Re-entry participation',
      keyField: 'enrollment_id',
      fields: [
        { name: 'enrollment_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'last_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'LAST_NAME' },
        { name: 'dob', type: 'DATE', classification: 'QUASI_IDENTIFIER', identity: 'DATE_OF_BIRTH' },
        { name: 'program', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'offence', type: 'STRING', classification: 'SENSITIVE' },
      ],
    });
  });
  afterAll(() => broker.close());

  it('refuses a version under oversight without a community benefit or a justification per field', async () => {
    const noBenefit = await broker.gql(cboSteward.apiKey, PROPOSE, {
      input: input({ communityBenefit: null }),
    });
    expect(code(noBenefit)).toBe('BAD_USER_INPUT');
    expect(JSON.stringify(noBenefit.errors)).toContain('communityBenefit');
    const unjustified = await broker.gql(cboSteward.apiKey, PROPOSE, {
      input: input({}, [{ name: 'offence' }, { name: 'last_name', transform: 'HASH' }]),
    });
    expect(code(unjustified)).toBe('BAD_USER_INPUT');
    expect(JSON.stringify(unjustified.errors)).toContain('offence');
    // Nothing visible is no justification, and no benefit: a zero-width space, a byte-order mark.
    for (const blank of ['\u200b', ' \ufeff\u2060 ']) {
      const invisible = await broker.gql(cboSteward.apiKey, PROPOSE, {
        input: input({ communityBenefit: blank }, [{ name: 'offence', justification: blank }]),
      });
      expect(code(invisible)).toBe('BAD_USER_INPUT');
      expect(JSON.stringify(invisible.errors)).toContain('offence');
      expect(JSON.stringify(invisible.errors)).toContain('communityBenefit');
    }
    const linkage = await broker.gql(cboSteward.apiKey, PROPOSE, {
      input: input({
        communityBenefit: null,
        grants: [{ datasetId: dataset.id, fields: [{ name: 'program' }], linkage: true }],
      }),
    });
    expect(code(linkage)).toBe('BAD_USER_INPUT');
    // A direct identifier released as HASH, and fields neither direct nor sensitive, need no oversight.
    const plain = (
      await broker.gqlOk(cboSteward.apiKey, PROPOSE, {
        input: input({ communityBenefit: null }, [
          { name: 'program' },
          { name: 'last_name', transform: 'HASH' },
        ]),
      })
    ).proposeAgreement;
    expect(plain.oversightRequired).toBe(false);
  });

  it('keeps a version needing oversight out of force with both parties alone; an AUDITOR completes it', async () => {
    const proposed = (await broker.gqlOk(cboSteward.apiKey, PROPOSE, { input: input() })).proposeAgreement;
    expect(proposed).toMatchObject({ oversightRequired: true, status: 'PROPOSED' });
    const parties = (await broker.gqlOk(researchSteward.apiKey, APPROVE, { id: proposed.id, v: 1 }))
      .approveAgreement;
    expect(parties).toMatchObject({ status: 'PROPOSED', inForceVersion: null, inForce: null });
    // No record can be read under it yet.
    const schema = await broker.gql(
      researchSteward.apiKey,
      '{ __schema { queryType { fields { name } } } }',
      {},
      '/data/graphql',
    );
    expect(JSON.stringify(schema)).not.toContain('reentry_participation');

    const approved = (await broker.gqlOk(auditor.apiKey, APPROVE, { id: proposed.id, v: 1 }))
      .approveAgreement;
    expect(approved).toMatchObject({ status: 'ACTIVE', inForceVersion: 1, inForce: { version: 1 } });
    expect(approved.versions[0].approvals.map((a: { agency: { id: string } }) => a.agency.id).sort()).toEqual(
      [cbo.id, research.id, auditor.agencyId].sort(),
    );
  });

  it("does not count an AUDITOR's approval of an older version for the new one", async () => {
    const proposed = (await broker.gqlOk(cboSteward.apiKey, PROPOSE, { input: input() })).proposeAgreement;
    await broker.gqlOk(auditor.apiKey, APPROVE, { id: proposed.id, v: 1 });
    const v1 = (await broker.gqlOk(researchSteward.apiKey, APPROVE, { id: proposed.id, v: 1 }))
      .approveAgreement;
    expect(v1.inForceVersion).toBe(1);
    const amended = (
      await broker.gqlOk(researchSteward.apiKey, AMEND, {
        id: proposed.id,
        input: input({ title: 'Participation, amended' }),
      })
    ).amendAgreement;
    const bothParties = (await broker.gqlOk(cboSteward.apiKey, APPROVE, { id: proposed.id, v: 2 }))
      .approveAgreement;
    // Version 1 keeps governing until oversight approves version 2.
    expect(bothParties).toMatchObject({ currentVersion: 2, inForceVersion: 1, status: 'ACTIVE' });
    expect(amended.currentVersion).toBe(2);
    const stale = await broker.gql(auditor.apiKey, APPROVE, { id: proposed.id, v: 1 });
    expect(code(stale)).toBe('CONFLICT');
    const v2 = (await broker.gqlOk(auditor.apiKey, APPROVE, { id: proposed.id, v: 2 })).approveAgreement;
    expect(v2.inForceVersion).toBe(2);
  });

  it('refuses an AUDITOR approving, or declining, what needs no oversight, as if it were a party', async () => {
    const plain = (
      await broker.gqlOk(cboSteward.apiKey, PROPOSE, {
        input: input({}, [{ name: 'program' }, { name: 'dob', transform: 'GENERALIZE' }]),
      })
    ).proposeAgreement;
    expect(plain.oversightRequired).toBe(false);
    expect(code(await broker.gql(auditor.apiKey, APPROVE, { id: plain.id, v: 1 }))).toBe('FORBIDDEN');
    expect(code(await broker.gql(auditor.apiKey, DECLINE, { id: plain.id, v: 1, r: 'no' }))).toBe(
      'FORBIDDEN',
    );
    const after = (await broker.gqlOk(researchSteward.apiKey, APPROVE, { id: plain.id, v: 1 }))
      .approveAgreement;
    expect(after.inForceVersion).toBe(1);
    expect(after.versions[0].approvals).toHaveLength(2);
    // Stewards cannot decline (every AUDITOR belongs to an oversight agency: see test/users.spec.ts).
    const overseen = (await broker.gqlOk(cboSteward.apiKey, PROPOSE, { input: input() })).proposeAgreement;
    expect(code(await broker.gql(researchSteward.apiKey, DECLINE, { id: overseen.id, v: 1, r: 'no' }))).toBe(
      'FORBIDDEN',
    );
    expect(
      code(await broker.gql(auditor.apiKey, APPROVE, { id: '00000000-0000-4000-8000-000000000000', v: 1 })),
    ).toBe('NOT_FOUND');
  });

  it('lets an AUDITOR decline a version: it never comes into force, the parties may amend', async () => {
    const proposed = (await broker.gqlOk(cboSteward.apiKey, PROPOSE, { input: input() })).proposeAgreement;
    const blank = await broker.gql(auditor.apiKey, DECLINE, { id: proposed.id, v: 1, r: '   ' });
    expect(code(blank)).toBe('BAD_USER_INPUT');
    const declined = (
      await broker.gqlOk(auditor.apiKey, DECLINE, {
        id: proposed.id,
        v: 1,
        r: 'Offence is not needed at this precision',
      })
    ).declineAgreement;
    expect(declined.versions[0].decline).toEqual({
      reason: 'Offence is not needed at this precision',
      agency: { id: auditor.agencyId },
    });
    // The same decline again (a retry) is answered as the first; another reason is not dropped
    // silently but refused, and the refusal audited; one AGREEMENT_DECLINED event either way.
    const again = (
      await broker.gqlOk(auditor.apiKey, DECLINE, {
        id: proposed.id,
        v: 1,
        r: 'Offence is not needed at this precision',
      })
    ).declineAgreement;
    expect(again.versions[0].decline.reason).toBe('Offence is not needed at this precision');
    const refusals = async () =>
      Number(
        (
          await broker.query<{ n: string }>(
            `SELECT count(*) AS n FROM audit_event WHERE decision = 'DENY'
               AND actor_agency_id = $1 AND details::text LIKE '%declineAgreement%'`,
            [auditor.agencyId],
          )
        )[0].n,
      );
    const before = await refusals();
    const other = await broker.gql(auditor.apiKey, DECLINE, { id: proposed.id, v: 1, r: 'Another reason' });
    expect(code(other)).toBe('CONFLICT');
    expect(await refusals()).toBe(before + 1);
    const declines = await broker.query<{ decision: string; reason: string }>(
      `SELECT decision, reason FROM audit_event
         WHERE agreement_id = $1 AND action = 'AGREEMENT_DECLINED' AND decision = 'ALLOW'`,
      [proposed.id],
    );
    expect(declines).toEqual([{ decision: 'ALLOW', reason: 'Offence is not needed at this precision' }]);
    const late = await broker.gql(researchSteward.apiKey, APPROVE, { id: proposed.id, v: 1 });
    expect(code(late)).toBe('CONFLICT');
    expect(code(await broker.gql(auditor.apiKey, APPROVE, { id: proposed.id, v: 1 }))).toBe('CONFLICT');
    const amended = (
      await broker.gqlOk(cboSteward.apiKey, AMEND, {
        id: proposed.id,
        input: input({}, [{ name: 'offence', transform: 'HASH' }, { name: 'program' }]),
      })
    ).amendAgreement;
    expect(amended.oversightRequired).toBe(false);
    const inForce = (await broker.gqlOk(researchSteward.apiKey, APPROVE, { id: proposed.id, v: 2 }))
      .approveAgreement;
    expect(inForce.inForceVersion).toBe(2);
    const events = await broker.query<{ action: string }>(
      `SELECT action FROM audit_event WHERE agreement_id = $1 ORDER BY seq`,
      [proposed.id],
    );
    expect(events.map((e) => e.action)).toContain('AGREEMENT_DECLINED');
  });

  it('keeps in force a version put in force before the rule existed', async () => {
    // As a database migrated from before oversight holds it: both parties approved, in force.
    const plain = (await broker.gqlOk(cboSteward.apiKey, PROPOSE, { input: input() })).proposeAgreement;
    await broker.gqlOk(researchSteward.apiKey, APPROVE, { id: plain.id, v: 1 });
    await broker.query(`UPDATE agreement SET in_force_version = 1 WHERE id = $1`, [plain.id]);
    const seen = await broker.gqlOk(
      researchSteward.apiKey,
      `query($id: ID!) { agreement(id: $id) { ${AGREEMENT} } }`,
      {
        id: plain.id,
      },
    );
    expect(seen.agreement).toMatchObject({ status: 'ACTIVE', inForceVersion: 1, oversightRequired: true });
  });

  it('fixes a minimum classification by identity role', async () => {
    for (const [identity, classification] of [
      ['SSN', 'NON_SENSITIVE'],
      ['SSN', 'QUASI_IDENTIFIER'],
      ['LAST_NAME', 'SENSITIVE'],
      ['DATE_OF_BIRTH', 'NON_SENSITIVE'],
      ['ZIP', 'SENSITIVE'],
    ]) {
      const res = await broker.gql(
        cboSteward.apiKey,
        `mutation($input: RegisterDatasetInput!) { registerDataset(input: $input) { id } }`,
        {
          input: {
            slug: `understated_${identity.toLowerCase()}_${classification.toLowerCase()}`,
            title: 't',
            keyField: 'id',
            fields: [
              { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE' },
              { name: 'v', type: identity === 'DATE_OF_BIRTH' ? 'DATE' : 'STRING', classification, identity },
            ],
          },
        },
      );
      expect({ identity, classification, code: code(res) }).toEqual({
        identity,
        classification,
        code: 'BAD_USER_INPUT',
      });
    }
  });

  it("lets an oversight AUDITOR preview what the recipient would see, without the provider's record counts", async () => {
    const PREVIEW = `query($input: AgreementInput!) { previewAgreement(input: $input) {
      purpose datasets { rowsReleased fields { name transform } } } }`;
    const previewed = await broker.gqlOk(auditor.apiKey, PREVIEW, { input: input() });
    expect(previewed.previewAgreement).toEqual([
      {
        purpose: 'RECIDIVISM_EVALUATION',
        datasets: [
          {
            rowsReleased: null,
            fields: [
              { name: 'last_name_hash', transform: 'HASH' },
              { name: 'offence', transform: 'RAW' },
              { name: 'program', transform: 'RAW' },
            ],
          },
        ],
      },
    ]);
    // A draft is previewed before its benefit and justifications are written.
    const draft = await broker.gql(cboSteward.apiKey, PREVIEW, {
      input: input({ communityBenefit: null }, [{ name: 'offence' }]),
    });
    expect(draft.errors).toBeUndefined();
  });
});
