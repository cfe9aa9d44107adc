import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { AuditAction, type AuditEventInput, AuditService } from '@broker/audit';
import { Database } from '@broker/core';
import { TestBroker } from '@broker/testing';

/**
 * A group of audit events appended in one write (the data plane's group commit) must leave exactly
 * what appending them one at a time would: a chain that verifies, consecutive seqs in order, and the
 * public register's counts moved by DESIGN §4.4's rule, which this test states on its own: a data
 * request (QUERY, AGGREGATE, EXPORT) naming an existing agreement counts as allowed, or as denied
 * when a party's user made it; rows released are the row counts of allowed QUERY and EXPORT events.
 */
describe('audit: a group of events appended in one write', () => {
  let broker: TestBroker;
  let audit: AuditService;
  let db: Database;
  let provider: string;
  let recipient: string;
  let agreements: string[];
  let auditorKey: string;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'audit_group' });
    audit = broker.app.get(AuditService);
    db = broker.app.get(Database);
    const parties = await broker.sharingParties('Sheriff', 'Research', 'RECIDIVISM_EVALUATION');
    provider = parties.providerAgency.id;
    recipient = parties.recipientAgency.id;
    const dataset = await broker.registerDataset(parties.providerSteward.apiKey, {
      slug: 'bookings',
      title: 'Bookings',
      keyField: 'booking_id',
      fields: [{ name: 'booking_id', type: 'STRING', classification: 'NON_SENSITIVE' }],
    });
    agreements = [];
    for (const title of ['First', 'Second']) {
      agreements.push(
        await broker.activateAgreement(parties.providerSteward.apiKey, parties.recipientSteward.apiKey, {
          title,
          providerAgencyId: provider,
          recipientAgencyId: recipient,
          purposes: ['RECIDIVISM_EVALUATION'],
          validFrom: '2020-01-01T00:00:00Z',
          validUntil: '2099-01-01T00:00:00Z',
          grants: [{ datasetId: dataset.id, fields: [{ name: 'booking_id' }] }],
        }),
      );
    }
    auditorKey = (await broker.oversightAuditor()).apiKey;
  });
  afterAll(() => broker.close());

  const counts = async () => {
    const rows = await broker.query<{
      id: string;
      allowed: number;
      denied: number;
      rows: number;
      days: number;
    }>(
      `SELECT a.id,
              coalesce((SELECT sum(allowed) FROM register_month m WHERE m.agreement_id = a.id), 0)::int AS allowed,
              coalesce((SELECT sum(denied) FROM register_month m WHERE m.agreement_id = a.id), 0)::int AS denied,
              coalesce((SELECT sum(rows_released) FROM register_month m WHERE m.agreement_id = a.id), 0)::int AS rows,
              coalesce((SELECT sum(rows_released) FROM register_release_day d WHERE d.agreement_id = a.id), 0)::int AS days
         FROM agreement a WHERE a.id = ANY($1::uuid[]) ORDER BY a.id`,
      [agreements],
    );
    return Object.fromEntries(rows.map(({ id, ...rest }) => [id, rest]));
  };

  it('writes consecutive, verifiable events and moves the register as one-at-a-time appends would', async () => {
    const event = fc.record({
      action: fc.constantFrom(
        AuditAction.QUERY,
        AuditAction.AGGREGATE,
        AuditAction.EXPORT,
        AuditAction.AGREEMENT_PROPOSED,
      ),
      decision: fc.constantFrom('ALLOW' as const, 'DENY' as const),
      // An agreement of the register, none, or one that does not exist (it counts nowhere).
      agreement: fc.constantFrom(0, 1, null, 'missing' as const),
      actor: fc.constantFrom('provider', 'recipient', 'stranger', null),
      rowCount: fc.option(fc.integer({ min: 0, max: 500 }), { nil: null }),
      fields: fc.option(fc.array(fc.constantFrom('booking_id', 'zip', 'constructor'), { maxLength: 3 }), {
        nil: null,
      }),
      // The database seals what Node's verifier rechecks: any JSON, any text (NULs and lone
      // surrogates included, which are stored replaced), keys that look like the sealed ones.
      details: fc.option(
        fc.dictionary(
          fc.oneof(
            fc.constantFrom('at', 'seq', 'details', '"at":"', '\u0000at'),
            fc.string({ unit: 'binary' }),
          ),
          fc.jsonValue(),
          { maxKeys: 4 },
        ),
        { nil: null },
      ),
      reason: fc.option(fc.string({ unit: 'binary', maxLength: 12 }), { nil: null }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(event, { minLength: 1, maxLength: 40 }), async (drawn) => {
        const agencyOf = { provider, recipient, stranger: randomUUID() };
        const inputs: AuditEventInput[] = drawn.map((e) => ({
          action: e.action,
          decision: e.decision,
          agreementId:
            e.agreement === null ? null : e.agreement === 'missing' ? randomUUID() : agreements[e.agreement],
          actorAgencyId: e.actor === null ? null : agencyOf[e.actor],
          rowCount: e.rowCount,
          fields: e.fields,
          details: e.details,
          reason: e.reason,
        }));
        const expected = await counts();
        for (const input of inputs) {
          const id = input.agreementId;
          if (!id || !expected[id] || !['QUERY', 'AGGREGATE', 'EXPORT'].includes(input.action)) continue;
          if (input.decision === 'ALLOW') {
            expected[id].allowed++;
            if (input.action !== AuditAction.AGGREGATE) {
              expected[id].rows += input.rowCount ?? 0;
              expected[id].days += input.rowCount ?? 0;
            }
          } else if (input.actorAgencyId === provider || input.actorAgencyId === recipient) {
            expected[id].denied++;
          }
        }
        const [{ seq: before }] = await broker.query<{ seq: string }>(`SELECT seq FROM audit_head`);
        const appended = await db.transaction((tx) => audit.appendAllOnClient(tx.client, inputs));
        expect(appended.map((a) => a.seq)).toEqual(inputs.map((_, i) => Number(before) + i + 1));
        expect(await counts()).toEqual(expected);
        const stored = await broker.query<{
          seq: string;
          action: string;
          row_count: number | null;
          fields: string[] | null;
        }>(`SELECT seq, action, row_count, fields FROM audit_event WHERE seq > $1 ORDER BY seq`, [before]);
        expect(stored.map((s) => [s.action, s.row_count, s.fields])).toEqual(
          inputs.map((i) => [i.action, i.rowCount, i.fields]),
        );
      }),
      { numRuns: 25 },
    );
    const verified = await broker.gqlOk<{ verifyAuditChain: { valid: boolean; checked: number } }>(
      auditorKey,
      `{ verifyAuditChain { valid checked firstBrokenSeq } }`,
    );
    const [{ seq }] = await broker.query<{ seq: string }>(`SELECT seq FROM audit_head`);
    expect(verified.verifyAuditChain).toEqual({ valid: true, checked: Number(seq), firstBrokenSeq: null });
  });

  it('writes nothing of a group with one malformed event', async () => {
    const [{ seq: before }] = await broker.query<{ seq: string }>(`SELECT seq FROM audit_head`);
    await expect(
      db.transaction((tx) =>
        audit.appendAllOnClient(tx.client, [
          { action: AuditAction.QUERY, decision: 'ALLOW', agreementId: agreements[0], rowCount: 1 },
          { action: AuditAction.QUERY, decision: 'ALLOW', fields: [42 as unknown as string] },
        ]),
      ),
    ).rejects.toThrow(TypeError);
    expect(await broker.query(`SELECT seq FROM audit_head`)).toEqual([{ seq: before }]);
    // Nor of a group larger than one statement seals.
    const many = Array.from({ length: 1001 }, () => ({
      action: AuditAction.QUERY,
      decision: 'ALLOW' as const,
    }));
    await expect(audit.appendGroup(many)).rejects.toThrow('a group holds 1 to 1000 events');
    expect(await broker.query(`SELECT seq FROM audit_head`)).toEqual([{ seq: before }]);
  });
});
