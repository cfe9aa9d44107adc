import fc from 'fast-check';
import type { FieldDefinition, FieldType } from '@broker/registry';
import {
  type AgreementValidationContext,
  MAX_GRANTS,
  canonicalJson,
  contentHash,
  validateAgreementContent,
} from './agreement-content';
import { type DatasetShape, FieldTransform, type FieldTypeName, GrantAccess } from './policy.types';

const PROVIDER = 'agency-provider';
const RECIPIENT = 'agency-recipient';

function field(name: string, type: FieldTypeName): FieldDefinition {
  return {
    name,
    type: type as FieldType,
    classification: 'NON_SENSITIVE' as FieldDefinition['classification'],
    identity: null,
    required: false,
    description: null,
  };
}

function dataset(
  id: string,
  providerAgencyId: string,
  fields: FieldDefinition[],
  subjectField: string | null,
): DatasetShape & { providerAgencyId: string } {
  return { id, slug: id, typeName: id, keyField: fields[0].name, subjectField, fields, providerAgencyId };
}

const BOOKINGS = dataset(
  'ds-bookings',
  PROVIDER,
  [
    field('booking_id', 'STRING'),
    field('person_id', 'STRING'),
    field('last_name', 'STRING'),
    field('age', 'INTEGER'),
    field('score', 'FLOAT'),
    field('released', 'BOOLEAN'),
    field('dob', 'DATE'),
    field('booked_at', 'DATETIME'),
    field('secret_note', 'STRING'),
  ],
  'person_id',
);
const PROGRAM = dataset(
  'ds-program',
  PROVIDER,
  [field('enrolment_id', 'INTEGER'), field('zip', 'STRING')],
  null,
);
const FOREIGN = dataset('ds-foreign', 'agency-other', [field('id', 'STRING')], null);

const context: AgreementValidationContext = {
  datasets: new Map([BOOKINGS, PROGRAM, FOREIGN].map((d) => [d.id, d])),
  purposes: new Set(['RECIDIVISM_EVALUATION', 'PROGRAM_EVALUATION', 'SUPERVISION']),
};

/** A valid GraphQL-shaped input, fresh each time so tests can mutate it. */
function validInput(): Record<string, any> {
  return {
    title: '  CBO to research office  ',
    providerAgencyId: PROVIDER,
    recipientAgencyId: RECIPIENT,
    purposes: ['RECIDIVISM_EVALUATION', 'PROGRAM_EVALUATION', 'RECIDIVISM_EVALUATION'],
    validFrom: new Date('2025-01-01T00:00:00Z'),
    validUntil: '2026-01-01T01:00:00+01:00',
    retentionDays: 365,
    legalBasis: 'MOU 2025-14',
    communityBenefit: 'Fewer people return to jail',
    grants: [
      {
        datasetId: 'ds-program',
        fields: [{ name: 'zip', transform: 'GENERALIZE' }, { name: 'enrolment_id' }],
      },
      {
        datasetId: 'ds-bookings',
        access: 'ROWS',
        fields: [
          { name: 'person_id', transform: 'HASH' },
          { name: 'age', transform: 'GENERALIZE' },
          { name: 'booked_at', transform: 'RAW' },
        ],
        rowFilter: { age: { $gte: 18 }, booked_at: { $lt: '2025-06-01T02:00:00+02:00' } },
        requireConsent: true,
        minCellSize: 5,
        linkage: true,
      },
    ],
  };
}

function problemsOf(input: unknown): { path: string; message: string }[] {
  const result = validateAgreementContent(input, context);
  if (result.ok) throw new Error(`expected problems, got ${JSON.stringify(result.content)}`);
  return result.problems;
}

function contentOf(input: unknown) {
  const result = validateAgreementContent(input, context);
  if (!result.ok) throw new Error(`unexpected problems: ${JSON.stringify(result.problems)}`);
  return result.content;
}

