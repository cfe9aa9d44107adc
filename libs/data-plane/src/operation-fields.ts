import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  getDirectiveValues,
} from 'graphql';

/**
 * The fields a selection set asks for, by response key, through fragments and honouring
 * `@skip`/`@include`, as graphql-js executes them. Our types are concrete, so every type condition
 * of a valid query applies.
 */
export function collectFields(
  selectionSet: SelectionSetNode,
  fragments: Record<string, FragmentDefinitionNode>,
  variables: Record<string, unknown>,
  into = new Map<string, FieldNode[]>(),
  visited = new Set<string>(),
): Map<string, FieldNode[]> {
  for (const selection of selectionSet.selections) {
    if (!included(selection, variables)) continue;
    switch (selection.kind) {
      case Kind.FIELD: {
        const key = selection.alias?.value ?? selection.name.value;
        into.set(key, [...(into.get(key) ?? []), selection]);
        break;
      }
      case Kind.INLINE_FRAGMENT:
        collectFields(selection.selectionSet, fragments, variables, into, visited);
        break;
      case Kind.FRAGMENT_SPREAD: {
        const name = selection.name.value;
        if (visited.has(name) || !fragments[name]) break;
        visited.add(name);
        collectFields(fragments[name].selectionSet, fragments, variables, into, visited);
        break;
      }
    }
  }
  return into;
}

function included(
  node: Parameters<typeof getDirectiveValues>[1],
  variables: Record<string, unknown>,
): boolean {
  if (getDirectiveValues(GraphQLSkipDirective, node, variables)?.if === true) return false;
  if (getDirectiveValues(GraphQLIncludeDirective, node, variables)?.if === false) return false;
  return true;
}

/** The names of the fields selected under `child` (e.g. `nodes`) of the given field nodes. */
export function childFieldNames(
  fieldNodes: FieldNode[],
  child: string,
  fragments: Record<string, FragmentDefinitionNode>,
  variables: Record<string, unknown>,
): string[] {
  const names = new Set<string>();
  for (const node of fieldNodes) {
    if (!node.selectionSet) continue;
    const level = collectFields(node.selectionSet, fragments, variables);
    for (const [, childNodes] of level) {
      for (const childNode of childNodes) {
        if (childNode.name.value !== child || !childNode.selectionSet) continue;
        for (const [, leaves] of collectFields(childNode.selectionSet, fragments, variables)) {
          for (const leaf of leaves) if (leaf.name.value !== '__typename') names.add(leaf.name.value);
        }
      }
    }
  }
  return [...names].sort();
}

/**
 * The columns of an export of the root field `responseKey` of `operation`: [response key, released
 * name] of each field under its `nodes`, in the order graphql-js writes a page's node (through
 * fragments, honouring `@skip`/`@include`, a repeated key once, aliases as keys), so that an export's
 * records have the keys its pages' nodes have. Null where no node can be written as one flat record
 * of released names: `nodes` under two response keys or none, `__typename`, or no field at all.
 */
export function exportColumns(
  operation: OperationDefinitionNode,
  fragments: Record<string, FragmentDefinitionNode>,
  variables: Record<string, unknown>,
  responseKey: string,
): [string, string][] | null {
  const connection = new Map<string, FieldNode[]>();
  for (const root of collectFields(operation.selectionSet, fragments, variables).get(responseKey) ?? []) {
    if (root.selectionSet) collectFields(root.selectionSet, fragments, variables, connection);
  }
  const nodes = [...connection.values()].filter((fields) => fields[0].name.value === 'nodes');
  if (nodes.length !== 1) return null;
  const leaves = new Map<string, FieldNode[]>();
  for (const node of nodes[0]) {
    if (node.selectionSet) collectFields(node.selectionSet, fragments, variables, leaves);
  }
  const columns: [string, string][] = [];
  for (const [key, [leaf]] of leaves) {
    if (leaf.name.value.startsWith('__')) return null;
    columns.push([key, leaf.name.value]);
  }
  return columns.length ? columns : null;
}

/** The fragments a document defines, by name. */
export function fragmentsOf(document: DocumentNode): Record<string, FragmentDefinitionNode> {
  const fragments = Object.create(null) as Record<string, FragmentDefinitionNode>;
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments[definition.name.value] = definition;
  }
  return fragments;
}
