/**
 * The policy stamps (`agency_policy_stamp`, one row per agency): counters, one per recipient
 * agency, of which one moves in every transaction that changes what that agency may read, so that
 * every instance sees the change at the agency's next request (the data plane reads the agency's
 * stamp in each request's snapshot) and no release read before the change is recorded after it
 * (the data plane's audit append checks it again and holds it until it commits: see
 * ReleaseCondition in the audit library).
 *
 * An agency's policy is its agreements' versions in force, those of which it is the recipient
 * (AgreementService.inForceForRecipient), so a change moves the recipient's stamp, and only when
 * what is in force changes: a version that comes into force (its last approval) and an agreement
 * revoked. Every move makes the recipient's policy load again on every instance and withdraws the
 * recipient's releases in flight, so nothing that changes no one's access moves it: a version
 * proposed, amended, declined or approved by one side only, nor a user's keys revoked (a rotation
 * or a deactivation), which concerns the releases read under those keys only and which the append
 * checks on the key's own row (AuthService.revokeKeys). Were those to move it, any user rotating its
 * own key in a loop, or any steward proposing in a loop, would starve its agency's requests; and
 * were the stamp one for the county, as it was, two agencies' stewards bringing an agreement into
 * force and revoking it in a loop would starve every other agency's.
 *
 * The database moves them (the trigger of the migration PolicyStampPerAgency), in the
 * transaction of the agreement's change and at its statement: whoever writes `in_force_version` or
 * `revoked_at` moves the recipient's stamp, a broker of an earlier release during a rolling upgrade
 * too, which moves the county's stamp only itself. Every change does so before its audit event is
 * appended: the appends take the stamps' rows before the chain head's, so the other order could
 * deadlock; and its event then follows, in the chain, every release recorded before it. The
 * county's stamp (`policy_stamp`) moves with it, for instances of an earlier release serving during
 * a rolling upgrade, which read that one (see the migration PolicyStampPerAgency); nothing of this
 * release reads it.
 *
 * This statement moves recipient `$1`'s stamp by hand, through the database's own
 * `move_policy_stamps`, as the trigger does (what the migration's comment, as it landed, calls
 * movePolicyStamp).
 */
export const MOVE_POLICY_STAMP_SQL = `SELECT move_policy_stamps(ARRAY[$1::uuid])`;

/**
 * The policy stamp of recipient `agencyId` as one scalar expression over `agency` (an SQL
 * expression of its id, a parameter or a literal): read in a request's snapshot.
 */
export function policyStampSql(agency: string): string {
  return `(SELECT stamp FROM agency_policy_stamp WHERE agency_id = ${agency})`;
}
