/**
 * The pure rules of a dataset's shape: names, types, released names and the record table's
 * columns. No Nest, no database; the registry and the policy compiler both read these.
 */

export enum FieldType {
  STRING = 'STRING',
  INTEGER = 'INTEGER',
  FLOAT = 'FLOAT',
  BOOLEAN = 'BOOLEAN',
  /** 'YYYY-MM-DD' */
  DATE = 'DATE',
  /** ISO 8601 */
  DATETIME = 'DATETIME',
}

export enum Classification {
  DIRECT_IDENTIFIER = 'DIRECT_IDENTIFIER',
  QUASI_IDENTIFIER = 'QUASI_IDENTIFIER',
  SENSITIVE = 'SENSITIVE',
  NON_SENSITIVE = 'NON_SENSITIVE',
}

export enum IdentityRole {
  FIRST_NAME = 'FIRST_NAME',
  MIDDLE_NAME = 'MIDDLE_NAME',
  LAST_NAME = 'LAST_NAME',
  DATE_OF_BIRTH = 'DATE_OF_BIRTH',
  SEX = 'SEX',
  /** A US social security number. */
  SSN = 'SSN',
  /** A postal code of any country. */
  ZIP = 'ZIP',
  /** Any other person identifier (state id, licence, foreign national id; any length and alphabet). */
  ID_NUMBER = 'ID_NUMBER',
  /** A street line. */
  ADDRESS = 'ADDRESS',
  /** A city, town or suburb. */
  CITY = 'CITY',
}

/** A field of a dataset as registered. */
export interface FieldDefinition {
  name: string;
  type: FieldType;
  classification: Classification;
  identity: IdentityRole | null;
  required: boolean;
  description: string | null;
}

/** What `registerDataset` receives, before validation. */
export interface DatasetDefinitionInput {
  slug: string;
  title: string;
  description?: string | null;
  keyField: string;
  subjectField?: string | null;
  fields: {
    name: string;
    type: FieldType;
    classification: Classification;
    identity?: IdentityRole | null;
    required?: boolean | null;
    description?: string | null;
  }[];
  /** Indexes the steward declares (see record-indexes.ts). */
  indexes?: string[][] | null;
}

/** A validated dataset definition. */
export interface DatasetDefinition {
  slug: string;
  typeName: string;
  title: string;
  description: string | null;
  keyField: string;
  subjectField: string | null;
  fields: FieldDefinition[];
}

/** One problem with a definition, naming where it is. */
export interface DefinitionProblem {
  path: string;
  message: string;
}

export const SLUG_PATTERN = /^[a-z][a-z0-9_]{2,62}$/;
export const FIELD_NAME_PATTERN = /^[a-z][a-z0-9_]{0,62}$/;
export const MAX_FIELDS = 200;

/** PostgreSQL's reserved keywords (categories R and T of pg_get_keywords()). */
const RESERVED_SQL = new Set(
  `all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate
   collation column concurrently constraint create cross current_catalog current_date current_role
   current_schema current_time current_timestamp current_user default deferrable desc distinct do else end
   except false fetch for foreign freeze from full grant group having ilike in initially inner intersect
   into is isnull join lateral leading left like limit localtime localtimestamp natural not notnull null
   offset on only or order outer overlaps placing primary references returning right select session_user
   similar some symmetric table tablesample then to trailing true union unique user using variadic verbose
   when where window with`.split(/\s+/),
);

/** Type names the data plane defines itself, which no dataset may take. */
const RESERVED_TYPE_NAMES = new Set([
  'Query',
  'Mutation',
  'Subscription',
  'Purpose',
  'PageInfo',
  'AggregateResult',
  'AggregateGroup',
  'SortDirection',
  'CountUnit',
  'Date',
  'DateTime',
  'JSONObject',
  'String',
  'Int',
  'Float',
  'Boolean',
  'ID',
]);
const RESERVED_TYPE_SUFFIXES = ['Connection', 'Where', 'OrderBy', 'Field', 'Filter', 'Linked'];

/**
 * Whether a dataset's type name is one the data plane takes for itself: one of its own types, or
 * one that ends like the names it derives from a dataset's (`<Type>Where`, `<Type>Linked`, ...). A
 * slug that made one would make every caller's schema fail to build.
 */
