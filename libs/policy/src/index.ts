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
export { releasedField, transformApplies } from './released-field';
export {
  MAX_ROW_FILTER_DEPTH,
  MAX_ROW_FILTER_LIST,
  MAX_ROW_FILTER_NODES,
  parseRowFilter,
} from './row-filter';
export { assertRequest, checkRequest, compileGrant, isReleased } from './compiled-grant';
export {
  MAX_WHERE_DEPTH,
  MAX_WHERE_LIST,
  MAX_WHERE_NODES,
  type ReleasedNameOptions,
  whereFieldNames,
} from './data-where';
export { MAX_PARAMS, SqlParams, columnRef, quoteIdent } from './sql-builder';
export {
  type HmacKeyParam,
  MAX_ORDER_BY,
  orderBySql,
  pgTypeOfReleased,
  releasedExpression,
  releasedJsonExpression,
  rowFilterSql,
  selectListSql,
  whereSql,
} from './sql-compiler';
export { type InputProblem } from './untrusted-input';
export { type CountCell, protectedPattern, suppressionPattern } from './disclosure-control';
export {
  type OverseenField,
  approvalsComplete,
  classificationProblem,
  overseenFields,
  oversightProblems,
  oversightRequired,
} from './oversight';
