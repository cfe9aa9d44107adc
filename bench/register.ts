/**
 * `npm run bench:register`: the public register over BENCH_REGISTER_AGREEMENTS (default 1,000)
 * agreements in force and BENCH_REGISTER_EVENTS (default 10,000,000) audit events spread over two
 * years, against a baseline in the same run that computes the same monthly counts by scanning the
 * audit log, as a register without the kept counts would have to.
 *
 * It prints p50 and p95 of: (a) computing the register afresh from the counts the audit append keeps
 * (what a request pays once after any change); (b) the register from the cache (what a scraper pays
 * while nothing changes: one primary-key read); (b') the same while the audit head moves between
 * requests (served at most a few seconds stale, refreshed behind); (c) the baseline scan. The database is built with
 * SQL, not through the API (ten million appends would take hours of hashing), with the counts
 * filled by the same query the migration uses for events appended before it; test/register.spec.ts
 * checks that the counts the append keeps equal that scan.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DataSource } from 'typeorm';
import { RegisterService } from '@broker/agreements';
import { Database, migrate } from '@broker/core';
import { databaseUrl, dropDatabase, withClient } from './bench-support';

const AGREEMENTS = Number(process.env.BENCH_REGISTER_AGREEMENTS ?? 1000);
const EVENTS = Number(process.env.BENCH_REGISTER_EVENTS ?? 10_000_000);
const RUNS = Number(process.env.BENCH_REGISTER_RUNS ?? 30);
const DB = 'bench_register';

const p = (times: number[], q: number) =>
  [...times].sort((a, b) => a - b)[Math.floor((times.length - 1) * q)];
const ms = (t: number) => `${t.toFixed(1)} ms`;

async function build() {
  await dropDatabase(DB);
  await withClient('postgres', (c) => c.query(`CREATE DATABASE "${DB}"`));
  await migrate(databaseUrl(DB));
  const started = performance.now();
  await withClient(DB, async (c) => {
    await c.query(
      `INSERT INTO agency (name, kind) SELECT 'Agency ' || i, 'bench' FROM generate_series(1, 20) i`,
    );
    await c.query(`INSERT INTO agency (name, kind) VALUES ('Oversight board', 'oversight')`);
    await c.query(`INSERT INTO app_user (email, role) VALUES ('bench@example.org', 'AUDITOR')`);
    await c.query(
      `INSERT INTO purpose (code, description) VALUES ('RECIDIVISM_EVALUATION', 'Bench purpose')`,
    );
    const [{ id: user }] = (await c.query(`SELECT id FROM app_user`)).rows as { id: string }[];
    const agencies = (
      (await c.query(`SELECT id FROM agency WHERE kind = 'bench' ORDER BY name`)).rows as {
        id: string;
      }[]
    ).map((r) => r.id);
    // Ten datasets, two per providing agency, of ten fields each.
    const datasets: string[] = [];
    for (let d = 0; d < 10; d++) {
      const { rows } = await c.query(
        `INSERT INTO dataset (provider_agency_id, slug, type_name, title, description, key_field, created_by)
         VALUES ($1, $2, $3, $4, 'A generated dataset', 'f0', $5) RETURNING id`,
        [agencies[d % 5], `bench_ds_${d}`, `BenchDs${d}`, `Bench dataset ${d}`, user],
      );
      const id = (rows[0] as { id: string }).id;
      datasets.push(id);
      await c.query(
        `INSERT INTO dataset_field (dataset_id, position, name, type, classification, description)
         SELECT $1, i, 'f' || i, 'STRING', CASE WHEN i % 3 = 0 THEN 'SENSITIVE' ELSE 'NON_SENSITIVE' END, 'Field ' || i
           FROM generate_series(0, 9) i`,
        [id],
      );
    }
    await c.query(
      `INSERT INTO agreement (id, provider_agency_id, recipient_agency_id, current_version, in_force_version, created_by)
       SELECT gen_random_uuid(), p.id, r.id, 1, 1, $1
         FROM generate_series(0, $2 - 1) i
         JOIN LATERAL (SELECT id FROM agency WHERE kind = 'bench' ORDER BY name OFFSET (i % 5) LIMIT 1) p ON true
         JOIN LATERAL (SELECT id FROM agency WHERE kind = 'bench' ORDER BY name OFFSET 5 + (i % 15) LIMIT 1) r ON true`,
      [user, AGREEMENTS],
    );
    const agreements = (
      await c.query(`SELECT id, provider_agency_id, recipient_agency_id FROM agreement ORDER BY id`)
    ).rows as { id: string; provider_agency_id: string; recipient_agency_id: string }[];
    for (const [i, a] of agreements.entries()) {
      const dataset = datasets[(agencies.indexOf(a.provider_agency_id) % 5) + 5 * (i % 2)];
      const content = {
        title: `Bench agreement ${i}`,
        providerAgencyId: a.provider_agency_id,
        recipientAgencyId: '',
        purposes: ['RECIDIVISM_EVALUATION'],
        validFrom: '2020-01-01T00:00:00.000Z',
        validUntil: '2099-01-01T00:00:00.000Z',
        retentionDays: i % 4 === 0 ? 365 : null,
        legalBasis: 'Bench ordinance',
        termsOfUse: null,
        communityBenefit: 'Bench benefit',
        grants: [
          {
            datasetId: dataset,
            access: 'ROWS',
            fields: Array.from({ length: 6 }, (_, f) => ({
              name: `f${f}`,
              transform: f % 2 ? 'HASH' : 'RAW',
              justification: 'Bench',
            })),
            rowFilter: { $or: [{ f1: { $in: ['a', 'b'] } }, { f2: 'c' }] },
            requireConsent: false,
            minCellSize: 11,
            linkage: i % 3 === 0,
          },
        ],
      };
      await c.query(
        `INSERT INTO agreement_version (agreement_id, version, content, hash, valid_from, valid_until, created_by)
         VALUES ($1, 1, $2, $4, '2020-01-01', '2099-01-01', $3)`,
        [
          a.id,
          JSON.stringify(content),
          user,
          createHash('sha256').update(JSON.stringify(content)).digest('hex'),
        ],
      );
    }
    await c.query(
      `INSERT INTO agreement_approval (agreement_id, version, agency_id, user_id, at)
       SELECT a.id, 1, x.agency, $1, now() - interval '800 days'
         FROM agreement a, LATERAL (VALUES (a.provider_agency_id), (a.recipient_agency_id),
                                           ((SELECT id FROM agency WHERE kind = 'oversight'))) x (agency)`,
      [user],
    );
    await c.query(
      `INSERT INTO agreement_secret (agreement_id, hmac_key) SELECT id, gen_random_bytes(32) FROM agreement`,
    );
    // The events: loaded without their secondary indexes, which are rebuilt after.
    for (const index of [
      'audit_event_dataset_idx',
      'audit_event_agreement_idx',
      'audit_event_actor_agency_idx',
      'audit_event_actor_user_idx',
      'audit_event_at_idx',
    ]) {
      await c.query(`DROP INDEX IF EXISTS ${index}`);
    }
    await c.query(`ALTER TABLE audit_event SET (autovacuum_enabled = false)`);
    const ids = agreements.map((a) => a.id);
    const chunk = 1_000_000;
    for (let start = 1; start <= EVENTS; start += chunk) {
      const end = Math.min(EVENTS, start + chunk - 1);
      await c.query(
        `INSERT INTO audit_event (seq, at, actor_agency_id, action, decision, agreement_id, agreement_version, row_count, prev_hash, hash)
         SELECT s, now() - ((s % 730) || ' days')::interval,
                CASE WHEN s % 10 = 0 THEN NULL ELSE ($5::uuid[])[1 + s % $2] END,
                CASE WHEN s % 4 = 0 THEN 'AGGREGATE' ELSE 'QUERY' END,
                CASE WHEN s % 10 = 0 THEN 'DENY' ELSE 'ALLOW' END,
                ($1::uuid[])[1 + s % $2], 1,
                CASE WHEN s % 4 = 0 OR s % 10 = 0 THEN NULL ELSE s % 50 END,
                md5(s::text), md5((s + 1)::text)
           FROM generate_series($3::bigint, $4::bigint) s`,
        [ids, ids.length, start, end, agreements.map((a) => a.recipient_agency_id)],
      );
      process.stdout.write(`\r${end.toLocaleString('en-US')} events`);
    }
    process.stdout.write('\n');
    await c.query(`UPDATE audit_head SET seq = $1::bigint, hash = md5(($1::bigint + 1)::text) WHERE id = 1`, [
      EVENTS,
    ]);
    await c.query(`CREATE INDEX audit_event_agreement_idx ON audit_event (agreement_id, seq)`);
    // The counts, as the append keeps them (and as the migration fills them for older events).
    await c.query(`
      INSERT INTO register_month (agreement_id, month, allowed, denied, rows_released)
      SELECT e.agreement_id, date_trunc('month', e.at AT TIME ZONE 'UTC')::date,
             count(*) FILTER (WHERE e.decision = 'ALLOW'),
             count(*) FILTER (WHERE e.decision = 'DENY' AND e.actor_agency_id IN (a.provider_agency_id, a.recipient_agency_id)),
             coalesce(sum(e.row_count) FILTER (WHERE e.decision = 'ALLOW' AND e.action IN ('QUERY', 'EXPORT')), 0)
        FROM audit_event e JOIN agreement a ON a.id = e.agreement_id
       WHERE e.action IN ('QUERY', 'AGGREGATE', 'EXPORT') GROUP BY 1, 2`);
    await c.query(`
      INSERT INTO register_release_day (agreement_id, day, rows_released)
      SELECT agreement_id, (at AT TIME ZONE 'UTC')::date, sum(row_count) FROM audit_event
       WHERE action IN ('QUERY', 'EXPORT') AND decision = 'ALLOW' AND row_count > 0 GROUP BY 1, 2`);
    await c.query(`ALTER TABLE audit_event RESET (autovacuum_enabled)`);
    await c.query(`VACUUM ANALYZE`);
  });
  console.log(
    `built ${AGREEMENTS} agreements and ${EVENTS.toLocaleString('en-US')} events in ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
}

/** The baseline: the same monthly counts, by scanning the audit log. */
const SCAN = `
  SELECT e.agreement_id, to_char(date_trunc('month', e.at AT TIME ZONE 'UTC'), 'YYYY-MM') AS month,
         count(*) FILTER (WHERE e.decision = 'ALLOW') AS allowed,
         count(*) FILTER (WHERE e.decision = 'DENY' AND e.actor_agency_id IN (a.provider_agency_id, a.recipient_agency_id)) AS denied,
         coalesce(sum(e.row_count) FILTER (WHERE e.decision = 'ALLOW' AND e.action IN ('QUERY', 'EXPORT')), 0) AS rows
    FROM audit_event e JOIN agreement a ON a.id = e.agreement_id AND a.in_force_version IS NOT NULL
   WHERE e.action IN ('QUERY', 'AGGREGATE', 'EXPORT')
   GROUP BY 1, 2`;

