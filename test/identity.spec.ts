import { TestBroker } from '@broker/testing';

describe('identity: API keys, roles, agencies, users, purposes', () => {
  let broker: TestBroker;
  let sheriff: { id: string };
  let courts: { id: string };
  let steward: { id: string; apiKey: string; email: string };
  let analyst: { id: string; apiKey: string };
  let auditor: { id: string; apiKey: string };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'identity' });
    sheriff = await broker.createAgency('County Sheriff', 'law_enforcement');
    courts = await broker.createAgency('Superior Court', 'courts');
    steward = await broker.createUser({ agencyId: sheriff.id, role: 'STEWARD' });
    analyst = await broker.createUser({ agencyId: sheriff.id, role: 'ANALYST' });
    auditor = await broker.createUser({ role: 'AUDITOR' });
  });
  afterAll(() => broker.close());

  it('authenticates the bootstrap operator with BROKER_BOOTSTRAP_TOKEN', async () => {
    const data = await broker.gqlOk(broker.operatorKey, '{ me { email role agency { id } } }');
    expect(data.me).toEqual({ email: 'operator@broker.local', role: 'OPERATOR', agency: null });
  });

  it('takes any BROKER_BOOTSTRAP_TOKEN as the operator key, a short one too, and keeps no whole one', async () => {
    const short = await TestBroker.start({
      LABEL: 'identity_short_token',
      BROKER_BOOTSTRAP_TOKEN: 'op-token',
    });
    try {
      const data = await short.gqlOk('op-token', '{ me { email role } }');
      expect(data.me).toEqual({ email: 'operator@broker.local', role: 'OPERATOR' });
      const rows = await short.query<{ prefix: string }>(`SELECT prefix FROM api_key`);
      expect(rows).toEqual([{ prefix: 'op' }]);
    } finally {
      await short.close();
    }
  });

  it('creates the bootstrap operator once: a second start with the same token adds nobody', async () => {
    const { UserService } = await import('@broker/registry');
    expect(await broker.app.get(UserService).ensureBootstrapOperator(broker.operatorKey)).toBe(false);
    expect(await broker.app.get(UserService).ensureBootstrapOperator(`${broker.operatorKey}-other`)).toBe(
      false,
    );
    const rows = await broker.query(`SELECT count(*)::int AS n FROM app_user WHERE role = 'OPERATOR'`);
    expect(rows[0]).toEqual({ n: 1 });
  });

  it('refuses GraphQL over GET, which would put queries in URLs', async () => {
    const res = await broker.http.inject({
      method: 'GET',
      url: '/graphql?query=%7Bme%7Bid%7D%7D',
      headers: { authorization: `Bearer ${broker.operatorKey}` },
    });
    expect(res.statusCode).toBe(405);
    expect(JSON.parse(res.body).errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('refuses requests without a key, with an unknown key, or with a malformed header', async () => {
    for (const key of [null, 'dsb_not-a-real-key-at-all-0000000000000', broker.operatorKey + 'x']) {
      const res = await broker.gql(key, '{ me { id } }');
      expect(res.status).toBe(401);
      expect(res.data).toBeNull();
      expect(res.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    }
    const raw = await broker.http.inject({
      method: 'POST',
      url: '/graphql',
      headers: { authorization: `Basic ${broker.operatorKey}` },
      payload: { query: '{ me { id } }' },
    });
    expect(raw.statusCode).toBe(401);
  });

  it('stores keys only as hashes and shows them once', async () => {
    const rows = await broker.query<{ key_hash: Buffer; prefix: string }>(
      `SELECT key_hash, prefix FROM api_key WHERE user_id = $1 AND revoked_at IS NULL`,
      [steward.id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].key_hash.length).toBe(32);
    expect(rows[0].key_hash.toString('utf8')).not.toContain(steward.apiKey.slice(4, 20));
    expect(steward.apiKey).toMatch(/^dsb_[A-Za-z0-9_-]{43}$/);
    expect(steward.apiKey.startsWith(rows[0].prefix)).toBe(true);
  });

  it('answers me with the caller and its agency', async () => {
    const data = await broker.gqlOk(steward.apiKey, '{ me { id role agency { id name } } }');
    expect(data.me).toEqual({
      id: steward.id,
      role: 'STEWARD',
      agency: { id: sheriff.id, name: 'County Sheriff' },
    });
  });

  it('lets only the operator create agencies and purposes', async () => {
    for (const key of [steward.apiKey, analyst.apiKey, auditor.apiKey]) {
      const a = await broker.gql(key, `mutation { createAgency(input: { name: "Rogue" }) { id } }`);
      expect(a.errors?.[0].extensions?.code).toBe('FORBIDDEN');
      expect(a.data).toBeNull();
      const p = await broker.gql(
        key,
        `mutation { definePurpose(input: { code: "ROGUE_USE", description: "x" }) { id } }`,
      );
      expect(p.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    }
    const agencies = await broker.gqlOk(broker.operatorKey, '{ agencies { name } }');
    expect(agencies.agencies.map((a: { name: string }) => a.name)).toEqual([
      'County Sheriff',
      expect.stringMatching(/^Oversight board /),
      'Superior Court',
    ]);
  });

  it('refuses duplicate agency names, whatever their case, with CONFLICT', async () => {
    const res = await broker.gql(
      broker.operatorKey,
      `mutation { createAgency(input: { name: "county sheriff" }) { id } }`,
    );
    expect(res.errors?.[0].extensions?.code).toBe('CONFLICT');
  });

  it('defines purposes with valid codes only', async () => {
    const ok = await broker.gqlOk(
      broker.operatorKey,
      `mutation { definePurpose(input: { code: "RECIDIVISM_EVALUATION", description: "Evaluate re-entry programs" }) { code description } }`,
    );
    expect(ok.definePurpose).toEqual({
      code: 'RECIDIVISM_EVALUATION',
      description: 'Evaluate re-entry programs',
    });
    for (const code of ['re', 'lower_case', 'AB', "X'; DROP TABLE purpose; --", 'A'.repeat(70)]) {
      const res = await broker.gql(
        broker.operatorKey,
        `mutation($c: String!) { definePurpose(input: { code: $c, description: "d" }) { id } }`,
        { c: code },
      );
      expect(res.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    }
    const dup = await broker.gql(
      broker.operatorKey,
      `mutation { definePurpose(input: { code: "RECIDIVISM_EVALUATION", description: "again" }) { id } }`,
    );
    expect(dup.errors?.[0].extensions?.code).toBe('CONFLICT');
    const list = await broker.gqlOk(analyst.apiKey, '{ purposes { code } }');
    expect(list.purposes).toEqual([{ code: 'RECIDIVISM_EVALUATION' }]);
  });

  it('lets a steward create stewards and analysts of its own agency only', async () => {
    const created = await broker.gqlOk(
      steward.apiKey,
      `mutation { createUser(input: { email: "new.analyst@sheriff.example", role: ANALYST }) { user { role agency { id } } apiKey } }`,
    );
    expect(created.createUser.user).toEqual({ role: 'ANALYST', agency: { id: sheriff.id } });
    const other = await broker.gql(
      steward.apiKey,
      `mutation($a: ID!) { createUser(input: { agencyId: $a, email: "x@courts.example", role: ANALYST }) { apiKey } }`,
      { a: courts.id },
    );
    // Another agency's: answered as for an agency that does not exist.
    expect(other.errors?.[0].extensions).toEqual({ code: 'NOT_FOUND', reason: 'NOT_PARTY' });
    for (const role of ['OPERATOR', 'AUDITOR']) {
      const res = await broker.gql(
        steward.apiKey,
        `mutation { createUser(input: { email: "y@x.example", role: ${role} }) { apiKey } }`,
      );
      expect(res.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    }
    const byAnalyst = await broker.gql(
      analyst.apiKey,
      `mutation { createUser(input: { email: "z@x.example", role: ANALYST }) { apiKey } }`,
    );
    expect(byAnalyst.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    const rows = await broker.query(
      `SELECT count(*)::int AS n FROM app_user WHERE email IN ('x@courts.example','y@x.example','z@x.example')`,
    );
    expect(rows[0]).toEqual({ n: 0 });
  });

  it('validates users: e-mail, agency by role, unknown agencies, duplicates', async () => {
    const op = broker.operatorKey;
    const cases: [string, string, string][] = [
      [op, `{ email: "not-an-email", role: AUDITOR }`, 'BAD_USER_INPUT'],
      [op, `{ email: "s@x.example", role: STEWARD }`, 'BAD_USER_INPUT'],
      [op, `{ email: "o@x.example", role: OPERATOR, agencyId: "${sheriff.id}" }`, 'BAD_USER_INPUT'],
      [
        op,
        `{ email: "n@x.example", role: STEWARD, agencyId: "00000000-0000-4000-8000-000000000000" }`,
        'NOT_FOUND',
      ],
      [
        op,
        `{ email: "n@x.example", role: STEWARD, agencyId: "'; DROP TABLE app_user; --" }`,
        'BAD_USER_INPUT',
      ],
      [
        steward.apiKey,
        `{ email: "${steward.email?.toUpperCase()}", role: ANALYST, agencyId: "${sheriff.id}" }`,
        'CONFLICT',
      ],
    ];
    for (const [key, input, code] of cases) {
      const res = await broker.gql(key, `mutation { createUser(input: ${input}) { apiKey } }`);
      expect({ input, code: res.errors?.[0].extensions?.code }).toEqual({ input, code });
    }
  });

  it('issues a working key to a new user', async () => {
    const user = await broker.createUser({ agencyId: courts.id, role: 'STEWARD' });
    const me = await broker.gqlOk(user.apiKey, '{ me { id agency { name } } }');
    expect(me.me).toEqual({ id: user.id, agency: { name: 'Superior Court' } });
  });

  it('never suggests field names in errors', async () => {
    const res = await broker.gql(analyst.apiKey, '{ mee { id } }');
    expect(res.status).toBe(400);
    expect(res.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect(JSON.stringify(res.errors)).not.toMatch(/Did you mean/i);
  });
});
