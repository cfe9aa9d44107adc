/**
 * The trial of a row filter's index (DatasetService.unindexablePopulations: DDL on a temporary copy
 * of the record table, rolled back) as a hostile steward would meet it. It runs only for a steward
 * allowed the change: a steward of a third agency is refused before any DDL. Values that SQL quotes
 * (quotes, backslashes, braces, "NULL", dollar quotes, Unicode that is not ASCII, a value of 65,536
 * characters) are written into the predicate as literals and mean exactly themselves: the trial
 * accepts them, PostgreSQL builds the population's indexes, and a page under the filter returns
 * exactly the records holding one of them. Characters PostgreSQL cannot hold are refused as invalid
 * input. Nothing is left behind by a trial: no temporary relation, no open transaction, no lock on
 * the record table. A trial that waits too long for the record table, or runs too long, is refused as
 * a conflict to try again, audited, with nothing changed.
 */
import { AgreementService } from '@broker/agreements';
import { Transaction } from '@broker/core';
import { DatasetService } from '@broker/registry';
import { Client } from 'pg';
import { TestBroker } from '@broker/testing';

const PROPOSE = `mutation($input: AgreementInput!) { proposeAgreement(input: $input) { id currentVersion } }`;
const AMEND = `mutation($id: ID!, $input: AgreementInput!) { amendAgreement(id: $id, input: $input) { id } }`;
const PREVIEW = `query($input: AgreementInput!) { previewAgreement(input: $input) { purpose } }`;

/** Values SQL must quote, and Unicode beyond ASCII: each a record's note, and in the filter's list. */
const HOSTILE = [
  "O'Brien",
  "'); DROP TABLE records.notes; --",
  'back\\slash',
  '\\',
  "\\'",
  'a\\"b\'c',
  '"quoted"',
  '{curly,comma}',
  'NULL',
  '',
  '  spaced  ',
  '$$dollar$$',
  "E'x'",
  'e\u0301',
  'é',
  '😀',
  '\u202Eevil',
  '\uFEFFbom',
  'line\nbreak',
  'x'.repeat(65_536),
];

/** A string of varied letters (one that compresses little). */
const letters = (n: number) => {
  let x = 987654321;
  let s = '';
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += String.fromCharCode(97 + ((x >> 16) % 26));
  }
  return s;
};
/** Too large to index (docs/disclosure-control.md: one string of 6,951 varied letters is). */
const TOO_LARGE = { note: letters(20_000) };

