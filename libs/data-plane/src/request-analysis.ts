import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  getArgumentValues,
} from 'graphql';
import type { CountUnit, DataWhere, LinkedArgs } from '@broker/policy';
import type { CallerSchema, RootField } from './caller-schema';
import { childFieldNames, collectFields } from './operation-fields';

/** The arguments of a row root field as graphql-js coerces them. */
export interface RootArgs {
  purpose: string;
  agreement?: string | null;
  where?: DataWhere | null;
  orderBy?: { field: string; direction?: 'ASC' | 'DESC' }[] | null;
  first?: number | null;
  after?: string | null;
  /** Aggregates only: the released names to group by. */
  groupBy?: string[] | null;
  /** Aggregates only: records or distinct linked persons. */
  unit?: CountUnit | null;
  /** Aggregates only: the linked condition, by the other dataset's slug (at most one is allowed). */
  linked?: Record<string, LinkedArgs | null> | null;
}

/**
 * What one root field of an operation asks for, before any policy decision: which root, with which
 * arguments, reading which released names. Authorising it is done per request, never cached.
 */
export interface RootRequest {
  responseKey: string;
  /** Null for a name the caller's schema has no root for. */
  root: RootField | null;
  /** Null for introspection (`__typename`, `__schema`, `__type`), which reads no records. */
  args: RootArgs | null;
  /** The released names read under `nodes`, sorted, once each: what the audit log records. */
  fields: string[];
  /** The members of each node's JSON object, in order: [key in the JSON, released name]. */
  columns: [string, string][];
  /** Whether the caller gave `first` (an export is capped only then; a page has its default). */
  firstGiven?: boolean;
}

/** One member of a connection in a plain response: the page's nodes, or its pageInfo fields. */
export type SpliceMember =
  { key: string; nodes: true } | { key: string; pageInfo: [string, 'hasNextPage' | 'endCursor'][] };

/**
 * How to write the response of a plain operation around PostgreSQL's JSON text of each page, in
 * graphql-js's order: root fields, and the members of each connection, as the operation selects
 * them. Only for operations of plain fields: no fragments, directives, `__typename` or repeated keys.
 */
export type Splice = { responseKey: string; members: SpliceMember[] }[];

/** What an operation asks for; `splice` is null when graphql-js must write the response. */
export interface Analysis {
  roots: RootRequest[];
  splice: Splice | null;
}

/** Analyses an operation against the caller's schema: pure, and the same for the same variables. */
export function analyse(
  callerSchema: CallerSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
): Analysis {
  const fragments = Object.create(null) as Record<string, FragmentDefinitionNode>;
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments[definition.name.value] = definition;
  }
  const fieldDefs = callerSchema.schema.getQueryType()!.getFields();
  const roots: RootRequest[] = [];
  for (const [responseKey, fieldNodes] of collectFields(operation.selectionSet, fragments, variables)) {
    const name = fieldNodes[0].name.value;
    const request: RootRequest = { responseKey, root: null, args: null, fields: [], columns: [] };
    roots.push(request);
    if (name.startsWith('__')) continue;
    const root = callerSchema.roots.get(name);
    const fieldDef = fieldDefs[name];
    if (!root || !fieldDef) {
      // Not granted: refused when authorised, whatever its arguments.
      request.args = { purpose: '' };
      continue;
    }
    request.root = root;
    request.args = getArgumentValues(fieldDef, fieldNodes[0], variables) as unknown as RootArgs;
    request.firstGiven = (fieldNodes[0].arguments ?? []).some(
      (a) =>
        a.name.value === 'first' && (a.value.kind !== Kind.VARIABLE || variables[a.value.name.value] != null),
    );
    if (root.kind === 'ROWS') {
      request.fields = childFieldNames(fieldNodes, 'nodes', fragments, variables);
      request.columns = request.fields.map((f) => [f, f]);
    }
  }
  return { roots, splice: plainSplice(operation, roots) };
}

/**
 * The splice of an operation made of plain fields only, or null. Where there is one, it sets each
 * root's `columns` to the response keys of `nodes`, so that PostgreSQL writes each node exactly as
 * graphql-js would (keys in selection order, aliases as keys).
 */
