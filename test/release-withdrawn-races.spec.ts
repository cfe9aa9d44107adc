import { AuditService, ReleaseWithdrawnError } from '@broker/audit';
import { PolicyCache } from '@broker/data-plane';
import { TestBroker } from '@broker/testing';
import { type CasesInput, casesSharing } from './cases-sharing';

const ROWS_Q = `query($a: ID) { cases(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { case_id } } }`;
const TWO_Q = `query($a: ID) { x: cases(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { case_id } }
  y: cases(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { case_id } } }`;
const COUNT_Q = `query($a: ID) { cases_aggregate(purpose: RECIDIVISM_EVALUATION, agreement: $a, groupBy: [case_id]) { noise } }`;
const REVOKE = `mutation($id: ID!) { revokeAgreement(id: $id, reason: "stop") { status } }`;
const DEACTIVATE = `mutation($id: ID!) { deactivateUser(id: $id) { id } }`;

/** The error codes of the contract (DESIGN §4): a deadlock would be none of them. */
const CONTRACT_CODES = ['UNAUTHENTICATED', 'FORBIDDEN', 'BAD_USER_INPUT', 'NOT_FOUND', 'CONFLICT'];

/** The one 503 a data request may answer here: its agreements changed under every decision. */
const POLICY_MOVED =
  'The agreements in force changed while the request was decided, so nothing was read: try again';

/**
 * Everything that withdraws a release, at once, on two instances: agreements approved and revoked,
 * users deactivated, keys rotated in a loop, while analysts read pages, counts and exports through
 * both. No lock is ever taken in an order that deadlocks (a deadlock would fail an append, a 503
 * that says the access could not be recorded, or a control-plane change, a 500); every answer is one
 * of the contract's; and the chain never shows a release after the change that withdrew it.
 */
