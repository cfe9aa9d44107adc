/**
 * `npm run bench:query`, part (m): the analyst's ordinary queries against the SQL a DBA would write.
 *
 * A dataset of BENCH_ROWS (default 1,000,000) rows × 10 fields, loaded through the REST ingest, with
 * the indexes its steward declares (recorded_at, city, age, and birth_date, whose year the GENERALIZE
 * shape filters by) and those the broker builds itself (the key, the default order, the row filter's
 * field). Each shape of query (ordered by the key, a date
 * or a string, either direction; range, equality and `in` filters; a GENERALIZE filter; a lookup by
 * key) is asked through `POST /data/graphql` and, for the same answer (the same released values,
 * HMAC included, the same rows in the same order), as the query a DBA would write by hand, through
 * `pg` behind a bare Fastify server, on the same table and indexes. Pages of 10 and 1,000 rows, the
 * first page and the page after the 500,000th row (the cursor of that row, and the DBA's keyset
 * condition on its values), one client (p50, alternating) and 8 (10-row pages, throughput). Then an
 * export of every row against `psql \copy (SELECT ...) TO STDOUT CSV`. The EXPLAIN of each broker
 * statement and of the DBA's is written to bench/.data/query-matrix-explain.txt.
 */
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { resolve } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import type { Client, QueryResultRow } from 'pg';
import { DataPlaneService, PolicyCache, pageSql, sealCursor } from '@broker/data-plane';
import {
  FieldTransform,
  SqlParams,
  pageOrder,
  populationConditions,
  releasedExpression,
  releasedField,
  whereSql,
} from '@broker/policy';
import { DatasetService, HashLookupIndex, hashLookupSql, keepHashLookups } from '@broker/registry';
import type { cannonPair } from './query';
import {
  BENCH_JUSTIFICATION,
  SERVER_URL,
  activateAgreement,
  gql,
  median,
  post,
  scrapeMetrics,
  withClient,
  withoutKeys,
} from './bench-support';

export const MATRIX_ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const SLUG = 'bench_query_matrix';
const DEEP = 500_000;
const ONE_CLIENT_SAMPLES = Number(process.env.BENCH_MATRIX_SAMPLES ?? 20);
const SECONDS = Number(process.env.BENCH_MATRIX_DURATION ?? 2);
/**
 * BENCH_MATRIX_SHAPES=lookup,key desc measures only the shapes whose names contain one of these
 * (and no export, unless one of them is `export`): for working on a shape, or on the export alone
 * (BENCH_MATRIX_SHAPES=export). The default measures every shape and the export.
 */
/**
 * BENCH_MATRIX_EXPLAIN=analyze: the EXPLAIN file holds `EXPLAIN (ANALYZE, BUFFERS, SUMMARY)` of every
 * cell's statements (planning and execution times), not only the plans of the 10-row pages.
 */
