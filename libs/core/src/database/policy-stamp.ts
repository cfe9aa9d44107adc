/**
 * The policy stamp (`policy_stamp`, one row): a counter that moves in every transaction that changes
 * who may read what, so that every instance sees the change at its next request (the data plane
 * reads it in each request's snapshot) and no release read before the change is recorded after it
 * (the data plane's audit append checks it again and holds it until it commits: see
 * ReleaseCondition in the audit library).
 *
 * It moves when what is in force changes, and only then: a version that comes into force (its last
 * approval) and an agreement revoked; an agency's policy is its agreements' versions in force
 * (AgreementService.inForceForRecipient). Every move makes every agency's policy load again on
 * every instance and withdraws every release in flight, so nothing that changes no one's access
 * moves it: a version proposed, amended, declined or approved by one side only, nor a user's keys
 * revoked (a rotation or a deactivation), which concerns the releases read under those keys only
 * and which the append checks on the key's own row (AuthService.revokeKeys). Were those to move it,
 * any user rotating its own key in a loop, or any steward proposing in a loop, would starve every
 * other agency's requests. Move it before the transaction's audit event is appended,
 * in the same transaction: the appends take the stamp's row before the chain head's, so the other
 * order could deadlock; and its event then follows, in the chain, every release recorded before it.
 */
export const MOVE_POLICY_STAMP_SQL = 'UPDATE policy_stamp SET stamp = stamp + 1 WHERE id = 1';

/** Moves the policy stamp inside the caller's transaction (see {@link MOVE_POLICY_STAMP_SQL}). */
export async function movePolicyStamp(manager: { query(sql: string): Promise<unknown> }): Promise<void> {
  await manager.query(MOVE_POLICY_STAMP_SQL);
}
