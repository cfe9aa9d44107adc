import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  type FieldNode,
  GraphQLError,
  type GraphQLNamedType,
  type GraphQLOutputType,
  Kind,
  OperationTypeNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
  getNamedType,
  isListType,
  isNonNullType,
  isObjectType,
} from 'graphql';

/** Tokens one control-plane document may hold (graphql-js stops parsing past it). */
export const CONTROL_PLANE_MAX_TOKENS = 10_000;
/** The largest cost one control-plane request may have (see {@link controlPlaneCostRule}). */
export const CONTROL_PLANE_MAX_COST = 10_000;

/**
 * What a field costs beyond its selection, for the fields whose work does not show in their
 * selection: verifying the chain reads every event; a subject access report and the access series
 * scan the log.
 */
const FIELD_COST: Readonly<Record<string, number>> = {
  'Query.verifyAuditChain': 6_000,
  'Query.auditAccessSeries': 500,
  'Query.auditRefusalSeries': 500,
  'Query.subjectAccessReport': 500,
  'Query.previewAgreement': 500,
  // One pass over a dataset's record table.
  'Query.retentionPreview': 2_000,
  'Mutation.ingestRecords': 1_000,
  'Mutation.startLinkage': 1_000,
};

/** How many items a list field is counted for, where an argument does not say. */
const LIST_ITEMS = 10;
/** `first` of auditEvents: its default, and what a variable may be (its maximum). */
const AUDIT_FIRST_DEFAULT = 100;
const AUDIT_FIRST_MAX = 1_000;

// Refusals do not say where a limit stands, so a caller cannot tune a query to sit just under it;
// they report through the validation context, so every problem is listed.
const report = {
  exposeLimits: false,
  propagateOnRejection: false,
  onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(error)],
};

/**
 * The cost of an operation: every object field costs 1 plus its selection, times the items it
 * stands for (`first` of auditEvents, a literal or, for a variable, its maximum; other lists
 * {@link LIST_ITEMS}); scalars are free; {@link FIELD_COST} adds what some fields do. Decided on the
 * document alone, before anything runs, so a cached document needs no second look.
 */
export function controlPlaneCostRule(maxCost = CONTROL_PLANE_MAX_COST): ValidationRule {
  return (context: ValidationContext) => {
    const schema = context.getSchema();
    const costOf = (
      parent: GraphQLNamedType | null | undefined,
      set: SelectionSetNode,
      seen: Set<string>,
      depth: number,
    ): number => {
      if (!parent || !isObjectType(parent) || depth > 50) return 0;
      let total = 0;
      for (const selection of set.selections) {
        if (selection.kind === Kind.INLINE_FRAGMENT) {
          const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
          total += costOf(type, selection.selectionSet, seen, depth + 1);
        } else if (selection.kind === Kind.FRAGMENT_SPREAD) {
          const fragment = context.getFragment(selection.name.value);
          if (!fragment || seen.has(fragment.name.value)) continue;
          const inner = new Set(seen).add(fragment.name.value);
          total += costOf(
            schema.getType(fragment.typeCondition.name.value),
            fragment.selectionSet,
            inner,
            depth + 1,
          );
        } else if (!selection.name.value.startsWith('__')) {
          // Introspection (GraphiQL's schema query) is bounded by depth and aliases, not by cost.
          total += fieldCost(parent.name, parent.getFields()[selection.name.value]?.type, selection, (t, s) =>
            costOf(t, s, seen, depth + 1),
          );
        }
        if (total > maxCost) return total;
      }
      return total;
    };
    return {
      OperationDefinition(node) {
        const root =
          node.operation === OperationTypeNode.MUTATION
            ? schema.getMutationType()
            : node.operation === OperationTypeNode.SUBSCRIPTION
              ? schema.getSubscriptionType()
              : schema.getQueryType();
        if (costOf(root, node.selectionSet, new Set(), 0) > maxCost) {
          context.reportError(new GraphQLError('The query is too complex', { nodes: [node] }));
        }
      },
    };
  };
}

function fieldCost(
  parentName: string,
  type: GraphQLOutputType | undefined,
  field: FieldNode,
  childCost: (type: GraphQLNamedType, set: SelectionSetNode) => number,
): number {
  const extra = FIELD_COST[`${parentName}.${field.name.value}`] ?? 0;
  if (!type || !field.selectionSet) return extra;
  // A connection's `first` counts its items once: its own list of nodes counts one.
  const items =
    field.name.value === 'auditEvents'
      ? auditFirst(field)
      : isList(type) && !parentName.endsWith('Connection')
        ? LIST_ITEMS
        : 1;
  return extra + items * (1 + childCost(getNamedType(type), field.selectionSet));
}

function isList(type: GraphQLOutputType): boolean {
  return isListType(isNonNullType(type) ? type.ofType : type);
}

function auditFirst(field: FieldNode): number {
  const first = field.arguments?.find((a) => a.name.value === 'first');
  if (!first) return AUDIT_FIRST_DEFAULT;
  if (first.value.kind === Kind.INT) {
    return Math.min(Math.max(Number(first.value.value), 1), AUDIT_FIRST_MAX);
  }
  return AUDIT_FIRST_MAX;
}

/**
 * The control plane's limits, as validation rules run before any resolver (and so before any SQL):
 * depth, aliases, directives and cost. Tokens are limited by the parser
 * ({@link CONTROL_PLANE_MAX_TOKENS}), the body by the route.
 */
export const CONTROL_PLANE_LIMIT_RULES: ValidationRule[] = [
  maxDepthRule({ n: 10, ignoreIntrospection: true, ...report }),
  maxAliasesRule({ n: 30, ...report }),
  maxDirectivesRule({ n: 20, ...report }),
  controlPlaneCostRule(),
];
