/**
 * What the recipient of an agreement would see, per purpose and dataset, computed by the policy
 * engine from validated content: the same compilation the data plane runs on a version in force.
 */
import {
  type AgreementContent,
  type DatasetShape,
  type FieldTransform,
  type GrantAccess,
  type RowFilter,
  compileGrant,
} from '@broker/policy';

/** A field as the data plane would release it to the recipient. */
export interface ReleasedFieldPreview {
  /** The released name, e.g. `dob_year`. */
  name: string;
  /** Its GraphQL type in the data plane: String, Int, Float, Boolean, Date or DateTime. */
  type: string;
  transform: FieldTransform;
  /** The provider's field it comes from. */
  sourceField: string;
}

/** One grant as the recipient would see it, before any row is counted. */
export interface GrantPreview {
  datasetId: string;
  access: GrantAccess;
  fields: ReleasedFieldPreview[];
  rowFilter: RowFilter | null;
  requireConsent: boolean;
  minCellSize: number;
  personKey: boolean;
}

/** Every purpose of the content with every grant it covers (an agreement grants each purpose all its grants). */
export function previewContent(
  content: AgreementContent,
  shapes: ReadonlyMap<string, DatasetShape>,
): { purpose: string; grants: GrantPreview[] }[] {
  const grants = content.grants.map((grant): GrantPreview => {
    const shape = shapes.get(grant.datasetId);
    if (!shape) throw new Error(`the shape of dataset ${grant.datasetId} is missing`);
    const compiled = compileGrant(grant, shape);
    return {
      datasetId: grant.datasetId,
      access: compiled.access,
      // In the order the grant lists them (by source field name), as the data plane's type does.
      fields: [...compiled.released.values()].map((released) => ({
        name: released.name,
        type: released.type,
        transform: released.transform,
        sourceField: released.source,
      })),
      rowFilter: compiled.rowFilter,
      requireConsent: compiled.requireConsent,
      minCellSize: compiled.minCellSize,
      personKey: compiled.linkage,
    };
  });
  return content.purposes.map((purpose) => ({ purpose, grants }));
}
