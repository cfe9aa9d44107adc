import { BrokerError } from '@broker/core';
import { asSubject, authorize } from './control-ability';
import { Role } from './role.enum';

const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';
const C = '33333333-3333-4333-8333-333333333333';

type Principal = { role: Role; agencyId: string | null };
const steward = (agencyId: string): Principal => ({ role: Role.STEWARD, agencyId });
const analyst = (agencyId: string): Principal => ({ role: Role.ANALYST, agencyId });
const operator: Principal = { role: Role.OPERATOR, agencyId: null };
const auditor: Principal = { role: Role.AUDITOR, agencyId: C };

/** The refusal `authorize` makes, as `code/reason`, or `ALLOW`. */
function outcome(
  principal: Principal,
  action: Parameters<typeof authorize>[1],
  object: Parameters<typeof authorize>[2],
): string {
  try {
    authorize(principal, action, object, 'Object');
    return 'ALLOW';
  } catch (error) {
    if (!(error instanceof BrokerError)) throw error;
    return `${error.code}/${error.extra.reason}`;
  }
}

const user = (o: Record<string, unknown>) => asSubject('User', { agencyId: null, role: Role.ANALYST, ...o });
const agreement = asSubject('Agreement', { providerAgencyId: A, recipientAgencyId: B });
const dataset = asSubject('Dataset', { providerAgencyId: A });

describe('control ability: each rule allows its principal and refuses another agency or role', () => {
  it.each([
    // [rule, allowed principal, other agency, other role, action, object]
    // OPERATOR and AUDITOR read every agreement: no other role is refused reading.
    ['a party steward reads an agreement', steward(A), steward(C), null, 'read', agreement],
    ['a party steward revokes an agreement', steward(B), steward(C), analyst(B), 'revoke', agreement],
    ['a party steward approves an agreement', steward(A), steward(C), auditor, 'approve', agreement],
    ['a party analyst reads an agreement', analyst(B), analyst(C), null, 'read', agreement],
    ['the provider steward ingests', steward(A), steward(B), analyst(A), 'ingest', dataset],
    [
      'the provider steward reports subject access',
      steward(A),
      steward(B),
      operator,
      'reportSubjectAccess',
      dataset,
    ],
    ['the provider steward records consent', steward(A), steward(B), auditor, 'recordConsent', dataset],
    ['a steward creates its analysts', steward(A), steward(B), analyst(A), 'create', user({ agencyId: A })],
    [
      'a steward deactivates its analysts',
      steward(A),
      steward(B),
      analyst(A),
      'deactivate',
      user({ agencyId: A }),
    ],
  ] as const)('%s', (_rule, allowed, otherAgency, otherRole, action, object) => {
    expect(outcome(allowed, action, object)).toBe('ALLOW');
    expect(outcome(otherAgency, action, object)).toBe('NOT_FOUND/NOT_PARTY');
    if (otherRole) expect(outcome(otherRole, action, object)).toBe('FORBIDDEN/ROLE');
  });

  it('lets the operator create only operators, oversight auditors and a first steward', () => {
    expect(outcome(operator, 'create', user({ role: Role.OPERATOR, agencyId: null }))).toBe('ALLOW');
    expect(
      outcome(operator, 'create', user({ role: Role.AUDITOR, agencyId: C, oversightAgency: true })),
    ).toBe('ALLOW');
    expect(
      outcome(
        operator,
        'create',
        user({ role: Role.STEWARD, agencyId: A, oversightAgency: false, agencyHasActiveSteward: false }),
      ),
    ).toBe('ALLOW');
    for (const refused of [
      user({ role: Role.ANALYST, agencyId: A, oversightAgency: false, agencyHasActiveSteward: false }),
      user({ role: Role.STEWARD, agencyId: A, oversightAgency: false, agencyHasActiveSteward: true }),
      user({ role: Role.STEWARD, agencyId: C, oversightAgency: true, agencyHasActiveSteward: false }),
      user({ role: Role.AUDITOR, agencyId: A, oversightAgency: false }),
      // Facts the service did not read are never assumed.
      user({ role: Role.STEWARD, agencyId: A }),
    ]) {
      expect(outcome(operator, 'create', refused)).toBe('FORBIDDEN/ROLE');
    }
  });

  it('never lets a steward deactivate its last steward, and lets an auditor start a recovery', () => {
    const last = user({ role: Role.STEWARD, agencyId: A, agencyHasActiveSteward: false });
    const another = user({ role: Role.STEWARD, agencyId: A, agencyHasActiveSteward: true });
    expect(outcome(steward(A), 'deactivate', last)).toBe('FORBIDDEN/ROLE');
    expect(outcome(steward(A), 'deactivate', another)).toBe('ALLOW');
    expect(outcome(auditor, 'deactivate', last)).toBe('ALLOW');
    expect(outcome(operator, 'deactivate', last)).toBe('FORBIDDEN/ROLE');
    expect(outcome(auditor, 'deactivate', user({ role: Role.ANALYST, agencyId: A }))).toBe('FORBIDDEN/ROLE');
    expect(outcome(operator, 'deactivate', user({ role: Role.OPERATOR, otherActiveOperator: false }))).toBe(
      'FORBIDDEN/ROLE',
    );
    expect(outcome(operator, 'deactivate', user({ role: Role.OPERATOR, otherActiveOperator: true }))).toBe(
      'ALLOW',
    );
  });

  it('allows nothing to a principal whose role or agency is malformed', () => {
    expect(outcome({ role: 'ROOT' as Role, agencyId: A }, 'read', agreement)).toBe('FORBIDDEN/ROLE');
    expect(outcome({ role: Role.STEWARD, agencyId: "x' OR 1=1" }, 'read', agreement)).toBe('FORBIDDEN/ROLE');
  });
});