describe('the trial of a row filter on a hostile steward', () => {
  let broker: TestBroker;
  let provider: { apiKey: string };
  let recipient: { apiKey: string };
  let analyst: { apiKey: string };
  let outsider: { apiKey: string };
  let providerAgencyId: string;
  let recipientAgencyId: string;
  let datasetId: string;

  const input = (rowFilter: Record<string, unknown>, title = 'Notes of a population') => ({
    title,
    providerAgencyId,
    recipientAgencyId,
    purposes: ['RESEARCH'],
    validFrom: '2020-01-01T00:00:00Z',
    validUntil: '2099-01-01T00:00:00Z',
    grants: [{ datasetId, fields: [{ name: 'id' }, { name: 'note' }], rowFilter }],
  });
  /** What a refused change must leave as it was. */
  const state = () =>
    broker.query(
      `SELECT (SELECT count(*)::int FROM agreement) AS agreements,
              (SELECT count(*)::int FROM agreement_version) AS versions`,
    );
  /**
   * What a trial could leave behind: a temporary relation, a transaction left open, a lock on the
   * record table held by a session that is not running a statement. Background work may hold one
   * for an instant; a leftover holds it for ever, so the answer is the first that shows none.
   */
  const leftovers = async () => {
    let found: unknown;
    for (let attempt = 0; attempt < 50; attempt++) {
      [found] = await broker.query(
        `SELECT (SELECT count(*)::int FROM pg_class WHERE relpersistence = 't') AS temporary,
                (SELECT count(*)::int FROM pg_stat_activity
                  WHERE datname = current_database() AND state LIKE 'idle in transaction%') AS open,
                (SELECT count(*)::int FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                   JOIN pg_stat_activity a ON a.pid = l.pid
                  WHERE c.relname = 'notes' AND a.state <> 'active') AS locks`,
      );
      if (JSON.stringify(found) === JSON.stringify(NONE)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return found;
  };
  const NONE = { temporary: 0, open: 0, locks: 0 };

  beforeAll(async () => {
    // No linkage run is scheduled by the ingestion: no background transaction beside the trials.
    process.env.LINKAGE_DEBOUNCE_MS = '86400000';
    broker = await TestBroker.start({ LABEL: 'row_filter_trial' });
    delete process.env.LINKAGE_DEBOUNCE_MS;
    const parties = await broker.sharingParties('Courts', 'Research', 'RESEARCH');
    provider = parties.providerSteward;
    recipient = parties.recipientSteward;
    analyst = parties.analyst;
    providerAgencyId = parties.providerAgency.id;
    recipientAgencyId = parties.recipientAgency.id;
    const third = await broker.createAgency('Elsewhere');
    outsider = await broker.createUser({ agencyId: third.id, role: 'STEWARD' });
    ({ id: datasetId } = await broker.registerDataset(provider.apiKey, {
      slug: 'notes',
      title: 'Notes',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'note', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    }));
    // One record of each hostile value, and neighbours of some that must not match.
    const records = [
      ...HOSTILE.map((note, i) => ({ id: `H${String(i).padStart(3, '0')}`, note })),
      { id: 'N000', note: 'OBrien' },
      { id: 'N001', note: 'backslash' },
      { id: 'N002', note: 'e' },
      { id: 'N003', note: 'null' },
      { id: 'N004', note: null },
      { id: 'N005', note: 'x'.repeat(65_535) },
      { id: 'N006', note: 'spaced' },
    ];
    await broker.gqlOk(
      provider.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: datasetId, r: records },
    );
  });
  afterAll(() => broker.close());

  it('runs no trial for a steward who may not make the change: refused as before, audited, nothing left', async () => {
    const datasets = broker.app.get(DatasetService);
    const trial = jest.spyOn(datasets, 'unindexablePopulations');
    try {
      const agreementId = await broker.activateAgreement(
        provider.apiKey,
        recipient.apiKey,
        input({ note: 'a' }),
      );
      trial.mockClear();
      const before = await state();
      for (const [operation, query, variables, code] of [
        ['proposeAgreement', PROPOSE, { input: input(TOO_LARGE) }, 'FORBIDDEN'],
        ['previewAgreement', PREVIEW, { input: input(TOO_LARGE) }, 'FORBIDDEN'],
        ['amendAgreement', AMEND, { id: agreementId, input: input(TOO_LARGE) }, 'NOT_FOUND'],
      ] as const) {
        const seq = await broker.auditHeadSeq();
        const res = await broker.gql(outsider.apiKey, query, variables);
        expect({ operation, data: res.data, codes: res.errors?.map((e) => e.extensions?.code) }).toEqual({
          operation,
          data: null,
          codes: [code],
        });
        const events = await broker.query<{ action: string; decision: string }>(
          `SELECT action, decision FROM audit_event WHERE seq > $1 ORDER BY seq`,
          [seq],
        );
        expect({ operation, events }).toEqual({
          operation,
          events: [{ action: 'REQUEST_REFUSED', decision: 'DENY' }],
        });
      }
      expect(trial).not.toHaveBeenCalled();
      expect(await state()).toEqual(before);
      expect(await leftovers()).toEqual(NONE);
      // A party's steward still has the filter tried, and refused.
      const res = await broker.gql(provider.apiKey, PROPOSE, { input: input(TOO_LARGE) });
      expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['BAD_USER_INPUT']);
      expect(res.errors![0].message).toMatch(/grants\[0\]\.rowFilter is too large to index on dataset notes/);
      expect(trial).toHaveBeenCalledTimes(1);
      expect(await state()).toEqual(before);
      expect(await leftovers()).toEqual(NONE);
    } finally {
      trial.mockRestore();
    }
  });

  it('writes hostile values into the predicate as themselves: accepted, indexed, and matching exactly', async () => {
    const filter = { note: { $in: HOSTILE } };
    // Previewed, then tried and proposed as any filter: nothing left behind by either trial.
    const preview = await broker.gql(provider.apiKey, PREVIEW, { input: input(filter, 'Hostile') });
    expect(preview.errors).toBeUndefined();
    const agreementId = await broker.activateAgreement(
      provider.apiKey,
      recipient.apiKey,
      input(filter, 'Hostile'),
    );
    expect(await leftovers()).toEqual(NONE);
    // PostgreSQL builds every index of the population the trial accepted.
    const outcome = await broker.app.get(AgreementService).ensureIndexesInForce();
    expect(outcome).toMatchObject({ failed: 0 });
    const built = await broker.query<{ valid: boolean }>(
      `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relname LIKE 'notes_pp_%'`,
    );
    expect(built.length).toBeGreaterThan(0);
    expect(built.every((b) => b.valid)).toBe(true);
    // The records released are exactly those holding one of the values, to the character.
    const page = await broker.gql<{ notes: { nodes: { id: string; note: string | null }[] } }>(
      analyst.apiKey,
      `{ notes(purpose: RESEARCH, agreement: "${agreementId}", orderBy: [{ field: id }], first: 100) { nodes { id note } } }`,
      undefined,
      '/data/graphql',
    );
    expect(page.errors).toBeUndefined();
    expect(page.data!.notes.nodes).toEqual(
      HOSTILE.map((note, i) => ({ id: `H${String(i).padStart(3, '0')}`, note })),
    );
    // One value alone, compared by equality, in an amendment (tried again, accepted).
    for (const note of HOSTILE) {
      if (note.length > 100) continue;
      const amended = await broker.gql(provider.apiKey, AMEND, {
        id: agreementId,
        input: input({ note }, 'Hostile'),
      });
      expect({ note, errors: amended.errors }).toEqual({ note, errors: undefined });
    }
    expect(await leftovers()).toEqual(NONE);
  });

  it('refuses characters PostgreSQL cannot hold as invalid input, before any trial: nothing changed', async () => {
    const before = await state();
    for (const note of ['nul\u0000byte', 'lone\uD800surrogate']) {
      for (const rowFilter of [{ note }, { note: { $in: ['ok', note] } }]) {
        const res = await broker.gql(provider.apiKey, PROPOSE, { input: input(rowFilter) });
        expect({ note, data: res.data, codes: res.errors?.map((e) => e.extensions?.code) }).toEqual({
          note,
          data: null,
          codes: ['BAD_USER_INPUT'],
        });
      }
    }
    expect(await state()).toEqual(before);
    expect(await leftovers()).toEqual(NONE);
  });

  it('refuses the change as a conflict to retry when the record table stays locked: it waits a bounded time, changes nothing, and is audited', async () => {
    const before = await state();
    const seq = await broker.auditHeadSeq();
    // A change of the dataset holding its record table (as an ALTER TABLE would), past the trial's wait.
    const holder = new Client({ connectionString: broker.config.DATABASE_URL });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE records.notes IN ACCESS EXCLUSIVE MODE');
      for (const [query, name] of [
        [PROPOSE, 'proposeAgreement'],
        [PREVIEW, 'previewAgreement'],
      ] as const) {
        const res = await broker.gql(provider.apiKey, query, { input: input({ note: 'é' }, 'Locked') });
        expect({
          name,
          data: res.data,
          errors: res.errors?.map((e) => [e.extensions?.code, e.message]),
        }).toEqual({
          name,
          data: null,
          errors: [
            [
              'CONFLICT',
              'The records of dataset notes are being changed, so its row filter could not be checked for ' +
                'indexing; nothing was changed: try again',
            ],
          ],
        });
      }
      expect(await state()).toEqual(before);
      // Each refusal is an audit event of its own, with its reason.
      const events = await broker.query<{ action: string; decision: string; reason: string }>(
        `SELECT action, decision, reason FROM audit_event WHERE seq > $1 ORDER BY seq`,
        [seq],
      );
      expect(events).toEqual([
        { action: 'REQUEST_REFUSED', decision: 'DENY', reason: 'INVALID' },
        { action: 'REQUEST_REFUSED', decision: 'DENY', reason: 'INVALID' },
      ]);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    // The lock gone, the same proposal is tried and accepted.
    const res = await broker.gql(provider.apiKey, PROPOSE, { input: input({ note: 'é' }, 'Locked') });
    expect(res.errors).toBeUndefined();
    expect(await leftovers()).toEqual(NONE);
  });

  it('refuses the change as a conflict to retry when the trial runs past its statement limit: stopped at 10 s, nothing changed, audited', async () => {
    const agreementId = await broker.activateAgreement(
      provider.apiKey,
      recipient.apiKey,
      input({ note: 'a' }, 'Slow'),
    );
    const before = await state();
    const seq = await broker.auditHeadSeq();
    // The trial's first statement (its copy of the record table) is preceded, in its transaction, by
    // work that outlasts the statement limit without waiting for any lock: only that limit stops it.
    const seen: { statement: unknown; lock: unknown }[] = [];
    const query = Transaction.prototype.query;
    const spy = jest.spyOn(Transaction.prototype, 'query').mockImplementation(async function (
      this: Transaction,
      sql: string,
      params?: unknown[],
    ) {
      if (sql.startsWith('CREATE TEMPORARY TABLE')) {
        const [limits] = await query.call<
          Transaction,
          [string],
          Promise<{ statement: unknown; lock: unknown }[]>
        >(
          this,
          `SELECT current_setting('statement_timeout') AS statement, current_setting('lock_timeout') AS lock`,
        );
        seen.push(limits);
        await query.call(this, 'SELECT pg_sleep(11)');
      }
      return query.call(this, sql, params);
    });
    const timed = async (operation: string, variables: Record<string, unknown>) => {
      const start = performance.now();
      const res = await broker.gql(provider.apiKey, operation, variables);
      return { res, ms: performance.now() - start };
    };
    try {
      // A proposal, an amendment and a preview at once: one wait of the statement limit for all three.
      const answers = await Promise.all([
        timed(PROPOSE, { input: input({ note: 'é' }, 'Slow') }),
        timed(AMEND, { id: agreementId, input: input({ note: 'é' }, 'Slow') }),
        timed(PREVIEW, { input: input({ note: 'é' }, 'Slow') }),
      ]);
      const names = ['proposeAgreement', 'amendAgreement', 'previewAgreement'];
      for (const [i, { res, ms }] of answers.entries()) {
        expect({
          name: names[i],
          data: res.data,
          errors: res.errors?.map((e) => [e.extensions?.code, e.message]),
        }).toEqual({
          name: names[i],
          data: null,
          errors: [
            [
              'CONFLICT',
              'The records of dataset notes are being changed, so its row filter could not be checked for ' +
                'indexing; nothing was changed: try again',
            ],
          ],
        });
        // Stopped by the statement limit (10 s), not by the lock limit (2 s).
        expect({ name: names[i], waited: ms >= 9_900 }).toEqual({ name: names[i], waited: true });
      }
      // Each trial ran under the limits it sets, in its own transaction.
      expect(seen).toEqual(Array(3).fill({ statement: '10s', lock: '2s' }));
    } finally {
      spy.mockRestore();
    }
    expect(await state()).toEqual(before);
    // Each refusal is an audit event of its own, with its reason.
    const events = await broker.query<{ action: string; decision: string; reason: string }>(
      `SELECT action, decision, reason FROM audit_event WHERE seq > $1 ORDER BY seq`,
      [seq],
    );
    expect(events).toEqual(Array(3).fill({ action: 'REQUEST_REFUSED', decision: 'DENY', reason: 'INVALID' }));
    expect(await leftovers()).toEqual(NONE);
    // Tried again in time, the same amendment is accepted.
    const res = await broker.gql(provider.apiKey, AMEND, {
      id: agreementId,
      input: input({ note: 'é' }, 'Slow'),
    });
    expect(res.errors).toBeUndefined();
  }, 30_000);
});