export function reservedTypeName(typeName: string): boolean {
  return RESERVED_TYPE_NAMES.has(typeName) || RESERVED_TYPE_SUFFIXES.some((s) => typeName.endsWith(s));
}

const TYPES_BY_IDENTITY: Record<IdentityRole, FieldType[]> = {
  [IdentityRole.FIRST_NAME]: [FieldType.STRING],
  [IdentityRole.MIDDLE_NAME]: [FieldType.STRING],
  [IdentityRole.LAST_NAME]: [FieldType.STRING],
  [IdentityRole.DATE_OF_BIRTH]: [FieldType.DATE, FieldType.DATETIME],
  [IdentityRole.SEX]: [FieldType.STRING],
  [IdentityRole.SSN]: [FieldType.STRING],
  [IdentityRole.ZIP]: [FieldType.STRING, FieldType.INTEGER],
  [IdentityRole.ID_NUMBER]: [FieldType.STRING, FieldType.INTEGER],
  [IdentityRole.ADDRESS]: [FieldType.STRING],
  [IdentityRole.CITY]: [FieldType.STRING],
};

/** The GraphQL type name of a dataset: PascalCase of its slug (`jail_bookings` → `JailBookings`). */
export function typeNameOf(slug: string): string {
  return slug
    .split('_')
    .filter(Boolean)
    .map((part) => part[0].toUpperCase() + part.slice(1))
    .join('');
}

/** The PostgreSQL column type that stores a field type. */
export function columnTypeOf(type: FieldType): string {
  switch (type) {
    case FieldType.STRING:
      return 'text';
    case FieldType.INTEGER:
      return 'integer';
    case FieldType.FLOAT:
      return 'double precision';
    case FieldType.BOOLEAN:
      return 'boolean';
    case FieldType.DATE:
      return 'date';
    case FieldType.DATETIME:
      return 'timestamptz';
  }
}

/**
 * Every name under which a field of this type could ever be released: itself (RAW), `_hash`, and
 * the one GENERALIZE name of its type.
 */
export function releasableNames(name: string, type: FieldType): string[] {
  const names = [name, `${name}_hash`];
  switch (type) {
    case FieldType.DATE:
    case FieldType.DATETIME:
      names.push(`${name}_year`);
      break;
    case FieldType.INTEGER:
    case FieldType.FLOAT:
      names.push(`${name}_band`);
      break;
    case FieldType.STRING:
      names.push(`${name}_prefix`);
      break;
    case FieldType.BOOLEAN:
      break;
  }
  return names;
}

const enumHas = <T extends Record<string, string>>(e: T, v: unknown): v is T[keyof T] =>
  typeof v === 'string' && Object.values(e).includes(v);

/**
 * Validates a dataset definition. Returns the normalised definition, or every problem found, so a
 * steward can fix them all at once.
 */