describe('releases withdrawn under load, on two instances', () => {
  let broker: TestBroker;
  let other: TestBroker;
  let parties: Awaited<ReturnType<TestBroker['sharingParties']>>;
  let dataset: { id: string };

  let input: CasesInput;

  beforeAll(async () => {
    broker = await TestBroker.start({
      LABEL: 'release_withdrawn_races',
      AGGREGATE_DAILY_BUDGET: '100000',
      AGGREGATE_AGREEMENT_DAILY_BUDGET: '100000',
    });
    other = await broker.startAnother();
    ({ parties, dataset, input } = await casesSharing(
      broker,
      Array.from({ length: 40 }, (_, i) => `C${i}`),
    ));
  }, 120_000);
  afterEach(() => jest.restoreAllMocks());
  afterAll(async () => {
    await other?.stop();
    await broker?.close();
  });

  /** The data refusals since `seq` are `refused` DENY events, and the chain verifies. */
  const expectAuditedOnce = async (seq: number, refused: number) => {
    const [{ denied }] = await broker.query<{ denied: number }>(
      `SELECT count(*)::int AS denied FROM audit_event WHERE seq > $1 AND decision = 'DENY'
          AND action IN ('QUERY', 'EXPORT', 'AGGREGATE')`,
      [seq],
    );
    expect(denied).toBe(refused);
    const auditor = await broker.oversightAuditor();
    expect((await broker.verifyAuditChain(auditor.apiKey)).valid).toBe(true);
  };

  /**
   * Resolves once something was released under agreement `id` (and at least 150 ms passed), or after
   * 2 s: a loaded machine reads slowly.
   */
  const releasedUnder = async (id: string) => {
    for (let waited = 0; waited < 2000; waited += 50) {
      const [released] = await broker.query(
        `SELECT 1 FROM audit_event WHERE agreement_id = $1 AND decision = 'ALLOW'
            AND action IN ('QUERY', 'EXPORT') LIMIT 1`,
        [id],
      );
      if (released && waited >= 150) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  /**
   * Data requests and control-plane changes whose answers are checked against the contract: what is
   * not, in `problems`; the data requests refused as FORBIDDEN (each audited), in `refusals.n`.
   */
  const contract = () => {
    const problems: string[] = [];
    const refusals = { n: 0 };
    /** A data request through `via`, its answer checked against the contract; its status. */
    const ask = async (
      via: TestBroker,
      apiKey: string,
      url: '/data/graphql' | '/data/export',
      q: string,
      a: string,
    ): Promise<number> => {
      const res = await via.http.inject({
        method: 'POST',
        url,
        headers: {
          authorization: `Bearer ${apiKey}`,
          'content-type': 'application/json',
          ...(url === '/data/export' ? { accept: 'text/csv' } : {}),
        },
        payload: JSON.stringify({ query: q, variables: { a } }),
      });
      const what = `${url} ${q.slice(8, 40)} → ${res.statusCode} ${res.body.slice(0, 200)}`;
      const status = res.statusCode;
      if (status === 401) return status;
      if (status === 503) {
        if (!res.body.includes(POLICY_MOVED)) problems.push(what);
        return status;
      }
      if (url === '/data/export' && status === 200) {
        if (!res.body.startsWith('case_id')) problems.push(what);
        return status;
      }
      if (url === '/data/export' && status === 403) {
        refusals.n++;
        return status;
      }
      if (status !== 200) {
        problems.push(what);
        return status;
      }
      const body = JSON.parse(res.body) as { data: unknown; errors?: { extensions?: { code?: string } }[] };
      if (body.data !== null) return status;
      if (body.errors?.[0]?.extensions?.code === 'FORBIDDEN') refusals.n++;
      else problems.push(what);
      return 403;
    };
    /** A control-plane change through `via`: done, or refused as the contract says, never a 500. */
    const change = async (
      via: TestBroker,
      apiKey: string,
      query: string,
      variables: Record<string, unknown>,
    ) => {
      const res = await via.gql(apiKey, query, variables);
      const code = res.errors?.[0]?.extensions?.code;
      if (res.status >= 500 || (res.errors?.length && !CONTRACT_CODES.includes(String(code)))) {
        problems.push(`${query.slice(0, 40)} → ${res.status} ${JSON.stringify(res.errors)}`);
      }
      return res;
    };
    return { ask, change, problems, refusals };
  };

  it('deadlocks nowhere, answers as the contract says, and records no release after its withdrawal', async () => {
    const activate = (overrides: Record<string, unknown>) =>
      broker.activateAgreement(
        parties.providerSteward.apiKey,
        parties.recipientSteward.apiKey,
        input(overrides),
      );
    const stable = await activate({ title: 'Stays in force' });
    const counted = await activate({
      title: 'Counts only',
      grants: [{ datasetId: dataset.id, access: 'AGGREGATE_ONLY', fields: [{ name: 'case_id' }] }],
    });
    const instances = [broker, other];
    const { ask, change, problems, refusals } = contract();
    let done = false;
    const seq = await broker.auditHeadSeq();

    const loops: Promise<void>[] = [];
    // Analysts read through both instances: pages (one root field and two), counts and exports,
    // under the agreement that stays and under whichever is being revoked.
    let churned = stable;
    const readers = [
      parties.analyst,
      await broker.createUser({ agencyId: parties.recipientAgency.id, role: 'ANALYST' }),
    ];
    for (const [n, reader] of readers.entries()) {
      loops.push(
        (async () => {
          for (let i = 0; !done; i++) {
            const via = instances[(i + n) % 2];
            await ask(via, reader.apiKey, '/data/graphql', ROWS_Q, i % 2 ? stable : churned);
            await ask(via, reader.apiKey, '/data/graphql', TWO_Q, stable);
            await ask(via, reader.apiKey, '/data/graphql', COUNT_Q, counted);
            await ask(via, reader.apiKey, '/data/export', ROWS_Q, i % 2 ? stable : churned);
          }
        })(),
      );
    }
    // Agreements come into force and are revoked, through either instance.
    const revoked: string[] = [];
    loops.push(
      (async () => {
        for (let i = 0; !done; i++) {
          const id = await activate({ title: `Churned ${i}` });
          churned = id;
          // In force until something was released under it, so that its revocation races them.
          await releasedUnder(id);
          await change(instances[i % 2], parties.recipientSteward.apiKey, REVOKE, { id });
          revoked.push(id);
        }
      })(),
    );
    // Analysts who read and are deactivated while they read.
    const deactivated: string[] = [];
    loops.push(
      (async () => {
        for (let i = 0; !done; i++) {
          const user = await broker.createUser({ agencyId: parties.recipientAgency.id, role: 'ANALYST' });
          const reading = Promise.all([
            ask(instances[i % 2], user.apiKey, '/data/graphql', TWO_Q, stable),
            ask(instances[(i + 1) % 2], user.apiKey, '/data/export', ROWS_Q, stable),
            ask(instances[i % 2], user.apiKey, '/data/graphql', COUNT_Q, counted),
          ]);
          await change(instances[(i + 1) % 2], parties.recipientSteward.apiKey, DEACTIVATE, { id: user.id });
          deactivated.push(user.id);
          await reading;
        }
      })(),
    );
    // Users who rotate their keys in a loop, as fast as they can, one of them while it reads.
    const rotating = [
      await broker.createUser({ agencyId: parties.recipientAgency.id, role: 'ANALYST' }),
      await broker.createUser({ agencyId: parties.providerAgency.id, role: 'ANALYST' }),
    ];
    for (const [n, user] of rotating.entries()) {
      loops.push(
        (async () => {
          let key = user.apiKey;
          for (let i = 0; !done; i++) {
            const via = instances[(i + n) % 2];
            const reading =
              n === 0 ? ask(instances[(i + 1) % 2], key, '/data/graphql', ROWS_Q, stable) : null;
            const res = await change(via, key, `mutation { rotateApiKey { apiKey } }`, {});
            key = (res.data as { rotateApiKey: { apiKey: string } }).rotateApiKey.apiKey;
            await reading;
          }
        })(),
      );
    }

    await new Promise((r) => setTimeout(r, 4000));
    done = true;
    await Promise.all(loops);

    expect(problems).toEqual([]);
    expect(revoked.length).toBeGreaterThan(2);
    expect(deactivated.length).toBeGreaterThan(2);
    // The chain never shows a release under an agreement after its revocation, nor one to a user
    // after its deactivation.
    const late = await broker.query<{ seq: string; action: string }>(
      `SELECT e.seq::text AS seq, e.action FROM audit_event e
         JOIN audit_event w ON w.seq > $1 AND e.seq > w.seq
          AND ((w.action = 'AGREEMENT_REVOKED' AND e.agreement_id = w.agreement_id)
            OR (w.action = 'USER_DEACTIVATED' AND w.details->'accounts' ? e.actor_user_id::text))
        WHERE e.decision = 'ALLOW' AND e.action IN ('QUERY', 'EXPORT', 'AGGREGATE')`,
      [seq],
    );
    expect(late).toEqual([]);
    // Releases were recorded all along, under the agreements churned too.
    const [{ n }] = await broker.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_event WHERE seq > $1 AND decision = 'ALLOW'
          AND action IN ('QUERY', 'EXPORT', 'AGGREGATE') AND agreement_id = ANY($2::uuid[])`,
      [seq, revoked],
    );
    expect(n).toBeGreaterThan(0);
    // Every refusal, decided again after a withdrawal or not, was audited, once.
    expect(refusals.n).toBeGreaterThan(0);
    await expectAuditedOnce(seq, refusals.n);
  }, 120_000);

  it("withdraws, of two recipients churning agreements on two instances, each one's releases only, deadlocks nowhere, and disturbs a third agency not at all", async () => {
    const instances = [broker, other];
    const { ask, change, problems, refusals } = contract();
    let done = false;
    const seq = await broker.auditHeadSeq();
    /** A recipient of the provider's cases: its steward, an analyst, and an agreement that stays in force. */
    const recipient = async (name: string | null) => {
      const agency = name ? await broker.createAgency(name) : parties.recipientAgency;
      const steward = name
        ? await broker.createUser({ agencyId: agency.id, role: 'STEWARD' })
        : parties.recipientSteward;
      const analyst = await broker.createUser({ agencyId: agency.id, role: 'ANALYST' });
      const activate = (title: string) =>
        broker.activateAgreement(
          parties.providerSteward.apiKey,
          steward.apiKey,
          input({ title, recipientAgencyId: agency.id }),
        );
      return { agency, steward, analyst, activate, stable: await activate(`${name ?? 'Research'}: stays`) };
    };
    const churning = [await recipient(null), await recipient('Second recipient, churning')];
    const quiet = await recipient('Third recipient, quiet');
    // On both instances: the agencies whose policy was loaded, and whose releases were withdrawn.
    const reloaded: string[] = [];
    const withdrawn: string[] = [];
    for (const instance of instances) {
      const policies = instance.app.get(PolicyCache);
      const reload = policies.reload.bind(policies);
      jest.spyOn(policies, 'reload').mockImplementation((agencyId, now) => {
        reloaded.push(agencyId);
        return reload(agencyId, now);
      });
      const audit = instance.app.get(AuditService);
      const appendGroup = audit.appendGroup.bind(audit);
      jest.spyOn(audit, 'appendGroup').mockImplementation((events) =>
        appendGroup(events).catch((error: unknown) => {
          if (error instanceof ReleaseWithdrawnError) {
            for (const i of error.positions) withdrawn.push(events[i].onlyIf!.agencyId);
          }
          throw error;
        }),
      );
    }
    const loops: Promise<void>[] = [];
    const revoked: string[][] = [[], []];
    for (const [n, r] of churning.entries()) {
      let churned = r.stable;
      // Its analyst reads through both instances, pages of one and two root fields and exports, under
      // the agreement that stays and under whichever is being revoked.
      loops.push(
        (async () => {
          for (let i = 0; !done; i++) {
            const via = instances[(i + n) % 2];
            await ask(via, r.analyst.apiKey, '/data/graphql', ROWS_Q, i % 2 ? r.stable : churned);
            await ask(via, r.analyst.apiKey, '/data/graphql', TWO_Q, r.stable);
            await ask(via, r.analyst.apiKey, '/data/export', ROWS_Q, i % 2 ? r.stable : churned);
          }
        })(),
      );
      // Its steward and the provider's bring agreements into force and revoke them, through either
      // instance, each in force until something was released under it (at most 2 s).
      loops.push(
        (async () => {
          for (let i = 0; !done; i++) {
            const id = await r.activate(`Churned ${n}.${i}`);
            churned = id;
            await releasedUnder(id);
            await change(instances[(i + n) % 2], r.steward.apiKey, REVOKE, { id });
            revoked[n].push(id);
          }
        })(),
      );
    }
    // A third agency's analyst reads through both instances: its releases share the groups of the
    // others', and none is ever withdrawn or refused.
    const quietStatuses: number[] = [];
    loops.push(
      (async () => {
        for (let i = 0; !done; i++) {
          const via = instances[i % 2];
          quietStatuses.push(await ask(via, quiet.analyst.apiKey, '/data/graphql', TWO_Q, quiet.stable));
          quietStatuses.push(await ask(via, quiet.analyst.apiKey, '/data/export', ROWS_Q, quiet.stable));
        }
      })(),
    );
    // Agencies created while all of this goes on, each with its stamp, and read from at once.
    const created: string[] = [];
    loops.push(
      (async () => {
        for (let i = 0; !done; i++) {
          const fresh = await recipient(`Created while reading ${i}`);
          quietStatuses.push(
            await ask(instances[i % 2], fresh.analyst.apiKey, '/data/graphql', ROWS_Q, fresh.stable),
          );
          created.push(fresh.agency.id);
        }
      })(),
    );

    await new Promise((resolve) => setTimeout(resolve, 5000));
    done = true;
    await Promise.all(loops);

    expect(problems).toEqual([]);
    expect(revoked.map((ids) => ids.length > 1)).toEqual([true, true]);
    expect(created.length).toBeGreaterThan(0);
    // Not one request of the quiet agencies was refused or decided again to its end.
    expect(quietStatuses.length).toBeGreaterThan(0);
    expect(quietStatuses.filter((s) => s !== 200)).toEqual([]);
    // Releases of both churning recipients were withdrawn, and none of any other agency; nor was
    // the quiet agency's policy loaded again (once per instance at most, on its first request).
    const quietIds = new Set([quiet.agency.id, ...created]);
    expect(new Set(withdrawn.filter((id) => !quietIds.has(id)))).toEqual(
      new Set(churning.map((r) => r.agency.id)),
    );
    expect(withdrawn.filter((id) => quietIds.has(id))).toEqual([]);
    expect(reloaded.filter((id) => id === quiet.agency.id).length).toBeLessThanOrEqual(2);
    // Every agency has its stamp.
    const [{ missing }] = await broker.query<{ missing: number }>(
      `SELECT count(*)::int AS missing FROM agency a
        WHERE NOT EXISTS (SELECT 1 FROM agency_policy_stamp p WHERE p.agency_id = a.id)`,
    );
    expect(missing).toBe(0);
    // The chain never shows a release under an agreement after its revocation.
    const late = await broker.query<{ seq: string }>(
      `SELECT e.seq::text AS seq FROM audit_event e
         JOIN audit_event w ON w.seq > $1 AND e.seq > w.seq
          AND w.action = 'AGREEMENT_REVOKED' AND e.agreement_id = w.agreement_id
        WHERE e.decision = 'ALLOW' AND e.action IN ('QUERY', 'EXPORT', 'AGGREGATE')`,
      [seq],
    );
    expect(late).toEqual([]);
    // Releases were recorded under each recipient's churned agreements.
    for (const ids of revoked) {
      const [{ n }] = await broker.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM audit_event WHERE seq > $1 AND decision = 'ALLOW'
            AND action IN ('QUERY', 'EXPORT') AND agreement_id = ANY($2::uuid[])`,
        [seq, ids],
      );
      expect(n).toBeGreaterThan(0);
    }
    // Every refusal was audited, once.
    await expectAuditedOnce(seq, refusals.n);
  }, 120_000);
});
