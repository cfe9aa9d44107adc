import {
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
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
