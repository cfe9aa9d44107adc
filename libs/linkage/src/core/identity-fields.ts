import type { IdentityValues } from './normalise';

/** The identity roles a dataset field may carry (as the registry spells them). */
export type IdentityRoleName =
  'FIRST_NAME' | 'MIDDLE_NAME' | 'LAST_NAME' | 'DATE_OF_BIRTH' | 'SEX' | 'SSN' | 'ZIP';

/** Which {@link IdentityValues} property each identity role fills. */
export const IDENTITY_PROPERTY: Readonly<Record<IdentityRoleName, keyof IdentityValues>> = {
  FIRST_NAME: 'firstName',
  MIDDLE_NAME: 'middleName',
  LAST_NAME: 'lastName',
  DATE_OF_BIRTH: 'dateOfBirth',
  SEX: 'sex',
  SSN: 'ssn',
  ZIP: 'zip',
};

/** A record's identity values, read from the fields that carry identity roles. */
export function identityOf(
  record: Readonly<Record<string, unknown>>,
  fields: readonly { name: string; identity?: string | null }[],
): IdentityValues {
  const values: IdentityValues = {
    firstName: null,
    middleName: null,
    lastName: null,
    dateOfBirth: null,
    sex: null,
    ssn: null,
    zip: null,
  };
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