/** Expects exactly the problem at `path` (and possibly others), whose message contains `message`. */
function expectProblem(input: unknown, path: string, message?: string | RegExp) {
  const problems = problemsOf(input);
  const at = problems.filter((p) => p.path === path);
  expect(at).not.toHaveLength(0);
  if (message) expect(at.map((p) => p.message).join(' | ')).toMatch(message);
}

const withGrant = (patch: (grant: any) => unknown) => {
  const input = validInput();
  patch(input.grants[1]);
  return input;
};
const withFilter = (rowFilter: unknown) => withGrant((g) => (g.rowFilter = rowFilter));

describe('validateAgreementContent: canonical content', () => {
  it('fills defaults, normalises dates to UTC and sorts purposes, grants and fields', () => {
    const content = contentOf(validInput());
    expect(content).toEqual({
      title: 'CBO to research office',
      providerAgencyId: PROVIDER,
      recipientAgencyId: RECIPIENT,
      purposes: ['PROGRAM_EVALUATION', 'RECIDIVISM_EVALUATION'],
      validFrom: '2025-01-01T00:00:00.000Z',
      validUntil: '2026-01-01T00:00:00.000Z',
      retentionDays: 365,
      legalBasis: 'MOU 2025-14',
      communityBenefit: 'Fewer people return to jail',
      termsOfUse: null,
      grants: [
        {
          datasetId: 'ds-bookings',
          access: GrantAccess.ROWS,
          fields: [
            { name: 'age', transform: FieldTransform.GENERALIZE },
            { name: 'booked_at', transform: FieldTransform.RAW },
            { name: 'person_id', transform: FieldTransform.HASH },
          ],
          rowFilter: { age: { $gte: 18 }, booked_at: { $lt: '2025-06-01T00:00:00.000Z' } },
          requireConsent: true,
          minCellSize: 5,
          linkage: true,
        },
        {
          datasetId: 'ds-program',
          access: GrantAccess.ROWS,
          fields: [
            { name: 'enrolment_id', transform: FieldTransform.RAW },
            { name: 'zip', transform: FieldTransform.GENERALIZE },
          ],
          rowFilter: null,
          requireConsent: false,
          minCellSize: 11,
          linkage: false,
        },
      ],
    });
  });

  it('treats null as the default where GraphQL has one, and empty text as none', () => {
    const input = validInput();
    Object.assign(input.grants[0], {
      access: null,
      rowFilter: null,
      requireConsent: null,
      minCellSize: null,
    });
    input.grants[0].fields[0].transform = null;
    Object.assign(input, { retentionDays: null, legalBasis: '   ', termsOfUse: undefined });
    const content = contentOf(input);
    const program = content.grants.find((g) => g.datasetId === 'ds-program')!;
    expect(program).toMatchObject({
      access: 'ROWS',
      requireConsent: false,
      minCellSize: 11,
      rowFilter: null,
    });
    expect(program.fields).toContainEqual({ name: 'zip', transform: 'RAW' });
    expect(content).toMatchObject({ retentionDays: null, legalBasis: null, termsOfUse: null });
  });

  it('is a fixed point: validating canonical content gives it back unchanged', () => {
    const content = contentOf(validInput());
    expect(contentOf(JSON.parse(JSON.stringify(content)))).toEqual(content);
  });

  it('accepts SQL-looking text as values: they are data, never SQL', () => {
    const hostile = `x'); DROP TABLE agreement; --`;
    const content = contentOf({ ...withFilter({ last_name: hostile }), title: hostile });
    expect(content.grants[0].rowFilter).toEqual({ last_name: hostile });
  });

  it('accepts a filter nested exactly as deep as allowed', () => {
    let filter: any = { age: 1 };
    for (let depth = 1; depth < 8; depth++) filter = { $or: [filter] };
    expect(contentOf(withFilter(filter)).grants[0].rowFilter).toEqual(filter);
  });
});

