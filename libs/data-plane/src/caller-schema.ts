import {
  GraphQLBoolean,
  GraphQLEnumType,
  GraphQLFloat,
  GraphQLID,
  GraphQLInputObjectType,
  GraphQLInt,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  type GraphQLScalarType,
  GraphQLSchema,
  GraphQLString,
  type GraphQLFieldConfigMap,
  type GraphQLInputFieldConfigMap,
  type GraphQLFieldConfigArgumentMap,
} from 'graphql';
import { GraphQLJSONObject } from 'graphql-scalars';
import { type ActiveAgreement, GrantAccess, PERSON_KEY, type ReleasedType } from '@broker/policy';
import type { DatasetShapeRecord } from '@broker/registry';
import { DateScalar, DateTimeScalar } from './scalars';

/** The condition fields of a `<Type>Linked` input: no dataset slug among them is offered to link. */
export const LINKED_CONDITION_FIELDS = new Set([
  'exists',
  'agreement',
  'where',
  'on',
  'after',
  'minDays',
  'maxDays',
]);

/** What a root field of the caller's schema reads. */
export interface RootField {
  name: string;
  datasetId: string;
  /** `<slug>` reads rows; `<slug>_aggregate` counts groups. */
  kind: 'ROWS' | 'AGGREGATE';
}

/** The caller's schema and what its root fields mean. */
export interface CallerSchema {
  schema: GraphQLSchema;
  roots: Map<string, RootField>;
}

const SCALARS: Record<ReleasedType, GraphQLScalarType> = {
  String: GraphQLString,
  Int: GraphQLInt,
  Float: GraphQLFloat,
  Boolean: GraphQLBoolean,
  Date: DateScalar,
  DateTime: DateTimeScalar,
};

/**
 * Builds the schema a caller sees: only the datasets, fields and purposes that its active
 * agreements grant; nothing else exists for it, not even in introspection. Returns null when
 * nothing is granted (a schema needs at least one root field).
 */
