import fc from 'fast-check';
import { consentPredicate, populationPredicates } from './population';

describe('consentPredicate', () => {
  it('is one purpose within the record consent (`,A,B,`), or any of several', () => {
    expect(consentPredicate(['RESEARCH'], 't')).toBe(`strpos("t"."_consent", ',RESEARCH,') > 0`);
    expect(consentPredicate(['A_1', 'B'], 'enrolments')).toBe(
      `(strpos("enrolments"."_consent", ',A_1,') > 0 OR strpos("enrolments"."_consent", ',B,') > 0)`,
    );
    expect(() => consentPredicate([], 't')).toThrow('one purpose at least');
  });

  it('writes in no purpose that is not a purpose code: nothing else reaches the SQL (fast-check)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (code) => {
        const valid = /^[A-Z][A-Z0-9_]*$/.test(code);
        if (valid) expect(consentPredicate([code], 't')).toBe(`strpos("t"."_consent", ',${code},') > 0`);
        else expect(() => consentPredicate([code], 't')).toThrow('a purpose code');
      }),
      { numRuns: 500, seed: 20261208 },
    );
    for (const hostile of [`X') > 0 OR TRUE --`, 'A,B', 'a', "O'NEIL", 'A%', '']) {
      expect(() => consentPredicate([hostile], 't')).toThrow();
    }
  });
});

describe('populationPredicates', () => {
  const withSubject = { subjectField: 'person' };
  it("is the row filter's alone where the grant does not require consent", () => {
    expect(populationPredicates('f', { requireConsent: false }, withSubject, ['A', 'B'], 'x')).toEqual(['f']);
    expect(populationPredicates(null, { requireConsent: false }, withSubject, ['A'], 'x')).toEqual([]);
  });

  it("adds each purpose's consenting population where it does, with or without a row filter", () => {
    expect(populationPredicates('f', { requireConsent: true }, withSubject, ['A', 'B'], 'x')).toEqual([
      'f',
      `f AND ${consentPredicate(['A'], 'x')}`,
      `f AND ${consentPredicate(['B'], 'x')}`,
    ]);
    expect(populationPredicates(null, { requireConsent: true }, withSubject, ['A'], 'x')).toEqual([
      consentPredicate(['A'], 'x'),
    ]);
    // A dataset without a subject field releases nothing under consent: no index for it.
    expect(populationPredicates('f', { requireConsent: true }, { subjectField: null }, ['A'], 'x')).toEqual([
      'f',
    ]);
  });
});
