import { Client } from 'pg';
import { TestBroker } from '@broker/testing';

const PROPOSE = `mutation($input: AgreementInput!) { proposeAgreement(input: $input) { id } }`;
const AMEND = `mutation($id: ID!, $input: AgreementInput!) { amendAgreement(id: $id, input: $input) { currentVersion } }`;
const APPROVE = `mutation($id: ID!, $v: Int!) { approveAgreement(id: $id, version: $v) { inForceVersion status } }`;
const REVOKE = `mutation($id: ID!, $r: String!) { revokeAgreement(id: $id, reason: $r) { status } }`;
const DECLINE = `mutation($id: ID!, $v: Int!, $r: String!) { declineAgreement(id: $id, version: $v, reason: $r) { id } }`;

/**
 * Stewards acting on one agreement at once: the agreement's row lock orders them, so each race has
 * exactly one outcome, every answer is a contract code (never a 500), and the audit chain holds. The
 * races are made deterministic by holding the row lock from another connection until every request
 * waits on it.
 */
describe('agreements: concurrent decisions on one agreement', () => {
  let broker: TestBroker;
  let parties: Awaited<ReturnType<TestBroker['sharingParties']>>;
  let secondProviderSteward: { apiKey: string };
  let dataset: { id: string };
  let auditor: { apiKey: string };

  const input = (overrides: Record<string, unknown> = {}) => ({
    title: 'Cases',
    providerAgencyId: parties.providerAgency.id,
    recipientAgencyId: parties.recipientAgency.id,
    purposes: ['RECIDIVISM_EVALUATION'],
    validFrom: '2020-01-01T00:00:00Z',
    validUntil: '2099-01-01T00:00:00Z',
    grants: [{ datasetId: dataset.id, fields: [{ name: 'case_id' }, { name: 'note' }] }],
    ...overrides,
  });
  const propose = async (overrides: Record<string, unknown> = {}) =>
    (
      await broker.gqlOk<{ proposeAgreement: { id: string } }>(parties.providerSteward.apiKey, PROPOSE, {
        input: input(overrides),
      })
    ).proposeAgreement.id;

  /**
   * Runs `requests` while another connection holds the agreement's row lock, and lets go once each
   * of them waits on it (pg_locks shows them), so that they all contend for it.
   */
  const contend = async <T>(agreementId: string, requests: (() => Promise<T>)[]): Promise<T[]> => {
    const holder = new Client({ connectionString: broker.config.DATABASE_URL });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM agreement WHERE id = $1 FOR UPDATE`, [agreementId]);
      const running = requests.map((r) => r());
      for (;;) {
        const [{ n }] = (
          await holder.query<{ n: number }>(
            `SELECT count(DISTINCT l.pid)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE NOT l.granted AND a.datname = current_database() AND l.pid <> pg_backend_pid()`,
          )
        ).rows;
        if (n >= requests.length) break;
        await new Promise((r) => setImmediate(r));
      }
      await holder.query('ROLLBACK');
      return await Promise.all(running);
    } finally {
      await holder.end();
    }
  };
  const codes = (results: { status: number; errors?: { extensions?: { code?: string } }[] }[]) =>
    results.map((r) => r.errors?.[0]?.extensions?.code ?? 'OK').sort();

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'agreement_lifecycle_races' });
    parties = await broker.sharingParties('Courts', 'Research', 'RECIDIVISM_EVALUATION');
    secondProviderSteward = await broker.createUser({ agencyId: parties.providerAgency.id, role: 'STEWARD' });
    auditor = await broker.oversightAuditor();
    dataset = await broker.registerDataset(parties.providerSteward.apiKey, {
      slug: 'cases',
      title: 'Cases',
      keyField: 'case_id',
      fields: [
        { name: 'case_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'note', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    });
  });
  afterAll(() => broker.close());

  it('revokes once when both parties revoke at the same moment: the other is CONFLICT, audited', async () => {
    const id = await propose();
    await broker.gqlOk(parties.recipientSteward.apiKey, APPROVE, { id, v: 1 });
    const seq = await broker.auditHeadSeq();
    const results = await contend(id, [
      () => broker.gql(parties.providerSteward.apiKey, REVOKE, { id, r: 'provider stops' }),
      () => broker.gql(parties.recipientSteward.apiKey, REVOKE, { id, r: 'recipient stops' }),
    ]);
    expect(results.map((r) => r.status).every((s) => s < 500)).toBe(true);
    expect(codes(results)).toEqual(['CONFLICT', 'OK']);
    const events = await broker.query<{ action: string; decision: string }>(
      `SELECT action, decision FROM audit_event WHERE seq > $1 AND agreement_id = $2 ORDER BY seq`,
      [seq, id],
    );
    expect(events.filter((e) => e.action === 'AGREEMENT_REVOKED' && e.decision === 'ALLOW')).toHaveLength(1);
    const denials = await broker.query<{ decision: string; reason: string }>(
      `SELECT decision, reason FROM audit_event WHERE seq > $1 AND decision = 'DENY'`,
      [seq],
    );
    expect(denials.map((d) => d.reason)).toEqual(['INVALID']);
    expect(await broker.verifyAuditChain(auditor.apiKey)).toMatchObject({
      valid: true,
      firstBrokenSeq: null,
    });
  });

  it('approves once when two stewards of one side approve at once: one event, the version in force', async () => {
    const id = await propose();
    const seq = await broker.auditHeadSeq();
    const results = await contend(id, [
      () => broker.gql(parties.recipientSteward.apiKey, APPROVE, { id, v: 1 }),
      () => broker.gql(parties.recipientSteward.apiKey, APPROVE, { id, v: 1 }),
    ]);
    expect(codes(results)).toEqual(['OK', 'OK']);
    const approvals = await broker.query(
      `SELECT 1 FROM audit_event WHERE seq > $1 AND agreement_id = $2 AND action = 'AGREEMENT_APPROVED'`,
      [seq, id],
    );
    expect(approvals).toHaveLength(1);
    const [row] = await broker.query<{ in_force_version: number }>(
      `SELECT in_force_version FROM agreement WHERE id = $1`,
      [id],
    );
    expect(row.in_force_version).toBe(1);
  });

  it('never brings into force a version superseded by an amendment that won the race to approve it', async () => {
    const id = await propose();
    // The amendment withdraws the field `note`; the recipient approves version 1 at the same moment.
    const results = await contend(id, [
      () =>
        broker.gql(secondProviderSteward.apiKey, AMEND, {
          id,
          input: input({ grants: [{ datasetId: dataset.id, fields: [{ name: 'case_id' }] }] }),
        }),
      () => broker.gql(parties.recipientSteward.apiKey, APPROVE, { id, v: 1 }),
    ]);
    expect(results.map((r) => r.status).every((s) => s < 500)).toBe(true);
    const [row] = await broker.query<{ in_force_version: number | null; current_version: number }>(
      `SELECT in_force_version, current_version FROM agreement WHERE id = $1`,
      [id],
    );
    expect(row.current_version).toBe(2);
    const [amended, approved] = results;
    expect(amended.errors).toBeUndefined();
    if (approved.errors) {
      // The amendment came first: version 1 was superseded, and its approval refused.
      expect(approved.errors[0].extensions?.code).toBe('CONFLICT');
      expect(row.in_force_version).toBeNull();
    } else {
      // The approval came first: version 1 is in force until version 2 is approved by both.
      expect(row.in_force_version).toBe(1);
    }
    // Version 2 has only the amender's side's approval, whichever came first.
    const v2 = await broker.query<{ agency_id: string }>(
      `SELECT agency_id FROM agreement_approval WHERE agreement_id = $1 AND version = 2`,
      [id],
    );
    expect(v2.map((a) => a.agency_id)).toEqual([parties.providerAgency.id]);
    expect(await broker.verifyAuditChain(auditor.apiKey)).toMatchObject({ valid: true });
  });

  it('refuses abusive reasons and versions with contract codes, audited, changing nothing', async () => {
    const id = await propose();
    await broker.gqlOk(parties.recipientSteward.apiKey, APPROVE, { id, v: 1 });
    const seq = await broker.auditHeadSeq();
    const cases: [string, Record<string, unknown>, string, string][] = [
      [REVOKE, { id, r: 'x'.repeat(100_000) }, 'BAD_USER_INPUT', parties.providerSteward.apiKey],
      [REVOKE, { id, r: 'stop\u0000now' }, 'BAD_USER_INPUT', parties.providerSteward.apiKey],
      [REVOKE, { id, r: ' \n\t ' }, 'BAD_USER_INPUT', parties.providerSteward.apiKey],
      [REVOKE, { id: 'not-a-uuid', r: 'stop' }, 'BAD_USER_INPUT', parties.providerSteward.apiKey],
      [
        REVOKE,
        { id: '00000000-0000-4000-8000-000000000000', r: 'stop' },
        'NOT_FOUND',
        parties.providerSteward.apiKey,
      ],
      [APPROVE, { id, v: 2 ** 31 - 1 }, 'CONFLICT', parties.recipientSteward.apiKey],
      [APPROVE, { id, v: -1 }, 'CONFLICT', parties.recipientSteward.apiKey],
      [APPROVE, { id, v: 2 ** 31 }, 'BAD_USER_INPUT', parties.recipientSteward.apiKey],
      [DECLINE, { id, v: 1, r: 'x'.repeat(100_000) }, 'BAD_USER_INPUT', auditor.apiKey],
      [DECLINE, { id, v: 1, r: 'bell\u0007' }, 'BAD_USER_INPUT', auditor.apiKey],
      [DECLINE, { id, v: 1, r: '' }, 'BAD_USER_INPUT', auditor.apiKey],
      [DECLINE, { id, v: 7, r: 'no' }, 'FORBIDDEN', parties.providerSteward.apiKey],
    ];
    for (const [query, variables, code, key] of cases) {
      const result = await broker.gql(key, query, variables);
      expect({
        variables: Object.keys(variables),
        status: result.status < 500,
        code: result.errors?.[0]?.extensions?.code,
      }).toEqual({ variables: Object.keys(variables), status: true, code });
    }
    const [row] = await broker.query<{ revoked_at: Date | null; in_force_version: number }>(
      `SELECT revoked_at, in_force_version FROM agreement WHERE id = $1`,
      [id],
    );
    expect(row).toEqual({ revoked_at: null, in_force_version: 1 });
    const events = await broker.query<{ decision: string; action: string }>(
      `SELECT decision, action FROM audit_event WHERE seq > $1 ORDER BY seq`,
      [seq],
    );
    expect(events.every((e) => e.decision === 'DENY')).toBe(true);
    expect(events.length).toBe(cases.length);
    expect(await broker.verifyAuditChain(auditor.apiKey)).toMatchObject({ valid: true });
  });

  it("revokes and deactivates a user of the revoking steward's agency at once, without a deadlock", async () => {
    const id = await propose({ title: 'Revoked while a user is deactivated' });
    await broker.gqlOk(parties.recipientSteward.apiKey, APPROVE, { id, v: 1 });
    const user = await broker.createUser({ agencyId: parties.recipientAgency.id, role: 'ANALYST' });
    /** Whether `n` statements of the broker wait for a lock. */
    const waitingFor = async (n: number) => {
      const [{ w }] = await broker.query<{ w: number }>(
        `SELECT count(*)::int AS w FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
      );
      return w >= n;
    };
    // The deactivation locks the agency, then waits on its stewards (held here); the revocation then
    // checks its keys (revoked_by: the steward; revoked_by_agency_id: the agency) while it waits.
    const holder = new Client({ connectionString: broker.config.DATABASE_URL });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM app_user WHERE id = $1 FOR NO KEY UPDATE`, [
        parties.recipientSteward.id,
      ]);
      const deactivating = broker.gql(
        parties.recipientSteward.apiKey,
        `mutation($id: ID!) { deactivateUser(id: $id) { id } }`,
        { id: user.id },
      );
      while (!(await waitingFor(1))) await new Promise((r) => setTimeout(r, 10));
      const revoking = broker.gql(parties.recipientSteward.apiKey, REVOKE, { id, r: 'stop' });
      // The revocation commits at once, not waiting on the deactivation (it did, and once the
      // steward's row was let go the two deadlocked, one of them failing with a 500).
      let revoked = false;
      void revoking.then(() => (revoked = true));
      while (!revoked && !(await waitingFor(2))) await new Promise((r) => setTimeout(r, 10));
      await holder.query('COMMIT');
      const results = await Promise.all([deactivating, revoking]);
      expect(results.map((r) => r.errors?.[0]?.extensions?.code ?? 'OK')).toEqual(['OK', 'OK']);
      expect(revoked).toBe(true);
    } finally {
      await holder.end();
    }
  });
});
