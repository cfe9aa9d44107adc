import type { FieldDefinition, FieldType } from '@broker/registry';
import { PolicyError } from './policy-error';
import { FieldTransform, type FieldTypeName } from './policy.types';
import { generalizedKind, releasedField, transformApplies } from './released-field';

const field = (name: string, type: FieldTypeName) =>
  ({
    name,
    type: type as FieldType,
    classification: 'SENSITIVE',
    identity: null,
    required: false,
    description: null,
  }) as FieldDefinition;

describe('releasedField', () => {
  // DESIGN §4.1, the transform table, row by row.
  it.each([
    ['STRING', 'RAW', 'f', 'String'],
    ['INTEGER', 'RAW', 'f', 'Int'],
    ['FLOAT', 'RAW', 'f', 'Float'],
    ['BOOLEAN', 'RAW', 'f', 'Boolean'],
    ['DATE', 'RAW', 'f', 'Date'],
    ['DATETIME', 'RAW', 'f', 'DateTime'],
    ['STRING', 'HASH', 'f_hash', 'String'],
    ['INTEGER', 'HASH', 'f_hash', 'String'],
    ['FLOAT', 'HASH', 'f_hash', 'String'],
    ['BOOLEAN', 'HASH', 'f_hash', 'String'],
    ['DATE', 'HASH', 'f_hash', 'String'],
    ['DATETIME', 'HASH', 'f_hash', 'String'],
    ['DATE', 'GENERALIZE', 'f_year', 'Int'],
    ['DATETIME', 'GENERALIZE', 'f_year', 'Int'],
    ['INTEGER', 'GENERALIZE', 'f_band', 'Int'],
    ['FLOAT', 'GENERALIZE', 'f_band', 'Int'],
    ['STRING', 'GENERALIZE', 'f_prefix', 'String'],
  ] as const)('%s under %s is released as %s of type %s', (type, transform, name, releasedType) => {
    expect(releasedField(field('f', type), transform as FieldTransform)).toEqual({
      name,
      source: 'f',
      transform,
      type: releasedType,
    });
    expect(transformApplies(type, transform as FieldTransform)).toBe(true);
  });

  it('refuses GENERALIZE of a BOOLEAN', () => {
    expect(transformApplies('BOOLEAN', FieldTransform.GENERALIZE)).toBe(false);
    expect(() => releasedField(field('f', 'BOOLEAN'), FieldTransform.GENERALIZE)).toThrow(PolicyError);
  });

  it('refuses unknown types and transforms rather than guess', () => {
    expect(() => releasedField(field('f', 'BLOB' as FieldTypeName), FieldTransform.RAW)).toThrow(PolicyError);
    expect(() => releasedField(field('f', 'STRING'), 'ENCRYPT' as FieldTransform)).toThrow(PolicyError);
  });
});

describe('generalizedKind', () => {
  it('tells what GENERALIZE kept of a field from the name releasedField gave it, and nothing of others', () => {
    const kinds = (['DATE', 'DATETIME', 'INTEGER', 'FLOAT', 'STRING'] as const).map((type) =>
      generalizedKind(releasedField(field('dob', type), FieldTransform.GENERALIZE).name, 'dob'),
    );
    expect(kinds).toEqual(['year', 'year', 'band', 'band', 'prefix']);
    for (const transform of [FieldTransform.RAW, FieldTransform.HASH]) {
      expect(generalizedKind(releasedField(field('dob', 'DATE'), transform).name, 'dob')).toBeNull();
    }
    // Another field's name, or a suffix alone, is no generalization of this one.
    expect(generalizedKind('dob_year', 'do')).toBeNull();
    expect(generalizedKind('zip_prefix', 'dob')).toBeNull();
  });
});
