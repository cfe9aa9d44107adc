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
import {
  type ActiveAgreement,
  type CompiledGrant,
  FieldTransform,
  GrantAccess,
  MAX_FIRST,
  PERSON_KEY,
  type ReleasedField,
  type ReleasedType,
} from '@broker/policy';
import { type DatasetShapeRecord, reservedTypeName } from '@broker/registry';
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

/** What a released name is, for the description introspection gives it. */
interface ReleasedNameInfo {
  type: ReleasedType;
  field: ReleasedField;
  /** The agreements in force that release it to the caller: `<id> v<version> (<access>; <purposes>)`. */
  agreements: string[];
}

/** Describes what a transform releases of a field of type `sourceType`, as the contract's table. */
function transformText(field: ReleasedField, sourceType: string | undefined): string {
  switch (field.transform) {
    case FieldTransform.RAW:
      return 'released RAW: the value as stored';
    case FieldTransform.HASH:
      return (
        'released as HASH: the lowercase hex HMAC-SHA-256 of the value under a key of the ' +
        "agreement's own (equal values match inside one agreement, never across agreements)"
      );
    case FieldTransform.GENERALIZE:
      if (sourceType === 'DATE' || sourceType === 'DATETIME') return 'released as GENERALIZE: its year';
      if (sourceType === 'INTEGER' || sourceType === 'FLOAT') {
        return (
          'released as GENERALIZE: the lower bound of its 5-wide band, floor(v / 5) * 5 (null, as a ' +
          "missing value is, where that bound is outside Int's 32-bit range or the value is not finite)"
        );
      }
      return 'released as GENERALIZE: its first 3 characters';
  }
}

/** The introspection description of one released name: source field, transform, agreements. */
function describeReleased(info: ReleasedNameInfo, shape: DatasetShapeRecord): string {
  const source = shape.fields.find((f) => f.name === info.field.source);
  const lines = [
    `From field \`${info.field.source}\`${source ? ` (${source.type})` : ''} of \`${shape.slug}\`, ` +
      `${transformText(info.field, source?.type)}. Null stays null.`,
  ];
  if (source?.description) lines.push(`The provider describes the field: ${source.description}`);
  lines.push(`Released to your agency by: ${info.agreements.join(', ')}.`);
  return lines.join('\n\n');
}

const PERSON_KEY_TEXT =
  'The linkage pseudonym of the person this record belongs to, once linkage has run: the same ' +
  'person has the same key in every dataset your agency reads for the purpose, and a different ' +
  'key for any other recipient or purpose. Null while the record is not linked.';

/** An agreement as a description names it. */
function agreementText(agreement: ActiveAgreement, grant: CompiledGrant): string {
  return `agreement ${agreement.id} v${agreement.version} (${grant.access}; ${agreement.purposes.join(', ')})`;
}

