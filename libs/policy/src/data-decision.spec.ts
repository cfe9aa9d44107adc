import fc from 'fast-check';
import { compileGrant } from './compiled-grant';
import { field, jailBookings, jailBookingsGrant } from './testing/jail-bookings.fixture';
import { agreementAbility, allows, datasetSubjectType } from './data-ability';
import { type CompiledAgreement, MAX_FIRST, checkBounds, checkNames, chooseAgreement } from './data-decision';
import {
  type CompiledGrant,
  type DatasetShape,
  FieldTransform,
  GrantAccess,
  type GrantContent,
  PERSON_KEY,
} from './policy.types';
import { releasedField, transformApplies } from './released-field';

const DS = '0b7f6c1e-2a1f-4c7e-9d3a-5f1b2c3d4e5f';
const OTHER_DS = '7e3a9b1c-1111-4222-8333-944455566677';

const dataset = jailBookings(DS);
const grantContent = (patch: Partial<GrantContent> = {}, shape = dataset): GrantContent =>
  jailBookingsGrant(shape.id, { rowFilter: null, ...patch });

function agreement(
  grants: CompiledGrant[],
  purposes = ['RECIDIVISM_EVALUATION'],
  id = 'a1',
): CompiledAgreement {
  const compiled = {
    id,
    version: 1,
    purposes,
    grants: new Map(grants.map((g) => [g.datasetId, g])),
    hmacKey: Buffer.alloc(32),
    validFrom: new Date(0),
    validUntil: new Date(8.64e15),
  };
  return { ...compiled, ability: agreementAbility(compiled) };
}

const names = (
  patch: Partial<Record<'fields' | 'whereFields' | 'orderFields' | 'groupBy', string[]>> = {},
) => ({
  fields: [],
  whereFields: [],
  orderFields: [],
  groupBy: [],
  ...patch,
});

/** Every name any transform of any field could be released as, plus names no grant releases. */
const NAME_POOL = [
  ...new Set(
    dataset.fields.flatMap((f) =>
      Object.values(FieldTransform)
        .filter((t) => transformApplies(f.type, t))
        .map((t) => releasedField(f, t).name),
    ),
  ),
  PERSON_KEY,
  'constructor',
  '__proto__',
  'toString',
  'all',
  'manage',
  '*',
  'ssn_hash*',
];

/** The reference model: what a compiled grant releases, read straight off it. */
function modelAllows(
  grant: CompiledGrant,
  purposes: string[],
  purpose: string,
  kind: 'ROWS' | 'AGGREGATE',
  used: ReturnType<typeof names>,
): boolean {
  if (!purposes.includes(purpose)) return false;
  if (kind === 'ROWS' && grant.access !== GrantAccess.ROWS) return false;
  if (kind === 'ROWS' && used.groupBy.length) return false;
  const released = (n: string) => (n === PERSON_KEY ? grant.linkage : grant.released.has(n));
  return [...used.fields, ...used.whereFields, ...used.orderFields, ...used.groupBy].every(released);
}

