import { AuditAction, AuditService, type ReleaseCondition, ReleaseWithdrawnError } from '@broker/audit';
import { Database, MOVE_POLICY_STAMP_SQL } from '@broker/core';
import { MAX_POLICY_LOADS, PolicyCache } from '@broker/data-plane';
import { TestBroker, withOversightText } from '@broker/testing';
import { type CasesInput, casesSharing } from './cases-sharing';

const ROWS_Q = `query($a: ID) { cases(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { case_id } } }`;
const TWO_Q = `query($a: ID) { x: cases(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { case_id } }
  y: cases(purpose: RECIDIVISM_EVALUATION, agreement: $a) { nodes { case_id } } }`;
const REVOKE = `mutation($id: ID!) { revokeAgreement(id: $id, reason: "stop") { status } }`;

/**
 * A change that withdraws access (a revocation, a key revoked, a window that ends) committed after a
 * request's rows were read and before their release was recorded: the release is never recorded, so
 * nothing leaves, and the request is decided again under the change. The check is in the audit
 * append itself, which holds the policy stamp from its check to its commit, so the chain never shows
 * a release after the change.
 */
describe('a release withdrawn between its read and its record', () => {
  let broker: TestBroker;
  let parties: Awaited<ReturnType<TestBroker['sharingParties']>>;
  let auditor: { apiKey: string };

  let activate: Awaited<ReturnType<typeof casesSharing>>['activate'];
  let input: CasesInput;
  let dataset: { id: string };
  const eventsSince = (seq: number) =>
    broker.query<{ seq: string; action: string; decision: string; agreement_id: string | null; at: Date }>(
      `SELECT seq::text AS seq, action, decision, agreement_id, at FROM audit_event WHERE seq > $1 ORDER BY seq`,
      [seq],
    );
  const post = (apiKey: string, url: '/data/graphql' | '/data/export', query: string, id: string) =>
    broker.http.inject({
      method: 'POST',
      url,
      headers: {
        authorization: `Bearer ${apiKey}`,
        'content-type': 'application/json',
        ...(url === '/data/export' ? { accept: 'text/csv' } : {}),
      },
      payload: JSON.stringify({ query, variables: { a: id } }),
    });

  /**
   * Runs `change` (committed) right before the next data-plane group commit's statement, the append
   * of a release already read; `times` appends in a row.
   */
  const beforeNextAppend = (change: () => Promise<void>, times = 1) => {
    const audit = broker.app.get(AuditService);
    const appendGroup = audit.appendGroup.bind(audit);
    const spy = jest.spyOn(audit, 'appendGroup');
    for (let i = 0; i < times; i++) {
      spy.mockImplementationOnce(async (events) => {
        await change();
        return appendGroup(events);
      });
    }
    return spy;
  };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'release_withdrawn' });
    ({ parties, activate, input, dataset } = await casesSharing(broker));
    auditor = await broker.oversightAuditor();
  });
  afterAll(() => broker.close());
  afterEach(() => jest.restoreAllMocks());

  it.each([
    ['one root field (answered in one statement)', ROWS_Q],
    ['two root fields (answered in a snapshot)', TWO_Q],
  ])('releases nothing of %s when the agreement is revoked before the release is recorded', async (_n, q) => {
    const id = await activate({ title: `Revoked before its record: ${q.length}` });
    // The instance holds the agency's policy at the stamp of now.
    expect(
      (await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql')).data,
    ).not.toBeNull();
    const seq = await broker.auditHeadSeq();
    const spy = beforeNextAppend(async () => {
      await broker.gqlOk(parties.recipientSteward.apiKey, REVOKE, { id });
    });
    const answer = await broker.gql(parties.analyst.apiKey, q, { a: id }, '/data/graphql');
    expect(answer.data).toBeNull();
    expect(answer.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    expect(JSON.stringify(answer)).not.toContain('C1');
    // The release was read and offered to the append, which refused it.
    expect(spy).toHaveBeenCalled();
    // In the chain: the revocation, then the request's refusal, decided again under it; no release.
    const events = await eventsSince(seq);
    expect(events.map((e) => [e.action, e.decision])).toEqual([
      ['AGREEMENT_REVOKED', 'ALLOW'],
      ['QUERY', 'DENY'],
    ]);
    expect((await broker.verifyAuditChain(auditor.apiKey)).valid).toBe(true);
  });

  it('releases nothing when the agreement is revoked through another instance before the record', async () => {
    const id = await activate({ title: 'Revoked elsewhere before its record' });
    const other = await broker.startAnother();
    try {
      const seq = await broker.auditHeadSeq();
      beforeNextAppend(async () => {
        await other.gqlOk(parties.recipientSteward.apiKey, REVOKE, { id });
      });
      const answer = await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql');
      expect(answer.data).toBeNull();
      expect(JSON.stringify(answer)).not.toContain('C1');
      const events = await eventsSince(seq);
      expect(events.filter((e) => e.decision === 'ALLOW').map((e) => e.action)).toEqual([
        'AGREEMENT_REVOKED',
      ]);
    } finally {
      await other.stop();
    }
  });

  it('releases nothing to a user deactivated before the release is recorded: 401, nothing audited under it', async () => {
    const id = await activate({ title: 'Deactivated before its record' });
    const analyst = await broker.createUser({ agencyId: parties.recipientAgency.id, role: 'ANALYST' });
    expect((await broker.gql(analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql')).data).not.toBeNull();
    const seq = await broker.auditHeadSeq();
    beforeNextAppend(async () => {
      await broker.gqlOk(
        parties.recipientSteward.apiKey,
        `mutation($id: ID!) { deactivateUser(id: $id) { id } }`,
        {
          id: analyst.id,
        },
      );
    });
    const res = await post(analyst.apiKey, '/data/graphql', ROWS_Q, id);
    expect(res.statusCode).toBe(401);
    expect(res.body).not.toContain('C1');
    const events = await eventsSince(seq);
    expect(events.map((e) => e.action)).toEqual(['USER_DEACTIVATED']);
  });

  it('releases nothing to a key rotated before the release is recorded', async () => {
    const id = await activate({ title: 'Rotated before its record' });
    const analyst = await broker.createUser({ agencyId: parties.recipientAgency.id, role: 'ANALYST' });
    let rotated = '';
    beforeNextAppend(async () => {
      rotated = await broker.rotate(analyst.apiKey);
    });
    const seq = await broker.auditHeadSeq();
    const res = await post(analyst.apiKey, '/data/graphql', ROWS_Q, id);
    expect(res.statusCode).toBe(401);
    expect(res.body).not.toContain('C1');
    expect((await eventsSince(seq)).map((e) => e.action)).toEqual(['API_KEY_ROTATED']);
    // The new key reads.
    const again = await broker.gql(rotated, ROWS_Q, { a: id }, '/data/graphql');
    expect(again.data!.cases.nodes).toHaveLength(2);
  });

  it("withdraws no release of the caller's, and moves no policy stamp, for another user's key rotated", async () => {
    const id = await activate({ title: 'Someone else rotates' });
    const elsewhere = await broker.createAgency('Elsewhere, rotating');
    await broker.createUser({ agencyId: elsewhere.id, role: 'STEWARD' });
    const other = await broker.createUser({ agencyId: elsewhere.id, role: 'ANALYST' });
    expect(
      (await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql')).data,
    ).not.toBeNull();
    const stamp = await currentStamp();
    const spy = beforeNextAppend(async () => {
      await broker.rotate(other.apiKey);
    });
    const answer = await broker.gql(parties.analyst.apiKey, TWO_Q, { a: id }, '/data/graphql');
    expect(answer.data!.x.nodes).toHaveLength(2);
    // Its release was recorded at its first append: nothing was withdrawn or decided again.
    expect(spy).toHaveBeenCalledTimes(1);
    expect(await currentStamp()).toBe(stamp);
  });

  /**
   * The statuses of requests of both paths (one root field, read alone; two, in a snapshot), four at
   * a time, 15 each at least, while `step` runs in a loop, at least `steps` times; and how many times
   * it ran.
   */
  const requestsWhile = async (id: string, step: () => Promise<void>, steps: number) => {
    let ran = 0;
    let done = false;
    const churning = (async () => {
      while (!done) {
        await step();
        ran++;
      }
    })();
    const statuses: number[] = [];
    try {
      await Promise.all(
        [ROWS_Q, TWO_Q, ROWS_Q, TWO_Q].map(async (q) => {
          for (let i = 0; i < 15 || ran < steps; i++) {
            statuses.push((await broker.gql(parties.analyst.apiKey, q, { a: id }, '/data/graphql')).status);
          }
        }),
      );
    } finally {
      done = true;
      await churning;
    }
    return { statuses, ran };
  };

  it("answers every agency's requests while a user of another rotates its own key in a loop", async () => {
    const id = await activate({ title: 'Rotation in a loop elsewhere' });
    const elsewhere = await broker.createAgency('Elsewhere, churning');
    await broker.createUser({ agencyId: elsewhere.id, role: 'STEWARD' });
    const churner = await broker.createUser({ agencyId: elsewhere.id, role: 'ANALYST' });
    const stamp = await currentStamp();
    let key = churner.apiKey;
    const { statuses, ran } = await requestsWhile(
      id,
      async () => {
        key = await broker.rotate(key);
      },
      11,
    );
    expect(ran).toBeGreaterThan(10);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(await currentStamp()).toBe(stamp);
  });

  /** Another recipient of the provider's cases, with its steward: its agreements are not the caller's. */
  const anotherRecipient = async (name: string) => {
    const agency = await broker.createAgency(name);
    const steward = await broker.createUser({ agencyId: agency.id, role: 'STEWARD' });
    const activateFor = (title: string) =>
      broker.activateAgreement(
        parties.providerSteward.apiKey,
        steward.apiKey,
        input({ title, recipientAgencyId: agency.id }),
      );
    return { agency, steward, activateFor };
  };
  const stampOf = async (agencyId: string) =>
    Number(
      (
        await broker.query<{ stamp: string }>(
          `SELECT stamp::text AS stamp FROM agency_policy_stamp WHERE agency_id = $1`,
          [agencyId],
        )
      )[0].stamp,
    );

  it("keeps a stamp per agency from its creation, and moves the recipient's (and the county's) only", async () => {
    const county = async () =>
      Number((await broker.query<{ s: string }>(`SELECT stamp::text AS s FROM policy_stamp`))[0].s);
    const other = await anotherRecipient('Elsewhere, stamped');
    // Created with its row, at the county's stamp.
    expect(await stampOf(other.agency.id)).toBe(await county());
    const before = await broker.query<{ agency_id: string; stamp: string }>(
      `SELECT agency_id, stamp::text AS stamp FROM agency_policy_stamp ORDER BY agency_id`,
    );
    const countyBefore = await county();
    const theirs = await other.activateFor('Theirs, stamped');
    const after = await broker.query<{ agency_id: string; stamp: string }>(
      `SELECT agency_id, stamp::text AS stamp FROM agency_policy_stamp ORDER BY agency_id`,
    );
    expect(after.filter((r, i) => r.stamp !== before[i].stamp)).toEqual([
      {
        agency_id: other.agency.id,
        stamp: String(Number(before.find((r) => r.agency_id === other.agency.id)!.stamp) + 1),
      },
    ]);
    // The county's stamp moves too, for instances of an earlier release during a rolling upgrade.
    expect(await county()).toBe(countyBefore + 1);
    await broker.gqlOk(other.steward.apiKey, REVOKE, { id: theirs });
    expect(await county()).toBe(countyBefore + 2);
    // A stamp is never moved for an agency without its row: that is a broken database, not a change.
    const db = broker.app.get(Database);
    const tx = await db.begin();
    try {
      await tx.query(`DELETE FROM agency_policy_stamp WHERE agency_id = $1`, [other.agency.id]);
      await expect(tx.query(MOVE_POLICY_STAMP_SQL, [other.agency.id])).rejects.toThrow(/no policy stamp/);
    } finally {
      await tx.rollback();
    }
  });

  it("withdraws no release of an agency's, and reloads nothing, for another recipient's agreements", async () => {
    const id = await activate({ title: 'Read while another recipient changes' });
    const other = await anotherRecipient('Elsewhere, receiving');
    expect((await broker.gql(parties.analyst.apiKey, TWO_Q, { a: id }, '/data/graphql')).data).not.toBeNull();
    const [mine, theirs] = [await currentStamp(), await stampOf(other.agency.id)];
    const reload = jest.spyOn(broker.app.get(PolicyCache), 'reload');
    // Between the read and its record, the same provider shares with another agency: an agreement
    // comes into force for it, and is revoked.
    const spy = beforeNextAppend(async () => {
      const theirAgreement = await other.activateFor('Theirs, in force and revoked');
      await broker.gqlOk(other.steward.apiKey, REVOKE, { id: theirAgreement });
    });
    for (const q of [TWO_Q, ROWS_Q]) {
      const answer = await broker.gql(parties.analyst.apiKey, q, { a: id }, '/data/graphql');
      expect(answer.status).toBe(200);
      expect(Object.values(answer.data!).map((r) => (r as { nodes: unknown[] }).nodes.length)).toEqual(
        q === TWO_Q ? [2, 2] : [2],
      );
    }
    // Each release was recorded at its first append; the caller's policy was never loaded again.
    expect(spy).toHaveBeenCalledTimes(2);
    expect(reload).not.toHaveBeenCalled();
    expect(await currentStamp()).toBe(mine);
    expect(await stampOf(other.agency.id)).toBe(theirs + 2);
  });

  it("answers every request of an agency while two others' stewards bring agreements into force and revoke them in a loop", async () => {
    const id = await activate({ title: 'Read while others churn' });
    const other = await anotherRecipient('Elsewhere, churning agreements');
    expect(
      (await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql')).data,
    ).not.toBeNull();
    const mine = await currentStamp();
    const reload = jest.spyOn(broker.app.get(PolicyCache), 'reload');
    const append = jest.spyOn(broker.app.get(AuditService), 'appendGroup');
    const { statuses, ran: churned } = await requestsWhile(
      id,
      async () => {
        const theirs = await other.activateFor(`Churned ${Date.now()} ${Math.random()}`);
        await broker.gqlOk(other.steward.apiKey, REVOKE, { id: theirs });
      },
      5,
    );
    expect(churned).toBeGreaterThanOrEqual(5);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // Not one of the caller's releases was withdrawn, nor its policy loaded again.
    expect(reload).not.toHaveBeenCalled();
    const outcomes = await Promise.all(
      append.mock.results.map((r) =>
        Promise.resolve(r.value).then(
          () => 'appended',
          (error: unknown) => (error instanceof ReleaseWithdrawnError ? 'withdrawn' : 'failed'),
        ),
      ),
    );
    expect(outcomes.length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o !== 'appended')).toEqual([]);
    expect(await currentStamp()).toBe(mine);
  });

  /**
   * A revocation as a broker of the earlier release (one stamp for the county) makes it, in its one
   * transaction: the agreement row locked and revoked, the county's stamp moved (the only stamp it
   * knows), and its event appended last.
   */
  const revokeAsEarlierRelease = (id: string) =>
    broker.app.get(Database).transaction(async ({ manager }) => {
      await manager.query(`SELECT id FROM agreement WHERE id = $1 FOR UPDATE`, [id]);
      await manager.query(
        `UPDATE agreement SET revoked_at = clock_timestamp(), revoked_by = $2, revoked_by_agency_id = $3, revoke_reason = $4
          WHERE id = $1`,
        [id, parties.recipientSteward.id, parties.recipientAgency.id, 'stop'],
      );
      await manager.query(`UPDATE policy_stamp SET stamp = stamp + 1 WHERE id = 1`);
      await broker.app.get(AuditService).append(
        {
          actorUserId: parties.recipientSteward.id,
          actorAgencyId: parties.recipientAgency.id,
          action: AuditAction.AGREEMENT_REVOKED,
          decision: 'ALLOW',
          reason: 'stop',
          agreementId: id,
          agreementVersion: 1,
        },
        manager,
      );
    });

  it.each([
    ['one root field (answered in one statement)', ROWS_Q],
    ['two root fields (answered in a snapshot)', TWO_Q],
  ])(
    'releases nothing of %s after a revocation made by a broker of the earlier release during a rolling upgrade',
    async (_n, q) => {
      const id = await activate({ title: `Revoked by an earlier release: ${q.length}` });
      // This instance holds the agency's policy, the agreement in force.
      expect((await broker.gql(parties.analyst.apiKey, q, { a: id }, '/data/graphql')).data).not.toBeNull();
      const stamp = await currentStamp();
      await revokeAsEarlierRelease(id);
      const seq = await broker.auditHeadSeq();
      const answer = await broker.gql(parties.analyst.apiKey, q, { a: id }, '/data/graphql');
      expect(JSON.stringify(answer)).not.toContain('C1');
      expect(answer.data).toBeNull();
      expect(answer.errors?.[0].extensions?.code).toBe('FORBIDDEN');
      // Its refusal, and nothing else.
      const events = await eventsSince(seq);
      expect(events.length).toBeGreaterThan(0);
      expect(events.filter((e) => e.action !== 'QUERY' || e.decision !== 'DENY')).toEqual([]);
      // The recipient's stamp moved with the revocation, whoever made it.
      expect(await currentStamp()).toBeGreaterThan(stamp);
    },
  );

  it('withdraws a release read before a revocation that a broker of the earlier release commits before its record', async () => {
    const id = await activate({ title: 'Revoked by an earlier release before its record' });
    expect(
      (await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql')).data,
    ).not.toBeNull();
    const seq = await broker.auditHeadSeq();
    const spy = beforeNextAppend(async () => {
      await revokeAsEarlierRelease(id);
    });
    const res = await post(parties.analyst.apiKey, '/data/export', ROWS_Q, id);
    expect(res.statusCode).toBe(403);
    expect(res.body).not.toContain('C1');
    expect(spy).toHaveBeenCalled();
    expect((await eventsSince(seq)).map((e) => [e.action, e.decision])).toEqual([
      ['AGREEMENT_REVOKED', 'ALLOW'],
      ['EXPORT', 'DENY'],
    ]);
    expect(await broker.query(`SELECT id FROM release_staged`)).toEqual([]);
  });

  it('releases nothing of an export when the agreement is revoked before its release is recorded', async () => {
    const id = await activate({ title: 'Export revoked before its record' });
    const seq = await broker.auditHeadSeq();
    beforeNextAppend(async () => {
      await broker.gqlOk(parties.recipientSteward.apiKey, REVOKE, { id });
    });
    const res = await post(parties.analyst.apiKey, '/data/export', ROWS_Q, id);
    expect(res.statusCode).toBe(403);
    expect(res.body).not.toContain('C1');
    const events = await eventsSince(seq);
    expect(events.map((e) => [e.action, e.decision])).toEqual([
      ['AGREEMENT_REVOKED', 'ALLOW'],
      ['EXPORT', 'DENY'],
    ]);
    // The list the export staged for its record was let go.
    expect(await broker.query(`SELECT id FROM release_staged`)).toEqual([]);
  });

  it('releases nothing of an export whose key is rotated before its release is recorded: 401', async () => {
    const id = await activate({ title: 'Export rotated before its record' });
    const analyst = await broker.createUser({ agencyId: parties.recipientAgency.id, role: 'ANALYST' });
    beforeNextAppend(async () => {
      await broker.rotate(analyst.apiKey);
    });
    const seq = await broker.auditHeadSeq();
    const res = await post(analyst.apiKey, '/data/export', ROWS_Q, id);
    expect(res.statusCode).toBe(401);
    expect(res.body).not.toContain('C1');
    expect((await eventsSince(seq)).map((e) => e.action)).toEqual(['API_KEY_ROTATED']);
    expect(await broker.query(`SELECT id FROM release_staged`)).toEqual([]);
  });

  it('records no release sealed at or after the end of its window, however late the append', async () => {
    const validUntil = new Date(Date.now() + 1500);
    const id = await activate({ title: 'Ending before its record', validUntil: validUntil.toISOString() });
    expect(
      (await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql')).data,
    ).not.toBeNull();
    const seq = await broker.auditHeadSeq();
    // Read (and checked against the window) in time; appended after the window's end.
    beforeNextAppend(async () => {
      while (Date.now() <= validUntil.getTime() + 5) await new Promise((r) => setTimeout(r, 20));
    });
    const answer = await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql');
    expect(answer.data).toBeNull();
    expect(JSON.stringify(answer)).not.toContain('C1');
    const events = await eventsSince(seq);
    expect(events.map((e) => [e.action, e.decision])).toEqual([['QUERY', 'DENY']]);
    // Every release under it was sealed before its end.
    const released = await broker.query<{ at: Date }>(
      `SELECT at FROM audit_event WHERE agreement_id = $1 AND action = 'QUERY' AND decision = 'ALLOW'`,
      [id],
    );
    expect(released.length).toBe(1);
    expect(released.every((e) => e.at.getTime() < validUntil.getTime())).toBe(true);
  });

  it('answers, once, a request whose release was withdrawn by a change that does not concern it', async () => {
    const id = await activate({ title: 'Unconcerned' });
    const seq = await broker.auditHeadSeq();
    // Another agreement comes into force between the read and the record: the policy stamp moves.
    beforeNextAppend(async () => {
      await activate({ title: 'Another one, approved meanwhile' });
    });
    const answer = await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql');
    expect(answer.data!.cases.nodes.map((n: { case_id: string }) => n.case_id).sort()).toEqual(['C1', 'C2']);
    const mine = (await eventsSince(seq)).filter((e) => e.agreement_id === id);
    expect(mine.map((e) => [e.action, e.decision])).toEqual([['QUERY', 'ALLOW']]);
  });

  it('moves the stamp only when what is in force changes, and withdraws no release for anything else', async () => {
    const PROPOSE = `mutation($input: AgreementInput!) { proposeAgreement(input: $input) { id } }`;
    const AMEND = `mutation($id: ID!, $input: AgreementInput!) { amendAgreement(id: $id, input: $input) { currentVersion } }`;
    const APPROVE = `mutation($id: ID!, $v: Int!) { approveAgreement(id: $id, version: $v) { inForceVersion } }`;
    const DECLINE = `mutation($id: ID!, $v: Int!) { declineAgreement(id: $id, version: $v, reason: "no") { id } }`;
    const provider = parties.providerSteward.apiKey;
    const recipient = parties.recipientSteward.apiKey;
    const id = await activate({ title: 'Read while others negotiate' });
    expect(
      (await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql')).data,
    ).not.toBeNull();
    const stamp = await currentStamp();
    // A proposal between a read and its record: nobody's access changed, nothing is withdrawn.
    const spy = beforeNextAppend(async () => {
      await broker.gqlOk(provider, PROPOSE, { input: input({ title: 'Proposed while a page was read' }) });
    });
    const answer = await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql');
    expect(answer.data!.cases.nodes).toHaveLength(2);
    expect(spy).toHaveBeenCalledTimes(1);
    // An amendment, approved by its amender's side only: version 1 still governs.
    await broker.gqlOk(provider, AMEND, { id, input: input({ title: 'Read while others negotiate, v2' }) });
    // A version that needs oversight, approved by both parties, and declined by the oversight board.
    const overseen = withOversightText(
      input({
        title: 'Declined by oversight',
        grants: [{ datasetId: dataset.id, fields: [{ name: 'case_id' }], linkage: true }],
      }),
    );
    const { proposeAgreement } = await broker.gqlOk<{ proposeAgreement: { id: string } }>(provider, PROPOSE, {
      input: overseen,
    });
    const approved = await broker.gqlOk<{ approveAgreement: { inForceVersion: number | null } }>(
      recipient,
      APPROVE,
      { id: proposeAgreement.id, v: 1 },
    );
    expect(approved.approveAgreement.inForceVersion).toBeNull();
    await broker.gqlOk(auditor.apiKey, DECLINE, { id: proposeAgreement.id, v: 1 });
    expect(await currentStamp()).toBe(stamp);
    // The amendment's other side approves: version 2 comes into force, and the stamp moves.
    await broker.gqlOk(recipient, APPROVE, { id, v: 2 });
    expect(await currentStamp()).toBe(stamp + 1);
    await broker.gqlOk(recipient, REVOKE, { id });
    expect(await currentStamp()).toBe(stamp + 2);
  });

  describe('a perturbed aggregate whose release is withdrawn', () => {
    const COUNT_Q = `query($a: ID) { cases_aggregate(purpose: RECIDIVISM_EVALUATION, agreement: $a, groupBy: [case_id]) { noise } }`;
    /** What the analyst spent under the agreement today: of their own budget, and of the agreement's shared one. */
    const used = async (userId: string, agreementId: string) => {
      const [own] = await broker.query<{ used: number }>(
        `SELECT used FROM aggregate_budget WHERE user_id = $1 AND agreement_id = $2`,
        [userId, agreementId],
      );
      const [shared] = await broker.query<{ used: number }>(
        `SELECT used FROM aggregate_budget_agreement WHERE agreement_id = $1`,
        [agreementId],
      );
      return [own?.used ?? 0, shared?.used ?? 0];
    };
    const countOnly = (title: string) =>
      activate({
        title,
        grants: [{ datasetId: dataset.id, access: 'AGGREGATE_ONLY', fields: [{ name: 'case_id' }] }],
      });

    it('is billed once when it is answered on the decision taken again', async () => {
      const id = await countOnly('Counted, then another agreement approved');
      const spy = beforeNextAppend(async () => {
        await activate({ title: 'Approved while a count was recorded' });
      });
      const answer = await broker.gql(parties.analyst.apiKey, COUNT_Q, { a: id }, '/data/graphql');
      expect(answer.data).toEqual({ cases_aggregate: { noise: 2 } });
      expect(spy).toHaveBeenCalledTimes(2);
      expect(await used(parties.analyst.id, id)).toEqual([1, 1]);
    });

    it('keeps its unit when the decision taken again refuses it: its statement ran, and was timed', async () => {
      const id = await countOnly('Counted, then revoked');
      const seq = await broker.auditHeadSeq();
      beforeNextAppend(async () => {
        await broker.gqlOk(parties.recipientSteward.apiKey, REVOKE, { id });
      });
      const answer = await broker.gql(parties.analyst.apiKey, COUNT_Q, { a: id }, '/data/graphql');
      expect(answer.data).toBeNull();
      expect(answer.errors?.[0].extensions?.code).toBe('FORBIDDEN');
      expect(await used(parties.analyst.id, id)).toEqual([1, 1]);
      expect((await eventsSince(seq)).map((e) => [e.action, e.decision])).toEqual([
        ['AGREEMENT_REVOKED', 'ALLOW'],
        ['AGGREGATE', 'DENY'],
      ]);
    });

    it('keeps its unit when its caller rotates its own key under it: no timing for free', async () => {
      const id = await countOnly('Counted, then the key rotated');
      const analyst = await broker.createUser({ agencyId: parties.recipientAgency.id, role: 'ANALYST' });
      let rotated = '';
      beforeNextAppend(async () => {
        rotated = await broker.rotate(analyst.apiKey);
      });
      const res = await post(analyst.apiKey, '/data/graphql', COUNT_Q, id);
      expect(res.statusCode).toBe(401);
      expect(await used(analyst.id, id)).toEqual([1, 1]);
      // And the next count under the new key is billed for itself.
      const again = await broker.gql(rotated, COUNT_Q, { a: id }, '/data/graphql');
      expect(again.data).toEqual({ cases_aggregate: { noise: 2 } });
      expect(await used(analyst.id, id)).toEqual([2, 2]);
    });
  });

  it('ends a request whose release is withdrawn at every decision: 503, nothing released', async () => {
    const id = await activate({ title: 'Always moving' });
    // The instance holds the agency's policy at the stamp of now: the first answer is read alone.
    expect(
      (await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql')).data,
    ).not.toBeNull();
    const seq = await broker.auditHeadSeq();
    const db = broker.app.get(Database);
    const spy = beforeNextAppend(async () => {
      await db.query(MOVE_POLICY_STAMP_SQL, [parties.recipientAgency.id]);
    }, MAX_POLICY_LOADS + 5);
    const answer = await broker.gql(parties.analyst.apiKey, ROWS_Q, { a: id }, '/data/graphql');
    expect(answer.status).toBe(503);
    expect(JSON.stringify(answer)).not.toContain('C1');
    // The first answer's append, and one per decision taken again.
    expect(spy).toHaveBeenCalledTimes(MAX_POLICY_LOADS + 2);
    expect(await eventsSince(seq)).toEqual([]);
  });

  it('ends an export whose release is withdrawn at every decision: 503, not a byte sent, no list left', async () => {
    const id = await activate({ title: 'Export always moving' });
    const seq = await broker.auditHeadSeq();
    const db = broker.app.get(Database);
    const spy = beforeNextAppend(async () => {
      await db.query(MOVE_POLICY_STAMP_SQL, [parties.recipientAgency.id]);
    }, MAX_POLICY_LOADS + 5);
    const res = await post(parties.analyst.apiKey, '/data/export', ROWS_Q, id);
    expect(res.statusCode).toBe(503);
    expect(res.body).not.toContain('C1');
    // One append per decision, the first and five taken again; then it ends.
    expect(spy).toHaveBeenCalledTimes(MAX_POLICY_LOADS + 1);
    expect(await eventsSince(seq)).toEqual([]);
    expect(await broker.query(`SELECT id FROM release_staged`)).toEqual([]);
  });

  /**
   * Resolves once a statement matching `pattern` (SQL LIKE, on the statement's first kilobyte, all
   * that pg_stat_activity keeps) waits for a lock.
   */
  const waitingOnLock = async (pattern: string) => {
    for (;;) {
      const [row] = await broker.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE wait_event_type = 'Lock' AND query LIKE $1 AND pid <> pg_backend_pid()`,
        [pattern],
      );
      if (row.n > 0) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  /** The text of an append's statement (see appendSql), as pg_stat_activity shows it. */
  const APPEND = '%WITH RECURSIVE%jsonb_to_recordset($1::jsonb)%';
  const currentStamp = async () =>
    Number(
      (
        await broker.query<{ stamp: string }>(
          `SELECT stamp::text AS stamp FROM agency_policy_stamp WHERE agency_id = $1`,
          [parties.recipientAgency.id],
        )
      )[0].stamp,
    );
  const release = (policyStamp: number, apiKeyId?: string) => ({
    action: AuditAction.QUERY,
    decision: 'ALLOW' as const,
    rowCount: 0,
    onlyIf: {
      policyStamp,
      agencyId: parties.recipientAgency.id,
      before: new Date(Date.now() + 60_000),
      ...(apiKeyId ? { apiKeyId } : {}),
    },
  });

  /**
   * Appends `group` while a change (`sql` with `values`, not yet committed) holds its rows, commits
   * the change once the append waits for it, and returns the append's outcome ('appended' or its
   * error).
   */
  const appendDuringChange = async (
    sql: string,
    values: unknown[],
    group: Parameters<AuditService['appendGroup']>[0],
  ) => {
    const change = await broker.app.get(Database).begin();
    await change.query(sql, values);
    const outcome = broker.app
      .get(AuditService)
      .appendGroup(group)
      .then(
        () => 'appended',
        (error: unknown) => error,
      );
    await waitingOnLock(APPEND);
    await change.end('COMMIT');
    return outcome;
  };

  it('waits for a change of the stamp under way, and then sees it: the release is withdrawn', async () => {
    const stamp = await currentStamp();
    const seq = await broker.auditHeadSeq();
    // A revocation has moved the stamp and not committed yet.
    const result = await appendDuringChange(
      MOVE_POLICY_STAMP_SQL,
      [parties.recipientAgency.id],
      [release(stamp)],
    );
    expect(result).toBeInstanceOf(ReleaseWithdrawnError);
    expect((result as ReleaseWithdrawnError).positions).toEqual([0]);
    expect(await broker.auditHeadSeq()).toBe(seq);
  });

  it('waits for a revocation of its key under way, and then sees it: the release is withdrawn', async () => {
    const audit = broker.app.get(AuditService);
    const db = broker.app.get(Database);
    const user = await broker.createUser({ agencyId: parties.recipientAgency.id, role: 'ANALYST' });
    const [{ id: keyId }] = await broker.query<{ id: string }>(
      `SELECT id FROM api_key WHERE user_id = $1 AND revoked_at IS NULL`,
      [user.id],
    );
    const stamp = await currentStamp();
    const seq = await broker.auditHeadSeq();
    // A rotation has revoked the key and not committed yet.
    const result = await appendDuringChange(
      `UPDATE api_key SET revoked_at = now() WHERE id = $1`,
      [keyId],
      [release(stamp, keyId), release(stamp)],
    );
    expect(result).toBeInstanceOf(ReleaseWithdrawnError);
    // Only the release read under that key.
    expect((result as ReleaseWithdrawnError).positions).toEqual([0]);
    expect(await broker.auditHeadSeq()).toBe(seq);
    // A key that works, checked and held: a revocation waits for the release, and follows it.
    const [{ id: other }] = await broker.query<{ id: string }>(
      `SELECT id FROM api_key WHERE user_id = $1 AND revoked_at IS NULL`,
      [parties.analyst.id],
    );
    const holder = await db.begin();
    await holder.query(`SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE`);
    const appended = audit.appendGroup([release(stamp, other)]);
    await waitingOnLock(APPEND);
    const tx = await db.begin();
    const revoked = tx.query(`UPDATE api_key SET revoked_at = now() WHERE id = $1`, [other]);
    await waitingOnLock('UPDATE api_key%');
    await holder.rollback();
    const [sealed] = await appended;
    await revoked;
    // Not committed: the analyst's key keeps working for the other tests.
    await tx.rollback();
    expect(sealed.seq).toBe(seq + 1);
  });

  it('holds the stamp from its check to its commit: a change waits for the release, and follows it', async () => {
    const audit = broker.app.get(AuditService);
    const db = broker.app.get(Database);
    const stamp = await currentStamp();
    const seq = await broker.auditHeadSeq();
    // The chain head is held (an append under way); the release waits for it, its stamp checked.
    const holder = await db.begin();
    await holder.query(`SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE`);
    const appended = audit.appendGroup([release(stamp)]);
    await waitingOnLock(APPEND);
    // A change of the stamp now waits for the release to commit.
    const moving = broker.query(MOVE_POLICY_STAMP_SQL, [parties.recipientAgency.id]);
    await waitingOnLock('%move_policy_stamps%');
    await holder.rollback();
    const [sealed] = await appended;
    await moving;
    expect(sealed.seq).toBe(seq + 1);
    expect(await currentStamp()).toBe(stamp + 1);
  });

  it('appends, of a group, nothing when one of its releases is withdrawn, and says which', async () => {
    const audit = broker.app.get(AuditService);
    const stamp = await currentStamp();
    const before = new Date(Date.now() + 60_000);
    const ok = { action: AuditAction.QUERY, decision: 'ALLOW' as const, rowCount: 0 };
    const seq = await broker.auditHeadSeq();
    const refused = await audit
      .appendGroup([
        { ...ok, onlyIf: { policyStamp: stamp, agencyId: parties.recipientAgency.id, before } },
        { ...ok, onlyIf: { policyStamp: stamp + 1, agencyId: parties.recipientAgency.id, before } },
        {
          ...ok,
          onlyIf: {
            policyStamp: stamp,
            agencyId: parties.recipientAgency.id,
            before: new Date(Date.now() - 1),
          },
        },
        ok,
      ])
      .then(
        () => null,
        (error: unknown) => error,
      );
    expect(refused).toBeInstanceOf(ReleaseWithdrawnError);
    expect((refused as ReleaseWithdrawnError).positions).toEqual([1, 2]);
    expect(await broker.auditHeadSeq()).toBe(seq);
    expect(await eventsSince(seq)).toEqual([]);
    // The same group without them is appended.
    const sealed = await audit.appendGroup([
      { ...ok, onlyIf: { policyStamp: stamp, agencyId: parties.recipientAgency.id, before } },
      ok,
    ]);
    expect(sealed.map((s) => s.seq)).toEqual([seq + 1, seq + 2]);
  });

  it("checks each release of a group against its own agency's stamp: another agency's moved withdraws none of it", async () => {
    const audit = broker.app.get(AuditService);
    const mine = parties.recipientAgency.id;
    const other = await anotherRecipient('Elsewhere, in the same group');
    // The other agency's stamp ahead of the caller's, so that each agency's number is the other's wrong one.
    for (let i = 0; i < 3; i++) await broker.query(MOVE_POLICY_STAMP_SQL, [other.agency.id]);
    const [a, b] = [await currentStamp(), await stampOf(other.agency.id)];
    expect(b).not.toBe(a);
    const before = new Date(Date.now() + 60_000);
    const ok = { action: AuditAction.QUERY, decision: 'ALLOW' as const, rowCount: 0 };
    const at = (policyStamp: number, agencyId: string) => ({
      ...ok,
      onlyIf: { policyStamp, agencyId, before },
    });
    const seq = await broker.auditHeadSeq();
    const refused = await audit
      .appendGroup([at(a, mine), at(a, other.agency.id), at(b, mine), at(b, other.agency.id), ok])
      .then(
        () => null,
        (error: unknown) => error,
      );
    expect((refused as ReleaseWithdrawnError).positions).toEqual([1, 2]);
    expect(await broker.auditHeadSeq()).toBe(seq);
    // The other agency's stamp moves (an agreement of its own revoked): its release in the group is
    // withdrawn, the caller's is not.
    await broker.query(MOVE_POLICY_STAMP_SQL, [other.agency.id]);
    const again = await audit.appendGroup([at(a, mine), at(b, other.agency.id), ok]).then(
      () => null,
      (error: unknown) => error,
    );
    expect((again as ReleaseWithdrawnError).positions).toEqual([1]);
    const sealed = await audit.appendGroup([at(a, mine), at(b + 1, other.agency.id), ok]);
    expect(sealed.map((s) => s.seq)).toEqual([seq + 1, seq + 2, seq + 3]);
  });

  it('finds the keys of a group by their index, however many keys were revoked before (generic plan)', async () => {
    const audit = broker.app.get(AuditService);
    const db = broker.app.get(Database);
    // The append's statement and parameters, as it sends them (nothing is run).
    let sent: { text: string; values: unknown[] } | undefined;
    jest.spyOn(db, 'connection').mockImplementationOnce(async (work) =>
      work({
        query: (config: { text: string; values: unknown[] }) => {
          sent = config;
          return Promise.resolve({ rows: [{ sealed: '[["1","x"]]', withdrawn: [] }] });
        },
      } as never),
    );
    const [{ id: apiKeyId }] = await broker.query<{ id: string }>(
      `SELECT k.id FROM api_key k JOIN app_user u ON u.id = k.user_id
        WHERE u.id = $1 AND k.revoked_at IS NULL`,
      [parties.analyst.id],
    );
    const event = release(await currentStamp());
    await audit.appendGroup([{ ...event, onlyIf: { ...event.onlyIf, apiKeyId } }]);
    // Twenty thousand revoked keys, as years of rotations leave them.
    await broker.query(
      `INSERT INTO api_key (user_id, key_hash, prefix, revoked_at)
       SELECT $1, sha256(convert_to('k' || g, 'UTF8')), 'p' || g, now() FROM generate_series(1, 20000) g`,
      [parties.analyst.id],
    );
    await broker.query(`ANALYZE api_key`);
    const tx = await db.begin();
    try {
      await tx.query(`SET LOCAL plan_cache_mode = force_generic_plan`);
      await tx.query(`PREPARE append_plan AS ${sent!.text}`);
      // Utility statements take no parameters: the group's JSON written as a literal.
      const [json, lists] = sent!.values as [string, unknown[]];
      expect(lists).toEqual([null]);
      const rows = await tx.query<{ 'QUERY PLAN': unknown }>(
        `EXPLAIN (FORMAT JSON) EXECUTE append_plan('${json.replace(/'/g, "''")}', ARRAY[NULL]::text[])`,
      );
      // Every node that reads api_key reads it by index.
      const nodes: { 'Node Type': string; 'Relation Name'?: string }[] = [];
      const walk = (node: Record<string, unknown>) => {
        nodes.push(node as never);
        for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
      };
      walk((rows[0]['QUERY PLAN'] as { Plan: Record<string, unknown> }[])[0].Plan);
      const onKeys = nodes.filter((n) => n['Relation Name'] === 'api_key').map((n) => n['Node Type']);
      expect(onKeys.length).toBeGreaterThan(0);
      expect(onKeys.every((type) => type !== 'Seq Scan')).toBe(true);
    } finally {
      await tx.rollback();
    }
  });

  it('refuses a malformed condition before any statement', async () => {
    const audit = broker.app.get(AuditService);
    const ok = { action: AuditAction.QUERY, decision: 'ALLOW' as const, rowCount: 0 };
    const seq = await broker.auditHeadSeq();
    const agencyId = parties.recipientAgency.id;
    for (const onlyIf of [
      { policyStamp: -1, agencyId, before: new Date() },
      { policyStamp: 1.5, agencyId, before: new Date() },
      { policyStamp: Number.NaN, agencyId, before: new Date() },
      { policyStamp: 1, agencyId, before: new Date(Number.NaN) },
      { policyStamp: 1, agencyId, before: '2099-01-01' as unknown as Date },
      { policyStamp: 1, agencyId, before: new Date(), apiKeyId: 'not-a-key' },
      { policyStamp: 1, agencyId: 'not-an-agency', before: new Date() },
      { policyStamp: 1, before: new Date() } as unknown as ReleaseCondition,
    ]) {
      await expect(audit.appendGroup([{ ...ok, onlyIf }])).rejects.toBeInstanceOf(TypeError);
    }
    expect(await broker.auditHeadSeq()).toBe(seq);
  });
});