export function buildCallerSchema(
  active: ActiveAgreement[],
  shapes: Map<string, DatasetShapeRecord>,
): CallerSchema | null {
  // Released names per dataset, of every grant; the row root exists only where a ROWS grant does.
  const released = new Map<string, Map<string, ReleasedType>>();
  const rowsGranted = new Set<string>();
  // Datasets whose rows some grant releases with a linkage pseudonym.
  const linked = new Set<string>();
  const purposes = new Set<string>();
  for (const agreement of active) {
    for (const grant of agreement.grants.values()) {
      if (!shapes.has(grant.datasetId)) continue;
      if (grant.access === GrantAccess.ROWS) {
        rowsGranted.add(grant.datasetId);
        if (grant.linkage) linked.add(grant.datasetId);
      } else if (grant.access !== GrantAccess.AGGREGATE_ONLY) {
        continue;
      }
      agreement.purposes.forEach((p) => purposes.add(p));
      const fields = released.get(grant.datasetId) ?? new Map<string, ReleasedType>();
      for (const field of grant.released.values()) fields.set(field.name, field.type);
      released.set(grant.datasetId, fields);
    }
  }
  if (!released.size) return null;

  const filters = new Map<ReleasedType, GraphQLInputObjectType>();
  const filterOf = (type: ReleasedType) => {
    let filter = filters.get(type);
    if (!filter) {
      const scalar = SCALARS[type];
      const list = new GraphQLList(new GraphQLNonNull(scalar));
      const fields: GraphQLInputFieldConfigMap =
        type === 'Boolean'
          ? { eq: { type: scalar }, isNull: { type: GraphQLBoolean } }
          : {
              eq: { type: scalar },
              neq: { type: scalar },
              gt: { type: scalar },
              gte: { type: scalar },
              lt: { type: scalar },
              lte: { type: scalar },
              in: { type: list },
              nin: { type: list },
              isNull: { type: GraphQLBoolean },
            };
      filter = new GraphQLInputObjectType({ name: `${type}Filter`, fields });
      filters.set(type, filter);
    }
    return filter;
  };

  const purposeEnum = new GraphQLEnumType({
    name: 'Purpose',
    values: Object.fromEntries([...purposes].sort().map((p) => [p, { value: p }])),
  });
  const sortDirection = new GraphQLEnumType({
    name: 'SortDirection',
    values: { ASC: { value: 'ASC' }, DESC: { value: 'DESC' } },
  });
  const pageInfo = new GraphQLObjectType({
    name: 'PageInfo',
    fields: {
      hasNextPage: { type: new GraphQLNonNull(GraphQLBoolean) },
      endCursor: { type: GraphQLString },
    },
  });

  const aggregateGroup = new GraphQLObjectType({
    name: 'AggregateGroup',
    fields: {
      key: { type: new GraphQLNonNull(GraphQLJSONObject) },
      count: { type: GraphQLInt },
      suppressed: { type: new GraphQLNonNull(GraphQLBoolean) },
    },
  });
  const aggregateResult = new GraphQLObjectType({
    name: 'AggregateResult',
    fields: {
      groups: { type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(aggregateGroup))) },
      // -- issue 13: the bound of the perturbation (docs/disclosure-control.md) --
      noise: { type: new GraphQLNonNull(GraphQLInt) },
    },
  });
  // -- issue 13: counting persons, and linked counts --
  const countUnit = new GraphQLEnumType({
    name: 'CountUnit',
    values: { RECORDS: { value: 'RECORDS' }, PERSONS: { value: 'PERSONS' } },
  });
  // Datasets some grant with linkage releases (any access): the others a linked count may name.
  const linkable = new Set<string>();
  for (const agreement of active) {
    for (const grant of agreement.grants.values()) {
      if (grant.linkage && released.has(grant.datasetId)) linkable.add(grant.datasetId);
    }
  }
  const whereTypes = new Map<string, GraphQLInputObjectType>();
  const fieldEnums = new Map<string, GraphQLEnumType>();
  const linkedInputs = new Map<string, GraphQLInputObjectType>();
  // One `<Type>Linked` per dataset, in both roles DESIGN §4.2 gives the name: as the `linked`
  // argument of `<slug>_aggregate` it holds one field per other dataset (named by its slug); as such
  // a field it is the condition on that dataset (exists, agreement, where, on, after, minDays,
  // maxDays). Policy reads each role's fields only and refuses a condition nested in a condition.
  // `after` names a field of the aggregated dataset, which one type cannot know: it takes any released
  // name of a dataset with linkage (enum `LinkedField`, so `after: completed_on` reads as in DESIGN),
  // and policy refuses one that this dataset's chosen agreement does not release as a date, RAW.
  let linkedField: GraphQLEnumType | null = null;
  const linkedFieldEnum = () =>
    (linkedField ??= new GraphQLEnumType({
      name: 'LinkedField',
      values: Object.fromEntries(
        [...new Set([...linkable].flatMap((id) => [...released.get(id)!.keys()]))]
          .sort()
          .map((name) => [name, { value: name }]),
      ),
    }));
  const linkedInputOf = (dataset: DatasetShapeRecord): GraphQLInputObjectType => {
    let input = linkedInputs.get(dataset.id);
    if (!input) {
      input = new GraphQLInputObjectType({
        name: `${dataset.typeName}Linked`,
        fields: () => ({
          exists: { type: GraphQLBoolean, defaultValue: true },
          agreement: { type: GraphQLID },
          where: { type: whereTypes.get(dataset.id)! },
          on: { type: fieldEnums.get(dataset.id)! },
          after: { type: linkedFieldEnum() },
          minDays: { type: GraphQLInt, defaultValue: 0 },
          maxDays: { type: GraphQLInt },
          ...Object.fromEntries(
            linkableOthers(dataset).map((other) => [other.slug, { type: linkedInputOf(other) }]),
          ),
        }),
      });
      linkedInputs.set(dataset.id, input);
    }
    return input;
  };
  const linkableOthers = (dataset: DatasetShapeRecord) =>
    datasetsSorted.filter(
      (d) => d.id !== dataset.id && linkable.has(d.id) && !LINKED_CONDITION_FIELDS.has(d.slug),
    );
  // -- end issue 13 --

  // -- issue 13: `linked: <Type>Linked`, one field per other dataset with linkage --
  const linkedArg = (dataset: DatasetShapeRecord): GraphQLFieldConfigArgumentMap => {
    if (!linkable.has(dataset.id) || !linkableOthers(dataset).length) return {};
    return { linked: { type: linkedInputOf(dataset) } };
  };
  const datasetsSorted = [...released.keys()]
    .map((id) => shapes.get(id)!)
    .sort((a, b) => a.slug.localeCompare(b.slug));
  // -- end issue 13 --
  const rootFields: GraphQLFieldConfigMap<unknown, unknown> = {};
  const roots = new Map<string, RootField>();
  const datasets = [...released.keys()]
    .map((id) => shapes.get(id)!)
    .sort((a, b) => a.slug.localeCompare(b.slug));
  for (const dataset of datasets) {
    const fields = [...released.get(dataset.id)!.entries()].sort(([a], [b]) => a.localeCompare(b));
    const typeName = dataset.typeName;
    // personKey: the linkage pseudonym, a String scoped to (caller's agency, purpose); it can be read
    // and filtered on (to join datasets), not grouped or ordered by.
    const withKey: [string, ReleasedType][] = linked.has(dataset.id)
      ? [...fields, [PERSON_KEY, 'String']]
      : fields;
    const objectType = new GraphQLObjectType({
      name: typeName,
      fields: Object.fromEntries(withKey.map(([name, type]) => [name, { type: SCALARS[type] }])),
    });
    const fieldEnum = new GraphQLEnumType({
      name: `${typeName}Field`,
      values: Object.fromEntries(fields.map(([name]) => [name, { value: name }])),
    });
    const where: GraphQLInputObjectType = new GraphQLInputObjectType({
      name: `${typeName}Where`,
      fields: () => ({
        ...Object.fromEntries(withKey.map(([name, type]) => [name, { type: filterOf(type) }])),
        and: { type: new GraphQLList(new GraphQLNonNull(where)) },
        or: { type: new GraphQLList(new GraphQLNonNull(where)) },
        not: { type: where },
      }),
    });
    whereTypes.set(dataset.id, where);
    fieldEnums.set(dataset.id, fieldEnum);
    const orderBy = new GraphQLInputObjectType({
      name: `${typeName}OrderBy`,
      fields: {
        field: { type: new GraphQLNonNull(fieldEnum) },
        direction: { type: sortDirection, defaultValue: 'ASC' },
      },
    });
    if (rowsGranted.has(dataset.id)) {
      const connection = new GraphQLObjectType({
        name: `${typeName}Connection`,
        fields: {
          nodes: { type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(objectType))) },
          pageInfo: { type: new GraphQLNonNull(pageInfo) },
        },
      });
      rootFields[dataset.slug] = {
        type: new GraphQLNonNull(connection),
        args: {
          purpose: { type: new GraphQLNonNull(purposeEnum) },
          agreement: { type: GraphQLID },
          where: { type: where },
          orderBy: { type: new GraphQLList(new GraphQLNonNull(orderBy)) },
          first: { type: GraphQLInt, defaultValue: 100 },
          after: { type: GraphQLString },
        },
      };
      roots.set(dataset.slug, { name: dataset.slug, datasetId: dataset.id, kind: 'ROWS' });
    }
    const aggregateName = `${dataset.slug}_aggregate`;
    rootFields[aggregateName] = {
      type: new GraphQLNonNull(aggregateResult),
      args: {
        purpose: { type: new GraphQLNonNull(purposeEnum) },
        agreement: { type: GraphQLID },
        where: { type: where },
        groupBy: { type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(fieldEnum))) },
        // -- issue 13 --
        unit: { type: countUnit, defaultValue: 'RECORDS' },
        ...linkedArg(dataset),
      },
    };
    roots.set(aggregateName, { name: aggregateName, datasetId: dataset.id, kind: 'AGGREGATE' });
  }
  return {
    schema: new GraphQLSchema({ query: new GraphQLObjectType({ name: 'Query', fields: rootFields }) }),
    roots,
  };
}