const EXPLAIN_ANALYZE = process.env.BENCH_MATRIX_EXPLAIN === 'analyze';
const ONLY = (process.env.BENCH_MATRIX_SHAPES ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
/** The export's alternating rounds (broker, then psql); its ratio is the median of the rounds'. */
const EXPORT_ROUNDS = Number(process.env.BENCH_MATRIX_EXPORTS ?? 3);
if (!Number.isInteger(EXPORT_ROUNDS) || EXPORT_ROUNDS < 1) {
  throw new Error('BENCH_MATRIX_EXPORTS must be a whole number of rounds, 1 or more');
}
/** Seconds of warm-up before each timed throughput cell. */
const WARMUP = 1;
/** A throughput cell's alternating rounds a side (of SECONDS / ROUNDS each, at least 1 s). */
const ROUNDS = 2;

interface Target {
  port: number;
  path: string;
}

/** What the matrix needs of bench/query.ts. */
export interface MatrixDeps {
  database: string;
  brokerPort: number;
  brokerPid: number;
  /** The broker's log (JSON lines), where it logs each export's steps. */
  brokerLog: string;
  operator: string;
  purpose: string;
  provider: string;
  recipient: string;
  providerSteward: string;
  recipientSteward: string;
  /** The oversight board's member, whose approval brings an agreement into force. */
  auditor: string;
  analystKey: string;
  fields: readonly { name: string }[];
  csv: (rows: number) => string;
  inProcess: () => Promise<INestApplicationContext>;
  startBaseline: (statements: Record<string, { text: string; values: unknown[] }>) => Promise<{
    port: number;
    pid: number;
    stop: () => Promise<void>;
  }>;
  latencies: (
    broker: Target,
    base: Target,
    headers: Record<string, string>,
    body: string,
    samples: number,
  ) => Promise<{ broker: { p50: number }; baseline: { p50: number } }>;
  /** Both sides in alternating rounds; the ratio is the median of the rounds'. */
  cannonPair: typeof cannonPair;
  send: (
    at: Target,
    headers: Record<string, string>,
    body: string,
  ) => Promise<{ status: number; body: string }>;
  load: () => string;
}

const NODES = 'id full_name_hash city age visits score balance active birth_date_year recorded_at';
/** The DBA's select list: the same released values (the name's HMAC under the agreement's key). */
const DBA_SELECT = `id, encode(hmac(convert_to(full_name, 'UTF8'), $1::bytea, 'sha256'), 'hex') AS full_name_hash,
  city, age, visits, score, balance, active, extract(year from birth_date)::int AS birth_date_year, recorded_at`;

interface Shape {
  name: string;
  /** Asked under the agreement that requires consent (its own purpose); the DBA checks consent too. */
  consent?: true;
  /** The root field's arguments (besides purpose and first). */
  args: string;
  /** The DBA's filter (besides the agreement's row filter), order, and keyset condition after a row. */
  where: string;
  order: string;
  /** Columns of the row at the deep position that the keyset condition reads, and the condition. */
  keyset: {
    columns: string;
    condition: (p: (v: unknown) => string, row: Record<string, unknown>) => string;
  } | null;
  /**
   * Requests per side one at a time, where a request is slow (else BENCH_MATRIX_SAMPLES); such a
   * shape has no throughput cell.
   */
  samples?: number;
}

const byKey = (dir: 'ASC' | 'DESC') => ({
  columns: 'id',
  condition: (p: (v: unknown) => string, r: Record<string, unknown>) =>
    `id COLLATE "C" ${dir === 'ASC' ? '>' : '<'} ${p(r.id)}`,
});
const byRow = (first: string, dir: 'ASC' | 'DESC', cast: string) => ({
  columns: `${first.replace(/ COLLATE "C"$/, '')} AS v, "_rid"::text AS rid, id`,
  condition: (p: (v: unknown) => string, r: Record<string, unknown>) =>
    `(${first}, "_rid", id COLLATE "C") ${dir === 'ASC' ? '>' : '<'} (${p(r.v)}::${cast}, ${p(r.rid)}::bigint, ${p(r.id)})`,
});

/** The purpose of the agreement that requires consent, and the DBA's condition for it. */
const CONSENT_PURPOSE = 'PROGRAM_EVALUATION';
const CONSENTED = `EXISTS (SELECT 1 FROM consent_current c WHERE c.dataset_id = 'DATASET'
  AND c.purpose = '${CONSENT_PURPOSE}' AND c.subject_id = id AND c.granted)`;

const SHAPES: Shape[] = [
  {
    name: 'key asc, key range',
    args: `orderBy: [{ field: id }], where: { id: { gte: "Q1" } }`,
    where: `id COLLATE "C" >= 'Q1'`,
    order: `id COLLATE "C"`,
    keyset: byKey('ASC'),
  },
  {
    name: 'key desc',
    args: `orderBy: [{ field: id, direction: DESC }]`,
    where: 'TRUE',
    order: `id COLLATE "C" DESC`,
    keyset: byKey('DESC'),
  },
  {
    name: 'date asc, date range',
    args: `orderBy: [{ field: recorded_at }], where: { recorded_at: { gte: "2024-02-01T00:00:00.000Z" } }`,
    where: `recorded_at >= '2024-02-01T00:00:00Z'`,
    order: `recorded_at, "_rid", id COLLATE "C"`,
    keyset: byRow('recorded_at', 'ASC', 'timestamptz'),
  },
  {
    name: 'date desc',
    args: `orderBy: [{ field: recorded_at, direction: DESC }]`,
    where: 'TRUE',
    order: `recorded_at DESC, "_rid" DESC, id COLLATE "C" DESC`,
    keyset: byRow('recorded_at', 'DESC', 'timestamptz'),
  },
  {
    name: 'string desc',
    args: `orderBy: [{ field: city, direction: DESC }]`,
    where: 'TRUE',
    order: `city COLLATE "C" DESC NULLS FIRST, "_rid" DESC, id COLLATE "C" DESC`,
    keyset: byRow('city COLLATE "C"', 'DESC', 'text'),
  },
  {
    name: 'number range, by key',
    args: `orderBy: [{ field: id }], where: { age: { gte: 30, lt: 60 } }`,
    where: 'age >= 30 AND age < 60',
    order: `id COLLATE "C"`,
    keyset: byKey('ASC'),
  },
  {
    name: 'in list, default order',
    args: `where: { city: { in: ["Springfield", "Salem"] } }`,
    where: `city COLLATE "C" IN ('Springfield', 'Salem')`,
    order: `"_rid", id COLLATE "C"`,
    keyset: {
      columns: `"_rid"::text AS rid, id`,
      condition: (p, r) => `("_rid", id COLLATE "C") > (${p(r.rid)}::bigint, ${p(r.id)})`,
    },
  },
  {
    name: 'GENERALIZE year eq',
    args: `where: { birth_date_year: { eq: 1980 } }`,
    where: `birth_date >= '1980-01-01' AND birth_date < '1981-01-01'`,
    order: `"_rid", id COLLATE "C"`,
    keyset: {
      columns: `"_rid"::text AS rid, id`,
      condition: (p, r) => `("_rid", id COLLATE "C") > (${p(r.rid)}::bigint, ${p(r.id)})`,
    },
  },
  {
    name: 'key asc, consent in force',
    consent: true,
    args: `orderBy: [{ field: id }]`,
    where: CONSENTED,
    order: `id COLLATE "C"`,
    keyset: byKey('ASC'),
  },
  {
    // The HMAC of a name the analyst saw (a few records share it). Both sides find the records filed
    // under the first 64 bits of the hash in the agreement's lookup table for the name (built by the
    // broker once the set-up has filtered by it once), and hash only those whole: an index on the
    // hash itself would hold the agreement's key in its definition.
    name: 'HASH eq, default order',
    args: `where: { full_name_hash: { eq: "HASHED" } }`,
    where: `"_rid" IN (SELECT hk.rid FROM hash_key_scope s JOIN hash_key hk ON hk.scope_id = s.id
       WHERE s.agreement_id = 'AGREEMENT' AND s.dataset_id = 'DATASET' AND s.field = 'full_name'
         AND hk.prefix = ('x' || left('HASHED', 16))::bit(64)::bigint)
      AND encode(hmac(convert_to(full_name, 'UTF8'), $1::bytea, 'sha256'), 'hex') = 'HASHED'`,
    order: `"_rid", id COLLATE "C"`,
    keyset: null,
  },
  {
    // Every record of the person one record belongs to, by the personKey the analyst read. Both sides
    // find the records filed under the first 64 bits of the key in the scope's lookup table (built by
    // the broker once the set-up has filtered by it once), and hash only their person's key whole.
    name: 'personKey eq, default order',
    args: `where: { personKey: { eq: "PERSONKEY" } }`,
    where: `id IN (SELECT pk.record_key FROM linkage_state ls
      JOIN person_key_scope s ON s.run_id = ls.current_run_id AND s.scope = 'SCOPE' AND s.dataset_id = 'DATASET'
      JOIN person_key pk ON pk.scope_id = s.id AND pk.prefix = ('x' || left('PERSONKEY', 16))::bit(64)::bigint
     WHERE ls.id = 1 AND encode(hmac(convert_to(pk.person_id::text, 'UTF8'),
       (SELECT hmac(convert_to('SCOPE', 'UTF8'), s.secret, 'sha256') FROM linkage_secret s WHERE s.id = 1),
       'sha256'), 'hex') = 'PERSONKEY')`,
    order: `"_rid", id COLLATE "C"`,
    keyset: null,
  },
  {
    name: 'lookup by key',
    args: `where: { id: { eq: "LOOKUP" } }`,
    where: `id = 'LOOKUP'`,
    order: `id COLLATE "C"`,
    keyset: null,
  },
];

/** One measured cell of the matrix. */
interface Cell {
  shape: string;
  first: number;
  position: 'first' | 'deep';
  deepAt: number | null;
  p50: [number, number];
  /** 8 clients: broker's and DBA's requests per second, and their ratio (median of the rounds'). */
  rate: [number, number, number] | null;
}

/** Runs part (m); returns the lines it prints. */
export async function runMatrix(d: MatrixDeps): Promise<string[]> {
  const g = <T = any>(key: string, query: string, variables?: Record<string, unknown>) =>
    gql<T>(d.brokerPort, key, query, variables);
  const dataset = await g(
    d.providerSteward,
    `mutation($i: RegisterDatasetInput!) { registerDataset(input: $i) { id } }`,
    {
      i: {
        slug: SLUG,
        title: 'Query matrix people',
        keyField: 'id',
        // Each record is its own subject, whose consent the second agreement requires.
        subjectField: 'id',
        fields: d.fields,
        // birth_date: the field the GENERALIZE shape filters by year, as a DBA would index it.
        indexes: [['recorded_at'], ['city'], ['age'], ['birth_date']],
      },
    },
  );
  const datasetId = dataset.registerDataset.id as string;
  const csv = d.csv(MATRIX_ROWS);
  // The records' keys, each its own subject: consent is recorded before the records come, so that
  // ingestion writes each record with its consent (a consent given to records already there sets it
  // on each of them, a second write of every record: minutes for 800,000).
  const ids = csv
    .slice(csv.indexOf('\n') + 1)
    .split('\n')
    .filter(Boolean)
    .map((line) => line.slice(0, line.indexOf(',')));
  await g(
    d.operator,
    `mutation { definePurpose(input: { code: "${CONSENT_PURPOSE}", description: "bench" }) { code } }`,
  );
  // Consent of 19 subjects in 20 recorded (one in 19 of them a refusal), written straight into the
  // tables: recordConsent takes one subject at a time.
  let started = performance.now();
  // Without the foreign keys' row-by-row checks (session_replication_role = replica, for this
  // transaction only): every row names the dataset, the purpose and a steward that exist, and the
  // checks, 4 a row, were most of the set-up's time on a slow disk (46–64 s against 7–15).
  await withClient(d.database, async (c) => {
    await c.query('BEGIN');
    await c.query('SET LOCAL session_replication_role = replica');
    await c.query(
      `WITH e AS (
         INSERT INTO consent_event (dataset_id, subject_id, purpose, granted, recorded_by)
         SELECT $1, id, $2, hashtext(id) % 19 <> 0, (SELECT id FROM app_user WHERE role = 'STEWARD' LIMIT 1)
           FROM unnest($3::text[]) AS id WHERE hashtext(id) % 20 <> 1
         RETURNING id, dataset_id, subject_id, purpose, granted)
       INSERT INTO consent_current (dataset_id, purpose, subject_id, granted, event_id)
       SELECT dataset_id, purpose, subject_id, granted, id FROM e`,
      [datasetId, CONSENT_PURPOSE, ids],
    );
    await c.query('COMMIT');
  });
  await withClient(d.database, (c) => c.query(`VACUUM ANALYZE consent_current`));
  const lines = [
    `consent recorded for the second agreement in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  ];
  started = performance.now();
  const res = await post(
    d.brokerPort,
    `/api/datasets/${datasetId}/records`,
    { authorization: `Bearer ${d.providerSteward}`, 'content-type': 'text/csv' },
    csv,
  );
  if (res.status !== 200) throw new Error(`matrix ingest answered ${res.status}: ${res.body.slice(0, 500)}`);
  lines.push(
    `loaded ${MATRIX_ROWS.toLocaleString('en-US')} rows, each with its consent, in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  // The same grant twice: for the bench's purpose, and for another one with consent required.
  const activate = (title: string, purpose: string, requireConsent: boolean, linkage = false) =>
    activateAgreement(
      d.brokerPort,
      { provider: d.providerSteward, recipient: d.recipientSteward, auditor: d.auditor },
      {
        title,
        providerAgencyId: d.provider,
        recipientAgencyId: d.recipient,
        purposes: [purpose],
        validFrom: '2020-01-01T00:00:00Z',
        validUntil: '2099-01-01T00:00:00Z',
        grants: [
          {
            datasetId,
            fields: d.fields.map((f) => ({
              name: f.name,
              transform: f.name === 'full_name' ? 'HASH' : f.name === 'birth_date' ? 'GENERALIZE' : 'RAW',
              justification: BENCH_JUSTIFICATION,
            })),
            rowFilter: { age: { $gte: 18 } },
            requireConsent,
            linkage,
          },
        ],
      },
    );
  started = performance.now();
  // With linkage: its pages may be filtered on personKey.
  const agreementId = await activate('Matrix agreement', d.purpose, false, true);
  lines.push(
    `approved (the row filter's index built with it) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  const consentAgreementId = await activate('Matrix agreement with consent', CONSENT_PURPOSE, true);
  await withClient(d.database, (c) => c.query(`VACUUM ANALYZE records.${SLUG}`));
  const keyOf = async (id: string) =>
    (
      await withClient(d.database, (c) =>
        c.query<{ hmac_key: Buffer }>(`SELECT hmac_key FROM agreement_secret WHERE agreement_id = $1`, [id]),
      )
    ).rows[0].hmac_key;
  const hmacKey = await keyOf(agreementId);
  const consentKey = await keyOf(consentAgreementId);
  const [{ id: lookupId, full_name: lookupName }] = await withClient(
    d.database,
    async (c) =>
      (
        await c.query<{ id: string; full_name: string }>(
          `SELECT id, full_name FROM records.${SLUG} WHERE age >= 18 ORDER BY id LIMIT 1 OFFSET 12345`,
        )
      ).rows,
  );
  // The released HMAC of that row's name, as the analyst would have read it.
  const hashed = createHmac('sha256', hmacKey).update(lookupName, 'utf8').digest('hex');
  // A linkage run in force that assigns the records to persons (one to a few records each), written
  // straight into the tables as part (l) does; the filter is the person of the lookup row.
  started = performance.now();
  await withClient(d.database, async (c) => {
    const state = await c.query<{ run: string | null }>(
      `SELECT current_run_id AS run FROM linkage_state WHERE id = 1`,
    );
    let run = state.rows[0]?.run ?? null;
    if (!run) {
      run = (
        await c.query<{ id: string }>(
          `INSERT INTO linkage_run (status, trigger) VALUES ('SUCCEEDED', 'MANUAL') RETURNING id`,
        )
      ).rows[0].id;
      await c.query(`UPDATE linkage_state SET current_run_id = $1 WHERE id = 1`, [run]);
    }
    await c.query(
      `INSERT INTO linkage_person (run_id, dataset_id, record_key, person_id)
       SELECT $1::uuid, $2::uuid, id, 1 + (hashtext(id) & 2147483647) % $3::int FROM records.${SLUG}`,
      [run, datasetId, Math.ceil(MATRIX_ROWS / 2)],
    );
    await c.query(`VACUUM ANALYZE linkage_person`);
  });
  lines.push(`linkage of the records written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const lookup = await post(
    d.brokerPort,
    '/data/graphql',
    { authorization: `Bearer ${d.analystKey}`, 'content-type': 'application/json' },
    JSON.stringify({
      query: `{ ${SLUG}(purpose: ${d.purpose}, where: { id: { eq: "${lookupId}" } }) { nodes { personKey } } }`,
    }),
  );
  const personKey = (JSON.parse(lookup.body) as { data?: Record<string, { nodes: { personKey: string }[] }> })
    .data?.[SLUG]?.nodes[0]?.personKey;
  if (!personKey || !/^[0-9a-f]{64}$/.test(personKey)) {
    throw new Error(`matrix: no personKey for ${lookupId}: ${lookup.body.slice(0, 300)}`);
  }
  const table = `records.${SLUG}`;
  // A personKey filter before its scope's lookup table is built (it hashes every linked record), the
  // table built in the background because of it, and the same filter after.
  const byPerson = JSON.stringify({
    query: `{ ${SLUG}(purpose: ${d.purpose}, where: { personKey: { eq: "${personKey}" } }) { nodes { id } } }`,
  });
  const analystHeaders = { authorization: `Bearer ${d.analystKey}`, 'content-type': 'application/json' };
  const timed = async (body: string) => {
    const at = performance.now();
    const res = await post(d.brokerPort, '/data/graphql', analystHeaders, body);
    if (res.status !== 200 || res.body.includes('"errors"'))
      throw new Error(`matrix: ${res.body.slice(0, 300)}`);
    return performance.now() - at;
  };
  /**
   * One filter before a lookup table is built (the broker builds it in the background because of
   * it), the wait until `probe` finds it built (its one row), and the median of five filters after.
   */
  const beforeAndAfter = async <T>(what: string, body: string, probe: string) => {
    const before = await timed(body);
    const waited = performance.now();
    let table: T | undefined;
    while (table === undefined) {
      if (performance.now() - waited > 600_000)
        throw new Error(`matrix: no ${what} lookup table in 10 minutes`);
      await new Promise((r) => setTimeout(r, 200));
      table = await withClient(d.database, async (c) => (await c.query<T & QueryResultRow>(probe)).rows[0]);
    }
    const builtIn = (performance.now() - waited) / 1000;
    const after: number[] = [];
    for (let i = 0; i < 5; i++) after.push(await timed(body));
    after.sort((a, b) => a - b);
    const times =
      `${what} filter: ${before.toFixed(0)} ms before its lookup table, ${after[2].toFixed(1)} ms after ` +
      `(median of 5; ratio after/before ${(after[2] / before).toFixed(4)})`;
    return { table, builtIn, times };
  };
  const person = await beforeAndAfter<{ persons: string; records: string; mb: string }>(
    'personKey',
    byPerson,
    `SELECT count(DISTINCT k.person_id)::text AS persons, count(*)::text AS records,
            round(pg_total_relation_size('person_key') / 1048576.0)::text AS mb
       FROM person_key_scope s JOIN person_key k ON k.scope_id = s.id GROUP BY s.id`,
  );
  lines.push(
    `${person.times}; the table of ${person.table.records} records of ${person.table.persons} persons ` +
      `(${person.table.mb} MB with its indexes) built within ${person.builtIn.toFixed(1)} s`,
  );
  // The same for a HASH filter (the name's HMAC of the lookup row) and the agreement's lookup table
  // for the name: built, and vacuumed for index-only reads (the broker's last step).
  const byHash = JSON.stringify({
    query: `{ ${SLUG}(purpose: ${d.purpose}, where: { full_name_hash: { eq: "${hashed}" } }) { nodes { id } } }`,
  });
  const hash = await beforeAndAfter<{ records: string; filed: string; distinct: string; mb: string }>(
    'HASH',
    byHash,
    `SELECT s.records::text, s.distinct_values::text AS distinct,
            (SELECT count(*) FROM hash_key k WHERE k.scope_id = s.id)::text AS filed,
            round(pg_total_relation_size('hash_key') / 1048576.0)::text AS mb
       FROM hash_key_scope s
      WHERE s.field = 'full_name' AND s.useful
        AND (SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'hash_key') > s.built_at`,
  );
  lines.push(
    `${hash.times}; the table of ${hash.table.filed} records (${hash.table.distinct} distinct names; ` +
      `${hash.table.mb} MB with its index) built within ${hash.builtIn.toFixed(1)} s`,
  );
  // What keeping the table up to date costs an ingestion (its own transaction, rolled back here).
  const app = await d.inProcess();
  for (const changed of [1_000, 10_000])
    lines.push(...(await hashUpkeep(d.database, app, datasetId, changed)));
  lines.push(...(await hashCommonValue(d.database, app, datasetId, agreementId, hmacKey)));
  // The set-up's dirty pages written now, not by the checkpointer while the cells are timed (where
  // they would slow only the side that writes: the broker's audit commits wait for the WAL's flush).
  started = performance.now();
  await withClient(d.database, (c) => c.query(`CHECKPOINT`));
  lines.push(`CHECKPOINT after the set-up: ${((performance.now() - started) / 1000).toFixed(1)} s`);

  // The broker's deep cursors: the row at the deep position of each shape, sealed as the broker would.
  const policies = app.get(PolicyCache);
  const dataPlane = app.get(DataPlaneService);
  const [{ agency_id: agencyId }] = await withClient(
    d.database,
    async (c) =>
      (
        await c.query<{ agency_id: string }>(`SELECT id AS agency_id FROM agency WHERE id = $1`, [
          d.recipient,
        ])
      ).rows,
  );
  const statements: Record<string, { text: string; values: unknown[] }> = {};
  const bodies: Record<string, string> = {};
  const explain: string[] = [];
  const cells: Omit<Cell, 'p50' | 'rate'>[] = [];
  for (const [s, shape] of SHAPES.entries()) {
    if (ONLY.length && !ONLY.some((part) => shape.name.includes(part))) continue;
    const args = shape.args
      .replace('LOOKUP', lookupId)
      .replace('HASHED', hashed)
      .replace('PERSONKEY', personKey);
    const where = shape.where
      .replace('LOOKUP', lookupId)
      .replace(/DATASET/g, datasetId)
      .replace(/AGREEMENT/g, agreementId)
      .replace(/HASHED/g, hashed)
      .replace(/PERSONKEY/g, personKey)
      .replace(/SCOPE/g, `${d.recipient}/${d.purpose}`);
    const [{ n }] = await withClient(
      d.database,
      async (c) =>
        (
          await c.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM ${table} WHERE age >= 18 AND ${where}`,
            // A HASH filter reads the agreement's key as $1, as the DBA's statement does.
            where.includes('$1') ? [shape.consent ? consentKey : hmacKey] : [],
          )
        ).rows,
    );
    const deepAt = shape.keyset ? Math.min(DEEP, n - 2000) : null;
    for (const first of [10, 1000]) {
      for (const position of ['first', 'deep'] as const) {
        if (position === 'deep' && (deepAt === null || deepAt < 1)) continue;
        const name = `s${s}_${first}_${position}`;
        const query = (after: string) =>
          `{ ${SLUG}(purpose: ${shape.consent ? CONSENT_PURPOSE : d.purpose}, first: ${first}, ${args}${after}) { nodes { ${NODES} } pageInfo { hasNextPage endCursor } } }`;
        let brokerQuery = query('');
        const params = new SqlParams([shape.consent ? consentKey : hmacKey]);
        let dbaWhere = `age >= 18 AND ${where}`;
        if (position === 'deep') {
          const [row] = await withClient(
            d.database,
            async (c) =>
              (
                await c.query<Record<string, unknown>>(
                  `SELECT ${shape.keyset!.columns} FROM ${table} WHERE age >= 18 AND ${where}
                  ORDER BY ${shape.order} OFFSET ${deepAt! - 1} LIMIT 1`,
                )
              ).rows,
          );
          dbaWhere += ` AND ${shape.keyset!.condition((v) => params.add(v), row)}`;
          // The broker's cursor of the same row: its position as the page statement writes it, sealed.
          const policy = await policies.forAgency(agencyId, new Date());
          const decision = dataPlane.decide(policy, { query: brokerQuery });
          if (decision.kind !== 'run') throw new Error(`matrix: ${JSON.stringify(decision)}`);
          const plan = decision.plans[0];
          const p = new SqlParams();
          const key = p.lazy(plan.agreement.hmacKey, 'bytea');
          const conditions = populationConditions(plan.grant, plan.shape, [plan.purpose], 't', p);
          if (plan.where) conditions.push(whereSql(plan.where, plan.grant, plan.shape, 't', p, key));
          const ordering = pageOrder(plan.orderBy, plan.grant, plan.shape, 't', key);
          const [pos] = await withClient(
            d.database,
            async (c) =>
              (
                await c.query<{ position: (string | null)[] }>(
                  `SELECT ARRAY[${ordering.positionTerms.join(', ')}] AS position FROM ${table} t WHERE ${conditions.join(' AND ') || 'TRUE'}
                  ORDER BY ${ordering.orderBy} OFFSET ${deepAt! - 1} LIMIT 1`,
                  p.values,
                )
              ).rows,
          );
          brokerQuery = query(`, after: ${JSON.stringify(sealCursor(plan.cursor, pos.position))}`);
        }
        const dba = {
          text: `SELECT ${DBA_SELECT} FROM ${table} WHERE ${dbaWhere} ORDER BY ${shape.order} LIMIT ${first}`,
          values: params.values,
        };
        statements[name] = dba;
        bodies[name] = JSON.stringify({ query: brokerQuery });
        cells.push({ shape: shape.name, first, position, deepAt: position === 'deep' ? deepAt : null });
        if (first === 10 || EXPLAIN_ANALYZE) {
          const policy = await policies.forAgency(agencyId, new Date());
          const decision = dataPlane.decide(policy, { query: brokerQuery });
          if (decision.kind !== 'run') throw new Error(`matrix: ${JSON.stringify(decision)}`);
          // As the broker writes it once it has seen the HASH lookup table built.
          const mine = pageSql(decision.plans[0], true, agencyId, undefined, { serves: () => true });
          // With ANALYZE each statement runs twice and the second (warm) account is kept.
          const explained = async (c: Client, statement: { text: string; values: unknown[] }) => {
            const text = `EXPLAIN ${EXPLAIN_ANALYZE ? '(ANALYZE, BUFFERS, SUMMARY) ' : ''}${statement.text}`;
            if (EXPLAIN_ANALYZE) await c.query(text, statement.values);
            return (await c.query<{ 'QUERY PLAN': string }>(text, statement.values)).rows;
          };
          const plans = await withClient(d.database, async (c) => [
            await explained(c, mine),
            await explained(c, dba),
          ]);
          explain.push(
            `### ${shape.name}, ${position} page of ${first}`,
            '',
            'broker:',
            ...plans[0].map((r) => `    ${r['QUERY PLAN']}`),
            'DBA:',
            ...plans[1].map((r) => `    ${r['QUERY PLAN']}`),
            '',
          );
        }
      }
    }
  }
  await app.close();
  writeFileSync(
    resolve(__dirname, '..', '..', 'bench', '.data', 'query-matrix-explain.txt'),
    withoutKeys(explain.join('\n')),
  );

  const commit = await durableCommitP50(d.database);
  const baseline = await d.startBaseline(statements);
  const headers = { authorization: `Bearer ${d.analystKey}`, 'content-type': 'application/json' };
  const brokerAt = { port: d.brokerPort, path: '/data/graphql' };
  const results: Cell[] = [];
  try {
    for (const [i, cell] of cells.entries()) {
      const name = Object.keys(statements)[i];
      const baseAt = { port: baseline.port, path: `/${name}` };
      // The same rows in the same order on both sides.
      const mine = await d.send(brokerAt, headers, bodies[name]);
      const theirs = await d.send(baseAt, headers, '{}');
      const ids = (JSON.parse(mine.body) as { data: Record<string, { nodes: { id: string }[] }> }).data[
        SLUG
      ].nodes.map((r) => r.id);
      const dbaIds = (JSON.parse(theirs.body) as { id: string }[]).map((r) => r.id);
      if (JSON.stringify(ids) !== JSON.stringify(dbaIds)) {
        throw new Error(`matrix ${cell.shape} ${cell.first} ${cell.position}: the broker and the DBA differ`);
      }
      const slow = SHAPES.find((s) => s.name === cell.shape)?.samples;
      const l = await d.latencies(brokerAt, baseAt, headers, bodies[name], slow ?? ONE_CLIENT_SAMPLES);
      let rate: [number, number, number] | null = null;
      // A slow shape's requests (a hash of every row) do not finish in a throughput cell of seconds.
      if (cell.first === 10 && !slow) {
        const pair = await d.cannonPair(
          brokerAt,
          baseAt,
          headers,
          bodies[name],
          d.brokerPid,
          baseline.pid,
          SECONDS,
          { rounds: ROUNDS, warmup: WARMUP, baseBody: '{}' },
        );
        rate = [pair.broker.rate, pair.baseline.rate, pair.ratio];
      }
      results.push({ ...cell, p50: [l.broker.p50, l.baseline.p50], rate });
      process.stdout.write('.');
    }
  } finally {
    await baseline.stop();
  }
  process.stdout.write('\n');

  lines.push(
    `durable commit p50: ${commit.toFixed(3)} ms (a one-row INSERT into a logged table, one at a time, ` +
      `through pg: the least that writing a release durably after its read, before the answer, adds ` +
      `to a request); "floor" is (DBA p50 + that) / DBA p50, the least p50 ratio such a design can reach`,
    '',
    '| shape | rows | page | p50 broker / DBA ms | p50 ratio | floor | 8 clients req/s broker / DBA | throughput ratio |',
    '| --- | --: | --- | --: | --: | --: | --: | --: |',
  );
  let met = true;
  for (const r of results) {
    const ratio = r.p50[0] / r.p50[1];
    const tput = r.rate ? r.rate[2] : NaN;
    if (ratio > 1.3 || tput < 0.6) met = false;
    lines.push(
      `| ${r.shape} | ${r.first} | ${r.position === 'first' ? 'first' : `after row ${r.deepAt!.toLocaleString('en-US')}`} | ` +
        `${r.p50[0].toFixed(2)} / ${r.p50[1].toFixed(2)} | ${ratio.toFixed(2)} | ` +
        `${((r.p50[1] + commit) / r.p50[1]).toFixed(2)} | ` +
        `${r.rate ? `${r.rate[0].toFixed(0)} / ${r.rate[1].toFixed(0)}` : ''} | ${r.rate ? tput.toFixed(2) : ''} |`,
    );
  }
  for (const s of new Set(results.map((r) => r.shape))) {
    for (const first of [10, 1000]) {
      const a = results.find((r) => r.shape === s && r.first === first && r.position === 'first');
      const b = results.find((r) => r.shape === s && r.first === first && r.position === 'deep');
      if (a && b) {
        const deep = b.p50[0] / a.p50[0];
        if (deep > 1.3) met = false;
        lines.push(`deep/first p50 (broker) ${s}, ${first} rows: ${deep.toFixed(2)}`);
      }
    }
  }
  lines.push(
    `matrix targets (p50 ≤ 1.3, 10-row throughput ≥ 0.6, deep ≤ 1.3× first): ${met ? 'met' : 'NOT met'}`,
  );

  // Export of every row against psql's \copy of the DBA's SELECT.
  if (!ONLY.length || ONLY.includes('export')) lines.push(...(await exportVsCopy(d, hmacKey)));
  lines.push(`load average ${d.load()}`);
  return lines;
}

/**
 * The median round trip of the cheapest durable write there is: a one-row INSERT into a logged table,
 * committed on its own (`synchronous_commit` on, as the server has it), one at a time through pg, as
 * the broker's append is. An access recorded durably once its rows are read, before they are
 * answered (DESIGN §2, principle 6), adds at least this to the DBA's request one at a time.
 */
async function durableCommitP50(database: string, samples = 1000): Promise<number> {
  return withClient(database, async (c) => {
    await c.query(
      `CREATE TABLE IF NOT EXISTS bench_durable_floor (id bigserial PRIMARY KEY, at timestamptz)`,
    );
    try {
      const times: number[] = [];
      for (let i = 0; i < samples + 100; i++) {
        const started = performance.now();
        await c.query({ name: 'floor', text: `INSERT INTO bench_durable_floor (at) VALUES (now())` });
        if (i >= 100) times.push(performance.now() - started);
      }
      return median(times);
    } finally {
      await c.query(`DROP TABLE bench_durable_floor`);
    }
  });
}

async function exportVsCopy(d: MatrixDeps, hmacKey: Buffer): Promise<string[]> {
  const query = `{ ${SLUG}(purpose: ${d.purpose}) { nodes { ${NODES} } } }`;
  const fs = await import('node:fs');
  const memory = () => {
    const status = fs.readFileSync(`/proc/${d.brokerPid}/status`, 'utf8');
    const mb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024;
    return { rss: mb('VmRSS'), hwm: mb('VmHWM') };
  };
  const select = DBA_SELECT.replace('$1::bytea', `'\\x${hmacKey.toString('hex')}'::bytea`).replace(
    /\s+/g,
    ' ',
  );
  const lines: string[] = [];
  const ratios: number[] = [];
  let peak = 0;
  for (let round = 1; round <= EXPORT_ROUNDS; round++) {
    // The peak of the export alone: the high-water mark is reset first (what loading the rows and the
    // pages before reached is not the export's).
    let reset = true;
    try {
      fs.writeFileSync(`/proc/${d.brokerPid}/clear_refs`, '5');
    } catch {
      reset = false;
    }
    const before = memory();
    const heapBefore = await heapOf(d.brokerPort);
    let started = performance.now();
    const { rows, bytes } = await exportRows(d, query);
    const brokerSeconds = (performance.now() - started) / 1000;
    const { hwm } = memory();
    peak = Math.max(peak, hwm);
    const heapAfter = await heapOf(d.brokerPort);
    started = performance.now();
    const psql = spawn(
      'psql',
      [
        `${SERVER_URL}/${d.database}`,
        '-qAt',
        '-c',
        `\\copy (SELECT ${select} FROM records.${SLUG} WHERE age >= 18) TO STDOUT CSV`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let psqlRows = 0;
    psql.stdout.on('data', (chunk: Buffer) => {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) psqlRows++;
    });
    await once(psql, 'close');
    const psqlSeconds = (performance.now() - started) / 1000;
    const ratio = rows / brokerSeconds / (psqlRows / psqlSeconds);
    ratios.push(ratio);
    lines.push(
      `export round ${round}: broker ${rows.toLocaleString('en-US')} rows (${(bytes / 1e6).toFixed(1)} MB CSV) in ${brokerSeconds.toFixed(2)} s ` +
        `= ${(rows / brokerSeconds).toFixed(0)} rows/s, broker VmHWM ${hwm.toFixed(1)} MB (${reset ? 'reset before the export, ' : ''}RSS ${before.rss.toFixed(1)} MB before it); psql \\copy ` +
        `${psqlRows.toLocaleString('en-US')} rows in ${psqlSeconds.toFixed(2)} s = ${(psqlRows / psqlSeconds).toFixed(0)} rows/s; ratio ${ratio.toFixed(2)}`,
      `export round ${round}: the broker's steps (ms from the start, its log) ${exportSteps(d.brokerLog)}`,
      `export round ${round}: broker memory before it ${heapBefore}; after it ${heapAfter}`,
    );
  }
  lines.push(
    `ratio export rows/s broker/psql by round: ${ratios.map((r) => r.toFixed(2)).join(' ')} (median ${median(ratios).toFixed(2)}); ` +
      `peak VmHWM ${peak.toFixed(1)} MB (target ≥ 0.5, RSS < 300 MB)`,
  );
  return lines;
}

/** Exports every row the query selects as CSV, counting the rows (lines after the header) and bytes. */
function exportRows(d: MatrixDeps, query: string): Promise<{ rows: number; bytes: number }> {
  return new Promise<{ rows: number; bytes: number }>((done, fail) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: d.brokerPort,
        path: '/data/export',
        method: 'POST',
        headers: {
          authorization: `Bearer ${d.analystKey}`,
          'content-type': 'application/json',
          accept: 'text/csv',
        },
      },
      (res) => {
        let n = 0;
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++;
        });
        res.on('end', () =>
          res.statusCode === 200 && res.complete
            ? done({ rows: n - 1, bytes: size })
            : fail(new Error('export failed')),
        );
        res.on('error', fail);
      },
    );
    req.on('error', fail);
    req.end(JSON.stringify({ query }));
  });
}

