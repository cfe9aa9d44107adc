import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Each record of a dataset with a subject field carries the purposes its subject consents to
 * (`_consent`, `,A,B,` in code order, null for none), kept by the database as consent and records
 * change, so that the indexes of a population that requires consent can be partial on it: a page
 * then walks the records of consenting subjects only, and a record whose subject withdrew, or never
 * gave, consent is never fetched (docs/disclosure-control.md, "Timing"). `consent_current` stays what
 * the data plane's answers are decided by; `_consent` is what its indexes skip by.
 *
 * `record_consent_attach(table, dataset, subject field, key field)` gives a record table the column,
 * fills it, and adds the triggers that keep it (registration calls it for every new table with a
 * subject field; this migration for the tables there are):
 * - records inserted or updated (ingestion, COPY or statements alike) take their subject's consent;
 * - a change of `consent_current` (insert, update, delete) sets the consent of that subject's records.
 * Both take an advisory lock of the dataset (records shared, consent exclusive) before they read
 * the other side, each in a statement of its own (a snapshot taken after the lock): whichever
 * commits second sees what the first wrote, so no record keeps a consent that changed under it.
 */
export class RecordConsent1766910000000 implements MigrationInterface {
  name = 'RecordConsent1766910000000';

  async up(q: QueryRunner): Promise<void> {
    // The one key of the lock that orders a dataset's consent changes and record changes.
    await q.query(`
      CREATE FUNCTION record_consent_lock_key(dataset uuid) RETURNS bigint LANGUAGE sql IMMUTABLE
        AS $fn$ SELECT hashtextextended('record consent ' || dataset::text, 0) $fn$`);
    // Taken by what writes records (the triggers below, and ingestion from its start, so that what it
    // writes is computed under it): a consent change waits for it, then sees the records; whether
    // anyone consents to anything in the dataset (nothing to write where nobody does).
    await q.query(`
      CREATE FUNCTION record_consent_hold(dataset uuid) RETURNS boolean LANGUAGE plpgsql AS $fn$
      BEGIN
        PERFORM pg_advisory_xact_lock_shared(record_consent_lock_key(dataset));
        RETURN EXISTS (SELECT 1 FROM consent_current c WHERE c.dataset_id = dataset AND c.granted);
      END
      $fn$`);
    // The purposes each subject of a dataset consents to, in code order, as `,A,B,` (subjects with none
    // absent): the one rule of what a record's _consent is, for the triggers and for ingestion. Text,
    // not text[]: every consenting record carries it, and an array's header more than doubled its width (a
    // walk of a million records in key order read a quarter more pages).
    await q.query(`
      CREATE FUNCTION record_consent_of(dataset uuid)
        RETURNS TABLE (subject_id text, purposes text) LANGUAGE sql STABLE AS $fn$
        SELECT c.subject_id, ',' || string_agg(c.purpose, ',' ORDER BY c.purpose) || ',' FROM consent_current c
         WHERE c.dataset_id = dataset AND c.granted GROUP BY c.subject_id
      $fn$`);
    // The records a statement changed (transition table `changed`), each given its subject's consent.
    // Arguments: the dataset's id, its subject field, its key field.
    await q.query(`
      CREATE FUNCTION record_consent_follow() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        -- A dataset nobody consents to yet (most): nothing to set. A consent given from now on waits
        -- for this lock, and then sets it on these records too.
        IF NOT record_consent_hold(TG_ARGV[0]::uuid) THEN
          RETURN NULL;
        END IF;
        -- Only the rows whose consent is not yet their subject's (ingestion writes it as it inserts)
        -- are joined to the table.
        EXECUTE format(
          'UPDATE %I.%I t SET _consent = x.purposes
             FROM (SELECT n.%I AS key, c.purposes FROM changed n
                     LEFT JOIN record_consent_of($1) c ON c.subject_id = n.%I::text
                    WHERE n._consent IS DISTINCT FROM c.purposes) x
            WHERE t.%I = x.key',
          TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV[2], TG_ARGV[1], TG_ARGV[2])
        USING TG_ARGV[0]::uuid;
        RETURN NULL;
      END
      $fn$`);
    // The subjects whose consent a statement changed (transition table `changed`): their records'
    // consent, from the consent in force, dataset by dataset in the order of their ids.
    await q.query(`
      CREATE FUNCTION consent_current_follow() RETURNS trigger LANGUAGE plpgsql AS $fn$
      DECLARE
        d record;
      BEGIN
        FOR d IN
          SELECT ds.id, ds.slug, ds.subject_field FROM dataset ds
           WHERE ds.id IN (SELECT DISTINCT dataset_id FROM changed) AND ds.subject_field IS NOT NULL
           ORDER BY ds.id
        LOOP
          CONTINUE WHEN to_regclass(format('records.%I', d.slug)) IS NULL;
          PERFORM pg_advisory_xact_lock(record_consent_lock_key(d.id));
          EXECUTE format(
            'UPDATE records.%I t SET _consent = c.purposes
               FROM (SELECT s.subject_id, g.purposes
                       FROM (SELECT DISTINCT subject_id FROM changed WHERE dataset_id = $1) s
                       LEFT JOIN (SELECT * FROM record_consent_of($1) r
                                   WHERE r.subject_id IN (SELECT subject_id FROM changed WHERE dataset_id = $1)) g
                         ON g.subject_id = s.subject_id) c
              WHERE t.%I::text = c.subject_id AND t._consent IS DISTINCT FROM c.purposes',
            d.slug, d.subject_field)
          USING d.id;
        END LOOP;
        RETURN NULL;
      END
      $fn$`);
    // A subject's consent in force, found by its subject whatever the purpose.
    await q.query(`CREATE INDEX consent_current_subject_idx ON consent_current (dataset_id, subject_id)`);
    for (const [event, table] of [
      ['INSERT', 'NEW'],
      ['UPDATE', 'NEW'],
      ['DELETE', 'OLD'],
    ]) {
      await q.query(
        `CREATE TRIGGER consent_current_follow_${event.toLowerCase()} AFTER ${event} ON consent_current
           REFERENCING ${table} TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION consent_current_follow()`,
      );
      // Fired whatever the session's replication role: a bulk load that sets it to skip foreign-key
      // checks still keeps the records' consent.
      await q.query(
        `ALTER TABLE consent_current ENABLE ALWAYS TRIGGER consent_current_follow_${event.toLowerCase()}`,
      );
    }
    // The column, filled, and the triggers of one record table. A record table's own update of
    // `_consent` (by either function) fires its triggers again one level down, where they do nothing.
    await q.query(`
      CREATE FUNCTION record_consent_attach(tbl regclass, dataset uuid, subject text, key text)
        RETURNS void LANGUAGE plpgsql AS $fn$
      BEGIN
        EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS _consent text', tbl);
        EXECUTE format(
          'UPDATE %s t SET _consent = c.purposes FROM record_consent_of($1) c WHERE t.%I::text = c.subject_id',
          tbl, subject)
        USING dataset;
        EXECUTE format(
          'CREATE TRIGGER record_consent_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS changed
             FOR EACH STATEMENT WHEN (pg_trigger_depth() = 0)
             EXECUTE FUNCTION record_consent_follow(%L, %L, %L)', tbl, dataset, subject, key);
        EXECUTE format(
          'CREATE TRIGGER record_consent_update AFTER UPDATE ON %s REFERENCING NEW TABLE AS changed
             FOR EACH STATEMENT WHEN (pg_trigger_depth() = 0)
             EXECUTE FUNCTION record_consent_follow(%L, %L, %L)', tbl, dataset, subject, key);
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER record_consent_insert', tbl);
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER record_consent_update', tbl);
      END
      $fn$`);
    const tables = (await q.query(
      `SELECT d.id, d.slug, d.subject_field, d.key_field FROM dataset d
        WHERE d.subject_field IS NOT NULL AND to_regclass(format('records.%I', d.slug)) IS NOT NULL
        ORDER BY d.id`,
    )) as { id: string; slug: string; subject_field: string; key_field: string }[];
    for (const t of tables) {
      await q.query(`SELECT record_consent_attach(format('records.%I', $1::text)::regclass, $2, $3, $4)`, [
        t.slug,
        t.id,
        t.subject_field,
        t.key_field,
      ]);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    const tables = (await q.query(
      `SELECT d.slug FROM dataset d
        WHERE d.subject_field IS NOT NULL AND to_regclass(format('records.%I', d.slug)) IS NOT NULL`,
    )) as { slug: string }[];
    for (const t of tables) {
      const table = `records."${t.slug.replace(/"/g, '""')}"`;
      await q.query(`DROP TRIGGER IF EXISTS record_consent_insert ON ${table}`);
      await q.query(`DROP TRIGGER IF EXISTS record_consent_update ON ${table}`);
      await q.query(`ALTER TABLE ${table} DROP COLUMN IF EXISTS _consent`);
    }
    for (const event of ['insert', 'update', 'delete']) {
      await q.query(`DROP TRIGGER consent_current_follow_${event} ON consent_current`);
    }
    await q.query(`DROP INDEX consent_current_subject_idx`);
    await q.query(`DROP FUNCTION record_consent_attach(regclass, uuid, text, text)`);
    await q.query(`DROP FUNCTION consent_current_follow()`);
    await q.query(`DROP FUNCTION record_consent_follow()`);
    await q.query(`DROP FUNCTION record_consent_of(uuid)`);
    await q.query(`DROP FUNCTION record_consent_hold(uuid)`);
    await q.query(`DROP FUNCTION record_consent_lock_key(uuid)`);
  }
}
