import { type Principal, Role } from '@broker/auth';
import { auditVisibility, stewardVisibility } from './audit-visibility';

const principal = (role: Role, agencyId: string | null = 'agency-1'): Principal => ({
  userId: 'user-1',
  email: 'someone@example.org',
  role,
  agencyId,
  apiKeyId: 'key-1',
});

describe('auditVisibility', () => {
  it('shows auditors and operators every event', () => {
    for (const role of [Role.AUDITOR, Role.OPERATOR]) {
      expect(auditVisibility(principal(role, null), { agreements: true })).toEqual({
        sql: 'TRUE',
        params: {},
      });
    }
  });

  it('shows an analyst only the events it caused', () => {
    expect(auditVisibility(principal(Role.ANALYST), { agreements: true })).toEqual({
      sql: 'e.actor_user_id = :viewerUserId',
      params: { viewerUserId: 'user-1' },
    });
  });

  it("shows a steward its agency's events, its datasets' and, once they exist, its agreements'", () => {
    const before = auditVisibility(principal(Role.STEWARD), { agreements: false });
    expect(before.params).toEqual({ viewerAgencyId: 'agency-1' });
    expect(before.sql).toContain('e.actor_agency_id = :viewerAgencyId');
    expect(before.sql).toContain('SELECT d.id FROM dataset d WHERE d.provider_agency_id = :viewerAgencyId');
    expect(before.sql).not.toContain('agreement');
    const after = stewardVisibility('x', { agreements: true });
    expect(after).toMatch(/x\.agreement_id IN \(SELECT g\.id FROM agreement g\s+WHERE/);
    expect(after).toContain('g.recipient_agency_id = :viewerAgencyId');
  });

  it('shows a steward without an agency nothing', () => {
    expect(auditVisibility(principal(Role.STEWARD, null), { agreements: true }).sql).toBe('FALSE');
  });
});