/** The steps of the last export the broker logged (`export sent`), as `name ms` pairs, or `n/a`. */
function exportSteps(logPath: string): string {
  let text: string;
  try {
    text = readFileSync(logPath, 'utf8');
  } catch {
    return 'n/a';
  }
  const line = text
    .split('\n')
    .reverse()
    .find((l) => l.includes('"export sent"'));
  if (!line) return 'n/a';
  const { ms } = JSON.parse(line) as { ms?: Record<string, number> };
  return ms
    ? Object.entries(ms)
        .map(([step, at]) => `${step} ${at}`)
        .join(', ')
    : 'n/a';
}

/**
 * Where the broker's memory is, from its own /metrics (prom-client's process and Node.js gauges):
 * resident set, V8's heap (committed and used) and memory outside it (Buffers and the like).
 */
async function heapOf(port: number): Promise<string> {
  const text = await scrapeMetrics(port);
  const mb = (name: string) => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    return m ? (Number(m[1]) / 1e6).toFixed(1) : '?';
  };
  const spaces = [...text.matchAll(/^nodejs_heap_space_size_used_bytes\{space="([^"]+)"\} (\S+)$/gm)]
    .filter((m) => Number(m[2]) >= 1e6)
    .map((m) => `${m[1]} ${(Number(m[2]) / 1e6).toFixed(1)}`)
    .join(', ');
  return (
    `RSS ${mb('process_resident_memory_bytes')} MB, V8 heap ${mb('nodejs_heap_size_total_bytes')} MB ` +
    `(used ${mb('nodejs_heap_size_used_bytes')}: ${spaces}), external ${mb('nodejs_external_memory_bytes')} MB`
  );
}

