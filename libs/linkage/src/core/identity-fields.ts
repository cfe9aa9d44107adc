import type { IdentityValues, UnparsedCounts } from './normalise';

/**
 * Every identity role a dataset field may carry, as DESIGN §4.1's `IdentityRole` spells them: the
 * one list. The demo's datasets take their type from it; the admin UI (a browser bundle that
 * cannot import this library) and the registry's GraphQL enum are checked against it by
 * identity-fields.spec.ts.
 */
export const IDENTITY_ROLES = [
  'FIRST_NAME',
  'MIDDLE_NAME',
  'LAST_NAME',
  'DATE_OF_BIRTH',
  'SEX',
  'SSN',
  'ZIP',
  'ID_NUMBER',
  'ADDRESS',
  'CITY',
] as const;

/** An identity role (see {@link IDENTITY_ROLES}). */
export type IdentityRoleName = (typeof IDENTITY_ROLES)[number];

/** Which {@link IdentityValues} property each identity role fills. */
export const IDENTITY_PROPERTY: Readonly<Record<IdentityRoleName, keyof IdentityValues>> = {
  FIRST_NAME: 'firstName',
  MIDDLE_NAME: 'middleName',
  LAST_NAME: 'lastName',
  DATE_OF_BIRTH: 'dateOfBirth',
  SEX: 'sex',
  SSN: 'ssn',
  ZIP: 'zip',
  ID_NUMBER: 'idNumber',
  ADDRESS: 'address',
  CITY: 'city',
};

/** No value not understood yet, for every role. */
export function emptyUnparsedCounts(): UnparsedCounts {
  return Object.fromEntries(IDENTITY_ROLES.map((role) => [role, 0])) as UnparsedCounts;
}

/** Identity values with every role missing. */
export function emptyIdentityValues(): IdentityValues {
  return {
    firstName: null,
    middleName: null,
    lastName: null,
    dateOfBirth: null,
    sex: null,
    ssn: null,
    zip: null,
    idNumber: null,
    address: null,
    city: null,
  };
}

/** A record's identity values, read from the fields that carry identity roles. */
export function identityOf(
  record: Readonly<Record<string, unknown>>,
  fields: readonly { name: string; identity?: string | null }[],
): IdentityValues {
  const values = emptyIdentityValues();
  for (const field of fields) {
    const property = field.identity ? IDENTITY_PROPERTY[field.identity as IdentityRoleName] : undefined;
    if (!property) continue;
    values[property] = textOf(record[field.name]);
  }
  return values;
}

/** A field value as text, as a record table would give it; null for missing. */
function textOf(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}