describe('validateAgreementContent: refusals', () => {
  const cases: [string, () => unknown, string, (string | RegExp)?][] = [
    ['not an object', () => null, ''],
    ['an array', () => [validInput()], ''],
    ['an unknown key', () => ({ ...validInput(), status: 'ACTIVE' }), 'status', 'not a known field'],
    [
      'a getter',
      () => Object.defineProperty(validInput(), 'title', { get: () => 'x', enumerable: true }),
      '',
    ],
    ['a missing title', () => ({ ...validInput(), title: undefined }), 'title', 'required'],
    ['a blank title', () => ({ ...validInput(), title: '   ' }), 'title', 'required'],
    ['a long title', () => ({ ...validInput(), title: 'x'.repeat(201) }), 'title', '200'],
    ['a NUL in the title', () => ({ ...validInput(), title: 'a\u0000b' }), 'title', 'NUL'],
    ['a lone surrogate', () => ({ ...validInput(), title: 'a\ud800b' }), 'title', 'surrogate'],
    ['a missing provider', () => ({ ...validInput(), providerAgencyId: '' }), 'providerAgencyId'],
    ['a numeric recipient', () => ({ ...validInput(), recipientAgencyId: 7 }), 'recipientAgencyId'],
    [
      'the provider as recipient',
      () => ({ ...validInput(), recipientAgencyId: PROVIDER }),
      'recipientAgencyId',
      'differ',
    ],
    ['no purposes', () => ({ ...validInput(), purposes: [] }), 'purposes'],
    ['purposes not a list', () => ({ ...validInput(), purposes: 'SUPERVISION' }), 'purposes'],
    [
      'an unknown purpose',
      () => ({ ...validInput(), purposes: ['SUPERVISION', 'MARKETING'] }),
      'purposes[1]',
    ],
    ['a purpose of another case', () => ({ ...validInput(), purposes: ['supervision'] }), 'purposes[0]'],
    ['a purpose not a string', () => ({ ...validInput(), purposes: [{}] }), 'purposes[0]'],
    ['a missing validFrom', () => ({ ...validInput(), validFrom: null }), 'validFrom', 'required'],
    ['an invalid validFrom', () => ({ ...validInput(), validFrom: 'next monday' }), 'validFrom'],
    ['an impossible date', () => ({ ...validInput(), validFrom: '2025-02-30T00:00:00Z' }), 'validFrom'],
    ['an invalid Date', () => ({ ...validInput(), validFrom: new Date('x') }), 'validFrom'],
    ['a reversed window', () => ({ ...validInput(), validFrom: '2027-01-01T00:00:00Z' }), 'validUntil'],
    [
      'an empty window',
      () => ({ ...validInput(), validFrom: '2026-01-01T00:00:00Z', validUntil: '2026-01-01T00:00:00.000Z' }),
      'validUntil',
    ],
    ['zero retention', () => ({ ...validInput(), retentionDays: 0 }), 'retentionDays'],
    ['negative retention', () => ({ ...validInput(), retentionDays: -5 }), 'retentionDays'],
    ['fractional retention', () => ({ ...validInput(), retentionDays: 1.5 }), 'retentionDays'],
    ['a century of retention', () => ({ ...validInput(), retentionDays: 36501 }), 'retentionDays'],
    ['retention as text', () => ({ ...validInput(), retentionDays: '30' }), 'retentionDays'],
    ['a long legal basis', () => ({ ...validInput(), legalBasis: 'x'.repeat(2001) }), 'legalBasis'],
    ['terms not text', () => ({ ...validInput(), termsOfUse: { text: 'x' } }), 'termsOfUse'],
    ['no grants', () => ({ ...validInput(), grants: [] }), 'grants'],
    ['grants not a list', () => ({ ...validInput(), grants: {} }), 'grants'],
    [
      'too many grants',
      () => ({
        ...validInput(),
        grants: Array.from({ length: MAX_GRANTS + 1 }, (): unknown => validInput().grants[0]),
      }),
      'grants',
    ],
    ['a grant not an object', () => ({ ...validInput(), grants: ['ds-program'] }), 'grants[0]'],
    [
      'an unknown grant key',
      () => withGrant((g) => (g.purpose = 'x')),
      'grants[1].purpose',
      'not a known field',
    ],
    ['an unknown dataset', () => withGrant((g) => (g.datasetId = 'ds-nope')), 'grants[1].datasetId'],
    [
      "another agency's dataset",
      () => withGrant((g) => (g.datasetId = 'ds-foreign')),
      'grants[1].datasetId',
      'provider',
    ],
    [
      'two grants of one dataset',
      () => withGrant((g) => (g.datasetId = 'ds-program')),
      'grants[1].datasetId',
      'twice',
    ],
    ['an unknown access', () => withGrant((g) => (g.access = 'ALL')), 'grants[1].access'],
    ['no fields', () => withGrant((g) => (g.fields = [])), 'grants[1].fields'],
    ['fields not a list', () => withGrant((g) => (g.fields = 'age')), 'grants[1].fields'],
    ['an unknown field', () => withGrant((g) => g.fields.push({ name: 'ssn' })), 'grants[1].fields[3].name'],
    [
      'a SQL-looking field name',
      () => withGrant((g) => g.fields.push({ name: 'age"; DROP TABLE x; --' })),
      'grants[1].fields[3].name',
    ],
    [
      'a repeated field',
      () => withGrant((g) => g.fields.push({ name: 'age', transform: 'RAW' })),
      'grants[1].fields[3].name',
      'twice',
    ],
    [
      'GENERALIZE of a BOOLEAN',
      () => withGrant((g) => g.fields.push({ name: 'released', transform: 'GENERALIZE' })),
      'grants[1].fields[3].transform',
      'BOOLEAN',
    ],
    [
      'an unknown transform',
      () => withGrant((g) => g.fields.push({ name: 'dob', transform: 'ENCRYPT' })),
      'grants[1].fields[3].transform',
    ],
    [
      'an unknown field-grant key',
      () => withGrant((g) => g.fields.push({ name: 'dob', salt: 'x' })),
      'grants[1].fields[3].salt',
    ],
    ['a field grant not an object', () => withGrant((g) => g.fields.push('dob')), 'grants[1].fields[3]'],
    ['a zero cell size', () => withGrant((g) => (g.minCellSize = 0)), 'grants[1].minCellSize'],
    ['a huge cell size', () => withGrant((g) => (g.minCellSize = 1001)), 'grants[1].minCellSize'],
    ['a fractional cell size', () => withGrant((g) => (g.minCellSize = 2.5)), 'grants[1].minCellSize'],
    ['a cell size as text', () => withGrant((g) => (g.minCellSize = '11')), 'grants[1].minCellSize'],
    ['consent as text', () => withGrant((g) => (g.requireConsent = 'yes')), 'grants[1].requireConsent'],
    ['linkage as a number', () => withGrant((g) => (g.linkage = 1)), 'grants[1].linkage'],
    [
      'consent without a subject field',
      () => {
        const input = validInput();
        input.grants[0].requireConsent = true;
        return input;
      },
      'grants[0].requireConsent',
      'subject',
    ],
  ];

  // Rows padded to one length: jest hands a `done` callback to a row shorter than the function.
  it.each(cases.map(([what, input, path, message]) => [what, input, path, message ?? null] as const))(
    'refuses %s',
    (_what, input, path, message) => expectProblem(input(), path, message ?? undefined),
  );

  it('refuses prototype keys at every level, parsed from JSON as own properties', () => {
    const top = JSON.parse(`{"__proto__": {"admin": true}}`);
    expectProblem({ ...validInput(), ...top }, '__proto__', 'not allowed');
    const grant = validInput();
    grant.grants[1] = { ...grant.grants[1], ...JSON.parse(`{"__proto__": {"access": "ROWS"}}`) };
    expectProblem(grant, 'grants[1].__proto__', 'not allowed');
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      const filter = JSON.parse(`{"${key}": {"polluted": true}}`);
      expectProblem(withFilter(filter), `grants[1].rowFilter.${key}`, 'not allowed');
      const operators = JSON.parse(`{"age": {"${key}": 1}}`);
      expectProblem(withFilter(operators), `grants[1].rowFilter.age.${key}`, 'not allowed');
    }
    expect(({} as any).polluted).toBeUndefined();
    expect(({} as any).admin).toBeUndefined();
  });

  it('reads only own properties: inherited keys are invisible', () => {
    const input = Object.create({ grants: validInput().grants, title: 'inherited' });
    Object.assign(input, { ...validInput(), title: undefined, grants: undefined });
    const problems = problemsOf(input);
    expect(problems.map((p) => p.path)).toEqual(expect.arrayContaining(['title', 'grants']));
  });

  it('reports every problem at once, up to a bound', () => {
    const input = { ...validInput(), title: '', purposes: ['NOPE'], retentionDays: 0 };
    expect(problemsOf(input).map((p) => p.path)).toEqual(
      expect.arrayContaining(['title', 'purposes[0]', 'retentionDays']),
    );
    const flood = withGrant((g) => {
      g.fields = Array.from({ length: 200 }, (_, i) => ({ name: `nope_${i}` }));
    });
    expect(problemsOf(flood)).toHaveLength(100);
    const keys = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, 1]));
    expect(problemsOf({ ...validInput(), ...keys })).toHaveLength(100);
  });

  it('cuts hostile keys short in paths', () => {
    const key = `${'x'.repeat(10_000)}"]; DROP`;
    const [problem] = problemsOf({ ...validInput(), [key]: 1 });
    expect(problem.path.length).toBeLessThan(100);
  });

  it('never suggests a field name the input did not write', () => {
    const input = withGrant((g) => {
      g.fields.push({ name: 'secret' }, { name: 'secret_not' }, { name: 'last_nam' });
      g.rowFilter = { secret_notes: 'x', $or: [{ las_name: 'x' }] };
    });
    // Paths echo what the input wrote; messages must add no name of their own.
    const text = JSON.stringify(problemsOf(input).map((p) => p.message));
    for (const f of BOOKINGS.fields) {
      if (!['age', 'booked_at', 'person_id'].includes(f.name)) expect(text).not.toContain(f.name);
    }
    expect(text).not.toMatch(/did you mean/i);
  });
});

