import { registerEnumType } from '@nestjs/graphql';

/** Where an agreement stands, computed against the clock at every request. */
export enum AgreementStatus {
  /** No version has been approved by both parties yet. */
  PROPOSED = 'PROPOSED',
  /** The version in force starts in the future. */
  PENDING = 'PENDING',
  /** The version in force governs queries now. */
  ACTIVE = 'ACTIVE',
  /** The version in force has ended. */
  EXPIRED = 'EXPIRED',
  /** Revoked by a party: final, and access stopped at once. */
  REVOKED = 'REVOKED',
}

registerEnumType(AgreementStatus, { name: 'AgreementStatus' });

/** The status of an agreement given its revocation and the window of its version in force. */
export function statusOf(
  agreement: { revokedAt: Date | null; inForce: { validFrom: Date; validUntil: Date } | null },
  now: Date,
): AgreementStatus {
  if (agreement.revokedAt) return AgreementStatus.REVOKED;
  if (!agreement.inForce) return AgreementStatus.PROPOSED;
  if (now < agreement.inForce.validFrom) return AgreementStatus.PENDING;
  if (now < agreement.inForce.validUntil) return AgreementStatus.ACTIVE;
  return AgreementStatus.EXPIRED;
}