export function validateDefinition(
  input: DatasetDefinitionInput,
): { ok: true; definition: DatasetDefinition } | { ok: false; problems: DefinitionProblem[] } {
  const problems: DefinitionProblem[] = [];
  const problem = (path: string, message: string) => problems.push({ path, message });

  const slug = input.slug;
  const typeName = typeof slug === 'string' ? typeNameOf(slug) : '';
  if (typeof slug !== 'string' || !SLUG_PATTERN.test(slug)) {
    problem(
      'slug',
      'must match ^[a-z][a-z0-9_]{2,62}$: a lowercase letter, then lowercase letters, digits or _',
    );
  } else if (slug.endsWith('_aggregate')) {
    problem('slug', 'must not end in _aggregate: the data plane adds that suffix itself');
  } else if (slug.includes('__') || slug.endsWith('_')) {
    problem('slug', 'must not contain __ or end in _');
  } else if (reservedTypeName(typeName)) {
    problem('slug', `its type name ${typeName} is reserved by the data plane`);
  }

  const title = typeof input.title === 'string' ? input.title.trim() : '';
  if (!title) problem('title', 'must not be empty');
  else if (title.length > 200) problem('title', 'must be at most 200 characters');
  const description = input.description?.trim() || null;
  if (description && description.length > 5000) problem('description', 'must be at most 5000 characters');

  const fields: FieldDefinition[] = [];
  if (!Array.isArray(input.fields) || input.fields.length === 0) {
    problem('fields', 'a dataset needs at least one field');
  } else if (input.fields.length > MAX_FIELDS) {
    problem('fields', `a dataset has at most ${MAX_FIELDS} fields`);
  } else {
    const seen = new Set<string>();
    const identities = new Map<IdentityRole, string>();
    input.fields.forEach((f, i) => {
      const path = `fields[${i}]`;
      const name = f.name;
      if (typeof name !== 'string' || !FIELD_NAME_PATTERN.test(name)) {
        if (name === 'personKey') problem(`${path}.name`, 'personKey is reserved for linkage pseudonyms');
        else
          problem(
            `${path}.name`,
            'must match ^[a-z][a-z0-9_]{0,62}$: a lowercase letter, then lowercase letters, digits or _',
          );
        return;
      }
      if (RESERVED_SQL.has(name)) problem(`${path}.name`, `${name} is a reserved SQL word`);
      if (seen.has(name)) problem(`${path}.name`, `${name} appears twice`);
      seen.add(name);
      if (!enumHas(FieldType, f.type)) problem(`${path}.type`, 'is not a FieldType');
      if (!enumHas(Classification, f.classification))
        problem(`${path}.classification`, 'is not a Classification');
      const identity = f.identity ?? null;
      if (identity !== null) {
        if (!enumHas(IdentityRole, identity)) problem(`${path}.identity`, 'is not an IdentityRole');
        else {
          if (identities.has(identity)) {
            problem(`${path}.identity`, `${identity} is already the role of ${identities.get(identity)}`);
          }
          identities.set(identity, name);
          if (enumHas(FieldType, f.type) && !TYPES_BY_IDENTITY[identity].includes(f.type)) {
            problem(
              `${path}.type`,
              `a ${identity} field must be ${TYPES_BY_IDENTITY[identity].join(' or ')}`,
            );
          }
          if (
            f.classification === Classification.SENSITIVE ||
            f.classification === Classification.NON_SENSITIVE
          ) {
            problem(
              `${path}.classification`,
              'a field with an identity role is a DIRECT_IDENTIFIER or QUASI_IDENTIFIER',
            );
          }
        }
      }
      const fieldDescription = f.description?.trim() || null;
      if (fieldDescription && fieldDescription.length > 2000) {
        problem(`${path}.description`, 'must be at most 2000 characters');
      }
      fields.push({
        name,
        type: f.type,
        classification: f.classification,
        identity,
        required: f.required ?? false,
        description: fieldDescription,
      });
    });

    // A released name means one precision and one type everywhere, so no field may be named as
    // another field of the dataset could be released (dob_year beside a DATE dob).
    const owners = new Map<string, string>();
    for (const f of fields) {
      if (!enumHas(FieldType, f.type)) continue;
      for (const released of releasableNames(f.name, f.type).slice(1)) owners.set(released, f.name);
    }
    fields.forEach((f, i) => {
      const owner = owners.get(f.name);
      if (owner) problem(`fields[${i}].name`, `${f.name} is the name under which ${owner} can be released`);
    });
  }

  const byName = new Map(fields.map((f) => [f.name, f]));
  const key = byName.get(input.keyField);
  if (!key) problem('keyField', 'must name one of the fields');
  else if (key.type !== FieldType.STRING && key.type !== FieldType.INTEGER) {
    problem('keyField', 'must be a STRING or INTEGER field');
  } else key.required = true;
  let subjectField: string | null = null;
  if (input.subjectField != null) {
    const subject = byName.get(input.subjectField);
    if (!subject) problem('subjectField', 'must name one of the fields');
    else if (subject.type !== FieldType.STRING && subject.type !== FieldType.INTEGER) {
      problem('subjectField', 'must be a STRING or INTEGER field');
    } else subjectField = subject.name;
  }

  if (problems.length) return { ok: false, problems };
  return {
    ok: true,
    definition: { slug, typeName, title, description, keyField: input.keyField, subjectField, fields },
  };
}