async function main() {
  if (process.env.BENCH_REGISTER_REUSE !== '1') await build();
  const dataSource = new DataSource({ type: 'postgres', url: databaseUrl(DB), extra: { max: 8 } });
  await dataSource.initialize();
  try {
    const service = new RegisterService(dataSource, new Database(dataSource));
    const fresh: number[] = [];
    const cached: number[] = [];
    const scan: number[] = [];
    let agreements = 0;
    let bytes = 0;
    for (let i = 0; i < RUNS + 3; i++) {
      let t = performance.now();
      const register = await service.compute();
      const json = JSON.stringify(register);
      const tFresh = performance.now() - t;
      t = performance.now();
      await service.current();
      const tCached = performance.now() - t;
      if (i < 3) continue; // warm-up
      fresh.push(tFresh);
      cached.push(tCached);
      agreements = register.agreements.length;
      bytes = json.length;
    }
    // Scraping while data requests keep the head moving: served from the cache at most a few seconds
    // stale, while one refresh at a time runs behind.
    const moving: number[] = [];
    for (let i = 0; i < RUNS * 3; i++) {
      await dataSource.query(`UPDATE audit_head SET seq = seq + 1 WHERE id = 1`);
      const t = performance.now();
      await service.current();
      moving.push(performance.now() - t);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // The scan is slow: a third as many runs.
    for (let i = 0; i < Math.max(3, Math.ceil(RUNS / 3)) + 1; i++) {
      const t = performance.now();
      await dataSource.query(SCAN);
      if (i > 0) scan.push(performance.now() - t);
    }
    console.log(`register: ${agreements} agreements, ${(bytes / 1e6).toFixed(2)} MB of JSON`);
    console.log(`(a) computed from the kept counts  p50 ${ms(p(fresh, 0.5))}  p95 ${ms(p(fresh, 0.95))}`);
    console.log(`(b) from the cache (head unchanged) p50 ${ms(p(cached, 0.5))}  p95 ${ms(p(cached, 0.95))}`);
    console.log(`(b') cache, head moving meanwhile   p50 ${ms(p(moving, 0.5))}  p95 ${ms(p(moving, 0.95))}`);
    console.log(`(c) baseline: counts by scanning    p50 ${ms(p(scan, 0.5))}  p95 ${ms(p(scan, 0.95))}`);
    console.log(
      `(c)/(a) = ${(p(scan, 0.5) / p(fresh, 0.5)).toFixed(0)}x; (c)/(b) = ${(p(scan, 0.5) / p(cached, 0.5)).toFixed(0)}x`,
    );
  } finally {
    await dataSource.destroy();
    if (process.env.BENCH_REGISTER_KEEP !== '1') await dropDatabase(DB);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
