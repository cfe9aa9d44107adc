import fc from 'fast-check';
import {
  BLOCKING_RULES,
  EM_RULES,
  TRAINING_RULES,
  deletionNeighbourhood,
  houseNumberOf,
  initialsOf,
  mixKey,
  ruleKeys,
  sameKey,
} from './blocking';
import { FIRST, LAST, LEVELS, decodePattern, textOneTypo } from './comparisons';
import { emptyIdentityValues } from './identity-fields';
import type { IdentityValues } from './normalise';
import { normaliseChunk } from './pipeline';
import { RecordBatch } from './record-batch';
import { PartitionScorer } from './scorer';

const identity = fc.record<IdentityValues>({
  firstName: fc.constantFrom('Robert', 'Bob', 'María', 'Mari', 'José', 'John', null),
  middleName: fc.constantFrom('Ann', 'A.', 'Lee', null),
  lastName: fc.constantFrom('Smith', 'Smyth', 'García', 'García-López', 'López', null),
  dateOfBirth: fc.constantFrom('1990-03-04', '1990-04-03', '1991-03-04', '1985-12-12', null),
  sex: fc.constantFrom('M', 'F', null),
  ssn: fc.constantFrom('123-45-6789', '123456789', '987-65-4321', null),
  zip: fc.constantFrom('93301', '93305', '3012 AB', '3021AB', null),
  idNumber: fc.constantFrom('AB123456', 'ab-123456', 'AB123465', 'AB12456', null),
  address: fc.constantFrom('12 Main St', '12 Main Street', '21 Main St', null),
  city: fc.constantFrom('Bakersfield', 'Delano', null),
});

