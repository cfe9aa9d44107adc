import { BrokerError } from '@broker/core';
import { asSubject, authorize, authorizeType, canOnAll, controlAbility } from './control-ability';
import { Role } from './role.enum';

const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';
const C = '33333333-3333-4333-8333-333333333333';

const steward = { role: Role.STEWARD, agencyId: A };
const analyst = { role: Role.ANALYST, agencyId: A };
const operator = { role: Role.OPERATOR, agencyId: null };
const auditor = { role: Role.AUDITOR, agencyId: null };
const thirdSteward = { role: Role.STEWARD, agencyId: C };

const agreementAB = asSubject('Agreement', { providerAgencyId: A, recipientAgencyId: B });
const datasetOfA = asSubject('Dataset', { providerAgencyId: A });
const datasetOfB = asSubject('Dataset', { providerAgencyId: B });

/** The contract's answer to a principal doing `action` on `object`: allowed, or code and reason. */
function outcome(
  principal: Parameters<typeof authorize>[0],
  action: Parameters<typeof authorize>[1],
  object: any,
) {
  try {
    authorize(principal, action, object, 'Object');
    return 'ALLOWED';
  } catch (error) {
    if (!(error instanceof BrokerError)) throw error;
    return `${error.code}/${error.extra.reason}`;
  }
}

