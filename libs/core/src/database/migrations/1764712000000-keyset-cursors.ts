import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Keyset cursors and the indexes that make them cheap. `data_plane_secret` holds the key that seals
 * page cursors (AES-256-GCM: a cursor carries the last row's ordering values and tie-break, which
 * the caller must neither read nor forge); it lives in PostgreSQL so that every broker instance
 * accepts the cursors of every other, and no API returns it. Record tables registered before get
 * the indexes that registration now builds: the default page order (random row id, then key) and
 * the key in code point order.
 */
export class KeysetCursors1764712000000 implements MigrationInterface {
  name = 'KeysetCursors1764712000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE data_plane_secret (
        id int PRIMARY KEY CHECK (id = 1),
        cursor_key bytea NOT NULL CHECK (octet_length(cursor_key) = 32)
      )`);
    await q.query(`INSERT INTO data_plane_secret (id, cursor_key) VALUES (1, public.gen_random_bytes(32))`);
    const datasets = (await q.query(
      `SELECT d.slug, d.key_field, f.type AS key_type
         FROM dataset d JOIN dataset_field f ON f.dataset_id = d.id AND f.name = d.key_field`,
    )) as { slug: string; key_field: string; key_type: string }[];
    for (const d of datasets) {
      const table = `records.${quoteIdent(d.slug)}`;
      const key = `${quoteIdent(d.key_field)}${d.key_type === 'STRING' ? ' COLLATE "C"' : ''}`;
      await q.query(`CREATE INDEX IF NOT EXISTS ${quoteIdent(`${d.slug.slice(0, 40)}_ix_rid`)}
                       ON ${table} ("_rid", ${key})`);
      await q.query(
        `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${d.slug.slice(0, 40)}_ix_key`)} ON ${table} (${key})`,
      );
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE data_plane_secret`);
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
