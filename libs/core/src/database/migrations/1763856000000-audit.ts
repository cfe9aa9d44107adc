import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The audit log: an append-only, hash-chained table of events, and the one-row head that serialises
 * appends into one chain and remembers its tip (so a truncated tail is detected).
 */
export class Audit1763856000000 implements MigrationInterface {
  name = 'Audit1763856000000';

  async up(q: QueryRunner): Promise<void> {
    // No foreign keys: the log must outlive every agency, user, dataset and agreement it mentions.
    await q.query(`
      CREATE TABLE audit_event (
        seq bigint PRIMARY KEY,
        at timestamptz NOT NULL,
        actor_user_id uuid,
        actor_agency_id uuid,
        action text NOT NULL,
        decision text NOT NULL CHECK (decision IN ('ALLOW', 'DENY')),
        reason text,
        purpose text,
        dataset_id uuid,
        agreement_id uuid,
        agreement_version int,
        fields text[],
        row_count int,
        details jsonb,
        prev_hash text NOT NULL,
        hash text NOT NULL
      )`);
    // Each visibility filter is paired with seq, so "newest first, LIMIT n" reads one index range.
    await q.query(`CREATE INDEX audit_event_dataset_idx ON audit_event (dataset_id, seq)`);
    await q.query(`CREATE INDEX audit_event_agreement_idx ON audit_event (agreement_id, seq)`);
    await q.query(`CREATE INDEX audit_event_actor_agency_idx ON audit_event (actor_agency_id, seq)`);
    await q.query(`CREATE INDEX audit_event_actor_user_idx ON audit_event (actor_user_id, seq)`);
    await q.query(`CREATE INDEX audit_event_at_idx ON audit_event (at)`);

    await q.query(`
      CREATE TABLE audit_head (
        id int PRIMARY KEY CHECK (id = 1),
        seq bigint NOT NULL,
        hash text NOT NULL
      )`);
    await q.query(`INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, repeat('0', 64))`);

    // Defence in depth only: the hash chain is what detects tampering, since a DBA can disable these.
    await q.query(`
      CREATE FUNCTION audit_forbid_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
          USING ERRCODE = 'insufficient_privilege';
      END $$`);
    await q.query(`
      CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
        FOR EACH ROW EXECUTE FUNCTION audit_forbid_rewrite()`);
    await q.query(`
      CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
        FOR EACH STATEMENT EXECUTE FUNCTION audit_forbid_rewrite()`);
    // The head moves forward only; rewinding it would hide a truncated tail.
    await q.query(`
      CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.seq >= OLD.seq THEN
          RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit_head only moves forward: % is not allowed', TG_OP
          USING ERRCODE = 'insufficient_privilege';
      END $$`);
    await q.query(`
      CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head
        FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only()`);
    await q.query(`
      CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
        FOR EACH STATEMENT EXECUTE FUNCTION audit_forbid_rewrite()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE audit_head`);
    await q.query(`DROP TABLE audit_event`);
    await q.query(`DROP FUNCTION audit_head_forward_only()`);
    await q.query(`DROP FUNCTION audit_forbid_rewrite()`);
  }
}
