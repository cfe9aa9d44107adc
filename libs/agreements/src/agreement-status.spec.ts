import { AgreementStatus, statusOf } from './agreement-status';

describe('statusOf', () => {
  const window = {
    validFrom: new Date('2026-01-01T00:00:00Z'),
    validUntil: new Date('2027-01-01T00:00:00Z'),
  };
  const at = (iso: string) => new Date(iso);

  it('is PROPOSED until both parties approved one version', () => {
    expect(statusOf({ revokedAt: null, inForce: null }, at('2026-06-01T00:00:00Z'))).toBe(
      AgreementStatus.PROPOSED,
    );
  });

  it('follows the window of the version in force, to the millisecond', () => {
    const a = { revokedAt: null, inForce: window };
    expect(statusOf(a, at('2025-12-31T23:59:59.999Z'))).toBe(AgreementStatus.PENDING);
    expect(statusOf(a, at('2026-01-01T00:00:00.000Z'))).toBe(AgreementStatus.ACTIVE);
    expect(statusOf(a, at('2026-12-31T23:59:59.999Z'))).toBe(AgreementStatus.ACTIVE);
    expect(statusOf(a, at('2027-01-01T00:00:00.000Z'))).toBe(AgreementStatus.EXPIRED);
  });

  it('is REVOKED whatever the window says', () => {
    expect(
      statusOf({ revokedAt: at('2026-02-01T00:00:00Z'), inForce: window }, at('2026-06-01T00:00:00Z')),
    ).toBe(AgreementStatus.REVOKED);
    expect(
      statusOf({ revokedAt: at('2026-02-01T00:00:00Z'), inForce: null }, at('2026-06-01T00:00:00Z')),
    ).toBe(AgreementStatus.REVOKED);
  });
});
