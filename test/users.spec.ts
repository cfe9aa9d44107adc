import { TestBroker } from '@broker/testing';

const CREATE = `mutation($input: CreateUserInput!) { createUser(input: $input) { user { id role } apiKey } }`;
const DEACTIVATE = `mutation($id: ID!) { deactivateUser(id: $id) { id active deactivatedAt } }`;

interface Refusal {
  code?: string;
  reason?: unknown;
}

/** The code and reason of the first error of an answer. */
function refusalOf(result: { errors?: { extensions?: Record<string, unknown> }[] }): Refusal {
  const extensions = result.errors?.[0]?.extensions ?? {};
  return { code: extensions.code as string | undefined, reason: extensions.reason };
}

describe('users: who creates, invites and deactivates whom (DESIGN §4.1 "Users")', () => {
  let broker: TestBroker;
  let sheriff: { id: string };
  let research: { id: string };
  let oversight: string;

  /** DENY events appended since `seq`, as (action, reason, actor). */
  async function denialsSince(seq: number) {
    return broker.query<{ action: string; reason: string; actor_user_id: string | null; details: unknown }>(
      `SELECT action, reason, actor_user_id, details FROM audit_event WHERE seq > $1 AND decision = 'DENY' ORDER BY seq`,
      [seq],
    );
  }
  async function head(): Promise<number> {
    const [row] = await broker.query<{ seq: number }>(
      `SELECT coalesce(max(seq), 0)::int AS seq FROM audit_event`,
    );
    return row.seq;
  }

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'users' });
    sheriff = await broker.createAgency('Sheriff');
    research = await broker.createAgency('Research office');
    oversight = await broker.oversightAgency();
  });
  afterAll(() => broker.close());

  it("refuses the operator's attempt to become a reader at its first step, and audits it", async () => {
    const before = await head();
    // Step 1 of the attack: an ANALYST in the recipient agency.
    const analyst = await broker.gql(broker.operatorKey, CREATE, {
      input: { agencyId: research.id, email: 'mole@research.example', role: 'ANALYST' },
    });
    expect(analyst.data).toBeNull();
    expect(refusalOf(analyst)).toEqual({ code: 'FORBIDDEN', reason: 'ROLE' });
    // Step 2: a STEWARD of an agency that has one already.
    await broker.createUser({ agencyId: sheriff.id, role: 'STEWARD' });
    const steward = await broker.gql(broker.operatorKey, CREATE, {
      input: { agencyId: sheriff.id, email: 'mole@sheriff.example', role: 'STEWARD' },
    });
    expect(refusalOf(steward)).toEqual({ code: 'FORBIDDEN', reason: 'ROLE' });
    const rows = await broker.query(`SELECT 1 FROM app_user WHERE email LIKE 'mole@%'`);
    expect(rows).toEqual([]);
    const denials = await denialsSince(before);
    expect(denials.map((d) => [d.action, d.reason])).toEqual([
      ['REQUEST_REFUSED', 'ROLE'],
      ['REQUEST_REFUSED', 'ROLE'],
    ]);
    expect(denials[0].actor_user_id).toEqual(expect.any(String));
    expect(denials[0].details).toMatchObject({ operations: ['createUser'], ids: [research.id] });
  });

  it('makes every key the operator creates an invitation: only me and rotateApiKey until rotated', async () => {
    const agency = await broker.createAgency('Probation');
    const invited = await broker.gqlOk<{ createUser: { user: { id: string }; apiKey: string } }>(
      broker.operatorKey,
      CREATE,
      { input: { agencyId: agency.id, email: 'chief@probation.example', role: 'STEWARD' } },
    );
    const invitation = invited.createUser.apiKey;
    const me = await broker.gqlOk(invitation, '{ me { id invitationPending active } }');
    expect(me.me).toEqual({ id: invited.createUser.user.id, invitationPending: true, active: true });
    for (const query of ['{ datasets { id } }', '{ users { id } }', '{ agreements { id } }']) {
      expect(refusalOf(await broker.gql(invitation, query))).toEqual({ code: 'FORBIDDEN', reason: 'ROLE' });
    }
    const data = await broker.gql(invitation, '{ x { id } }', undefined, '/data/graphql');
    expect(data.status).toBe(403);
    expect(data.data).toBeNull();
    expect(refusalOf(data)).toEqual({ code: 'FORBIDDEN', reason: 'ROLE' });

    const rotated = await broker.rotate(invitation);
    expect(refusalOf(await broker.gql(invitation, '{ me { id } }'))).toEqual({
      code: 'UNAUTHENTICATED',
      reason: 'INVALID',
    });
    const after = await broker.gqlOk(rotated, '{ me { invitationPending } users { email } }');
    expect(after.me.invitationPending).toBe(false);
    expect(after.users).toEqual([{ email: 'chief@probation.example' }]);
    const [event] = await broker.query(
      `SELECT reason FROM audit_event WHERE action = 'API_KEY_ROTATED' AND actor_user_id = $1`,
      [invited.createUser.user.id],
    );
    expect(event).toEqual({ reason: 'invitation accepted' });
  });

  it('lets a steward create and deactivate its own agency users only; never its last steward', async () => {
    const agency = await broker.createAgency('Courts');
    const first = await broker.createUser({ agencyId: agency.id, role: 'STEWARD' });
    const other = await broker.stewardOf(sheriff.id);
    const created = await broker.createAs(first.apiKey, { agencyId: agency.id, role: 'ANALYST' });
    // A steward's key is no invitation: it works at once.
    expect((await broker.gqlOk(created.apiKey, '{ me { role } }')).me).toEqual({ role: 'ANALYST' });
    // Another agency's steward: not found, as for an id that does not exist.
    for (const key of [other.apiKey]) {
      const res = await broker.gql(key, DEACTIVATE, { id: created.id });
      expect(refusalOf(res)).toEqual({ code: 'NOT_FOUND', reason: 'NOT_PARTY' });
    }
    const unknown = await broker.gql(first.apiKey, DEACTIVATE, {
      id: '00000000-0000-4000-8000-000000000000',
    });
    expect(refusalOf(unknown)).toEqual({ code: 'NOT_FOUND', reason: 'NOT_PARTY' });
    // An operator's id answers the same: no steward can tell which ids are the operators'.
    const [operator] = await broker.query<{ id: string }>(
      `SELECT id FROM app_user WHERE role = 'OPERATOR' LIMIT 1`,
    );
    const operatorId = await broker.gql(first.apiKey, DEACTIVATE, { id: operator.id });
    expect(operatorId.errors).toEqual(unknown.errors);
    const malformed = await broker.gql(first.apiKey, DEACTIVATE, { id: "1' OR '1'='1" });
    expect(refusalOf(malformed).code).toBe('BAD_USER_INPUT');
    // The analyst itself, another role: refused by role.
    const byAnalyst = await broker.gql(created.apiKey, DEACTIVATE, { id: first.id });
    expect(refusalOf(byAnalyst)).toEqual({ code: 'FORBIDDEN', reason: 'ROLE' });

    const done = await broker.gqlOk(first.apiKey, DEACTIVATE, { id: created.id });
    expect(done.deactivateUser).toMatchObject({ id: created.id, active: false });
    expect(refusalOf(await broker.gql(created.apiKey, '{ me { id } }')).code).toBe('UNAUTHENTICATED');

    const last = await broker.gql(first.apiKey, DEACTIVATE, { id: first.id });
    expect(refusalOf(last)).toEqual({ code: 'FORBIDDEN', reason: 'ROLE' });
    const second = await broker.createAs(first.apiKey, { agencyId: agency.id, role: 'STEWARD' });
    await broker.gqlOk(second.apiKey, DEACTIVATE, { id: first.id });
    expect(refusalOf(await broker.gql(first.apiKey, '{ me { id } }')).code).toBe('UNAUTHENTICATED');
  });

  it('recovers a locked-out agency: an AUDITOR deactivates its STEWARD, then the OPERATOR invites one', async () => {
    const agency = await broker.createAgency('Public defender');
    const steward = await broker.createUser({ agencyId: agency.id, role: 'STEWARD' });
    const auditor = await broker.createUser({ role: 'AUDITOR' });
    const again = { input: { agencyId: agency.id, email: 'new.chief@pd.example', role: 'STEWARD' } };
    expect(refusalOf(await broker.gql(broker.operatorKey, CREATE, again))).toEqual({
      code: 'FORBIDDEN',
      reason: 'ROLE',
    });
    // The operator may not deactivate a steward itself.
    const byOperator = await broker.gql(broker.operatorKey, DEACTIVATE, { id: steward.id });
    expect(refusalOf(byOperator)).toEqual({ code: 'FORBIDDEN', reason: 'ROLE' });
    await broker.gqlOk(auditor.apiKey, DEACTIVATE, { id: steward.id });
    const invited = await broker.gqlOk(broker.operatorKey, CREATE, again);
    expect(invited.createUser.user.role).toBe('STEWARD');
    const events = await broker.query<{ action: string; actor_user_id: string }>(
      `SELECT action, actor_user_id FROM audit_event WHERE action = 'USER_DEACTIVATED' AND reason LIKE $1`,
      [`%${steward.id}%`],
    );
    expect(events).toEqual([{ action: 'USER_DEACTIVATED', actor_user_id: auditor.id }]);
  });

  it('puts AUDITORs in an oversight agency, which is party to no agreement', async () => {
    const inAgency = await broker.gql(broker.operatorKey, CREATE, {
      input: { agencyId: sheriff.id, email: 'aud@sheriff.example', role: 'AUDITOR' },
    });
    expect(refusalOf(inAgency)).toEqual({ code: 'FORBIDDEN', reason: 'ROLE' });
    const stewardThere = await broker.gql(broker.operatorKey, CREATE, {
      input: { agencyId: oversight, email: 's@oversight.example', role: 'STEWARD' },
    });
    expect(refusalOf(stewardThere)).toEqual({ code: 'FORBIDDEN', reason: 'ROLE' });
    const steward = await broker.stewardOf(sheriff.id);
    const proposal = await broker.gql(
      steward.apiKey,
      `mutation($input: AgreementInput!) { proposeAgreement(input: $input) { id } }`,
      {
        input: {
          title: 'To oversight',
          providerAgencyId: sheriff.id,
          recipientAgencyId: oversight,
          purposes: [],
          validFrom: '2026-01-01T00:00:00Z',
          validUntil: '2027-01-01T00:00:00Z',
          grants: [],
        },
      },
    );
    expect(proposal.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('keeps e-mails unique within an agency, and says nothing about other agencies', async () => {
    const steward = await broker.stewardOf(research.id);
    const sheriffSteward = await broker.stewardOf(sheriff.id);
    const input = (agencyId: string) => ({
      input: { agencyId, email: 'Same.Person@county.example', role: 'ANALYST' },
    });
    await broker.gqlOk(sheriffSteward.apiKey, CREATE, input(sheriff.id));
    await broker.gqlOk(steward.apiKey, CREATE, input(research.id));
    const dup = await broker.gql(steward.apiKey, CREATE, {
      input: { agencyId: research.id, email: 'same.person@county.example', role: 'STEWARD' },
    });
    expect(refusalOf(dup)).toEqual({ code: 'CONFLICT', reason: 'INVALID' });
    expect(dup.errors?.[0].message).toBe('A user with this e-mail exists in this agency');
  });

  it('lists users by visibility, never with a key or its hash', async () => {
    const steward = await broker.stewardOf(research.id);
    const auditor = await broker.createUser({ role: 'AUDITOR' });
    const mine = await broker.gqlOk(steward.apiKey, '{ users { email role agency { id } active } }');
    expect(new Set(mine.users.map((u: { agency: { id: string } }) => u.agency.id))).toEqual(
      new Set([research.id]),
    );
    const all = await broker.gqlOk(auditor.apiKey, '{ users { id } }');
    const [count] = await broker.query<{ n: number }>(`SELECT count(*)::int AS n FROM app_user`);
    expect(all.users).toHaveLength(count.n);
    const analyst = await broker.createUser({ agencyId: research.id, role: 'ANALYST' });
    expect(refusalOf(await broker.gql(analyst.apiKey, '{ users { id } }'))).toEqual({
      code: 'FORBIDDEN',
      reason: 'ROLE',
    });
    const schema = await broker.gqlOk(broker.operatorKey, '{ __type(name: "User") { fields { name } } }');
    const names = schema.__type.fields.map((f: { name: string }) => f.name);
    expect(names.filter((n: string) => /key|hash/i.test(n))).toEqual([]);
  });

  it('stops a deactivated or rotated key on the next request of another instance', async () => {
    const other = await broker.startAnother();
    try {
      const analyst = await broker.createUser({ agencyId: research.id, role: 'ANALYST' });
      const steward = await broker.stewardOf(research.id);
      expect((await other.gqlOk(analyst.apiKey, '{ me { id } }')).me.id).toBe(analyst.id);
      const rotated = await broker.rotate(analyst.apiKey);
      expect(refusalOf(await other.gql(analyst.apiKey, '{ me { id } }')).code).toBe('UNAUTHENTICATED');
      expect((await other.gqlOk(rotated, '{ me { id } }')).me.id).toBe(analyst.id);
      await broker.gqlOk(steward.apiKey, DEACTIVATE, { id: analyst.id });
      expect(refusalOf(await other.gql(rotated, '{ me { id } }')).code).toBe('UNAUTHENTICATED');
      const dataPlane = await other.gql(rotated, '{ x }', undefined, '/data/graphql');
      expect(dataPlane.status).toBe(401);
    } finally {
      await other.stop();
    }
  });

  it('never lets the last OPERATOR be deactivated', async () => {
    const [op] = await broker.query<{ id: string }>(`SELECT id FROM app_user WHERE role = 'OPERATOR'`);
    const res = await broker.gql(broker.operatorKey, DEACTIVATE, { id: op.id });
    expect(refusalOf(res)).toEqual({ code: 'FORBIDDEN', reason: 'ROLE' });
    const second = await broker.createUser({ role: 'OPERATOR' });
    await broker.gqlOk(second.apiKey, DEACTIVATE, { id: op.id });
    expect(refusalOf(await broker.gql(broker.operatorKey, '{ me { id } }')).code).toBe('UNAUTHENTICATED');
  });
});
