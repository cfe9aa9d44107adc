import type { FieldDefinition } from '@broker/registry';
import { PolicyError } from './policy-error';
import { FieldTransform, type FieldTypeName, type ReleasedField, type ReleasedType } from './policy.types';

const RAW_TYPES: Record<FieldTypeName, ReleasedType> = {
  STRING: 'String',
  INTEGER: 'Int',
  FLOAT: 'Float',
  BOOLEAN: 'Boolean',
  DATE: 'Date',
  DATETIME: 'DateTime',
};

/** What GENERALIZE keeps of a value, by kind, and the suffix of the name it is released under. */
const GENERALIZED_SUFFIX = { year: '_year', band: '_band', prefix: '_prefix' } as const;
export type GeneralizedKind = keyof typeof GENERALIZED_SUFFIX;

/** The name and type under which GENERALIZE releases a field of this type, or null for BOOLEAN. */
function generalized(name: string, type: FieldTypeName): { name: string; type: ReleasedType } | null {
  switch (type) {
    case 'DATE':
    case 'DATETIME':
      return { name: `${name}${GENERALIZED_SUFFIX.year}`, type: 'Int' };
    case 'INTEGER':
    case 'FLOAT':
      return { name: `${name}${GENERALIZED_SUFFIX.band}`, type: 'Int' };
    case 'STRING':
      return { name: `${name}${GENERALIZED_SUFFIX.prefix}`, type: 'String' };
    case 'BOOLEAN':
      return null;
  }
}

/**
 * What GENERALIZE kept of `source` when it released it as `released`: its year, its band or its
 * prefix, told by the released name as {@link releasedField} made it; null for any other name.
 */
export function generalizedKind(released: string, source: string): GeneralizedKind | null {
  const kinds = Object.keys(GENERALIZED_SUFFIX) as GeneralizedKind[];
  return kinds.find((kind) => released === `${source}${GENERALIZED_SUFFIX[kind]}`) ?? null;
}

/** Whether a released field is the dataset's key as it is (RAW): unique, and indexed by the broker. */
export function isRawKey(released: ReleasedField, dataset: { keyField: string }): boolean {
  return released.transform === FieldTransform.RAW && released.source === dataset.keyField;
}

/** Whether a transform applies to a field type (GENERALIZE does not apply to BOOLEAN). */
export function transformApplies(type: FieldTypeName, transform: FieldTransform): boolean {
  return transform !== FieldTransform.GENERALIZE || type !== 'BOOLEAN';
}

/** The released name and GraphQL type of a field under a transform, per DESIGN's transform table. */
export function releasedField(field: FieldDefinition, transform: FieldTransform): ReleasedField {
  const type: FieldTypeName = field.type;
  // Shapes and contents come from storage; anything unexpected is refused rather than guessed at.
  if (!Object.hasOwn(RAW_TYPES, type))
    throw new PolicyError('FORBIDDEN', 'The dataset has a field of unknown type');
  switch (transform) {
    case FieldTransform.RAW:
      return { name: field.name, source: field.name, transform, type: RAW_TYPES[type] };
    case FieldTransform.HASH:
      return { name: `${field.name}_hash`, source: field.name, transform, type: 'String' };
    case FieldTransform.GENERALIZE: {
      const released = generalized(field.name, type);
      if (!released) throw new PolicyError('BAD_USER_INPUT', 'GENERALIZE does not apply to a BOOLEAN field');
      return { ...released, source: field.name, transform };
    }
  }
  throw new PolicyError('FORBIDDEN', 'Unknown transform');
}
