import {
  type GraphQLEnumType,
  type GraphQLInputObjectType,
  type GraphQLNamedType,
  type GraphQLSchema,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isObjectType,
  isSpecifiedScalarType,
  parse,
  validate,
} from 'graphql';
import {
  type ActiveAgreement,
  type FieldGrant,
  FieldTransform,
  GrantAccess,
  type GrantContent,
  compileGrant,
} from '@broker/policy';
import {
  type DatasetShapeRecord,
  type FieldDefinition,
  type FieldType,
  reservedTypeName,
} from '@broker/registry';
import { buildCallerSchema } from './caller-schema';

/**
 * The per-caller schema's linked conditions (DESIGN §4.2): `<Other>Linked.after` names a field of the
 * dataset being counted. With exactly two datasets aggregated with linkage it is that dataset's
 * `<Type>Field`, as DESIGN writes it; with more, one condition type serves several counted datasets,
 * so it is the union enum `LinkedField`.
 */

const field = (name: string, type: string): FieldDefinition => ({
  name,
  type: type as FieldType,
  classification: 'NON_SENSITIVE' as FieldDefinition['classification'],
  identity: null,
  required: false,
  description: null,
});

let nextId = 0;
function shape(slug: string, fields: [string, string][]): DatasetShapeRecord {
  nextId += 1;
  return {
    id: `00000000-0000-4000-8000-${String(nextId).padStart(12, '0')}`,
    slug,
    typeName: slug.replace(/(^|_)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase()),
    providerAgencyId: 'provider',
    keyField: 'id',
    subjectField: null,
    fields: [field('id', 'STRING'), ...fields.map(([name, type]) => field(name, type))],
  };
}

const participation = () =>
  shape('participation', [
    ['program', 'STRING'],
    ['completed_on', 'DATE'],
  ]);
const bookings = () =>
  shape('bookings', [
    ['charge', 'STRING'],
    ['booked_on', 'DATE'],
  ]);
const cases = () =>
  shape('court_cases', [
    ['disposition', 'STRING'],
    ['filed_on', 'DATE'],
  ]);

/** One agreement in force granting each dataset with all its fields but the key, RAW. */
function agreement(
  datasets: DatasetShapeRecord[],
  grant: (d: DatasetShapeRecord) => Partial<GrantContent> = () => ({}),
): ActiveAgreement {
  const compiled = datasets.map((d) =>
    compileGrant(
      {
        datasetId: d.id,
        access: GrantAccess.AGGREGATE_ONLY,
        fields: d.fields
          .filter((f) => f.name !== 'id')
          .map((f): FieldGrant => ({ name: f.name, transform: FieldTransform.RAW })),
        rowFilter: null,
        requireConsent: false,
        minCellSize: 5,
        linkage: true,
        ...grant(d),
      },
      d,
    ),
  );
  return {
    id: 'a1',
    version: 1,
    purposes: ['RECIDIVISM_EVALUATION'],
    grants: new Map(compiled.map((g) => [g.datasetId, g])),
    hmacKey: Buffer.alloc(32),
    validFrom: new Date(0),
    validUntil: new Date(8.64e15),
  };
}

function schemaOf(datasets: DatasetShapeRecord[], active: ActiveAgreement[]): GraphQLSchema {
  const built = buildCallerSchema(active, new Map(datasets.map((d) => [d.id, d])));
  if (!built) throw new Error('no schema');
  return built.schema;
}

const input = (schema: GraphQLSchema, name: string) => schema.getType(name) as GraphQLInputObjectType;
const afterOf = (schema: GraphQLSchema, name: string) =>
  getNamedType(input(schema, name).getFields().after.type).name;
const errors = (schema: GraphQLSchema, query: string) => validate(schema, parse(query)).map((e) => e.message);