/**
 * A HASH filter on a common value, which the matrix's near-unique names do not have: the agreement's
 * lookup table is built for the field `age` as if it were released hashed (100 values of about
 * 10,000 records each among a million: common for a page of 10, filed for larger pages), and the two
 * statements the data plane chooses between for a filter on one age are timed by SQL alone (median
 * of five, after one), for a page of 10 and one of 1,000, in the default order (the row id's) and
 * by a date: the filter hashed in the page's order, and through the table (the pieces are the data plane's own: releasedExpression,
 * hashLookupSql). Which one the broker runs is `HashLookupIndex.serves` for the page's size. The table
 * is dropped at the end, and its dead entries vacuumed.
 */
async function hashCommonValue(
  database: string,
  app: INestApplicationContext,
  datasetId: string,
  agreementId: string,
  hmacKey: Buffer,
): Promise<string[]> {
  const shape = (await app.get(DatasetService).shapes([datasetId])).get(datasetId)!;
  const released = releasedField(
    shape.fields.find((f) => f.name === 'age')!,
    FieldTransform.HASH,
  );
  const index = app.get(HashLookupIndex);
  let at = performance.now();
  const built = await index.build({ agreementId, shape, released, hmacKey });
  const buildS = (performance.now() - at) / 1000;
  if (!built?.useful || built.unfiledValues !== 0) {
    throw new Error(`matrix: no lookup table of age filing every value: ${JSON.stringify(built)}`);
  }
  const value = createHmac('sha256', hmacKey).update('42', 'utf8').digest('hex');
  const table = { agreementId, datasetId, field: 'age' };
  const statement = (first: number, throughTable: boolean, order: string) => {
    const params = new SqlParams();
    const key = params.lazy(hmacKey, 'bytea');
    const values = params.add([value], 'text[]');
    const conditions = [`t.age >= 18`, `${releasedExpression(released, shape, 't', key)} = ANY (${values})`];
    if (throughTable) {
      conditions.push(
        hashLookupSql({ params, agreementId, shape, released, hmacKey: key, tableAlias: 't', values }),
      );
    }
    return {
      text: `SELECT t.id FROM records.${SLUG} t WHERE ${conditions.join(' AND ')}
              ORDER BY ${order} LIMIT ${first + 1}`,
      values: params.values,
    };
  };
  const lines = [
    `HASH filter on a common value (age 42: ${built.records.toLocaleString('en-US')} records with an age, ` +
      `${built.distinctValues} values, ${built.commonValues} of them common for a page of 10, every one filed; ` +
      `the table built in ${buildS.toFixed(1)} s):`,
  ];
  try {
    await withClient(database, async (c) => {
      // The default order (the row id's), whose table reads come in that order, and a date's.
      const orders = [
        { name: "the row id's order", sql: `t."_rid", t.id COLLATE "C"`, inRowIdOrder: true },
        {
          name: 'recorded_at descending',
          sql: `t.recorded_at DESC, t."_rid" DESC, t.id COLLATE "C" DESC`,
          inRowIdOrder: false,
        },
      ];
      for (const order of orders)
        for (const first of [10, 1000]) {
          const ms: Record<string, number> = {};
          for (const throughTable of [false, true]) {
            const { text, values } = statement(first, throughTable, order.sql);
            const times: number[] = [];
            for (let i = 0; i < 6; i++) {
              at = performance.now();
              const { rowCount } = await c.query(text, values);
              if (i) times.push(performance.now() - at);
              if (rowCount !== first + 1) throw new Error(`matrix: the common age gave ${rowCount} rows`);
            }
            ms[throughTable ? 'table' : 'hashing'] = times.sort((a, b) => a - b)[2];
          }
          const runs = index.serves(table, [value], first, order.inRowIdOrder)
            ? 'the table'
            : 'hashing in order';
          lines.push(
            `  page of ${first}, ${order.name}: hashing in the page's order ${ms.hashing.toFixed(1)} ms, through the table ` +
              `${ms.table.toFixed(1)} ms (table/hashing ${(ms.table / ms.hashing).toFixed(2)}); the broker runs ${runs}`,
          );
        }
    });
  } finally {
    await withClient(database, async (c) => {
      await c.query(`DELETE FROM hash_key_scope WHERE agreement_id = $1 AND field = 'age'`, [agreementId]);
      await c.query(`VACUUM hash_key`);
    });
  }
  return lines;
}

