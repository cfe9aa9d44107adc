export * from './policy.types';
export * from './policy-error';
export {
  type AgreementValidation,
  type AgreementValidationContext,
  DEFAULT_MIN_CELL_SIZE,
  MAX_GRANTS,
  MAX_GRANT_FIELDS,
  MAX_RETENTION_DAYS,
  canonicalJson,
  contentHash,
  validateAgreementContent,
} from './agreement-content';
export {
  type GeneralizedKind,
  generalizedKind,
  isRawKey,
  releasedField,
  transformApplies,
} from './released-field';
export {
  MAX_ROW_FILTER_DEPTH,
  MAX_ROW_FILTER_LIST,
  MAX_ROW_FILTER_NODES,
  parseRowFilter,
} from './row-filter';
export { compileAgreement, compileGrant, shownName } from './compiled-grant';
export {
  MAX_WHERE_DEPTH,
  MAX_WHERE_LIST,
  MAX_WHERE_NODES,
  type FilterWeight,
  type ReleasedNameOptions,
  filterWeight,
  whereFieldNames,
} from './data-where';
export {
  LiteralParams,
  MAX_PARAMS,
  PARAM_TYPES,
  SettingParams,
  SqlParams,
  columnRef,
  isPlaceholder,
  quoteIdent,
} from './sql-builder';
export {
  type HmacKeyParam,
  MAX_ORDER_BY,
  type ProjectedColumn,
  keptText,
  pgTypeOfReleased,
  projection,
  releasedExpression,
  releasedJsonExpression,
  releasedTextExpression,
  rowFilterPredicate,
  rowFilterSql,
  MAX_INDEXABLE_CONDITIONS,
  type WhereParts,
  selectListSql,
  whereParts,
  whereSql,
} from './sql-compiler';
export { type InputProblem } from './untrusted-input';
export { keyPrefixOf, keyPrefixSql, keyPrefixesSql } from './key-prefix';
export { personHashSql, personKeyPrefixSql, scopedKeySql } from './person-key-sql';
export { type CountCell, protectedPattern, suppressionPattern } from './disclosure-control';
export { type PageOrder, pageOrder } from './keyset';
export {
  type PopulationGrant,
  filteredPopulation,
  consentPredicate,
  populationConditions,
  populationOf,
  populationPredicate,
  populationPredicates,
  populationSql,
  rowFilterFields,
} from './population';
export {
  type DataAbility,
  type DataAction,
  type DataSubject,
  agreementAbility,
  allows,
  dataSubject,
  datasetSubjectType,
} from './data-ability';
export {
  type Bounds,
  type CompiledAgreement,
  MAX_FIRST,
  MAX_GROUP_BY_AGGREGATE_ONLY,
  MAX_GROUP_BY_ROWS,
  type NamesUsed,
  REFUSAL_CODES,
  type Refusal,
  type RefusalReason,
  type CountUnit,
  DEFAULT_AGGREGATE_DAILY_BUDGET,
  type LinkedArgs,
  MAX_PERTURBED_FILTER_CONDITIONS,
  MAX_PERTURBED_FILTER_HASHES,
  MAX_WINDOW_DAYS,
  actionOf,
  aggregateIsExact,
  checkBounds,
  budgetSpent,
  type AggregateBudget,
  checkLinked,
  checkPerturbedFilter,
  checkUnit,
  checkNames,
  chooseAgreement,
  isPageSize,
  refusal,
  refusalOf,
  releasedAsOf,
} from './data-decision';
export {
  type AggregateGroup,
  type AggregateRow,
  MAX_GROUPS,
  perturbedGroups,
  protectedGroups,
} from './aggregate-answer';
export {
  CELL_KEY_MODULUS,
  NOISE_BOUND,
  cellKeySql,
  listed,
  listedSql,
  perturbation,
  perturbationKey,
  perturbedCount,
  personCellKeySql,
  recordKeySql,
} from './cell-key';
export { utcDateSql, windowSql } from './linked-window';
export {
  type OverseenField,
  approvalsComplete,
  classificationProblem,
  overseenFields,
  oversightProblems,
  oversightRequired,
} from './oversight';
