import type { FieldDefinition, FieldType } from '@broker/registry';

/** How a grant releases a field: as stored, as a keyed hash, or generalised. */
export enum FieldTransform {
  RAW = 'RAW',
  HASH = 'HASH',
  GENERALIZE = 'GENERALIZE',
}

/** What a grant lets the recipient ask for: rows, or aggregates only. */
export enum GrantAccess {
  ROWS = 'ROWS',
  AGGREGATE_ONLY = 'AGGREGATE_ONLY',
}

/**
 * The string values of the registry's FieldType. Policy compares against these literals so that it
 * imports the registry for types only and never loads Nest or TypeORM at run time.
 */
export type FieldTypeName = `${FieldType}`;

/** The shape of a dataset that policy needs: its fields and the names the data plane gives it. */
export interface DatasetShape {
  id: string;
  slug: string;
  typeName: string;
  keyField: string;
  subjectField: string | null;
  fields: FieldDefinition[];
}

/** One granted field and its transform. */
export interface FieldGrant {
  name: string;
  transform: FieldTransform;
  /** Why the purpose needs this field at this precision; absent when none was given. */
  justification?: string;
}

/** A scalar a row filter compares a raw field with. */
export type RowFilterValue = string | number | boolean;

/** The operators of a row filter condition; several in one object are ANDed. */
export interface RowFilterOperators {
  $eq?: RowFilterValue;
  $ne?: RowFilterValue;
  $gt?: RowFilterValue;
  $gte?: RowFilterValue;
  $lt?: RowFilterValue;
  $lte?: RowFilterValue;
  $in?: RowFilterValue[];
  $nin?: RowFilterValue[];
}

/**
 * An agreement's row filter on the dataset's raw fields (DESIGN §4.1): `{"f": v}` is equality,
 * `{"f": {"$gt": v}}` an operator, `$and`/`$or` combine filters; several keys at one level are ANDed.
 */
export interface RowFilter {
  $and?: RowFilter[];
  $or?: RowFilter[];
  [field: string]: RowFilterValue | RowFilterOperators | RowFilter[] | undefined;
}

/** One grant of an agreement version: a dataset, its fields, and the conditions of access. */
export interface GrantContent {
  datasetId: string;
  access: GrantAccess;
  fields: FieldGrant[];
  rowFilter: RowFilter | null;
  requireConsent: boolean;
  minCellSize: number;
  linkage: boolean;
}

/** The canonical content of an agreement version, as stored, hashed and compiled. */
export interface AgreementContent {
  title: string;
  providerAgencyId: string;
  recipientAgencyId: string;
  /** Purpose codes, sorted and unique. */
  purposes: string[];
  /** ISO 8601 UTC, as `Date#toISOString` writes it. */
  validFrom: string;
  /** ISO 8601 UTC, as `Date#toISOString` writes it. */
  validUntil: string;
  retentionDays: number | null;
  legalBasis: string | null;
  termsOfUse: string | null;
  /**
   * Who in the community gains, and how; absent when none was given, so that versions written before
   * it existed keep their hash.
   */
  communityBenefit?: string;
  /** Sorted by dataset id; each grant's fields sorted by name. */
  grants: GrantContent[];
}

/** The GraphQL scalar a released field has in the data plane. */
export type ReleasedType = 'String' | 'Int' | 'Float' | 'Boolean' | 'Date' | 'DateTime';

/** A field as a grant releases it: its released name and type, and the raw field it comes from. */
export interface ReleasedField {
  name: string;
  source: string;
  transform: FieldTransform;
  type: ReleasedType;
}

/** A grant compiled against its dataset: what it releases, keyed by released name. */
export interface CompiledGrant {
  datasetId: string;
  access: GrantAccess;
  released: Map<string, ReleasedField>;
  rowFilter: RowFilter | null;
  requireConsent: boolean;
  minCellSize: number;
  linkage: boolean;
}

/** A value a data-plane filter compares a released value with. Date objects are accepted for Date and DateTime. */
export type DataWhereValue = string | number | boolean | Date;

/**
 * A filter on one released field (DESIGN §4.2 `<Type>Filter`). BooleanFilter has only `eq` and
 * `isNull`; every comparison on a null value is unknown, so only `isNull` matches nulls.
 */
export interface FieldFilter {
  eq?: DataWhereValue;
  neq?: DataWhereValue;
  gt?: DataWhereValue;
  gte?: DataWhereValue;
  lt?: DataWhereValue;
  lte?: DataWhereValue;
  in?: DataWhereValue[];
  nin?: DataWhereValue[];
  isNull?: boolean;
}

/** The data plane's `<Type>Where` input: filters on released names, and `and`, `or`, `not`. */
export interface DataWhere {
  and?: DataWhere[];
  or?: DataWhere[];
  not?: DataWhere;
  [releasedName: string]: FieldFilter | DataWhere | DataWhere[] | undefined;
}

/** One ordering term of the data plane's `<Type>OrderBy`. */
export interface DataOrderBy {
  field: string;
  direction: 'ASC' | 'DESC';
}

/** The linkage pseudonym's released name; no dataset field may take it. */
export const PERSON_KEY = 'personKey';

/** An agreement version in force, compiled for the data plane against its datasets. */
export interface ActiveAgreement {
  id: string;
  version: number;
  purposes: string[];
  /** Compiled grants by dataset id. */
  grants: Map<string, CompiledGrant>;
  hmacKey: Buffer;
  validFrom: Date;
  validUntil: Date;
}