/**
 * The lookup table of a HASH name kept up to date by an ingestion that changes `changed` records'
 * names (keepHashLookups, as IngestService calls it, in a transaction under the record table's lock,
 * rolled back at the end): the time of taking the old values out and filing the new ones, against
 * the ingestion's own UPDATE of the same records, and the plans of the two statements (each run once,
 * as EXPLAIN ANALYZE).
 */
async function hashUpkeep(
  database: string,
  app: INestApplicationContext,
  datasetId: string,
  changed: number,
): Promise<string[]> {
  const shape = (await app.get(DatasetService).shapes([datasetId])).get(datasetId)!;
  const table = `records.${SLUG}`;
  return withClient(database, async (c) => {
    await c.query('BEGIN');
    try {
      await c.query(`LOCK TABLE ${table} IN SHARE ROW EXCLUSIVE MODE`);
      await c.query(
        `CREATE TEMP TABLE _upkeep ON COMMIT DROP AS
         SELECT * FROM ${table} ORDER BY "_rid" LIMIT ${changed}`,
      );
      await c.query(`UPDATE _upkeep SET full_name = full_name || ' Jr'`);
      await c.query(`ANALYZE _upkeep`);
      const plans: string[] = [];
      const times: number[] = [];
      // The upkeep's statements run as EXPLAIN ANALYZE (which runs them), and are timed so.
      const explaining = {
        query: async <T>(sql: string, params?: unknown[]) => {
          if (!/(DELETE FROM|INSERT INTO) hash_key /.test(sql))
            return c.query(sql, params) as never as { rows: T[] };
          const at = performance.now();
          const { rows } = await c.query<{ 'QUERY PLAN': string }>(
            `EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF) ${sql}`,
            params,
          );
          times.push(performance.now() - at);
          plans.push(withoutKeys(rows.map((r) => `    ${r['QUERY PLAN']}`).join('\n')));
          return { rows: [] as T[] };
        },
      };
      const upkeep = await keepHashLookups(explaining, shape, changed);
      if (upkeep.dropped) throw new Error('matrix: the HASH lookup table was dropped, not kept');
      await upkeep.beforeUpdate('_upkeep');
      const at = performance.now();
      const updated = await c.query(
        `UPDATE ${table} AS t SET full_name = s.full_name, _ingested_at = now() FROM _upkeep s WHERE t.id = s.id`,
      );
      const update = performance.now() - at;
      await upkeep.afterChange('_upkeep');
      if (updated.rowCount !== changed || times.length !== 2) throw new Error('matrix: HASH upkeep not run');
      return [
        `HASH lookup table kept up to date by an ingestion of ${changed} changed names: ` +
          `${times[0].toFixed(1)} ms out, ${times[1].toFixed(1)} ms in, against the ingestion's UPDATE ` +
          `of them ${update.toFixed(1)} ms (ratio (out + in)/UPDATE ${((times[0] + times[1]) / update).toFixed(2)})`,
        ...plans,
      ];
    } finally {
      await c.query('ROLLBACK');
      // What the rolled-back change left behind, cleared before the cells are timed.
      await c.query(`VACUUM ${table}, hash_key`);
    }
  });
}