/** Every type, field, argument, input field and enum value without a description. */
function undescribed(schema: GraphQLSchema): string[] {
  const missing: string[] = [];
  const has = (d: string | null | undefined) => typeof d === 'string' && d.trim().length > 0;
  for (const type of Object.values<GraphQLNamedType>(schema.getTypeMap())) {
    if (type.name.startsWith('__') || isSpecifiedScalarType(type)) continue;
    if (!has(type.description)) missing.push(type.name);
    if (isObjectType(type)) {
      for (const f of Object.values(type.getFields())) {
        if (!has(f.description)) missing.push(`${type.name}.${f.name}`);
        for (const arg of f.args)
          if (!has(arg.description)) missing.push(`${type.name}.${f.name}(${arg.name})`);
      }
    } else if (isInputObjectType(type)) {
      for (const f of Object.values(type.getFields())) {
        if (!has(f.description)) missing.push(`${type.name}.${f.name}`);
      }
    } else if (isEnumType(type)) {
      for (const v of type.getValues()) if (!has(v.description)) missing.push(`${type.name}.${v.name}`);
    }
  }
  return missing.sort();
}

const PURPOSE = 'RECIDIVISM_EVALUATION';

describe('caller schema: linked conditions', () => {
  describe('two datasets aggregated with linkage', () => {
    const p = participation();
    const b = bookings();
    // A third dataset without linkage is not linkable and changes nothing.
    const c = cases();
    const schema = schemaOf([p, b, c], [agreement([p, b]), agreement([c], () => ({ linkage: false }))]);

    it("types each condition's `after` as the other dataset's field enum, as DESIGN writes it", () => {
      expect(afterOf(schema, 'BookingsLinked')).toBe('ParticipationField');
      expect(afterOf(schema, 'ParticipationLinked')).toBe('BookingsField');
      expect(getNamedType(input(schema, 'BookingsLinked').getFields().on.type).name).toBe('BookingsField');
      expect(schema.getType('LinkedField')).toBeUndefined();
      expect(schema.getType('CourtCasesLinked')).toBeUndefined();
      expect(Object.keys(input(schema, 'ParticipationLinked').getFields())).toEqual([
        'exists',
        'agreement',
        'where',
        'on',
        'after',
        'minDays',
        'maxDays',
        'bookings',
      ]);
    });

    it('accepts `$after: <Counted>Field` and refuses a variable of another dataset', () => {
      const query = (afterType: string) => `
        query($after: ${afterType}!, $on: BookingsField!) {
          participation_aggregate(purpose: ${PURPOSE}, groupBy: [program],
            linked: { bookings: { on: $on, after: $after, maxDays: 365 } }) { noise }
        }`;
      expect(errors(schema, query('ParticipationField'))).toEqual([]);
      expect(errors(schema, query('BookingsField'))).toEqual([
        'Variable "$after" of type "BookingsField!" used in position expecting type "ParticipationField".',
      ]);
      // The literal of DESIGN reads as before; a name of the other dataset is not a value of the enum.
      expect(
        errors(
          schema,
          `{ participation_aggregate(purpose: ${PURPOSE}, groupBy: [],
               linked: { bookings: { on: booked_on, after: completed_on } }) { noise } }`,
        ),
      ).toEqual([]);
      expect(
        errors(
          schema,
          `{ participation_aggregate(purpose: ${PURPOSE}, groupBy: [],
               linked: { bookings: { on: booked_on, after: booked_on } }) { noise } }`,
        ),
      ).toHaveLength(1);
    });

    it('describes every type, field, argument and value', () => {
      expect(undescribed(schema)).toEqual([]);
    });
  });

  describe('more than two datasets aggregated with linkage', () => {
    const p = participation();
    const b = bookings();
    const c = cases();
    const schema = schemaOf([p, b, c], [agreement([p, b, c])]);

    it('types `after` as the union enum LinkedField of their released names, described', () => {
      for (const name of ['BookingsLinked', 'CourtCasesLinked', 'ParticipationLinked']) {
        expect(afterOf(schema, name)).toBe('LinkedField');
      }
      const linkedField = schema.getType('LinkedField') as GraphQLEnumType;
      expect(linkedField.getValues().map((v) => v.name)).toEqual([
        'booked_on',
        'charge',
        'completed_on',
        'disposition',
        'filed_on',
        'program',
      ]);
      expect(linkedField.description).toMatch(/more than two/);
      expect(linkedField.getValue('filed_on')!.description).toBe('A released name of `court_cases`.');
      expect(undescribed(schema)).toEqual([]);
    });

    it('accepts `$after: LinkedField` and no dataset field enum there', () => {
      const query = (afterType: string) => `
        query($after: ${afterType}!) {
          participation_aggregate(purpose: ${PURPOSE}, groupBy: [],
            linked: { bookings: { on: booked_on, after: $after } }) { noise }
        }`;
      expect(errors(schema, query('LinkedField'))).toEqual([]);
      expect(errors(schema, query('ParticipationField'))).toHaveLength(1);
    });

    it('names, in a value shared by two datasets, both', () => {
      const other = shape('programs', [['completed_on', 'DATE']]);
      const shared = schemaOf([p, b, other], [agreement([p, b, other])]);
      expect((shared.getType('LinkedField') as GraphQLEnumType).getValue('completed_on')!.description).toBe(
        'A released name of `participation`, `programs`.',
      );
    });
  });

  it("counts every dataset whose `linked` argument holds the condition, even one whose slug can't be offered", () => {
    // `exists` is a condition field, so no `linked` argument offers it; its own does hold `bookings`.
    const w = shape('exists', [['happened_on', 'DATE']]);
    const b = bookings();
    const schema = schemaOf([w, b], [agreement([w, b])]);
    expect(Object.keys(input(schema, 'ExistsLinked').getFields())).toContain('bookings');
    // Its `where` is the condition's filter on bookings.
    expect(getNamedType(input(schema, 'BookingsLinked').getFields().where.type).name).toBe('BookingsWhere');
    expect(afterOf(schema, 'BookingsLinked')).toBe('ExistsField');
    expect(
      schema
        .getQueryType()!
        .getFields()
        .bookings_aggregate.args.map((a) => a.name),
    ).not.toContain('linked');
  });
});