describe('validateAgreementContent: row filters', () => {
  const refusals: [string, unknown, string, (string | RegExp)?][] = [
    ['an empty filter', {}, 'grants[1].rowFilter', 'at least one'],
    ['a list', [{ age: 1 }], 'grants[1].rowFilter'],
    ['a string', 'age > 1', 'grants[1].rowFilter'],
    ['an unknown field', { ssn: '1' }, 'grants[1].rowFilter.ssn', 'not a field'],
    ['a SQL-looking field', { 'age; DROP TABLE x': 1 }, 'grants[1].rowFilter["age; DROP TABLE x"]'],
    ['an unknown top operator', { $where: 'true' }, 'grants[1].rowFilter.$where'],
    ['$not (not in the contract)', { $not: { age: 1 } }, 'grants[1].rowFilter.$not'],
    ['an unknown operator', { last_name: { $regex: '.*' } }, 'grants[1].rowFilter.last_name.$regex'],
    ['an operator without $', { age: { gt: 1 } }, 'grants[1].rowFilter.age.gt'],
    ['an empty operator object', { age: {} }, 'grants[1].rowFilter.age', 'at least one'],
    ['an empty $and', { $and: [] }, 'grants[1].rowFilter.$and'],
    ['an $or that is no list', { $or: { age: 1 } }, 'grants[1].rowFilter.$or'],
    ['an $and of non-objects', { $and: [1] }, 'grants[1].rowFilter.$and[0]'],
    ['an empty filter inside $or', { $or: [{}] }, 'grants[1].rowFilter.$or[0]'],
    ['null equality', { age: null }, 'grants[1].rowFilter.age', 'null'],
    ['null in an operator', { age: { $ne: null } }, 'grants[1].rowFilter.age.$ne', 'null'],
    ['null in a list', { age: { $in: [1, null] } }, 'grants[1].rowFilter.age.$in[1]', 'null'],
    ['an empty $in', { age: { $in: [] } }, 'grants[1].rowFilter.age.$in'],
    ['a $nin that is no list', { age: { $nin: 3 } }, 'grants[1].rowFilter.age.$nin'],
    [
      'a long $in',
      { age: { $in: Array.from({ length: 1001 }, (_, i) => i) } },
      'grants[1].rowFilter.age.$in',
    ],
    ['an array value', { age: [1, 2] }, 'grants[1].rowFilter.age'],
    ['a number for a STRING', { last_name: 5 }, 'grants[1].rowFilter.last_name', 'string'],
    ['a NUL in a STRING', { last_name: 'a\u0000' }, 'grants[1].rowFilter.last_name', 'NUL'],
    ['a fraction for an INTEGER', { age: 1.5 }, 'grants[1].rowFilter.age', 'integer'],
    ['an INTEGER beyond 32 bits', { age: 2 ** 31 }, 'grants[1].rowFilter.age', '32-bit'],
    ['a string for an INTEGER', { age: '18' }, 'grants[1].rowFilter.age'],
    ['NaN for a FLOAT', { score: NaN }, 'grants[1].rowFilter.score'],
    ['Infinity for a FLOAT', { score: { $lt: Infinity } }, 'grants[1].rowFilter.score.$lt'],
    ['a string for a BOOLEAN', { released: 'true' }, 'grants[1].rowFilter.released'],
    ['a range on a BOOLEAN', { released: { $gt: false } }, 'grants[1].rowFilter.released.$gt', 'BOOLEAN'],
    ['an impossible DATE', { dob: '2023-02-29' }, 'grants[1].rowFilter.dob'],
    ['a short DATE', { dob: '2023-2-1' }, 'grants[1].rowFilter.dob'],
    ['a DATE with a time', { dob: '2023-02-01T00:00:00Z' }, 'grants[1].rowFilter.dob'],
    ['year 0', { dob: '0000-01-01' }, 'grants[1].rowFilter.dob'],
    ['a DATETIME in words', { booked_at: 'yesterday' }, 'grants[1].rowFilter.booked_at'],
    ['a DATETIME at 24:00', { booked_at: '2024-01-01T24:00:00Z' }, 'grants[1].rowFilter.booked_at'],
    [
      'sub-millisecond precision',
      { booked_at: { $gte: '2024-01-01T00:00:00.0005Z' } },
      'grants[1].rowFilter.booked_at.$gte',
    ],
    ['a number for a DATETIME', { booked_at: 1700000000000 }, 'grants[1].rowFilter.booked_at'],
  ];

  it.each(refusals.map(([what, filter, path, message]) => [what, filter, path, message ?? null] as const))(
    'refuses %s',
    (_what, filter, path, message) => expectProblem(withFilter(filter), path, message ?? undefined),
  );

  it('refuses filters nested deeper than 8 levels, without recursing into them', () => {
    let filter: any = { age: 1 };
    for (let depth = 1; depth < 9; depth++) filter = { $and: [filter] };
    expect(
      problemsOf(withFilter(filter))
        .map((p) => p.message)
        .join(),
    ).toMatch(/8 levels/);
    let deep: any = { age: 1 };
    for (let depth = 1; depth < 100_000; depth++) deep = { $or: [deep] };
    expect(() => problemsOf(withFilter(deep))).not.toThrow();
  });

  it('refuses filters of more than 200 conditions', () => {
    const wide = { $or: Array.from({ length: 250 }, (_, i) => ({ age: i })) };
    expect(
      problemsOf(withFilter(wide))
        .map((p) => p.message)
        .join(),
    ).toMatch(/200/);
    // A million conditions are refused with a few problems, not one per condition (the walk stops).
    const huge = { $or: Array.from({ length: 1_000_000 }, () => ({ age: 1 })) };
    expect(problemsOf(withFilter(huge)).length).toBeLessThan(5);
  });

  it('accepts every operator on every type, values normalised', () => {
    const filter = {
      last_name: { $gt: 'A', $lte: 'M', $ne: "O'Brien" },
      age: { $in: [18, 19, -0], $nin: [99] },
      score: { $gte: -1.5, $lt: 1e300 },
      released: false,
      dob: { $lt: '2000-02-29' },
      booked_at: { $eq: '2024-05-01 13:45:00.120000+02:00' },
      $or: [{ person_id: 'p1' }, { $and: [{ age: { $eq: 7 } }, { released: { $ne: true } }] }],
    };
    const content = contentOf(withFilter(filter));
    expect(content.grants[0].rowFilter).toEqual({
      ...filter,
      age: { $in: [18, 19, 0], $nin: [99] },
      booked_at: { $eq: '2024-05-01T11:45:00.120Z' },
    });
  });

  it('accepts filters on fields that are not granted', () => {
    expect(contentOf(withFilter({ secret_note: 'x' })).grants[0].rowFilter).toEqual({ secret_note: 'x' });
  });
});

