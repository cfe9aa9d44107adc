import { DataSource } from 'typeorm';
import { TestBroker, withOversightText } from '@broker/testing';
import { expectBrokenAt } from './audit-tamper';

const DBA_TABLES = ['agreement', 'agreement_version', 'agreement_approval', 'agreement_decline'];

/**
 * The agreements' terms and states decide what the data plane releases; the audit chain vouches for
 * them. A DBA who widens an agreement in the database (drops a row filter, extends a validity, adds
 * an approval, brings a version into force, undoes a revocation, changes a party) without the broker
 * breaks the chain's verification, through the API and the offline script alike; each change put
 * back, it verifies again.
 */
describe('audit chain: the agreements it vouches for', () => {
  let broker: TestBroker;
  let auditor: { apiKey: string };
  let provider: { id: string };
  let recipient: { id: string };
  let other: { id: string };
  let providerSteward: { apiKey: string };
  let recipientSteward: { apiKey: string };
  let agreementId: string;
  let terms: Record<string, unknown>;

  const verify = () => broker.verifyAuditChain(auditor.apiKey);
  const head = () => broker.auditHeadSeq();
  /** The seq of the agreement's first event of `action`. */
  const eventSeq = async (action: string) =>
    Number(
      (
        await broker.query<{ seq: string }>(
          `SELECT min(seq)::text AS seq FROM audit_event WHERE agreement_id = $1 AND action = $2`,
          [agreementId, action],
        )
      )[0].seq,
    );
  const brokenAt = (seq: number, change: () => Promise<unknown>, undo: () => Promise<unknown>) =>
    expectBrokenAt(broker, auditor.apiKey, seq, change, undo);
  /** A statement run as a DBA who disabled the agreement tables' triggers (and restores them). */
  const sql =
    (text: string, ...params: unknown[]) =>
    () =>
      broker.app.get(DataSource).transaction(async (manager) => {
        for (const table of DBA_TABLES) await manager.query(`ALTER TABLE ${table} DISABLE TRIGGER USER`);
        await manager.query(text, params);
        for (const table of DBA_TABLES) await manager.query(`ALTER TABLE ${table} ENABLE TRIGGER USER`);
      });
  const all =
    (...steps: (() => Promise<unknown>)[]) =>
    async () => {
      for (const step of steps) await step();
    };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'auditagr' });
    auditor = await broker.createUser({ role: 'AUDITOR' });
    provider = await broker.createAgency('Provider');
    recipient = await broker.createAgency('Recipient');
    other = await broker.createAgency('Other');
    providerSteward = await broker.createUser({ agencyId: provider.id, role: 'STEWARD' });
    recipientSteward = await broker.createUser({ agencyId: recipient.id, role: 'STEWARD' });
    await broker.definePurposes('RESEARCH');
    const dataset = await broker.registerDataset(providerSteward.apiKey, {
      slug: 'cases',
      title: 'Cases',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'n', type: 'INTEGER', classification: 'NON_SENSITIVE' },
      ],
    });
    terms = {
      title: 'Cases for research',
      providerAgencyId: provider.id,
      recipientAgencyId: recipient.id,
      purposes: ['RESEARCH'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2030-01-01T00:00:00Z',
      grants: [
        { datasetId: dataset.id, fields: [{ name: 'id' }, { name: 'n' }], rowFilter: { n: { $gte: 10 } } },
      ],
    };
    agreementId = await broker.activateAgreement(providerSteward.apiKey, recipientSteward.apiKey, terms);
  });
  afterAll(() => broker.close());

  it('seals each version’s terms in the event that proposed it, as PostgreSQL stores them', async () => {
    const [row] = await broker.query<{ sealed: string; stored: string }>(
      `SELECT e.details->>'contentDigest' AS sealed,
              encode(sha256(convert_to(v.content::text, 'UTF8')), 'hex') AS stored
         FROM audit_event e
         JOIN agreement_version v ON v.agreement_id = e.agreement_id AND v.version = e.agreement_version
        WHERE e.agreement_id = $1 AND e.action = 'AGREEMENT_PROPOSED'`,
      [agreementId],
    );
    expect(row.sealed).toMatch(/^[0-9a-f]{64}$/);
    expect(row.sealed).toBe(row.stored);
    expect(await verify()).toEqual({ valid: true, checked: await head(), firstBrokenSeq: null });
  });

  it('breaks at the proposing event where a version’s terms or validity were changed', async () => {
    const proposed = await eventSeq('AGREEMENT_PROPOSED');
    const v1 = `agreement_id = $1 AND version = 1`;
    // The row filter dropped.
    await brokenAt(
      proposed,
      all(
        sql(`CREATE TABLE saved_terms AS SELECT content FROM agreement_version WHERE ${v1}`, agreementId),
        sql(
          `UPDATE agreement_version SET content = content #- '{grants,0,rowFilter}' WHERE ${v1}`,
          agreementId,
        ),
      ),
      all(
        sql(
          `UPDATE agreement_version SET content = (SELECT content FROM saved_terms) WHERE ${v1}`,
          agreementId,
        ),
        sql(`DROP TABLE saved_terms`),
      ),
    );
    // The validity extended in its column, the terms left as they were.
    await brokenAt(
      proposed,
      sql(
        `UPDATE agreement_version SET valid_until = valid_until + interval '10 years' WHERE ${v1}`,
        agreementId,
      ),
      sql(
        `UPDATE agreement_version SET valid_until = valid_until - interval '10 years' WHERE ${v1}`,
        agreementId,
      ),
    );
  });

  it('breaks where an agreement’s party was changed, in the terms or in the agreement', async () => {
    await brokenAt(
      await eventSeq('AGREEMENT_PROPOSED'),
      sql(`UPDATE agreement SET recipient_agency_id = $2 WHERE id = $1`, agreementId, other.id),
      sql(`UPDATE agreement SET recipient_agency_id = $2 WHERE id = $1`, agreementId, recipient.id),
    );
  });

  it('breaks past the log where an approval or a version in force is no event’s', async () => {
    // An amendment the recipient never approved, approved and brought into force by the DBA.
    await broker.gqlOk(
      providerSteward.apiKey,
      `mutation($id: ID!, $input: AgreementInput!) { amendAgreement(id: $id, input: $input) { id } }`,
      { id: agreementId, input: withOversightText({ ...terms, validUntil: '2031-01-01T00:00:00Z' }) },
    );
    const past = (await head()) + 1;
    await brokenAt(
      past,
      sql(
        `INSERT INTO agreement_approval (agreement_id, version, agency_id, user_id)
         SELECT $1, 2, $2, created_by FROM agreement WHERE id = $1`,
        agreementId,
        recipient.id,
      ),
      sql(
        `DELETE FROM agreement_approval WHERE agreement_id = $1 AND version = 2 AND agency_id = $2`,
        agreementId,
        recipient.id,
      ),
    );
    await brokenAt(
      past,
      sql(`UPDATE agreement SET in_force_version = 2 WHERE id = $1`, agreementId),
      sql(`UPDATE agreement SET in_force_version = 1 WHERE id = $1`, agreementId),
    );
  });

  it('breaks at the revocation where a revoked agreement was brought back', async () => {
    await broker.gqlOk(
      recipientSteward.apiKey,
      `mutation($id: ID!) { revokeAgreement(id: $id, reason: "no longer needed") { id } }`,
      { id: agreementId },
    );
    await brokenAt(
      await eventSeq('AGREEMENT_REVOKED'),
      all(
        sql(`CREATE TABLE saved_revocation AS SELECT revoked_at FROM agreement WHERE id = $1`, agreementId),
        sql(`UPDATE agreement SET revoked_at = NULL WHERE id = $1`, agreementId),
      ),
      all(
        sql(
          `UPDATE agreement SET revoked_at = (SELECT revoked_at FROM saved_revocation) WHERE id = $1`,
          agreementId,
        ),
        sql(`DROP TABLE saved_revocation`),
      ),
    );
  });
});