describe('control-plane abilities', () => {
  it('lets a party steward change an agreement, and answers a third agency as if it did not exist', () => {
    for (const action of ['read', 'amend', 'approve', 'revoke', 'preview'] as const) {
      expect(outcome(steward, action, agreementAB)).toBe('ALLOWED');
      expect(outcome({ role: Role.STEWARD, agencyId: B }, action, agreementAB)).toBe('ALLOWED');
      expect(outcome(thirdSteward, action, agreementAB)).toBe('NOT_FOUND/NOT_PARTY');
    }
  });

  it('refuses a party what its role may not do, without pretending the object is missing', () => {
    const provider = { role: Role.STEWARD, agencyId: A };
    const recipient = { role: Role.STEWARD, agencyId: B };
    expect(outcome(recipient, 'attest', agreementAB)).toBe('ALLOWED');
    expect(outcome(provider, 'attest', agreementAB)).toBe('FORBIDDEN/ROLE');
    expect(outcome(thirdSteward, 'attest', agreementAB)).toBe('NOT_FOUND/NOT_PARTY');
  });

  it('lets an auditor sign off only versions that need oversight', () => {
    const auditorOfBoard = { role: Role.AUDITOR, agencyId: C };
    const needs = asSubject('Agreement', {
      providerAgencyId: A,
      recipientAgencyId: B,
      oversightRequired: true,
    });
    const needsNot = asSubject('Agreement', {
      providerAgencyId: A,
      recipientAgencyId: B,
      oversightRequired: false,
    });
    for (const action of ['approve', 'decline'] as const) {
      expect(outcome(auditorOfBoard, action, needs)).toBe('ALLOWED');
      expect(outcome(auditorOfBoard, action, needsNot)).toBe('FORBIDDEN/ROLE');
      // An auditor of no oversight agency signs nothing off.
      expect(outcome(auditor, action, needs)).toBe('FORBIDDEN/ROLE');
    }
    expect(outcome(auditorOfBoard, 'preview', needsNot)).toBe('ALLOWED');
  });

  it('lets a party analyst read but not change an agreement', () => {
    expect(outcome(analyst, 'read', agreementAB)).toBe('ALLOWED');
    expect(outcome({ role: Role.ANALYST, agencyId: C }, 'read', agreementAB)).toBe('NOT_FOUND/NOT_PARTY');
    for (const action of ['amend', 'approve', 'revoke'] as const) {
      expect(outcome(analyst, action, agreementAB)).toBe('FORBIDDEN/ROLE');
    }
  });

  it('lets operators and auditors read every agreement and change none', () => {
    for (const principal of [operator, auditor]) {
      expect(outcome(principal, 'read', agreementAB)).toBe('ALLOWED');
      expect(canOnAll(principal, 'read', 'Agreement')).toBe(true);
      for (const action of ['propose', 'amend', 'revoke'] as const) {
        expect(outcome(principal, action, agreementAB)).toBe('FORBIDDEN/ROLE');
      }
    }
    expect(canOnAll(steward, 'read', 'Agreement')).toBe(false);
  });

  it("keeps a dataset's records to its provider's stewards", () => {
    for (const action of ['ingest', 'recordConsent', 'update', 'reportSubjectAccess'] as const) {
      expect(outcome(steward, action, datasetOfA)).toBe('ALLOWED');
      expect(outcome(steward, action, datasetOfB)).toBe('NOT_FOUND/NOT_PARTY');
      expect(outcome(analyst, action, datasetOfA)).toBe('FORBIDDEN/ROLE');
      expect(outcome(operator, action, datasetOfA)).toBe('FORBIDDEN/ROLE');
      expect(outcome(auditor, action, datasetOfA)).toBe('FORBIDDEN/ROLE');
    }
    // Everyone reads the catalog.
    for (const principal of [steward, analyst, operator, auditor, thirdSteward]) {
      expect(outcome(principal, 'read', datasetOfB)).toBe('ALLOWED');
    }
    expect(outcome(steward, 'create', asSubject('Dataset', { providerAgencyId: A }))).toBe('ALLOWED');
    expect(outcome(steward, 'create', asSubject('Dataset', { providerAgencyId: B }))).toBe(
      'NOT_FOUND/NOT_PARTY',
    );
  });

  it('lets stewards create stewards and analysts of their own agency only', () => {
    expect(outcome(steward, 'create', asSubject('User', { agencyId: A, role: Role.ANALYST }))).toBe(
      'ALLOWED',
    );
    expect(outcome(steward, 'create', asSubject('User', { agencyId: A, role: Role.STEWARD }))).toBe(
      'ALLOWED',
    );
    expect(outcome(steward, 'create', asSubject('User', { agencyId: B, role: Role.ANALYST }))).toBe(
      'NOT_FOUND/NOT_PARTY',
    );
    expect(outcome(steward, 'create', asSubject('User', { agencyId: A, role: Role.OPERATOR }))).toBe(
      'FORBIDDEN/ROLE',
    );
    expect(outcome(analyst, 'create', asSubject('User', { agencyId: A, role: Role.ANALYST }))).toBe(
      'FORBIDDEN/ROLE',
    );
  });

  it('keeps linkage runs to the operator, and reading them to operators and auditors', () => {
    expect(() => authorizeType(operator, 'start', 'LinkageRun')).not.toThrow();
    for (const principal of [steward, analyst, auditor]) {
      expect(() => authorizeType(principal, 'start', 'LinkageRun')).toThrow(BrokerError);
    }
    expect(() => authorizeType(auditor, 'read', 'LinkageRun')).not.toThrow();
    expect(() => authorizeType(analyst, 'read', 'LinkageRun')).toThrow(BrokerError);
  });

  it('allows nothing for a principal whose role or agency id is malformed', () => {
    for (const principal of [
      { role: 'ROOT' as Role, agencyId: null },
      { role: Role.STEWARD, agencyId: 'all' },
      { role: Role.STEWARD, agencyId: '__proto__' },
      { role: Role.STEWARD, agencyId: `${A}' OR '1'='1` },
    ]) {
      const ability = controlAbility(principal);
      expect(ability.rules).toEqual([]);
      expect(outcome(principal, 'read', datasetOfA)).toBe('FORBIDDEN/ROLE');
    }
  });

  it('builds one ability per role and agency, and no wildcard grants more', () => {
    expect(controlAbility(steward)).toBe(controlAbility({ ...steward }));
    const ability = controlAbility(steward);
    expect(ability.can('manage' as 'read', 'all' as 'Agreement')).toBe(false);
    expect(ability.can('read', 'all' as 'Agreement')).toBe(false);
    expect(
      outcome(
        steward,
        'approve',
        asSubject('Agreement', { providerAgencyId: 'all', recipientAgencyId: 'all' }),
      ),
    ).toBe('NOT_FOUND/NOT_PARTY');
    expect({}.constructor).toBe(Object);
  });
});
