import { registerEnumType } from '@nestjs/graphql';

/** Where an agreement stands, computed against the clock at every request. */
export enum AgreementStatus {
  /** No version has every required approval yet. */
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

registerEnumType(AgreementStatus, {
  name: 'AgreementStatus',
  description:
    'Where an agreement stands, computed from its version in force and the clock at every request; ' +
    'data flows only while it is ACTIVE.',
  valuesMap: {
    PROPOSED: {
      description:
        'No version has every required approval yet (both parties, and an AUDITOR where oversight is required).',
    },
    PENDING: { description: 'A version is in force, but its validity window has not started.' },
    ACTIVE: { description: 'The version in force governs data requests now: inside its validity window.' },
    EXPIRED: {
      description: "The version in force's validity window has ended; access stopped exactly then.",
    },
    REVOKED: { description: 'A party revoked it: final, and access stopped at once.' },
  },
});

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