const FILTER_TEXT: Record<string, string> = {
  eq: 'Equal to this value (a null released value matches no comparison).',
  neq: 'Not equal to this value (a null released value matches no comparison).',
  gt: 'Greater than this value (strings compare in code-point order).',
  gte: 'Greater than or equal to this value.',
  lt: 'Less than this value.',
  lte: 'Less than or equal to this value.',
  in: 'Equal to one of these values.',
  nin: 'Equal to none of these values (a null released value matches neither `in` nor `nin`).',
  isNull: 'true: only null released values; false: only non-null ones.',
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
  const released = new Map<string, Map<string, ReleasedNameInfo>>();
  // Per dataset, the agreements that grant it (any access) and those that release personKey.
  const grantedBy = new Map<string, string[]>();
  const linkedBy = new Map<string, string[]>();
  const rowsGranted = new Set<string>();
  // Datasets whose rows some grant releases with a linkage pseudonym.
  const linked = new Set<string>();
  const purposes = new Set<string>();
  for (const agreement of active) {
    for (const grant of agreement.grants.values()) {
      const shape = shapes.get(grant.datasetId);
      // A dataset registered, before the registry refused them, under a type name the schema takes
      // for itself would make the whole schema fail to build: it is left out, for every caller.
      if (!shape || reservedTypeName(shape.typeName)) continue;
      if (grant.access === GrantAccess.ROWS) {
        rowsGranted.add(grant.datasetId);
        if (grant.linkage) linked.add(grant.datasetId);
      } else if (grant.access !== GrantAccess.AGGREGATE_ONLY) {
        continue;
      }
      agreement.purposes.forEach((p) => purposes.add(p));
      const text = agreementText(agreement, grant);
      const fields = released.get(grant.datasetId) ?? new Map<string, ReleasedNameInfo>();
      for (const field of grant.released.values()) {
        const info = fields.get(field.name) ?? { type: field.type, field, agreements: [] };
        info.agreements.push(text);
        fields.set(field.name, info);
      }
      released.set(grant.datasetId, fields);
      grantedBy.set(grant.datasetId, [...(grantedBy.get(grant.datasetId) ?? []), text]);
      if (grant.access === GrantAccess.ROWS && grant.linkage) {
        linkedBy.set(grant.datasetId, [...(linkedBy.get(grant.datasetId) ?? []), text]);
      }
    }
  }
  if (!released.size) return null;

  const filters = new Map<ReleasedType, GraphQLInputObjectType>();
  const filterOf = (type: ReleasedType) => {
    let filter = filters.get(type);
    if (!filter) {
      const scalar = SCALARS[type];
      const list = new GraphQLList(new GraphQLNonNull(scalar));
      const types: Record<string, GraphQLInputFieldConfigMap[string]['type']> =
        type === 'Boolean'
          ? { eq: scalar, isNull: GraphQLBoolean }
          : {
              eq: scalar,
              neq: scalar,
              gt: scalar,
              gte: scalar,
              lt: scalar,
              lte: scalar,
              in: list,
              nin: list,
              isNull: GraphQLBoolean,
            };
      const fields: GraphQLInputFieldConfigMap = Object.fromEntries(
        Object.entries(types).map(([name, t]) => [name, { type: t, description: FILTER_TEXT[name] }]),
      );
      filter = new GraphQLInputObjectType({
        name: `${type}Filter`,
        description:
          `Conditions on a released ${type} value; all given conditions must hold. Comparisons follow ` +
          "SQL's three-valued logic: a comparison unknown because of a null matches neither the filter nor its `not`.",
        fields,
      });
      filters.set(type, filter);
    }
    return filter;
  };

  const purposeEnum = new GraphQLEnumType({
    name: 'Purpose',
    description:
      'Why the data is used: every data request names one, and is answered only under an agreement ' +
      'in force that grants the dataset to your agency for it. Only purposes your agreements grant exist.',
    values: Object.fromEntries(
      [...purposes].sort().map((p) => [p, { value: p, description: `The purpose ${p}.` }]),
    ),
  });
  const sortDirection = new GraphQLEnumType({
    name: 'SortDirection',
    description: 'Ascending puts nulls last; descending puts them first.',
    values: {
      ASC: { value: 'ASC', description: 'Smallest first (strings in code-point order), nulls last.' },
      DESC: { value: 'DESC', description: 'Largest first, nulls first.' },
    },
  });
  const pageInfo = new GraphQLObjectType({
    name: 'PageInfo',
    description: 'Where a page ends, to ask for the next one.',
    fields: {
      hasNextPage: {
        type: new GraphQLNonNull(GraphQLBoolean),
        description: 'Whether more rows follow this page.',
      },
      endCursor: {
        type: GraphQLString,
        description: 'The cursor to pass as `after` for the next page; null when the page is empty.',
      },
    },
  });

  const aggregateGroup = new GraphQLObjectType({
    name: 'AggregateGroup',
    description: 'One combination of the grouped released values and how many records have it.',
    fields: {
      key: {
        type: new GraphQLNonNull(GraphQLJSONObject),
        description: 'The grouped released names and their values, e.g. {"dob_year": 1981}.',
      },
      count: {
        type: GraphQLInt,
        description: 'How many records the group has; null when the group is suppressed.',
      },
      suppressed: {
        type: new GraphQLNonNull(GraphQLBoolean),
        description:
          "Withheld so that no count below the grant's minimum cell size can be derived from the answer.",
      },
    },
  });
  const aggregateResult = new GraphQLObjectType({
    name: 'AggregateResult',
    description: 'Counts per group, protected by disclosure control (see docs/disclosure-control.md).',
    fields: {
      groups: {
        type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(aggregateGroup))),
        description: 'The groups, each with its count, or suppressed; groups below minCellSize are left out.',
      },
      // -- issue 13: the bound of the perturbation (docs/disclosure-control.md) --
      noise: {
        type: new GraphQLNonNull(GraphQLInt),
        description:
          'Each count is within ±noise of the truth (0 where you may read the rows); the bound, never the perturbation applied.',
      },
    },
  });
  // -- issue 13: counting persons, and linked counts --
  const countUnit = new GraphQLEnumType({
    name: 'CountUnit',
    description: 'What an aggregate counts.',
    values: {
      RECORDS: { value: 'RECORDS', description: 'Records of the dataset.' },
      PERSONS: {
        value: 'PERSONS',
        description: 'Distinct persons found by linkage (the grant has linkage).',
      },
    },
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
  // `after` names a field of the aggregated dataset, and one condition type serves inside the
  // `linked` argument of every other dataset with linkage. Where that is exactly one dataset, `after`
  // is its `<Type>Field`, as DESIGN writes it; otherwise no single type fits every place, so it takes
  // the union of their released names (`LinkedField`). Either way policy refuses a name that the
  // aggregated dataset's chosen agreement does not release as a date, RAW.
  let linkedField: GraphQLEnumType | null = null;
  const linkedFieldEnum = () =>
    (linkedField ??= new GraphQLEnumType({
      name: 'LinkedField',
      description:
        'A released name of one of the datasets your agency aggregates under grants with linkage: what ' +
        '`after` of a linked condition names, a field of the dataset being counted. A condition type ' +
        '`<Type>Linked` is used inside the `linked` argument of every other such dataset, so where your ' +
        'agency has more than two of them no single `<Type>Field` fits every place and this enum holds ' +
        "their names together (with exactly two, `after` is the other dataset's `<Type>Field`). The " +
        "name must be a DATE or DATETIME that the counted dataset's chosen agreement releases RAW; any " +
        'other is refused (BAD_USER_INPUT).',
      values: Object.fromEntries(
        [...new Set([...linkable].flatMap((id) => [...released.get(id)!.keys()]))].sort().map((name) => {
          const of = datasetsSorted.filter((d) => linkable.has(d.id) && released.get(d.id)!.has(name));
          return [
            name,
            { value: name, description: `A released name of ${of.map((d) => `\`${d.slug}\``).join(', ')}.` },
          ];
        }),
      ),
    }));
  // The datasets in whose `linked` argument a dataset's condition appears: every other one with linkage.
  const conditionHosts = (dataset: DatasetShapeRecord) =>
    datasetsSorted.filter((d) => d.id !== dataset.id && linkable.has(d.id));
  const afterType = (dataset: DatasetShapeRecord): GraphQLEnumType => {
    const hosts = conditionHosts(dataset);
    return hosts.length === 1 ? fieldEnums.get(hosts[0].id)! : linkedFieldEnum();
  };
  const linkedInputOf = (dataset: DatasetShapeRecord): GraphQLInputObjectType => {
    let input = linkedInputs.get(dataset.id);
    if (!input) {
      const slug = `\`${dataset.slug}\``;
      input = new GraphQLInputObjectType({
        name: `${dataset.typeName}Linked`,
        description:
          `As the \`linked\` argument of \`${dataset.slug}_aggregate\`: one field per other dataset your ` +
          "agency aggregates with linkage; name exactly one. As such a field of another dataset's " +
          `\`linked\` argument: the condition on ${slug} that a counted record's person must meet ` +
          '(exists, agreement, where, on, after, minDays, maxDays). Both datasets need grants with ' +
          'linkage for the purpose; each side is answered and audited under its own chosen agreement.',
        fields: () => ({
          exists: {
            type: GraphQLBoolean,
            defaultValue: true,
            description:
              `true: count those whose person has a record of ${slug} meeting the condition; false: ` +
              'those whose person has none (a record not yet linked has none).',
          },
          agreement: {
            type: GraphQLID,
            description:
              `The agreement to read ${slug} under; may be omitted when exactly one agreement in force ` +
              'grants it for the purpose.',
          },
          where: {
            type: whereTypes.get(dataset.id)!,
            description: `Which records of ${slug} match, by their released values.`,
          },
          on: {
            type: fieldEnums.get(dataset.id)!,
            description:
              `The window's date on the ${slug} side: a DATE or DATETIME its chosen agreement releases ` +
              'RAW. Given together with `after`.',
          },
          after: {
            type: afterType(dataset),
            description:
              "The window's date on the side of the dataset being counted: a DATE or DATETIME its " +
              'chosen agreement releases RAW. Given together with `on`.',
          },
          minDays: {
            type: GraphQLInt,
            defaultValue: 0,
            description:
              '`on` falls at least this many whole days after `after` (UTC dates; negative: before).',
          },
          maxDays: {
            type: GraphQLInt,
            description:
              '`on` falls at most this many whole days after `after`; no upper bound when omitted.',
          },
          ...Object.fromEntries(
            linkableOthers(dataset).map((other) => [
              other.slug,
              {
                type: linkedInputOf(other),
                description:
                  `Count the records (or persons) of ${slug} whose person has (or has not) a record of ` +
                  `\`${other.slug}\` meeting this condition.`,
              },
            ]),
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
  const purposeArg = {
    type: new GraphQLNonNull(purposeEnum),
    description: 'The purpose of this request; the agreement that answers it must grant the dataset for it.',
  };
  const agreementArg = {
    type: GraphQLID,
    description:
      'The id of the agreement to answer under; may be omitted when exactly one agreement in force grants ' +
      'the dataset for the purpose (otherwise BAD_USER_INPUT, with the ids to choose from).',
  };

  // -- issue 13: `linked: <Type>Linked`, one field per other dataset with linkage --
  const linkedArg = (dataset: DatasetShapeRecord): GraphQLFieldConfigArgumentMap => {
    if (!linkable.has(dataset.id) || !linkableOthers(dataset).length) return {};
    return {
      linked: {
        type: linkedInputOf(dataset),
        description:
          'Count only the records (or persons) whose person, found by linkage, has (or has not) a record ' +
          'of one other dataset meeting a condition, optionally within a window of days. Counts then ' +
          'follow the larger minimum cell size of the two grants.',
      },
    };
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
    const infos = [...released.get(dataset.id)!.entries()].sort(([a], [b]) => a.localeCompare(b));
    const fields: [string, ReleasedType][] = infos.map(([name, info]) => [name, info.type]);
    const describe = new Map(infos.map(([name, info]) => [name, describeReleased(info, dataset)]));
    const agreements = grantedBy.get(dataset.id)!.join(', ');
    const typeName = dataset.typeName;
    // personKey: the linkage pseudonym, a String scoped to (caller's agency, purpose); it can be read
    // and filtered on (to join datasets), not grouped or ordered by.
    if (linked.has(dataset.id)) {
      describe.set(
        PERSON_KEY,
        `${PERSON_KEY_TEXT}\n\nReleased to your agency by: ${linkedBy.get(dataset.id)!.join(', ')}.`,
      );
    }
    const withKey: [string, ReleasedType][] = linked.has(dataset.id)
      ? [...fields, [PERSON_KEY, 'String']]
      : fields;
    const objectType = new GraphQLObjectType({
      name: typeName,
      description: `A record of \`${dataset.slug}\` as released to your agency: each field is a released name.`,
      fields: Object.fromEntries(
        withKey.map(([name, type]) => [name, { type: SCALARS[type], description: describe.get(name) }]),
      ),
    });
    const fieldEnum = new GraphQLEnumType({
      name: `${typeName}Field`,
      description: `The released names of \`${dataset.slug}\`, to order and group by.`,
      values: Object.fromEntries(
        fields.map(([name]) => [name, { value: name, description: describe.get(name) }]),
      ),
    });
    const where: GraphQLInputObjectType = new GraphQLInputObjectType({
      name: `${typeName}Where`,
      description:
        `Conditions on released values of \`${dataset.slug}\` (never on raw ones); all given entries must ` +
        'hold. The chosen agreement must release every name used.',
      fields: () => ({
        ...Object.fromEntries(
          withKey.map(([name, type]) => [
            name,
            { type: filterOf(type), description: `Conditions on the released \`${name}\`.` },
          ]),
        ),
        and: { type: new GraphQLList(new GraphQLNonNull(where)), description: 'Every one of these holds.' },
        or: { type: new GraphQLList(new GraphQLNonNull(where)), description: 'At least one of these holds.' },
        not: {
          type: where,
          description: 'This does not hold (a comparison unknown because of a null matches neither).',
        },
      }),
    });
    whereTypes.set(dataset.id, where);
    fieldEnums.set(dataset.id, fieldEnum);
    const orderBy = new GraphQLInputObjectType({
      name: `${typeName}OrderBy`,
      description: 'One key of an ordering; ties break on a random row id, never on an unreleased value.',
      fields: {
        field: { type: new GraphQLNonNull(fieldEnum), description: 'The released name to order by.' },
        direction: { type: sortDirection, defaultValue: 'ASC', description: 'ASC (default) or DESC.' },
      },
    });
    if (rowsGranted.has(dataset.id)) {
      const connection = new GraphQLObjectType({
        name: `${typeName}Connection`,
        description: `A page of \`${dataset.slug}\` records.`,
        fields: {
          nodes: {
            type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(objectType))),
            description: 'The records of this page, in the requested order.',
          },
          pageInfo: {
            type: new GraphQLNonNull(pageInfo),
            description: 'Whether and where the next page starts.',
          },
        },
      });
      rootFields[dataset.slug] = {
        type: new GraphQLNonNull(connection),
        description:
          `Records of \`${dataset.slug}\` released to your agency by the agreements in force: ${agreements}. ` +
          'Every request is recorded in the audit log before its rows are returned.',
        args: {
          purpose: purposeArg,
          agreement: agreementArg,
          where: { type: where, description: 'Which records, by their released values.' },
          orderBy: {
            type: new GraphQLList(new GraphQLNonNull(orderBy)),
            description: 'The ordering, key by key; without it the order is unspecified but stable.',
          },
          first: {
            type: GraphQLInt,
            defaultValue: 100,
            description: `How many records at most: 1 to ${MAX_FIRST}.`,
          },
          after: { type: GraphQLString, description: "The previous page's `pageInfo.endCursor`." },
        },
      };
      roots.set(dataset.slug, { name: dataset.slug, datasetId: dataset.id, kind: 'ROWS' });
    }
    const aggregateName = `${dataset.slug}_aggregate`;
    rootFields[aggregateName] = {
      type: new GraphQLNonNull(aggregateResult),
      description:
        `Counts of \`${dataset.slug}\` records per group, under the agreements in force: ${agreements}. ` +
        "Groups below the grant's minimum cell size are suppressed, with complementary suppression.",
      args: {
        purpose: purposeArg,
        agreement: agreementArg,
        where: { type: where, description: 'Which groups, by their released values.' },
        groupBy: {
          type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(fieldEnum))),
          description: 'The released names to group by.',
        },
        // -- issue 13 --
        unit: {
          type: countUnit,
          defaultValue: 'RECORDS',
          description: 'RECORDS, or PERSONS: distinct linked persons (the grant has linkage).',
        },
        ...linkedArg(dataset),
      },
    };
    roots.set(aggregateName, { name: aggregateName, datasetId: dataset.id, kind: 'AGGREGATE' });
  }
  return {
    schema: new GraphQLSchema({
      description:
        "Your agency's data plane: only the datasets, released names and purposes that its agreements in " +
        'force grant exist here.',
      query: new GraphQLObjectType({
        name: 'Query',
        description: 'One row field and one `_aggregate` field per dataset released to your agency.',
        fields: rootFields,
      }),
    }),
    roots,
  };
}
