import { isCanonicalUuid } from '@broker/core';
import {
  type CompiledGrant,
  type DataAbility,
  type DatasetShape,
  type GrantContent,
  PolicyError,
  compileAgreement,
} from '@broker/policy';

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

/** The shapes of datasets, as the data plane compiles grants against them (DatasetService.shapes). */
const SHAPES_OF = `
  SELECT d.id, d.slug, d.type_name AS "typeName", d.key_field AS "keyField", d.subject_field AS "subjectField",
         json_agg(json_build_object('name', f.name, 'type', f.type, 'classification', f.classification,
                                    'identity', f.identity, 'required', f.required, 'description', f.description)
                  ORDER BY f.position) AS fields
    FROM dataset d JOIN dataset_field f ON f.dataset_id = d.id
   WHERE d.id = ANY ($1::uuid[]) GROUP BY d.id`;

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
  const ids = [...new Set(versions.flatMap((v) => (v.grants ?? []).map((g) => g.datasetId)))].filter((id) =>
    isCanonicalUuid(id),
  );
  const shapes = new Map(
    (ids.length ? await query<DatasetShape>(SHAPES_OF, [ids]) : []).map((shape) => [shape.id, shape]),
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
export function judgedVersionSql(alias: string, ids: string, versions: string): string {
  return `${alias}.in_force_version = (SELECT j.version FROM unnest(${ids}::uuid[], ${versions}::int[]) AS j (id, version)
                                        WHERE j.id = ${alias}.id)`;
}
