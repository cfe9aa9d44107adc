/** The contract error codes a policy refusal maps onto. */
export type PolicyErrorCode = 'BAD_USER_INPUT' | 'FORBIDDEN';

/**
 * A refusal by the policy core. Messages name at most what the caller itself wrote, never another
 * field name: a caller must not learn the names of fields it may not see.
 */
export class PolicyError extends Error {
  constructor(
    readonly code: PolicyErrorCode,
    message: string,
    /** Where a refusal is a limit (nesting, list sizes): `LIMIT`; else the code's usual reason. */
    readonly limit = false,
  ) {
    super(message);
    this.name = 'PolicyError';
  }
}
