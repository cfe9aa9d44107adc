import {
  type CompiledGrant,
  type DataAbility,
  type GrantContent,
  PolicyError,
  compileAgreement,
} from '@broker/policy';
import { datasetShapes } from './dataset.service';

/** Runs one statement and returns its rows (a transaction's, or a pg client's). */
export type QueryRows = <T>(sql: string, params?: unknown[]) => Promise<T[]>;

/** Whether the agreement `alias` is in force (neither revoked nor past its version's end), as SQL. */
export const agreementInForceSql = (alias: string) => `${alias}.revoked_at IS NULL AND EXISTS (
    SELECT 1 FROM agreement_version v
     WHERE v.agreement_id = ${alias}.id AND v.version = ${alias}.in_force_version AND v.valid_until > now())`;

/** The versions in force, each with its recipient and what its grants are compiled from. */
const VERSIONS_IN_FORCE = `
  SELECT a.id, a.recipient_agency_id AS "recipientAgencyId", a.in_force_version AS version,
         v.content->'purposes' AS purposes, v.content->'grants' AS grants
    FROM agreement a JOIN agreement_version v ON v.agreement_id = a.id AND v.version = a.in_force_version
   WHERE ${agreementInForceSql('a')}`;

/** An agreement version in force as its statements are answered under it. */
export interface VersionInForce {
  id: string;
  recipientAgencyId: string;
  version: number;
  /**
   * The version compiled as the data plane compiles it (compileAgreement); null when one of its
   * grants does not fit its dataset: the data plane refuses to compile it, and it answers nothing.
   */
  compiled: {
    id: string;
    purposes: string[];
    grants: Map<string, CompiledGrant>;
    ability: DataAbility;
  } | null;
}

/**
 * The versions in force, each compiled, with the caller's `query` (in its transaction, if any): what
 * the derived lookup tables are judged by (the personKey tables of linkage, the HASH lookup tables):
 * a table is kept only while a statement under one of these can read it. Compare
 * {@link judgedVersionSql} in the statement that drops the others.
 */
export async function versionsInForce(query: QueryRows): Promise<VersionInForce[]> {
  const versions = await query<{
    id: string;
    recipientAgencyId: string;
    version: number;
    purposes: string[];
    grants: GrantContent[];
  }>(VERSIONS_IN_FORCE);
  const shapes = await datasetShapes(
    query,
    versions.flatMap((v) => (v.grants ?? []).map((g) => g.datasetId)),
  );
  return versions.map((version) => {
    let compiled: VersionInForce['compiled'] = null;
    try {
      compiled = compileAgreement(
        { id: version.id, purposes: version.purposes ?? [] },
        version.grants ?? [],
        shapes,
      );
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
    }
    return {
      id: version.id,
      recipientAgencyId: version.recipientAgencyId,
      version: version.version,
      compiled,
    };
  });
}

/**
 * Whether the agreement `alias` is in force under the very version that was judged, as SQL: `ids`
 * and `versions` are the placeholders of two arrays (`uuid[]`, `int[]`) of {@link versionsInForce}'s
 * ids and versions. False for an agreement whose version in force is another by now (an amendment
 * came into force between the read and the statement) or that came into force meanwhile: a sweep
 * drops nothing of it, and the next one judges it again.
 */
function judgedVersionSql(alias: string, ids: string, versions: string): string {
  return `${alias}.in_force_version = (SELECT j.version FROM unnest(${ids}::uuid[], ${versions}::int[]) AS j (id, version)
                                        WHERE j.id = ${alias}.id)`;
}

/** A column of a lookup table's scope row that names the table: its name, SQL type, and value. */
export type TableColumn<T> = readonly [column: string, type: string, of: (table: T) => string];

/**
 * The lookup tables no statement reads, as a condition on a scope row `scope` joined to its
 * agreement `a`, with its parameters: the tables of agreements not in force, and those of an
 * agreement in force, under the version judged, that are not among `tables` (those the judged
 * versions' statements read, each named by `columns`). An agreement amended, or come into force,
 * since `versions` were read loses nothing (see {@link judgedVersionSql}). The one rule of both
 * sweeps, the HASH lookup tables' and personKey's.
 */
export function staleTables<T>(
  versions: readonly VersionInForce[],
  tables: readonly T[],
  scope: string,
  columns: readonly TableColumn<T>[],
): { sql: string; params: unknown[] } {
  const names = columns.map(([column]) => column).join(', ');
  const arrays = columns.map(([, type], i) => `$${i + 3}::${type}[]`).join(', ');
  const matches = columns.map(([column]) => `c.${column} = ${scope}.${column}`).join(' AND ');
  return {
    sql: `(NOT (${agreementInForceSql('a')})
      OR (${judgedVersionSql('a', '$1', '$2')}
          AND NOT EXISTS (SELECT 1 FROM unnest(${arrays}) AS c (${names}) WHERE ${matches})))`,
    params: [
      versions.map((v) => v.id),
      versions.map((v) => v.version),
      ...columns.map(([, , of]) => tables.map(of)),
    ],
  };
}
