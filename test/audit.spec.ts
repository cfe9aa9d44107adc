import { DataSource } from 'typeorm';
import {
  AuditAction,
  type AuditEventInput,
  AuditService,
  GENESIS_HASH,
  RefusalRecorder,
  encodeCursor,
  isoFromMicros,
  sealEvent,
} from '@broker/audit';
import { UserService } from '@broker/registry';
import { TestBroker } from '@broker/testing';

const EVENTS = `query($filter: AuditFilter, $first: Int, $after: String) {
  auditEvents(filter: $filter, first: $first, after: $after) {
    nodes { seq at actorUserId actorAgencyId action decision reason purpose datasetId agreementId
            agreementVersion fields rowCount prevHash hash }
    pageInfo { hasNextPage endCursor }
  }
}`;
const VERIFY = `{ verifyAuditChain { valid checked firstBrokenSeq } }`;

const dataset = (slug: string) => ({
  slug,
  title: slug,
  keyField: 'id',
  fields: [
    { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
    { name: 'charge', type: 'STRING', classification: 'SENSITIVE' },
  ],
});

// Every column of audit_event but seq, to move rows' content around as a DBA would.
const CONTENT_COLUMNS =
  'at, actor_user_id, actor_agency_id, action, decision, reason, purpose, dataset_id, agreement_id, ' +
  'agreement_version, fields, row_count, details, prev_hash, hash';

describe('audit log', () => {
  let broker: TestBroker;
  let audit: AuditService;
  let auditor: { id: string; apiKey: string };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'audit' });
    audit = broker.app.get(AuditService);
    auditor = await broker.createUser({ role: 'AUDITOR' });
  });
  afterAll(() => broker.close());

  /** Runs statements as a DBA who first disables the log's triggers (and restores them after). */
  async function asDba(...statements: string[]) {
    await broker.app.get(DataSource).transaction(async (manager) => {
      const tables = ['audit_event', 'audit_head', 'release_record', 'release_index'];
      for (const table of tables) await manager.query(`ALTER TABLE ${table} DISABLE TRIGGER USER`);
      for (const sql of statements) await manager.query(sql);
      for (const table of tables) await manager.query(`ALTER TABLE ${table} ENABLE TRIGGER USER`);
    });
  }

  /** How many events a reset log starts with: the one that vouches for the accounts (see resetLog). */
  const FOUND = 1;
  /**
   * Empties the log, so a test starts from a known log whatever other parts of the broker recorded.
   * The chain vouches for users and keys, so a log emptied under them would not verify: unless
   * `vouch` is false, its first event vouches for them as found, as the first start after the upgrade
   * that brought this does (UserService.vouchFound), and the test's events follow it from FOUND + 1.
   */
  const resetLog = async (vouch = true) => {
    await asDba(
      'TRUNCATE audit_event, release_record, release_index',
      `UPDATE audit_head SET seq = 0, hash = repeat('0', 64)`,
      ...(vouch ? ['INSERT INTO account_found (user_id) SELECT id FROM app_user'] : []),
    );
    if (vouch) expect(await broker.app.get(UserService).vouchFound()).toBeGreaterThan(0);
  };
  /** The hash of the reset log's last event of its own (the accounts vouched for as found). */
  const foundHash = async () =>
    (await broker.query<{ hash: string }>(`SELECT hash FROM audit_event WHERE seq = $1`, [FOUND]))[0].hash;

  const sample = (i: number): AuditEventInput => ({
    actorUserId: auditor.id,
    action: i % 2 ? AuditAction.QUERY : AuditAction.AGGREGATE,
    decision: i % 3 ? 'ALLOW' : 'DENY',
    reason: i % 3 ? null : `denied #${i}`,
    purpose: 'RECIDIVISM_EVALUATION',
    fields: ['charge'],
    rowCount: i,
  });

  /** Appends n sample events one after the other. */
  async function appendMany(n: number) {
    for (let i = 1; i <= n; i++) await audit.append(sample(i));
  }

  type Verification = { valid: boolean; checked: number; firstBrokenSeq: number | null };
  const verify = async () =>
    (await broker.gqlOk<{ verifyAuditChain: Verification }>(auditor.apiKey, VERIFY)).verifyAuditChain;
  const broken = (firstBrokenSeq: number) => ({ valid: false, checked: firstBrokenSeq - 1, firstBrokenSeq });

  describe('appending', () => {
    beforeEach(resetLog);

    it('links events into one chain from the genesis hash and moves the head', async () => {
      const found = await foundHash();
      const first = await audit.append(sample(1));
      const second = await audit.append(sample(2));
      expect([first.seq, second.seq]).toEqual([FOUND + 1, FOUND + 2]);
      const rows = await broker.query<{ seq: string; prev_hash: string; hash: string }>(
        `SELECT seq, prev_hash, hash FROM audit_event ORDER BY seq`,
      );
      expect(rows).toEqual([
        { seq: '1', prev_hash: GENESIS_HASH, hash: found },
        { seq: '2', prev_hash: found, hash: first.hash },
        { seq: '3', prev_hash: first.hash, hash: second.hash },
      ]);
      expect(await broker.query(`SELECT seq, hash FROM audit_head`)).toEqual([
        { seq: '3', hash: second.hash },
      ]);
      expect(await verify()).toEqual({ valid: true, checked: FOUND + 2, firstBrokenSeq: null });
    });

    it("appends inside the caller's transaction: a rollback takes the event back and leaves no gap", async () => {
      const dataSource = broker.app.get(DataSource);
      await audit.append(sample(1));
      await expect(
        dataSource.transaction(async (manager) => {
          await audit.append(sample(2), manager);
          throw new Error('the data could not be returned');
        }),
      ).rejects.toThrow('the data could not be returned');
      const committed = await dataSource.transaction(async (manager) => {
        const appended = await audit.append(sample(3), manager);
        // Not visible outside the transaction until it commits.
        expect(await broker.query(`SELECT seq FROM audit_event WHERE seq = $1`, [appended.seq])).toEqual([]);
        return appended;
      });
      // A manager outside any transaction gets one of its own.
      const outside = await audit.append(sample(4), dataSource.manager);
      expect([committed.seq, outside.seq]).toEqual([FOUND + 2, FOUND + 3]);
      expect(await verify()).toEqual({ valid: true, checked: FOUND + 3, firstBrokenSeq: null });
    });

    it('forms one chain from 300 concurrent appends: seqs 1..300 after the log’s own, no fork', async () => {
      const found = await foundHash();
      const results = await Promise.all(Array.from({ length: 300 }, (_, i) => audit.append(sample(i + 1))));
      expect(results.map((r) => r.seq).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 300 }, (_, i) => FOUND + i + 1),
      );
      const rows = await broker.query<{ seq: number; prev_hash: string; hash: string; at: Date }>(
        `SELECT seq::int AS seq, prev_hash, hash, at FROM audit_event WHERE seq > $1 ORDER BY seq`,
        [FOUND],
      );
      expect(rows).toHaveLength(300);
      rows.forEach((row, i) => {
        expect(row.seq).toBe(FOUND + i + 1);
        expect(row.prev_hash).toBe(i === 0 ? found : rows[i - 1].hash);
        // The time is taken under the chain's lock, so it never runs backwards along the chain.
        if (i > 0) expect(row.at.getTime()).toBeGreaterThanOrEqual(rows[i - 1].at.getTime());
      });
      expect(new Set(rows.map((r) => r.prev_hash)).size).toBe(300);
      expect(await verify()).toEqual({ valid: true, checked: FOUND + 300, firstBrokenSeq: null });
    });

    it('stores exactly what it hashed: ids in lowercase, text PostgreSQL can hold, JSON as jsonb returns it', async () => {
      const { seq } = await audit.append({
        actorUserId: auditor.id.toUpperCase(),
        action: AuditAction.RECORDS_INGESTED,
        decision: 'ALLOW',
        reason: 'nul \u0000 and lone \uD800 surrogate, 😀 kept',
        fields: [],
        rowCount: 0,
        details: {
          when: new Date('2025-01-02T03:04:05.678Z'),
          big: 1e21,
          tiny: 5e-324,
          nested: { 'k\u0000': [1.5, null] },
        },
      });
      const [row] = await broker.query<{
        actor_user_id: string;
        reason: string;
        details: unknown;
        fields: string[];
      }>(`SELECT actor_user_id, reason, details, fields FROM audit_event WHERE seq = $1`, [seq]);
      expect(row).toEqual({
        actor_user_id: auditor.id,
        reason: 'nul \uFFFD and lone \uFFFD surrogate, 😀 kept',
        details: {
          when: '2025-01-02T03:04:05.678Z',
          big: 1e21,
          tiny: 5e-324,
          nested: { 'k\uFFFD': [1.5, null] },
        },
        fields: [],
      });
      expect(await verify()).toEqual({ valid: true, checked: FOUND + 1, firstBrokenSeq: null });
    });

    it('refuses malformed events before taking the chain lock', async () => {
      const bad: Partial<AuditEventInput>[] = [
        { datasetId: 'not-a-uuid' },
        { decision: 'MAYBE' as 'ALLOW' },
        { action: 'lower case' as AuditAction },
        { rowCount: 2 ** 31 },
        { agreementVersion: 1.5 },
        { fields: [1 as unknown as string] },
        { details: [1, 2] as unknown as Record<string, unknown> },
      ];
      for (const change of bad) {
        await expect(audit.append({ ...sample(1), ...change })).rejects.toThrow(TypeError);
      }
      expect(await broker.query(`SELECT seq FROM audit_head`)).toEqual([{ seq: String(FOUND) }]);
    });

    it('refuses UPDATE, DELETE and TRUNCATE of events, and rewinding the head, through its triggers', async () => {
      await appendMany(2);
      for (const sql of [
        `UPDATE audit_event SET reason = 'edited' WHERE seq = 1`,
        `DELETE FROM audit_event WHERE seq = 2`,
        `TRUNCATE audit_event CASCADE`,
        `UPDATE audit_head SET seq = 1`,
        `DELETE FROM audit_head`,
        `TRUNCATE audit_head`,
      ]) {
        await expect(broker.query(sql)).rejects.toThrow(/append-only|only moves forward/);
      }
      expect(await verify()).toEqual({ valid: true, checked: FOUND + 2, firstBrokenSeq: null });
    });
  });

  describe('tampering by a DBA who disabled the triggers', () => {
    beforeEach(async () => {
      await resetLog();
      await appendMany(10);
    });

    it('finds a changed field at its seq', async () => {
      await asDba(`UPDATE audit_event SET row_count = row_count + 1 WHERE seq = 4`);
      expect(await verify()).toEqual(broken(4));
    });

    it('finds a timestamp moved by one microsecond', async () => {
      await asDba(`UPDATE audit_event SET at = at + interval '1 microsecond' WHERE seq = 6`);
      expect(await verify()).toEqual(broken(6));
    });

    it('finds an event rewritten with a recomputed hash at its seq, through the next link', async () => {
      await asDba(`UPDATE audit_event SET reason = 'nothing happened' WHERE seq = 3`);
      const [row] = await broker.query<Record<string, any>>(
        `SELECT seq::int AS seq, (extract(epoch FROM at) * 1000000)::bigint::text AS micros, action, decision,
                reason, purpose, fields, row_count, actor_user_id, prev_hash FROM audit_event WHERE seq = 3`,
      );
      const resealed = sealEvent(row.prev_hash, {
        ...{ actorAgencyId: null, datasetId: null, agreementId: null, agreementVersion: null, details: null },
        seq: 3,
        at: isoFromMicros(row.micros)!,
        actorUserId: row.actor_user_id,
        action: row.action,
        decision: row.decision,
        reason: row.reason,
        purpose: row.purpose,
        fields: row.fields,
        rowCount: row.row_count,
      });
      await asDba(`UPDATE audit_event SET hash = '${resealed.hash}' WHERE seq = 3`);
      // Event 3 now hashes well; event 4 still names the genuine event 3 as its predecessor.
      expect(await verify()).toEqual(broken(4));
    });

    it('finds a number in details changed to one that JavaScript reads as the same', async () => {
      const details = { links: 5, big: 9007199254740992, small: 1e-7, huge: 1e21, sum: 0.1 + 0.2, zero: -0 };
      const { seq } = await audit.append({ action: AuditAction.LINKAGE_RUN, decision: 'ALLOW', details });
      await appendMany(1);
      expect(await verify()).toEqual({ valid: true, checked: FOUND + 12, firstBrokenSeq: null });
      for (const [key, value] of [
        ['links', '5.0000000000000001'],
        ['big', '9007199254740993'],
      ]) {
        await asDba(
          `UPDATE audit_event SET details = jsonb_set(details, '{${key}}', '${value}') WHERE seq = ${seq}`,
        );
        expect(await verify()).toEqual(broken(seq));
        await asDba(`UPDATE audit_event SET details = '${JSON.stringify(details)}' WHERE seq = ${seq}`);
        expect(await verify()).toEqual({ valid: true, checked: FOUND + 12, firstBrokenSeq: null });
      }
    });

    it('finds a deleted event at its seq', async () => {
      await asDba(`DELETE FROM audit_event WHERE seq = 5`);
      expect(await verify()).toEqual(broken(5));
    });

    it('finds two events that swapped content at the first of them', async () => {
      await asDba(
        `UPDATE audit_event a SET (${CONTENT_COLUMNS}) = (
           SELECT ${CONTENT_COLUMNS} FROM audit_event b WHERE b.seq = CASE a.seq WHEN 3 THEN 7 ELSE 3 END)
         WHERE a.seq IN (3, 7)`,
      );
      expect(await verify()).toEqual(broken(3));
    });

    it('finds reordered events (seqs exchanged) at the first of them', async () => {
      await asDba(
        `UPDATE audit_event SET seq = -2 WHERE seq = 2`,
        `UPDATE audit_event SET seq = 2 WHERE seq = 6`,
        `UPDATE audit_event SET seq = 6 WHERE seq = -2`,
      );
      expect(await verify()).toEqual(broken(2));
    });

    it('finds a deleted tail through the head: the first missing seq', async () => {
      await asDba(`DELETE FROM audit_event WHERE seq >= 9`);
      expect(await verify()).toEqual(broken(9));
    });

    it('finds a forged event appended with a well-computed hash, because the head does not count it', async () => {
      const [last] = await broker.query<{ hash: string }>(`SELECT hash FROM audit_event WHERE seq = $1`, [
        FOUND + 10,
      ]);
      const forged = sealEvent(last.hash, {
        seq: FOUND + 11,
        at: '2030-01-01T00:00:00.000000Z',
        actorUserId: null,
        actorAgencyId: null,
        action: AuditAction.QUERY,
        decision: 'ALLOW',
        reason: null,
        purpose: null,
        datasetId: null,
        agreementId: null,
        agreementVersion: null,
        fields: null,
        rowCount: null,
        details: null,
      });
      await asDba(
        `INSERT INTO audit_event (seq, at, action, decision, prev_hash, hash)
         VALUES (${FOUND + 11}, '${forged.at}', 'QUERY', 'ALLOW', '${forged.prevHash}', '${forged.hash}')`,
      );
      expect(await verify()).toEqual(broken(FOUND + 11));
    });

    it('finds a forged event inserted in the middle at its seq', async () => {
      await asDba(
        `UPDATE audit_event SET seq = seq + 100 WHERE seq >= 5`,
        `UPDATE audit_event SET seq = seq - 99 WHERE seq >= 105`,
        `INSERT INTO audit_event (seq, at, action, decision, prev_hash, hash)
           SELECT 5, now(), 'QUERY', 'ALLOW', hash, repeat('a', 64) FROM audit_event WHERE seq = 4`,
        `UPDATE audit_head SET seq = ${FOUND + 11}`,
      );
      expect(await verify()).toEqual(broken(5));
    });

    it('finds a head that claims more events than the log holds', async () => {
      await asDba(`UPDATE audit_head SET seq = ${FOUND + 12}`);
      expect(await verify()).toEqual(broken(FOUND + 11));
    });

    const VERIFY_KNOWN = `query($heads: [AuditHeadInput!]) {
      verifyAuditChain(knownHeads: $heads) { valid checked firstBrokenSeq }
    }`;
    const verifyKnown = async (heads: { seq: number; hash: string }[]) =>
      (await broker.gqlOk<{ verifyAuditChain: Verification }>(auditor.apiKey, VERIFY_KNOWN, { heads }))
        .verifyAuditChain;
    const writtenDown = async () => {
      const [head] = await broker.query<{ seq: string; hash: string }>(`SELECT seq, hash FROM audit_head`);
      return { seq: Number(head.seq), hash: head.hash };
    };

    it('finds a tail cut off with audit_head rewound, against a head written down earlier', async () => {
      const head = await writtenDown();
      expect(head.seq).toBe(FOUND + 10);
      await asDba(
        `DELETE FROM audit_event WHERE seq >= 8`,
        `UPDATE audit_head SET seq = 7, hash = (SELECT hash FROM audit_event WHERE seq = 7)`,
      );
      // The head is in the same database as the events: rewound with them, it vouches for the rest.
      expect(await verify()).toEqual({ valid: true, checked: 7, firstBrokenSeq: null });
      expect(await verifyKnown([head])).toEqual({ valid: false, checked: 7, firstBrokenSeq: 8 });
    });

    it('finds a log resealed from some event on, against a head written down earlier', async () => {
      const head = await writtenDown();
      const DENIED = FOUND + 3;
      const rows = await broker.query<Record<string, any>>(
        `SELECT seq::int AS seq, (extract(epoch FROM at) * 1000000)::bigint::text AS micros, actor_user_id,
                action, decision, reason, purpose, fields, row_count FROM audit_event WHERE seq >= $1 ORDER BY seq`,
        [DENIED],
      );
      const [{ prev_hash: start }] = await broker.query<{ prev_hash: string }>(
        `SELECT prev_hash FROM audit_event WHERE seq = $1`,
        [DENIED],
      );
      let prev = start;
      const statements: string[] = [];
      for (const row of rows) {
        const sealed = sealEvent(prev, {
          ...{
            actorAgencyId: null,
            datasetId: null,
            agreementId: null,
            agreementVersion: null,
            details: null,
          },
          seq: row.seq,
          at: isoFromMicros(row.micros)!,
          actorUserId: row.actor_user_id,
          action: row.action,
          // That event is a denial (the third sample); the rewritten log says it was allowed.
          decision: row.seq === DENIED ? 'ALLOW' : row.decision,
          reason: row.seq === DENIED ? null : row.reason,
          purpose: row.purpose,
          fields: row.fields,
          rowCount: row.row_count,
        });
        statements.push(
          `UPDATE audit_event SET decision = '${sealed.decision}', reason = ${sealed.reason === null ? 'NULL' : `'${sealed.reason}'`},
             prev_hash = '${sealed.prevHash}', hash = '${sealed.hash}' WHERE seq = ${row.seq}`,
        );
        prev = sealed.hash;
      }
      await asDba(...statements, `UPDATE audit_head SET hash = '${prev}'`);
      expect(await verify()).toEqual({ valid: true, checked: FOUND + 10, firstBrokenSeq: null });
      expect(await verifyKnown([head])).toEqual(broken(FOUND + 10));
      // A head written down before the rewrite's start still matches; the later one does not.
      const [two] = await broker.query<{ hash: string }>(`SELECT hash FROM audit_event WHERE seq = 2`);
      expect(await verifyKnown([{ seq: 2, hash: two.hash }])).toMatchObject({ valid: true });
    });

    it('accepts the heads of an intact log, and refuses what is no head with BAD_USER_INPUT', async () => {
      const head = await writtenDown();
      expect(
        await verifyKnown([
          { seq: 0, hash: GENESIS_HASH },
          { ...head, hash: head.hash.toUpperCase() },
        ]),
      ).toEqual({
        valid: true,
        checked: FOUND + 10,
        firstBrokenSeq: null,
      });
      for (const heads of [
        [{ seq: -1, hash: head.hash }],
        [{ seq: 3, hash: 'abc' }],
        Array.from({ length: 101 }, () => head),
      ]) {
        const res = await broker.gql(auditor.apiKey, VERIFY_KNOWN, { heads });
        expect({ data: res.data, code: res.errors?.[0]?.extensions?.code }).toEqual({
          data: null,
          code: 'BAD_USER_INPUT',
        });
      }
    });
  });

  describe('auditEvents', () => {
    let sheriff: { id: string };
    let courts: { id: string };
    let cbo: { id: string };
    let sheriffSteward: { id: string; apiKey: string };
    let courtsSteward: { id: string; apiKey: string };
    let cboSteward: { id: string; apiKey: string };
    let sheriffAnalyst: { id: string; apiKey: string };
    let sheriffAnalyst2: { id: string; apiKey: string };
    let courtsAnalyst: { id: string; apiKey: string };
    let sheriffData: { id: string };
    let courtsData: { id: string };
    let agreementId: string | null = null;
    const seqs: Record<string, number> = {};

    beforeAll(async () => {
      sheriff = await broker.createAgency('Sheriff');
      courts = await broker.createAgency('Courts');
      cbo = await broker.createAgency('Re-entry CBO');
      sheriffSteward = await broker.createUser({ agencyId: sheriff.id, role: 'STEWARD' });
      courtsSteward = await broker.createUser({ agencyId: courts.id, role: 'STEWARD' });
      cboSteward = await broker.createUser({ agencyId: cbo.id, role: 'STEWARD' });
      sheriffAnalyst = await broker.createUser({ agencyId: sheriff.id, role: 'ANALYST' });
      sheriffAnalyst2 = await broker.createUser({ agencyId: sheriff.id, role: 'ANALYST' });
      courtsAnalyst = await broker.createUser({ agencyId: courts.id, role: 'ANALYST' });
      sheriffData = await broker.registerDataset(sheriffSteward.apiKey, dataset('audit_bookings'));
      courtsData = await broker.registerDataset(courtsSteward.apiKey, dataset('audit_cases'));
      // Agreements are another library's; a bare row is enough to test who sees its events.
      const [table] = await broker.query<{ exists: boolean }>(
        `SELECT to_regclass('agreement') IS NOT NULL AS exists`,
      );
      if (table.exists) {
        const [row] = await broker.query<{ id: string }>(
          `INSERT INTO agreement (provider_agency_id, recipient_agency_id, current_version, created_by)
           VALUES ($1, $2, 1, $3) RETURNING id`,
          [cbo.id, sheriff.id, cboSteward.id],
        );
        agreementId = row.id;
      }

      await resetLog();
      seqs.accountsFound = FOUND;
      const add = async (name: string, event: AuditEventInput) => {
        seqs[name] = (await audit.append(event)).seq;
      };
      const actor = (user: { id: string }, agency: { id: string }) => ({
        actorUserId: user.id,
        actorAgencyId: agency.id,
      });
      await add('sheriffQueriesCourts', {
        ...actor(sheriffAnalyst, sheriff),
        action: AuditAction.QUERY,
        decision: 'ALLOW',
        purpose: 'RECIDIVISM_EVALUATION',
        datasetId: courtsData.id,
        fields: ['charge'],
        rowCount: 3,
      });
      await add('courtsDeniedOnSheriff', {
        ...actor(courtsAnalyst, courts),
        action: AuditAction.QUERY,
        decision: 'DENY',
        reason: 'no active agreement',
        purpose: 'SUPERVISION',
        datasetId: sheriffData.id,
      });
      await add('courtsRegisters', {
        ...actor(courtsSteward, courts),
        action: AuditAction.DATASET_REGISTERED,
        decision: 'ALLOW',
        datasetId: courtsData.id,
      });
      await add('linkage', { action: AuditAction.LINKAGE_RUN, decision: 'ALLOW', rowCount: 1000 });
      await add('sheriffAggregates', {
        ...actor(sheriffAnalyst2, sheriff),
        action: AuditAction.AGGREGATE,
        decision: 'ALLOW',
      });
      await add('cboApproves', {
        ...actor(cboSteward, cbo),
        action: AuditAction.AGREEMENT_APPROVED,
        decision: 'ALLOW',
        agreementId: agreementId ?? '00000000-0000-4000-8000-000000000001',
        agreementVersion: 1,
      });
    });

    type Page = { nodes: { seq: number; at: string }[]; pageInfo: { hasNextPage: boolean } };
    const list = async (apiKey: string, variables: Record<string, unknown> = {}) =>
      (await broker.gqlOk<{ auditEvents: Page }>(apiKey, EVENTS, variables)).auditEvents;
    const visible = async (apiKey: string, filter?: Record<string, unknown>) =>
      (await list(apiKey, { filter })).nodes.map((n) => n.seq);
    const named = (...names: string[]) => names.map((n) => seqs[n]).sort((a, b) => b - a);

    it('shows every field of an event', async () => {
      const { nodes } = await list(auditor.apiKey, { filter: { action: 'QUERY', decision: 'ALLOW' } });
      expect(nodes).toHaveLength(1);
      const [row] = await broker.query<{ at: Date; prev_hash: string; hash: string }>(
        `SELECT at, prev_hash, hash FROM audit_event WHERE seq = $1`,
        [seqs.sheriffQueriesCourts],
      );
      expect(nodes[0]).toEqual({
        seq: seqs.sheriffQueriesCourts,
        at: row.at.toISOString(),
        actorUserId: sheriffAnalyst.id,
        actorAgencyId: sheriff.id,
        action: 'QUERY',
        decision: 'ALLOW',
        reason: null,
        purpose: 'RECIDIVISM_EVALUATION',
        datasetId: courtsData.id,
        agreementId: null,
        agreementVersion: null,
        fields: ['charge'],
        rowCount: 3,
        prevHash: row.prev_hash,
        hash: row.hash,
      });
    });

    it('shows auditors and operators every event, newest first', async () => {
      const all = Object.values(seqs).sort((a, b) => b - a);
      expect(await visible(auditor.apiKey)).toEqual(all);
      expect(await visible(broker.operatorKey)).toEqual(all);
    });

    it("shows a steward its agency's events, its datasets' and its agreements'", async () => {
      expect(await visible(sheriffSteward.apiKey)).toEqual(
        named(
          'sheriffQueriesCourts',
          'courtsDeniedOnSheriff',
          'sheriffAggregates',
          ...(agreementId ? ['cboApproves'] : []),
        ),
      );
      expect(await visible(courtsSteward.apiKey)).toEqual(
        named('sheriffQueriesCourts', 'courtsDeniedOnSheriff', 'courtsRegisters'),
      );
      expect(await visible(cboSteward.apiKey)).toEqual(named('cboApproves'));
    });

    it('shows an analyst only the events it caused', async () => {
      expect(await visible(sheriffAnalyst.apiKey)).toEqual(named('sheriffQueriesCourts'));
      expect(await visible(sheriffAnalyst2.apiKey)).toEqual(named('sheriffAggregates'));
      expect(await visible(courtsAnalyst.apiKey)).toEqual(named('courtsDeniedOnSheriff'));
    });

    it('filters within what the caller may see, never beyond it', async () => {
      expect(await visible(auditor.apiKey, { datasetId: courtsData.id })).toEqual(
        named('sheriffQueriesCourts', 'courtsRegisters'),
      );
      expect(await visible(auditor.apiKey, { decision: 'DENY' })).toEqual(named('courtsDeniedOnSheriff'));
      expect(await visible(auditor.apiKey, { actorAgencyId: sheriff.id, action: 'AGGREGATE' })).toEqual(
        named('sheriffAggregates'),
      );
      expect(
        await visible(auditor.apiKey, { agreementId: agreementId ?? '00000000-0000-4000-8000-000000000001' }),
      ).toEqual(named('cboApproves'));
      expect(await visible(auditor.apiKey, { action: 'NO_SUCH_ACTION' })).toEqual([]);
      expect(await visible(sheriffAnalyst.apiKey, { datasetId: sheriffData.id })).toEqual([]);
      expect(await visible(courtsSteward.apiKey, { actorAgencyId: sheriff.id })).toEqual(
        named('sheriffQueriesCourts'),
      );
    });

    it('filters by time: from inclusive, to exclusive', async () => {
      const all = (await list(auditor.apiKey)).nodes as { seq: number; at: string }[];
      const from = all.find((n) => n.seq === seqs.courtsRegisters)!.at;
      const to = all.find((n) => n.seq === seqs.cboApproves)!.at;
      const expected = all.filter((n) => n.at >= from && n.at < to).map((n) => n.seq);
      expect(expected).toContain(seqs.courtsRegisters);
      expect(await visible(auditor.apiKey, { from, to })).toEqual(expected);
      expect(await visible(auditor.apiKey, { from: to })).toEqual(
        all.filter((n) => n.at >= to).map((n) => n.seq),
      );
    });

    it('refuses malformed filters with BAD_USER_INPUT', async () => {
      for (const filter of [
        { datasetId: 'nope' },
        { agreementId: "1'; DROP TABLE audit_event; --" },
        { from: '2030-01-01T00:00:00Z', to: '2020-01-01T00:00:00Z' },
        { decision: 'MAYBE' },
      ]) {
        const res = await broker.gql(auditor.apiKey, EVENTS, { filter });
        expect({ filter, code: res.errors?.[0].extensions?.code }).toEqual({
          filter,
          code: 'BAD_USER_INPUT',
        });
      }
    });

    it('lets auditors, operators and stewards verify the chain, not analysts', async () => {
      for (const key of [auditor.apiKey, broker.operatorKey, sheriffSteward.apiKey]) {
        // The accounts vouched for, six events, and the DENY events of the four refused filters above.
        expect((await broker.gqlOk(key, VERIFY)).verifyAuditChain).toEqual({
          valid: true,
          checked: FOUND + 10,
          firstBrokenSeq: null,
        });
      }
      const res = await broker.gql(sheriffAnalyst.apiKey, VERIFY);
      expect(res.errors?.[0].extensions?.code).toBe('FORBIDDEN');
      expect(res.data).toBeNull();
    });
  });

  describe('auditEvents pagination', () => {
    beforeAll(async () => {
      // Never verified here: the log holds the test's events alone.
      await resetLog(false);
      await appendMany(25);
    });

    it('pages newest first with an opaque cursor until the end', async () => {
      const pages: number[][] = [];
      let after: string | undefined;
      for (;;) {
        const page = await (await broker.gqlOk(auditor.apiKey, EVENTS, { first: 10, after })).auditEvents;
        pages.push(page.nodes.map((n: { seq: number }) => n.seq));
        if (!page.pageInfo.hasNextPage) {
          expect(page.pageInfo.endCursor).toBe(encodeCursor(1));
          break;
        }
        after = page.pageInfo.endCursor;
      }
      const desc = (from: number, to: number) => Array.from({ length: from - to + 1 }, (_, i) => from - i);
      expect(pages).toEqual([desc(25, 16), desc(15, 6), desc(5, 1)]);
      const beyond = (await broker.gqlOk(auditor.apiKey, EVENTS, { after: encodeCursor(1) })).auditEvents;
      expect(beyond).toEqual({ nodes: [], pageInfo: { hasNextPage: false, endCursor: null } });
    });

    it('keeps pages stable while events are appended', async () => {
      const first = (await broker.gqlOk(auditor.apiKey, EVENTS, { first: 5 })).auditEvents;
      await audit.append(sample(26));
      const next = (await broker.gqlOk(auditor.apiKey, EVENTS, { first: 5, after: first.pageInfo.endCursor }))
        .auditEvents;
      expect(next.nodes.map((n: { seq: number }) => n.seq)).toEqual([20, 19, 18, 17, 16]);
    });

    it('returns 100 by default, at most 1000, and refuses first outside 1..1000', async () => {
      await appendMany(80);
      expect((await broker.gqlOk(auditor.apiKey, EVENTS)).auditEvents.nodes).toHaveLength(100);
      expect((await broker.gqlOk(auditor.apiKey, EVENTS, { first: 1000 })).auditEvents.nodes).toHaveLength(
        106,
      );
      for (const first of [0, -1, 1001, 1_000_000]) {
        const res = await broker.gql(auditor.apiKey, EVENTS, { first });
        expect({ first, code: res.errors?.[0].extensions?.code, data: res.data }).toEqual({
          first,
          code: 'BAD_USER_INPUT',
          data: null,
        });
      }
    });

    it('refuses cursors it did not issue', async () => {
      for (const after of [
        'garbage!',
        '',
        Buffer.from('seq:0').toString('base64url'),
        Buffer.from('seq:abc').toString('base64url'),
        Buffer.from('seq:99999999999999999').toString('base64url'),
        '12',
      ]) {
        const res = await broker.gql(auditor.apiKey, EVENTS, { after });
        expect({ after, code: res.errors?.[0].extensions?.code }).toEqual({ after, code: 'BAD_USER_INPUT' });
      }
    });
  });

  describe('refusals: counted and attributed in the log and the refusal series', () => {
    const SERIES = `query($from: DateTime, $to: DateTime) { auditRefusalSeries(from: $from, to: $to) {
      day plane actorAgencyId actorUserId reason refusals events } }`;
    const DENIALS = `query($filter: AuditFilter) { auditEvents(filter: $filter, first: 50) {
      nodes { action actorUserId reason plane refusals operations rowCount } } }`;
    let from: string;
    let to: string;
    let agencyA: { id: string };
    let stewardA: { id: string; apiKey: string };
    let analystA: { id: string; apiKey: string };
    let stewardB: { id: string; apiKey: string };

    beforeAll(async () => {
      agencyA = await broker.createAgency('Refusals A');
      const agencyB = await broker.createAgency('Refusals B');
      stewardA = await broker.createUser({ agencyId: agencyA.id, role: 'STEWARD' });
      analystA = await broker.createUser({ agencyId: agencyA.id, role: 'ANALYST' });
      stewardB = await broker.createUser({ agencyId: agencyB.id, role: 'STEWARD' });
      const datasetB = await broker.registerDataset(stewardB.apiKey, dataset('refusals_b'));
      // An agreement in force, so that the data plane gets as far as counting aliases.
      await broker.definePurposes('REFUSAL_COUNTING');
      await broker.activateAgreement(stewardB.apiKey, stewardA.apiKey, {
        title: 'Bookings to A',
        providerAgencyId: agencyB.id,
        recipientAgencyId: agencyA.id,
        purposes: ['REFUSAL_COUNTING'],
        validFrom: '2020-01-01T00:00:00Z',
        validUntil: '2099-01-01T00:00:00Z',
        grants: [{ datasetId: datasetB.id, fields: [{ name: 'id' }] }],
      });
      from = new Date().toISOString();
      const aliases = (n: number, field: string) =>
        `{ ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ')} }`;
      // Control plane: another agency's dataset, by GraphQL and by REST (NOT_FOUND, NOT_PARTY) ...
      const ingest = await broker.gql(
        stewardA.apiKey,
        `mutation($id: ID!) { ingestRecords(datasetId: $id, records: [{ id: "1" }]) { inserted } }`,
        { id: datasetB.id },
      );
      expect(ingest.errors?.[0].extensions).toMatchObject({ code: 'NOT_FOUND', reason: 'NOT_PARTY' });
      expect((await broker.upload(stewardA.apiKey, datasetB.id, 'text/csv', 'id\n1')).status).toBe(404);
      // ... a role's refusal, and three alias floods (LIMIT, merged) ...
      const linkage = await broker.gql(analystA.apiKey, 'mutation { startLinkage { id } }');
      expect(linkage.errors?.[0].extensions).toMatchObject({ code: 'FORBIDDEN', reason: 'ROLE' });
      for (let i = 0; i < 3; i++) {
        const flood = await broker.gql(analystA.apiKey, aliases(200, 'me { id }'));
        expect(flood.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'LIMIT' });
      }
      // ... and the data plane's: two alias floods.
      for (let i = 0; i < 2; i++) {
        const flood = await broker.gql(
          analystA.apiKey,
          aliases(100, 'refusals_b(purpose: REFUSAL_COUNTING) { nodes { id } }'),
          undefined,
          '/data/graphql',
        );
        expect(flood.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'LIMIT' });
      }
      await broker.app.get(RefusalRecorder).flush(true);
      to = new Date(Date.now() + 1000).toISOString();
    });

    it('counts every refused request per day, plane, user and reason, merged LIMIT refusals one by one', async () => {
      const { auditRefusalSeries } = await broker.gqlOk<{ auditRefusalSeries: unknown[] }>(
        auditor.apiKey,
        SERIES,
        { from, to },
      );
      const day = from.slice(0, 10);
      const row = (
        plane: string,
        user: { id: string },
        reason: string,
        refusals: number,
        events: number,
      ) => ({
        day,
        plane,
        actorAgencyId: agencyA.id,
        actorUserId: user.id,
        reason,
        refusals,
        events,
      });
      expect(auditRefusalSeries).toEqual(
        [
          row('CONTROL', stewardA, 'NOT_PARTY', 2, 2),
          row('CONTROL', analystA, 'ROLE', 1, 1),
          // The first of a minute at once, the two others in one event when the minute is flushed.
          row('CONTROL', analystA, 'LIMIT', 3, 2),
          row('DATA', analystA, 'LIMIT', 2, 2),
        ].sort(
          (a, b) =>
            a.plane.localeCompare(b.plane) ||
            a.actorUserId.localeCompare(b.actorUserId) ||
            a.reason.localeCompare(b.reason),
        ),
      );
    });

    it('shows each refusal in the log with its plane, its count and what it asked', async () => {
      type Denial = {
        action: string;
        actorUserId: string;
        reason: string;
        plane: string;
        refusals: number;
        operations: string[] | null;
        rowCount: number | null;
      };
      const { auditEvents } = await broker.gqlOk<{ auditEvents: { nodes: Denial[] } }>(
        auditor.apiKey,
        DENIALS,
        {
          filter: { decision: 'DENY', actorAgencyId: agencyA.id },
        },
      );
      expect(auditEvents.nodes.reverse()).toEqual([
        expect.objectContaining({
          actorUserId: stewardA.id,
          action: 'REQUEST_REFUSED',
          reason: 'NOT_PARTY',
          plane: 'CONTROL',
          refusals: 1,
          operations: ['ingestRecords'],
        }),
        expect.objectContaining({
          actorUserId: stewardA.id,
          action: 'REQUEST_REFUSED',
          reason: 'NOT_PARTY',
          plane: 'CONTROL',
          refusals: 1,
          operations: ['POST /api/datasets/:id/records'],
        }),
        expect.objectContaining({
          actorUserId: analystA.id,
          action: 'REQUEST_REFUSED',
          reason: 'ROLE',
          plane: 'CONTROL',
          refusals: 1,
          operations: ['startLinkage'],
        }),
        expect.objectContaining({
          actorUserId: analystA.id,
          action: 'REQUEST_REFUSED',
          reason: 'LIMIT',
          plane: 'CONTROL',
          refusals: 1,
          operations: ['me'],
        }),
        expect.objectContaining({
          actorUserId: analystA.id,
          action: 'QUERY',
          reason: 'LIMIT',
          plane: 'DATA',
          refusals: 1,
        }),
        // Flushed: the merged ones, by endpoint and action, with no operation named.
        expect.objectContaining({
          actorUserId: analystA.id,
          action: 'REQUEST_REFUSED',
          reason: 'LIMIT',
          plane: 'CONTROL',
          refusals: 2,
          operations: [],
        }),
        expect.objectContaining({
          actorUserId: analystA.id,
          action: 'QUERY',
          reason: 'LIMIT',
          plane: 'DATA',
          refusals: 1,
          operations: [],
        }),
      ]);
      // An allowed event has none of these.
      const allowed = await broker.gqlOk<{ auditEvents: { nodes: Denial[] } }>(auditor.apiKey, DENIALS, {
        filter: { decision: 'ALLOW', action: 'DATASET_REGISTERED' },
      });
      expect(allowed.auditEvents.nodes[0]).toMatchObject({ plane: null, refusals: null, operations: null });
    });

    it('counts for each caller only the events it may read', async () => {
      const series = async (apiKey: string) =>
        (
          await broker.gqlOk<{ auditRefusalSeries: { actorUserId: string; refusals: number }[] }>(
            apiKey,
            SERIES,
            { from, to },
          )
        ).auditRefusalSeries;
      expect(new Set((await series(analystA.apiKey)).map((r) => r.actorUserId))).toEqual(
        new Set([analystA.id]),
      );
      // The other agency's steward sees the refusals about its dataset that named it: the upload, and
      // ingestRecords (whose datasetId the event records as its target).
      expect(await series(stewardB.apiKey)).toEqual([
        expect.objectContaining({ actorUserId: stewardA.id, reason: 'NOT_PARTY', refusals: 2 }),
      ]);
      const bad = await broker.gql(auditor.apiKey, SERIES, { from: to, to: from });
      expect(bad.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    });
  });
});