describe('blocking', () => {
  it('gives a date and its day/month swap one key, and a missing component no key', () => {
    const batch = normaliseChunk(
      0,
      0,
      [
        {
          firstName: 'Ann',
          middleName: null,
          lastName: 'Lee',
          dateOfBirth: '1990-03-04',
          sex: null,
          ssn: null,
          zip: null,
          idNumber: null,
          address: null,
          city: null,
        },
        {
          firstName: 'Ann',
          middleName: null,
          lastName: 'Lee',
          dateOfBirth: '1990-04-03',
          sex: null,
          ssn: null,
          zip: null,
          idNumber: null,
          address: null,
          city: null,
        },
        {
          firstName: 'Ann',
          middleName: null,
          lastName: 'Lee',
          dateOfBirth: null,
          sex: null,
          ssn: null,
          zip: null,
          idNumber: null,
          address: null,
          city: null,
        },
      ],
      4,
    ).records;
    const keys = ruleKeys(batch);
    expect(sameKey(keys[0], 0, 1)).toBe(true);
    expect(keys[0].has[2]).toBe(0);
    expect(sameKey(keys[0], 0, 2)).toBe(false);
    expect(Number.isNaN(mixKey(5, 0))).toBe(true);
    expect(mixKey(1, 2)).not.toBe(mixKey(2, 1));
    expect(mixKey(2 ** 40 + 1)).toBeLessThan(2 ** 52);
  });

  it('gives an identifier keys that one typo away shares: its deletion neighbourhood', () => {
    expect(deletionNeighbourhood('AB123')).toEqual(['AB123', 'B123', 'A123', 'AB23', 'AB13', 'AB12']);
    expect(deletionNeighbourhood('A111')).toEqual(['A111', '111', 'A11']);
    expect(deletionNeighbourhood('AB1')).toEqual([]);
    const text = fc.stringMatching(/^[A-Z0-9]{4,10}$/);
    const typo = fc.tuple(text, fc.nat(), fc.constantFrom('1', 'Z'), fc.integer({ min: 0, max: 3 }));
    fc.assert(
      fc.property(typo, ([x, at, ch, kind]) => {
        const k = at % x.length;
        const y = [
          x.slice(0, k) + ch + x.slice(k + 1),
          k < x.length - 1 ? x.slice(0, k) + x[k + 1] + x[k] + x.slice(k + 2) : x,
          x.slice(0, k) + ch + x.slice(k),
          x.length > 4 ? x.slice(0, k) + x.slice(k + 1) : x,
        ][kind];
        // Every value one typo away (as the comparison level sees it) shares a key.
        if (x === y || textOneTypo(x, y)) {
          const keys = new Set(deletionNeighbourhood(x));
          expect(deletionNeighbourhood(y).some((key) => keys.has(key))).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('trains EM on names and postal code, whatever the dates, and scores nothing under it', () => {
    const row = (dateOfBirth: string) => ({
      ...emptyIdentityValues(),
      firstName: 'Ana',
      lastName: 'Lopez',
      dateOfBirth,
      zip: '93301',
    });
    const batch = normaliseChunk(0, 0, [row('1990-03-04'), row('1971-11-23')], 1).parts.get(0)!;
    const scorer = new PartitionScorer(batch);
    const counts = scorer.countPatternsByRule();
    expect(counts).toHaveLength(EM_RULES.length);
    const training = counts[EM_RULES.indexOf(TRAINING_RULES[0])];
    // One pair, its names and postal code masked, its dates (different) kept.
    expect([...training.values()]).toEqual([1]);
    expect(decodePattern([...training.keys()][0]).slice(0, 3)).toEqual([LEVELS[FIRST], LEVELS[LAST], 4]);
    const pairs = scorer.pairs(() => undefined);
    let step = pairs.next();
    while (!step.done) step = pairs.next();
    expect(step.value.pairsByRule).toHaveLength(BLOCKING_RULES.length);
  });

  it('keys names by both initials, in either order, and street lines by their house number', () => {
    expect(initialsOf('minh', 'nguyen')).toBe(initialsOf('nguyen', 'minh'));
    expect(initialsOf('minh', 'nguyen')).not.toBe(initialsOf('minh', 'tran'));
    expect(initialsOf('', 'nguyen')).toBe(0);
    expect(houseNumberOf('molenstraat 119')).toBe('119');
    expect(houseNumberOf('119 a main st apt 5')).toBe('119');
    expect(houseNumberOf('main st')).toBe('');
  });

  it('compares every pair that shares any rule key exactly once, across chunks and partitions', () => {
    fc.assert(
      fc.property(
        fc.array(identity, { minLength: 2, maxLength: 60 }),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 5, max: 40 }),
        (rows, partitions, chunkSize) => {
          const chunks: RecordBatch[] = [];
          const parts = new Map<number, RecordBatch[]>();
          for (let start = 0; start < rows.length; start += chunkSize) {
            const chunk = normaliseChunk(chunks.length, 0, rows.slice(start, start + chunkSize), partitions);
            chunks.push(chunk.records);
            for (const [p, batch] of chunk.parts) parts.set(p, [...(parts.get(p) ?? []), batch]);
          }
          const compared: string[] = [];
          for (const batches of parts.values()) {
            const scorer = new PartitionScorer(RecordBatch.concat(batches));
            const ids = scorer.prepared.batch.recordId;
            const steps = scorer.pairs((i, j) =>
              compared.push([ids[i], ids[j]].sort((a, b) => a - b).join('-')),
            );
            while (!steps.next().done) {
              // drain
            }
          }
          // Brute force: every pair of records with some rule key in common.
          const all = RecordBatch.concat(chunks);
          const keys = ruleKeys(all);
          const expected: string[] = [];
          for (let i = 0; i < all.size; i++) {
            for (let j = i + 1; j < all.size; j++) {
              const candidate = BLOCKING_RULES.some((rule, r) => {
                if (!sameKey(keys[r], i, j)) return false;
                if (rule.withoutDob && all.year[i] !== 0 && all.year[j] !== 0) return false;
                const sameCodes =
                  all.groupHash[i] === all.groupHash[j] && all.codeHash[i] === all.codeHash[j];
                return !rule.namesDiffer || !sameCodes;
              });
              if (candidate) {
                expected.push([all.recordId[i], all.recordId[j]].sort((a, b) => a - b).join('-'));
              }
            }
          }
          expect(compared.length).toBe(new Set(compared).size);
          expect(compared.sort()).toEqual(expected.sort());
        },
      ),
      { numRuns: 60 },
    );
  });
});