describe('contentHash', () => {
  /** The same JSON with the keys of every object in a random order. */
  const shuffled = (value: unknown, random: () => number): unknown => {
    if (Array.isArray(value)) return value.map((v) => shuffled(v, random));
    if (value && typeof value === 'object') {
      const keys = Object.keys(value).sort(() => random() - 0.5);
      return Object.fromEntries(keys.map((k) => [k, shuffled((value as any)[k], random)]));
    }
    return value;
  };

  it('is lowercase hex SHA-256 of the canonical JSON', () => {
    const content = contentOf(validInput());
    expect(contentHash(content)).toMatch(/^[0-9a-f]{64}$/);
    expect(canonicalJson({ b: [2, { d: 1, c: null }], a: 'x' })).toBe('{"a":"x","b":[2,{"c":null,"d":1}]}');
  });

  it('does not depend on key order at any level', () => {
    const content = contentOf(validInput());
    const hash = contentHash(content);
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        let state = seed;
        const random = () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
        expect(contentHash(shuffled(content, random) as any)).toBe(hash);
      }),
      { numRuns: 50 },
    );
  });

  it('is the same for equivalent inputs: order of lists, date forms, defaults spelled out', () => {
    const a = validInput();
    const b = validInput();
    b.grants.reverse();
    b.grants[1].fields.reverse();
    b.purposes = ['PROGRAM_EVALUATION', 'RECIDIVISM_EVALUATION'];
    b.validFrom = '2025-01-01T00:00:00Z';
    b.validUntil = new Date('2026-01-01T00:00:00Z');
    b.grants[1] = { ...b.grants[1], access: 'ROWS', requireConsent: false, minCellSize: 11, linkage: false };
    expect(contentHash(contentOf(b))).toBe(contentHash(contentOf(a)));
  });

  it('changes with any value', () => {
    const base = contentHash(contentOf(validInput()));
    const variants = [
      (i: any) => (i.title = 'Other'),
      (i: any) => (i.retentionDays = 366),
      (i: any) => (i.grants[1].fields[0].transform = 'RAW'),
      (i: any) => (i.grants[1].rowFilter.age.$gte = 19),
      (i: any) => (i.grants[1].minCellSize = 6),
      (i: any) => (i.validUntil = '2026-01-01T00:00:00.001Z'),
    ];
    for (const change of variants) {
      const input = validInput();
      change(input);
      expect(contentHash(contentOf(input))).not.toBe(base);
    }
  });
});
