import fc from 'fast-check';
import {
  Classification,
  FieldType,
  IdentityRole,
  releasableNames,
  typeNameOf,
  validateDefinition,
} from './dataset-schema';
import { createRecordTableSql } from './record-table';

const field = (name: string, type = FieldType.STRING) => ({
  name,
  type,
  classification: Classification.NON_SENSITIVE,
});

const quasi = (name: string) => ({ ...field(name), classification: Classification.QUASI_IDENTIFIER });

describe('dataset definitions', () => {
  it('names types in PascalCase', () => {
    expect(typeNameOf('jail_bookings')).toBe('JailBookings');
    expect(typeNameOf('ds1')).toBe('Ds1');
  });

  it('lists the names a field could be released under', () => {
    expect(releasableNames('dob', FieldType.DATE)).toEqual(['dob', 'dob_hash', 'dob_year']);
    expect(releasableNames('age', FieldType.INTEGER)).toEqual(['age', 'age_hash', 'age_band']);
    expect(releasableNames('flag', FieldType.BOOLEAN)).toEqual(['flag', 'flag_hash']);
  });

  it('accepts the identity roles of any country: other person ids, street lines and cities', () => {
    const withRoles = (type: FieldType) =>
      validateDefinition({
        slug: 'abc',
        title: 't',
        keyField: 'id',
        fields: [
          field('id'),
          {
            ...field('national_id', type),
            classification: Classification.DIRECT_IDENTIFIER,
            identity: IdentityRole.ID_NUMBER,
          },
          { ...quasi('street'), identity: IdentityRole.ADDRESS },
          { ...quasi('town'), identity: IdentityRole.CITY },
          { ...quasi('postcode'), identity: IdentityRole.ZIP },
        ],
      });
    const ok = withRoles(FieldType.STRING);
    expect(ok.ok && ok.definition.fields.map((f) => f.identity)).toEqual([
      null,
      'ID_NUMBER',
      'ADDRESS',
      'CITY',
      'ZIP',
    ]);
    expect(withRoles(FieldType.INTEGER).ok).toBe(true);
    const refused = withRoles(FieldType.DATE);
    expect(refused.ok ? [] : refused.problems.map((p) => p.message)).toEqual([
      'a ID_NUMBER field must be STRING or INTEGER',
    ]);
  });

  it('marks the key field required', () => {
    const result = validateDefinition({ slug: 'abc', title: 't', keyField: 'id', fields: [field('id')] });
    expect(result.ok && result.definition.fields[0].required).toBe(true);
  });

  it('quotes every identifier of the DDL', () => {
    const result = validateDefinition({
      slug: 'abc',
      title: 't',
      keyField: 'id',
      fields: [field('id'), field('n', FieldType.FLOAT)],
    });
    if (!result.ok) throw new Error('expected a valid definition');
    expect(createRecordTableSql(result.definition)).toBe(
      'CREATE TABLE "records"."abc" (\n  "id" text NOT NULL,\n  "n" double precision,\n' +
        '  "_ingested_at" timestamptz NOT NULL DEFAULT now(),\n' +
        '  "_rid" bigint NOT NULL DEFAULT floor(random() * 9007199254740991)::bigint,\n  PRIMARY KEY ("id")\n)',
    );
  });

  it('never accepts a definition where one released name could mean two things', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,12}$/);
    const type = fc.constantFrom(...Object.values(FieldType));
    fc.assert(
      fc.property(fc.array(fc.tuple(name, type), { minLength: 1, maxLength: 8 }), (fields) => {
        const result = validateDefinition({
          slug: 'probe',
          title: 't',
          keyField: fields[0][0],
          fields: fields.map(([n, t]) => field(n, t)),
        });
        if (!result.ok) return;
        const released = result.definition.fields.flatMap((f) => releasableNames(f.name, f.type));
        expect(new Set(released).size).toBe(released.length);
      }),
    );
  });

  it('accepts only safe identifiers', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 70 }), (name) => {
        const result = validateDefinition({
          slug: 'probe',
          title: 't',
          keyField: name,
          fields: [field(name)],
        });
        if (result.ok) expect(name).toMatch(/^[a-z][a-z0-9_]{0,62}$/);
      }),
    );
  });
});