describe('caller schema: the names it takes for itself', () => {
  it("are every name the registry refuses as a slug's type name, so no dataset can collide with one", () => {
    const p = participation();
    const b = bookings();
    const c = cases();
    const schema = schemaOf([p, b, c], [agreement([p, b, c])]);
    const own = new Set([p, b, c].map((d) => d.typeName));
    const taken = Object.keys(schema.getTypeMap()).filter((name) => !name.startsWith('__') && !own.has(name));
    expect(taken.length).toBeGreaterThan(10);
    expect(taken.filter((name) => !reservedTypeName(name))).toEqual([]);
    // The slugs an outside review registered, which broke every schema of their recipient.
    expect(reservedTypeName('CountUnit')).toBe(true);
    expect(reservedTypeName('ParticipationLinked')).toBe(true);
    expect(reservedTypeName('Participation')).toBe(false);
  });

  it('leaves out a dataset registered under such a name before it was refused, and builds the rest', () => {
    const p = participation();
    const clash = shape('count_unit', [['n', 'INTEGER']]);
    const linkedClash = shape('participation_linked', [['n', 'INTEGER']]);
    const schema = schemaOf([p, clash, linkedClash], [agreement([p, clash, linkedClash])]);
    expect(schema.getQueryType()!.getFields()).not.toHaveProperty('count_unit_aggregate');
    expect(schema.getQueryType()!.getFields()).not.toHaveProperty('participation_linked_aggregate');
    expect(schema.getQueryType()!.getFields()).toHaveProperty('participation_aggregate');
    expect(
      errors(schema, '{ participation_aggregate(purpose: RECIDIVISM_EVALUATION, groupBy: []) { noise } }'),
    ).toEqual([]);
  });
});