function plainSplice(operation: OperationDefinitionNode, roots: RootRequest[]): Splice | null {
  const rootNodes = plainFields(operation.selectionSet);
  if (!rootNodes || rootNodes.length !== roots.length) return null;
  const splice: Splice = [];
  const columns: [string, string][][] = [];
  for (let i = 0; i < rootNodes.length; i++) {
    const node = rootNodes[i];
    const request = roots[i];
    if (!request.root || request.root.kind !== 'ROWS') return null;
    if (responseKey(node) !== request.responseKey || !node.selectionSet) return null;
    const connection = plainFields(node.selectionSet);
    if (!connection) return null;
    const members: SpliceMember[] = [];
    let nodeColumns: [string, string][] = [];
    let nodesSeen = false;
    for (const member of connection) {
      const key = responseKey(member);
      if (member.name.value === 'nodes' && !nodesSeen && member.selectionSet) {
        const leaves = plainFields(member.selectionSet);
        if (!leaves || leaves.some((leaf) => leaf.selectionSet || leaf.name.value.startsWith('__'))) {
          return null;
        }
        nodeColumns = leaves.map((leaf) => [responseKey(leaf), leaf.name.value]);
        nodesSeen = true;
        members.push({ key, nodes: true });
      } else if (member.name.value === 'pageInfo' && member.selectionSet) {
        const leaves = plainFields(member.selectionSet);
        if (!leaves) return null;
        const fields: [string, 'hasNextPage' | 'endCursor'][] = [];
        for (const leaf of leaves) {
          const name = leaf.name.value;
          if (name !== 'hasNextPage' && name !== 'endCursor') return null;
          fields.push([responseKey(leaf), name]);
        }
        members.push({ key, pageInfo: fields });
      } else {
        return null;
      }
    }
    splice.push({ responseKey: request.responseKey, members });
    columns.push(nodeColumns);
  }
  roots.forEach((request, i) => (request.columns = columns[i]));
  return splice;
}

const NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;

/** The fields of a selection set when all are plain (no fragment, directive or repeated key). */
function plainFields(selectionSet: SelectionSetNode): FieldNode[] | null {
  const keys = new Set<string>();
  const fields: FieldNode[] = [];
  for (const selection of selectionSet.selections) {
    if (selection.kind !== Kind.FIELD || selection.directives?.length) return null;
    const key = responseKey(selection);
    // Keys are written into SQL text and JSON: GraphQL names only, which need no quoting in either.
    if (keys.has(key) || !NAME.test(key) || selection.name.value === '__typename') return null;
    keys.add(key);
    fields.push(selection);
  }
  return fields;
}

function responseKey(node: FieldNode): string {
  return node.alias?.value ?? node.name.value;
}

/** Arguments shared by every request that reuses a cached analysis: frozen, so none can alter them. */
export function freezeDeep<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) freezeDeep(inner);
  }
  return value;
}

/** A query text parsed and validated against one caller schema, with its operations analysed. */
export interface CachedDocument {
  document: DocumentNode;
  /** By operation name (null: the only one). `analysis` is null when the operation has variables. */
  operations: Map<string | null, { operation: OperationDefinitionNode; analysis: Analysis | null }>;
}

/**
 * Documents that passed validation against a caller schema, by query text: a least recently used
 * list per schema, bounded by the total length of the queries it keeps (a parsed document takes
 * roughly ten times its text), and only for queries of ordinary size. A schema object stands for
 * one set of agreement versions in force, so a new policy stamp or window brings a new schema and
 * leaves the old entries to the garbage collector.
 */
export class DocumentCache {
  private readonly bySchema = new WeakMap<
    GraphQLSchema,
    { documents: Map<string, CachedDocument>; chars: number }
  >();

  constructor(
    private readonly charsPerSchema = 256 * 1024,
    private readonly maxQueryLength = 8 * 1024,
  ) {}

  get(schema: GraphQLSchema, query: string): CachedDocument | undefined {
    const documents = this.bySchema.get(schema)?.documents;
    const found = documents?.get(query);
    if (found && documents!.size > 1) {
      // Most recently used last.
      documents!.delete(query);
      documents!.set(query, found);
    }
    return found;
  }

  set(schema: GraphQLSchema, query: string, document: DocumentNode): CachedDocument {
    const entry: CachedDocument = { document, operations: new Map() };
    if (query.length > this.maxQueryLength) return entry;
    let cache = this.bySchema.get(schema);
    if (!cache) {
      cache = { documents: new Map(), chars: 0 };
      this.bySchema.set(schema, cache);
    }
    if (!cache.documents.has(query)) cache.chars += query.length;
    cache.documents.set(query, entry);
    for (const [oldest] of cache.documents) {
      if (cache.chars <= this.charsPerSchema) break;
      cache.documents.delete(oldest);
      cache.chars -= oldest.length;
    }
    return entry;
  }
}