describe('the data ability agrees with the compiled grant', () => {
  const grantArb = fc.record({
    access: fc.constantFrom(GrantAccess.ROWS, GrantAccess.AGGREGATE_ONLY),
    linkage: fc.boolean(),
    fields: fc
      .subarray(dataset.fields)
      .chain((fields) =>
        fc.tuple(
          ...fields.map((f) =>
            fc
              .constantFrom(...Object.values(FieldTransform).filter((t) => transformApplies(f.type, t)))
              .map((transform) => ({ name: f.name, transform })),
          ),
        ),
      ),
  });
  const purposeArb = fc.constantFrom('RECIDIVISM_EVALUATION', 'SUPERVISION', 'RESEARCH_AUDIT');
  const nameList = fc.array(fc.constantFrom(...NAME_POOL), { maxLength: 4 });

  it('on every (grant, request) drawn', () => {
    fc.assert(
      fc.property(
        grantArb,
        fc.uniqueArray(purposeArb, { minLength: 1, maxLength: 3 }),
        purposeArb,
        fc.constantFrom('ROWS' as const, 'AGGREGATE' as const),
        fc.record({ fields: nameList, whereFields: nameList, orderFields: nameList, groupBy: nameList }),
        (g, purposes, purpose, kind, used) => {
          const grant = compileGrant(grantContent(g), dataset);
          const a = agreement([grant], purposes);
          const expected = modelAllows(grant, purposes, purpose, kind, used);
          const all = [...used.fields, ...used.whereFields, ...used.orderFields, ...used.groupBy];
          const byAbility =
            allows(a.ability, kind === 'ROWS' ? 'read' : 'aggregate', DS, purpose, all) &&
            !(kind === 'ROWS' && used.groupBy.length > 0);
          expect(byAbility).toBe(expected);
          if (purposes.includes(purpose)) {
            expect(checkNames(a, dataset, purpose, kind, used) === null).toBe(expected);
          }
          // Never for another dataset, whatever it asks.
          expect(allows(a.ability, 'aggregate', OTHER_DS, purpose)).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('checkNames', () => {
  const rows = compileGrant(grantContent(), dataset);
  const aggregates = compileGrant(grantContent({ access: GrantAccess.AGGREGATE_ONLY }), dataset);
  const linked = compileGrant(grantContent({ linkage: true }), dataset);
  const P = 'RECIDIVISM_EVALUATION';

  it('allows a request that names only released fields', () => {
    expect(
      checkNames(
        agreement([rows]),
        dataset,
        P,
        'ROWS',
        names({ fields: ['booking_id', 'ssn_hash'], whereFields: ['dob_year'], orderFields: ['age_band'] }),
      ),
    ).toBeNull();
    expect(
      checkNames(agreement([rows]), dataset, P, 'AGGREGATE', names({ groupBy: ['dob_year', 'released'] })),
    ).toBeNull();
  });

  it('allows aggregates only under an AGGREGATE_ONLY grant', () => {
    expect(checkNames(agreement([aggregates]), dataset, P, 'ROWS', names())).toMatchObject({
      code: 'FORBIDDEN',
      reason: 'ROWS_NOT_GRANTED',
    });
    expect(
      checkNames(agreement([aggregates]), dataset, P, 'AGGREGATE', names({ groupBy: ['dob_year'] })),
    ).toBeNull();
  });

  it.each([
    ['fields', 'ssn', 'ssn_hash'],
    ['fields', 'dob', 'dob_year'],
    ['whereFields', 'ssn', 'ssn_hash'],
    ['whereFields', 'charge', undefined],
    ['orderFields', 'age', 'age_band'],
    ['groupBy', 'charge', undefined],
    ['fields', 'booking_id_hash', 'booking_id'],
    ['fields', '__proto__', undefined],
    ['fields', 'constructor', undefined],
    ['fields', 'toString', undefined],
  ] as const)('refuses %s naming %s, saying what it is released as (%s)', (list, name, releasedAs) => {
    const kind = list === 'groupBy' ? 'AGGREGATE' : 'ROWS';
    const refusal = checkNames(agreement([rows]), dataset, P, kind, names({ [list]: [name] }));
    expect(refusal).toMatchObject({ code: 'FORBIDDEN', reason: 'FIELD_NOT_RELEASED', field: name });
    expect(refusal?.releasedAs).toBe(releasedAs);
    // The message names what the caller asked for and what the agreement releases, nothing else.
    for (const f of dataset.fields) {
      if (!name.startsWith(f.name) && !(releasedAs ?? '').startsWith(f.name)) {
        expect(refusal?.message).not.toContain(f.name);
      }
    }
  });

  it('releases personKey only where the grant has linkage', () => {
    for (const list of ['fields', 'whereFields', 'orderFields'] as const) {
      expect(
        checkNames(agreement([rows]), dataset, P, 'ROWS', names({ [list]: [PERSON_KEY] })),
      ).toMatchObject({
        reason: 'FIELD_NOT_RELEASED',
      });
      expect(checkNames(agreement([linked]), dataset, P, 'ROWS', names({ [list]: [PERSON_KEY] }))).toBeNull();
    }
  });

  it('refuses everything but the dataset itself under a grant with no fields', () => {
    const empty: CompiledGrant = { ...rows, released: new Map() };
    const a = agreement([empty]);
    expect(allows(a.ability, 'read', DS, P)).toBe(true);
    expect(checkNames(a, dataset, P, 'ROWS', names({ fields: ['booking_id'] }))).toMatchObject({
      reason: 'FIELD_NOT_RELEASED',
    });
    expect(checkNames(a, dataset, P, 'ROWS', names({ fields: ['\u0000none', '\u0000'] }))).toMatchObject({
      reason: 'FIELD_NOT_RELEASED',
    });
  });

  it('refuses groupBy on row requests', () => {
    expect(checkNames(agreement([rows]), dataset, P, 'ROWS', names({ groupBy: ['dob_year'] }))).toMatchObject(
      {
        code: 'BAD_USER_INPUT',
      },
    );
  });
});

describe('chooseAgreement', () => {
  const grant = compileGrant(grantContent(), dataset);
  const one = agreement([grant], ['RECIDIVISM_EVALUATION'], 'a1');
  const two = agreement([grant], ['RECIDIVISM_EVALUATION', 'SUPERVISION'], 'a2');

  it('takes the only agreement, or the one named', () => {
    expect(chooseAgreement([one], DS, 'RECIDIVISM_EVALUATION', null)).toEqual({ agreement: one });
    expect(chooseAgreement([one, two], DS, 'RECIDIVISM_EVALUATION', 'a2')).toEqual({ agreement: two });
    expect(chooseAgreement([one, two], DS, 'SUPERVISION', null)).toEqual({ agreement: two });
  });

  it('says why none answers', () => {
    expect(chooseAgreement([one, two], DS, 'RECIDIVISM_EVALUATION', null)).toEqual({
      refusal: expect.objectContaining({
        code: 'BAD_USER_INPUT',
        reason: 'AGREEMENT_AMBIGUOUS',
        agreements: ['a1', 'a2'],
      }),
    });
    expect(chooseAgreement([one], DS, 'SUPERVISION', null)).toEqual({
      refusal: expect.objectContaining({ code: 'FORBIDDEN', reason: 'PURPOSE_NOT_GRANTED' }),
    });
    expect(chooseAgreement([one], OTHER_DS, 'RECIDIVISM_EVALUATION', null)).toEqual({
      refusal: expect.objectContaining({ code: 'FORBIDDEN', reason: 'NO_AGREEMENT_IN_FORCE' }),
    });
    expect(chooseAgreement([one], DS, 'RECIDIVISM_EVALUATION', 'a2')).toEqual({
      refusal: expect.objectContaining({ code: 'FORBIDDEN', reason: 'NO_AGREEMENT_IN_FORCE' }),
    });
  });
});

describe('bounds and the filter rule of aggregates', () => {
  it('takes first from 1 to the maximum', () => {
    expect(checkBounds('ROWS', GrantAccess.ROWS, { first: 1 })).toBeNull();
    expect(checkBounds('ROWS', GrantAccess.ROWS, { first: MAX_FIRST })).toBeNull();
    expect(checkBounds('ROWS', GrantAccess.ROWS, {})).toBeNull();
    for (const first of [0, -1, MAX_FIRST + 1, 1.5]) {
      expect(checkBounds('ROWS', GrantAccess.ROWS, { first })).toMatchObject({ reason: 'INVALID' });
    }
  });

  it('bounds groupBy by the grant', () => {
    const five = ['a', 'b', 'c', 'd', 'e'];
    expect(checkBounds('AGGREGATE', GrantAccess.ROWS, { groupBy: five })).toBeNull();
    expect(checkBounds('AGGREGATE', GrantAccess.AGGREGATE_ONLY, { groupBy: five })).toMatchObject({
      reason: 'LIMIT',
    });
    expect(checkBounds('AGGREGATE', GrantAccess.ROWS, { groupBy: ['a', 'a'] })).toMatchObject({
      reason: 'INVALID',
    });
  });
});

describe('hostile names (CASL wildcards and Object.prototype keys)', () => {
  const HOSTILE = ['constructor', 'prototype', 'valueof', 'hasownproperty', 'all', 'manage'];
  const shape: DatasetShape = {
    ...dataset,
    fields: [field('booking_id', 'STRING'), ...HOSTILE.map((n) => field(n, 'STRING'))],
  };

  it('grants exactly the hostile names granted, on its dataset, and changes no built-in', () => {
    const granted = HOSTILE.slice(0, 3);
    const grant = compileGrant(
      grantContent(
        {
          fields: granted.map((name) => ({ name, transform: FieldTransform.RAW })),
          access: GrantAccess.ROWS,
        },
        shape,
      ),
      shape,
    );
    const a = agreement([grant]);
    for (const name of HOSTILE) {
      expect(allows(a.ability, 'read', DS, 'RECIDIVISM_EVALUATION', [name])).toBe(granted.includes(name));
    }
    // CASL's wildcards are no subject or action of ours.
    expect(a.ability.can('read', 'all')).toBe(false);
    expect(a.ability.can('manage' as 'read', 'all')).toBe(false);
    expect(a.ability.can('manage' as 'read', `dataset:${DS}`)).toBe(false);
    expect(datasetSubjectType('all')).toBeNull();
    expect(datasetSubjectType('constructor')).toBeNull();
    expect(allows(a.ability, 'read', 'all', 'RECIDIVISM_EVALUATION')).toBe(false);
    expect(allows(a.ability, 'read', DS, 'constructor')).toBe(false);
    // Built-ins are untouched.
    expect({}.constructor).toBe(Object);
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'all')).toBe(false);
    expect(typeof Object.prototype.valueOf).toBe('function');
  });

  it('makes no rule from a purpose outside the purpose pattern', () => {
    const grant = compileGrant(grantContent(), dataset);
    const a = agreement([grant], ['all', 'constructor', '__proto__']);
    for (const purpose of ['all', 'constructor', '__proto__', 'RECIDIVISM_EVALUATION']) {
      expect(allows(a.ability, 'aggregate', DS, purpose)).toBe(false);
    }
  });
});
