import fc from 'fast-check';
import { AuditAction } from './audit-action.enum';
import {
  type AuditEventContent,
  ChainChecker,
  type ChainHead,
  type ChainedAuditEvent,
  GENESIS_HASH,
  canonicalJson,
  checkChain,
  contentOf,
  exactJsonNumbers,
  hashEvent,
  isoFromMicros,
  type JsonValue,
  ReleaseDigest,
  releaseDigest,
  sealEvent,
  storableText,
  toStorableJson,
} from './audit-chain';

type Content = Omit<AuditEventContent, 'seq'>;

const SAMPLE: Content = {
  at: '2025-11-23T00:00:00.123000Z',
  actorUserId: '6f1c2a4e-8b1d-4c3e-9f2a-0d5e7b8c9a10',
  actorAgencyId: '0b7a5c3d-2e1f-4a6b-8c9d-1e2f3a4b5c6d',
  action: AuditAction.QUERY,
  decision: 'ALLOW',
  reason: null,
  purpose: 'RECIDIVISM_EVALUATION',
  datasetId: '9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d',
  agreementId: '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
  agreementVersion: 2,
  fields: ['booking_date_year', 'charge'],
  rowCount: 42,
  details: { keys: ['b-1', 'b-2'] },
};

/** Seals contents into a chain numbered from 1 and returns it with its head. */
function buildChain(contents: Content[]): { events: ChainedAuditEvent[]; head: ChainHead } {
  let prev = GENESIS_HASH;
  const events = contents.map((content, i) => {
    const event = sealEvent(prev, { ...content, seq: i + 1 });
    prev = event.hash;
    return event;
  });
  return { events, head: { seq: events.length, hash: prev } };
}

describe('releaseDigest', () => {
  it("is the lowercase hex SHA-256 of the list's text, as PostgreSQL writes a bigint[]", () => {
    // sha256("{1,2,3}"), computed independently (coreutils' sha256sum).
    expect(releaseDigest('{1,2,3}')).toBe('b1c80beb517ac656a072b954406109cf2608b77ac4190d0acf288f43b0950bda');
  });

  it('is the same digest when the list is written a part at a time, however it is cut', () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { minLength: 1, maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (rids, cuts) => {
          const text = `{${rids.join(',')}}`;
          const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
          const digest = new ReleaseDigest();
          let from = 0;
          for (const to of [...at, text.length]) {
            digest.add(text.slice(from, to));
            from = to;
          }
          expect(digest.digest()).toBe(releaseDigest(text));
        },
      ),
      { numRuns: 200, seed: 20261208 },
    );
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every depth, keeps array order and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, 1, { z: null, y: true }], c: 'x' } })).toBe(
      '{"a":{"c":"x","d":[3,1,{"y":true,"z":null}]},"b":1}',
    );
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
  });

  it('sorts keys by UTF-16 code units and writes numbers and strings as JSON.stringify does', () => {
    expect(canonicalJson({ é: 1, z: 2, Z: 3, '10': 4, '9': 5 })).toBe('{"10":4,"9":5,"Z":3,"z":2,"é":1}');
    expect(canonicalJson([1e21, 0.1, -0, 5e-324, 'a"\\\n\u0001'])).toBe(
      '[1e+21,0.1,0,5e-324,"a\\"\\\\\\n\\u0001"]',
    );
  });

  it('refuses what JSON cannot hold rather than hashing less than it was given', () => {
    for (const bad of [undefined, NaN, Infinity, 1n, () => 1, new Date(0), { a: undefined }, [undefined]]) {
      expect(() => canonicalJson(bad)).toThrow(TypeError);
    }
  });
});

describe('storable values', () => {
  it('replaces NUL and unpaired surrogates, which PostgreSQL cannot store as given', () => {
    expect(storableText('a\u0000b')).toBe('a\uFFFDb');
    expect(storableText('x\uD800y\uDC00')).toBe('x\uFFFDy\uFFFD');
    expect(storableText('😀 ok')).toBe('😀 ok');
  });

  it('turns details into the JSON jsonb gives back', () => {
    expect(
      toStorableJson({
        when: new Date(0),
        gone: undefined,
        n: NaN,
        z: -0,
        list: ['\u0000', { 'k\uD800': 1 }],
      }),
    ).toEqual({ when: '1970-01-01T00:00:00.000Z', n: null, z: 0, list: ['\uFFFD', { 'k\uFFFD': 1 }] });
    expect(() => toStorableJson(undefined)).toThrow(TypeError);
  });
});

describe('exactJsonNumbers', () => {
  it('accepts every number JavaScript writes, as jsonb writes it back', () => {
    // jsonb prints numbers as exact decimals, never with an exponent.
    for (const text of [
      '{"a": 0, "b": -3, "c": 0.1, "d": 0.30000000000000004, "e": 0.0000001, "f": 1000000000000000000000}',
      '{"g": 123456789012345680000, "h": -1.7976931348623157e308, "i": 5e-324, "j": [1.5, 2]}',
      '{"s": "9007199254740993 5.0000000000000001 \\" 1.0", "k": null, "t": true}',
    ]) {
      expect({ text, exact: exactJsonNumbers(text) }).toEqual({ text, exact: true });
    }
  });

  it('refuses a number JavaScript reads as another, which would hash as that other', () => {
    for (const text of [
      '{"links": 5.0000000000000001}',
      '{"big": 9007199254740993}',
      '{"a": [1, 2, 0.30000000000000001]}',
      '{"n": 1e400}',
    ]) {
      expect({ text, exact: exactJsonNumbers(text) }).toEqual({ text, exact: false });
    }
    // Trailing zeros are the same number; jsonb keeps them only when they were written.
    expect(exactJsonNumbers('{"a": 1.0, "b": 100}')).toBe(true);
  });
});

describe('isoFromMicros', () => {
  it('writes microseconds since the epoch as ISO 8601 UTC with six fractional digits', () => {
    expect(isoFromMicros('0')).toBe('1970-01-01T00:00:00.000000Z');
    expect(isoFromMicros('1763856000123456')).toBe('2025-11-23T00:00:00.123456Z');
    expect(isoFromMicros(-1n)).toBe('1969-12-31T23:59:59.999999Z');
    expect(isoFromMicros('-62135596800000000')).toBe('0001-01-01T00:00:00.000000Z');
  });

  it('is one-to-one, so no change of a stored timestamp escapes the hash', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 17n), max: 10n ** 17n }), (micros) => {
        expect(isoFromMicros(micros)).not.toBe(isoFromMicros(micros + 1n));
        const iso = isoFromMicros(micros)!;
        const back = BigInt(Date.parse(iso.replace(/(\.\d{3})\d{3}Z$/, '$1Z'))) * 1000n;
        expect(back + BigInt(iso.slice(-4, -1))).toBe(micros);
      }),
    );
  });

  it('answers null for what JavaScript dates cannot hold', () => {
    expect(isoFromMicros('9224318015999999999')).toBeNull();
    expect(isoFromMicros('not a number')).toBeNull();
  });
});

describe('hashEvent', () => {
  // Stored chains depend on this exact format: a change here breaks every existing log. The value was
  // computed apart from this code: printf '%s\n%s' <64 zeros> '<the canonical JSON below>' | sha256sum
  it('keeps its format: sha256 of the previous hash, a newline and the canonical content', () => {
    expect(canonicalJson(contentOf({ ...SAMPLE, seq: 1 }))).toBe(
      '{"action":"QUERY","actorAgencyId":"0b7a5c3d-2e1f-4a6b-8c9d-1e2f3a4b5c6d",' +
        '"actorUserId":"6f1c2a4e-8b1d-4c3e-9f2a-0d5e7b8c9a10","agreementId":"1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",' +
        '"agreementVersion":2,"at":"2025-11-23T00:00:00.123000Z","datasetId":"9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",' +
        '"decision":"ALLOW","details":{"keys":["b-1","b-2"]},"fields":["booking_date_year","charge"],' +
        '"purpose":"RECIDIVISM_EVALUATION","reason":null,"rowCount":42,"seq":1}',
    );
    expect(hashEvent(GENESIS_HASH, { ...SAMPLE, seq: 1 })).toBe(
      '2cf889a814fe62120637c81a2ec841266179318fdd05a0d62e091069b850271f',
    );
  });

  it('covers every stored field, and nothing else an event carries', () => {
    const base = { ...SAMPLE, seq: 7 };
    const hash = hashEvent(GENESIS_HASH, base);
    const withExtra: AuditEventContent & { extra: string } = { ...base, extra: 'ignored' };
    expect(hashEvent(GENESIS_HASH, withExtra)).toBe(hash);
    for (const key of Object.keys(contentOf(base)) as (keyof AuditEventContent)[]) {
      const changed: AuditEventContent = { ...base, [key]: tamperValue(key, base[key]) };
      expect({ key, same: hashEvent(GENESIS_HASH, changed) === hash }).toEqual({ key, same: false });
    }
    expect(hashEvent('1'.repeat(64), base)).not.toBe(hash);
  });
});

describe('checkChain', () => {
  const { events, head } = buildChain([SAMPLE, SAMPLE, { ...SAMPLE, decision: 'DENY' }, SAMPLE]);

  it('accepts an intact chain and an empty log', () => {
    expect(checkChain(events, head)).toEqual({ valid: true, checked: 4, firstBrokenSeq: null });
    expect(checkChain([], { seq: 0, hash: GENESIS_HASH })).toEqual({
      valid: true,
      checked: 0,
      firstBrokenSeq: null,
    });
  });

  it('finds events the head does not count, and a head that counts missing ones', () => {
    expect(checkChain(events, { seq: 3, hash: events[2].hash })).toEqual({
      valid: false,
      checked: 3,
      firstBrokenSeq: 4,
    });
    // Even when the forger also wrote its hash into the head but could not move the head's seq.
    expect(checkChain(events, { seq: 3, hash: events[3].hash })).toEqual({
      valid: false,
      checked: 3,
      firstBrokenSeq: 4,
    });
    expect(checkChain([], { seq: 2, hash: events[1].hash })).toEqual({
      valid: false,
      checked: 0,
      firstBrokenSeq: 1,
    });
  });

  it('finds a last event replaced by a well-linked forgery through the head', () => {
    const forged = sealEvent(events[2].hash, { ...events[3], rowCount: 0 });
    expect(checkChain([...events.slice(0, 3), forged], head)).toEqual({
      valid: false,
      checked: 3,
      firstBrokenSeq: 4,
    });
  });

  it('finds an event changed and resealed by someone who knows the format, through the next link', () => {
    const resealed = sealEvent(events[1].prevHash, { ...events[1], reason: 'nothing to see' });
    expect(checkChain([events[0], resealed, ...events.slice(2)], head)).toEqual({
      valid: false,
      checked: 2,
      firstBrokenSeq: 3,
    });
  });

  it('treats content that cannot be hashed as broken instead of throwing', () => {
    const odd = { ...events[1], details: { n: NaN } } as unknown as ChainedAuditEvent;
    expect(checkChain([events[0], odd, ...events.slice(2)], head).firstBrokenSeq).toBe(2);
  });

  it('finds a tail cut off with the head rewound only against a head written down earlier', () => {
    const cut = events.slice(0, 2);
    const rewound = { seq: 2, hash: events[1].hash };
    // audit_head lives beside the events: rewound with them, it vouches for the shortened log.
    expect(checkChain(cut, rewound)).toEqual({ valid: true, checked: 2, firstBrokenSeq: null });
    expect(checkChain(cut, rewound, [head])).toEqual({ valid: false, checked: 2, firstBrokenSeq: 3 });
    expect(checkChain([], { seq: 0, hash: GENESIS_HASH }, [{ seq: 1, hash: events[0].hash }])).toEqual({
      valid: false,
      checked: 0,
      firstBrokenSeq: 1,
    });
  });

  it('finds a log resealed from some event on only against a head written down earlier', () => {
    const { events: resealed, head: newHead } = buildChain([
      SAMPLE,
      { ...SAMPLE, rowCount: 0 },
      { ...SAMPLE, decision: 'DENY' },
      SAMPLE,
    ]);
    expect(checkChain(resealed, newHead)).toEqual({ valid: true, checked: 4, firstBrokenSeq: null });
    // Resealed from event 2 on: a head written down at 3 or 4 no longer matches; one at 1 still does.
    expect(checkChain(resealed, newHead, [{ seq: 3, hash: events[2].hash }])).toEqual({
      valid: false,
      checked: 2,
      firstBrokenSeq: 3,
    });
    expect(checkChain(resealed, newHead, [{ seq: 1, hash: events[0].hash }, head])).toEqual({
      valid: false,
      checked: 3,
      firstBrokenSeq: 4,
    });
    expect(checkChain(resealed, newHead, [{ seq: 1, hash: events[0].hash }])).toEqual({
      valid: true,
      checked: 4,
      firstBrokenSeq: null,
    });
  });

  it('accepts every head of the genuine log, and finds a head no log can hold', () => {
    const heads = [{ seq: 0, hash: GENESIS_HASH }, ...events.map((e) => ({ seq: e.seq, hash: e.hash }))];
    expect(checkChain(events, head, heads)).toEqual({ valid: true, checked: 4, firstBrokenSeq: null });
    expect(checkChain(events, head, [{ seq: 0, hash: events[0].hash }]).firstBrokenSeq).toBe(1);
    // Two different hashes for one seq: the log holds at most one of them.
    expect(
      checkChain(events, head, [
        { seq: 2, hash: events[1].hash },
        { seq: 2, hash: events[2].hash },
      ]).firstBrokenSeq,
    ).toBe(2);
  });

  it('stops reading at the first break', () => {
    const checker = new ChainChecker(head);
    expect(checker.push(events[0])).toBe(true);
    expect(checker.push(events[2])).toBe(false);
    expect(checker.push(events[1])).toBe(false);
    expect(checker.finish()).toEqual({ valid: false, checked: 1, firstBrokenSeq: 2 });
  });
});

// ---- property-based: random chains, random tampering ----

const UUID_A = '00000000-0000-4000-8000-00000000000a';
const UUID_B = '00000000-0000-4000-8000-00000000000b';

/** A different value for a field, whatever it held. */
function tamperValue(key: string, old: unknown): unknown {
  switch (key) {
    case 'seq':
    case 'agreementVersion':
    case 'rowCount':
      return old === null ? 0 : (old as number) + 1;
    case 'at': {
      const text = old as string;
      return `${text.slice(0, -2)}${(Number(text.at(-2)) + 1) % 10}Z`;
    }
    case 'actorUserId':
    case 'actorAgencyId':
    case 'datasetId':
    case 'agreementId':
      return old === UUID_A ? UUID_B : UUID_A;
    case 'action':
      return `${old as string}X`;
    case 'decision':
      return old === 'ALLOW' ? 'DENY' : 'ALLOW';
    case 'reason':
    case 'purpose':
      return old === null ? '' : `${old as string}x`;
    case 'fields':
      return old === null ? [] : [...(old as string[]), 'x'];
    case 'details':
      return old === null ? {} : null;
    case 'prevHash':
    case 'hash':
      return `${(old as string)[0] === '0' ? '1' : '0'}${(old as string).slice(1)}`;
    default:
      throw new Error(`no tamper for ${key}`);
  }
}

const TAMPERABLE = [
  'at',
  'actorUserId',
  'actorAgencyId',
  'action',
  'decision',
  'reason',
  'purpose',
  'datasetId',
  'agreementId',
  'agreementVersion',
  'fields',
  'rowCount',
  'details',
  'prevHash',
  'hash',
] as const;

const nullable = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null });
const contentArb: fc.Arbitrary<Content> = fc.record({
  at: fc.bigInt({ min: 1_500_000_000_000_000n, max: 2_500_000_000_000_000n }).map((m) => isoFromMicros(m)!),
  actorUserId: nullable(fc.uuid()),
  actorAgencyId: nullable(fc.uuid()),
  action: fc.constantFrom(...Object.values(AuditAction)),
  decision: fc.constantFrom('ALLOW', 'DENY'),
  reason: nullable(fc.string()),
  purpose: nullable(fc.string({ unit: 'binary' })),
  datasetId: nullable(fc.uuid()),
  agreementId: nullable(fc.uuid()),
  agreementVersion: nullable(fc.integer({ min: 1, max: 1000 })),
  fields: nullable(fc.array(fc.string(), { maxLength: 5 })),
  rowCount: nullable(fc.nat()),
  details: nullable(
    fc
      .dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 })
      .map((d) => d as { [key: string]: JsonValue }),
  ),
});

/** A tampering a DBA could do to the stored rows; indices are reduced modulo the log's length. */
type Tamper =
  | { kind: 'modify'; at: number; field: (typeof TAMPERABLE)[number] }
  | { kind: 'delete'; at: number }
  | { kind: 'swap'; at: number; other: number }
  | { kind: 'move'; at: number; to: number }
  | { kind: 'truncate'; count: number }
  | { kind: 'insert'; at: number; forged: Content }
  | { kind: 'insertResealed'; at: number; forged: Content };

const naiveTamperArb: fc.Arbitrary<Tamper> = fc.oneof(
  fc.record({ kind: fc.constant('modify' as const), at: fc.nat(), field: fc.constantFrom(...TAMPERABLE) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const), at: fc.nat(), other: fc.nat() }),
  fc.record({ kind: fc.constant('move' as const), at: fc.nat(), to: fc.nat() }),
  fc.record({ kind: fc.constant('truncate' as const), count: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), forged: contentArb }),
);
const tamperArb: fc.Arbitrary<Tamper> = fc.oneof(
  naiveTamperArb,
  fc.record({ kind: fc.constant('insertResealed' as const), at: fc.nat(), forged: contentArb }),
);

/** Applies a tampering; returns the rows as stored afterwards (seq order) and the expected verdict. */
function applyTamper(
  rows: ChainedAuditEvent[],
  tamper: Tamper,
): { rows: ChainedAuditEvent[]; expected: number | null } {
  const n = rows.length;
  const out = rows.map((r) => ({ ...r }));
  const renumber = (list: ChainedAuditEvent[]) => list.map((r, i) => ({ ...r, seq: i + 1 }));
  switch (tamper.kind) {
    case 'modify': {
      const i = tamper.at % n;
      out[i] = { ...out[i], [tamper.field]: tamperValue(tamper.field, out[i][tamper.field]) };
      return { rows: out, expected: i + 1 };
    }
    case 'delete': {
      const i = tamper.at % n;
      out.splice(i, 1);
      return { rows: out, expected: i + 1 };
    }
    case 'swap': {
      // Everything but seq changes place, as `UPDATE ... SET (all columns) = (the other row's)`.
      const [i, j] = [tamper.at % n, tamper.other % n].sort((a, b) => a - b);
      if (i === j) return { rows: out, expected: null };
      out[i] = { ...rows[j], seq: rows[i].seq };
      out[j] = { ...rows[i], seq: rows[j].seq };
      return { rows: out, expected: i + 1 };
    }
    case 'move': {
      const [from, to] = [tamper.at % n, tamper.to % n];
      if (from === to) return { rows: out, expected: null };
      const [event] = out.splice(from, 1);
      out.splice(to, 0, event);
      return { rows: renumber(out), expected: Math.min(from, to) + 1 };
    }
    case 'truncate': {
      const count = (tamper.count % n) + 1;
      return { rows: out.slice(0, n - count), expected: n - count + 1 };
    }
    case 'insert': {
      const i = tamper.at % (n + 1);
      const forged = {
        ...contentOf({ ...tamper.forged, seq: i + 1 }),
        prevHash: GENESIS_HASH,
        hash: 'f'.repeat(64),
      };
      out.splice(i, 0, forged);
      return { rows: renumber(out), expected: i + 1 };
    }
    case 'insertResealed': {
      // The forger knows the format and links its event well; the event after it no longer links,
      // and one appended at the end is more than the head counts.
      const i = tamper.at % (n + 1);
      const forged = sealEvent(i === 0 ? GENESIS_HASH : rows[i - 1].hash, { ...tamper.forged, seq: i + 1 });
      out.splice(i, 0, forged);
      return { rows: renumber(out), expected: i === n ? n + 1 : i + 2 };
    }
  }
}

/** The stored form of a row, to compare logs position by position. */
const rowText = (row: ChainedAuditEvent) =>
  canonicalJson({ ...contentOf(row), p: row.prevHash, h: row.hash });

describe('checkChain against random tampering (fast-check)', () => {
  it('accepts every untampered chain', () => {
    fc.assert(
      fc.property(fc.array(contentArb, { maxLength: 25 }), (contents) => {
        const { events, head } = buildChain(contents);
        expect(checkChain(events, head)).toEqual({
          valid: true,
          checked: contents.length,
          firstBrokenSeq: null,
        });
      }),
    );
  });

  it('detects any one tampering at the seq where it happened', () => {
    fc.assert(
      fc.property(fc.array(contentArb, { minLength: 1, maxLength: 25 }), tamperArb, (contents, tamper) => {
        const { events, head } = buildChain(contents);
        const { rows, expected } = applyTamper(events, tamper);
        const result = checkChain(rows, head);
        if (expected === null) {
          expect(result.valid).toBe(true);
        } else {
          expect(result).toEqual({ valid: false, checked: expected - 1, firstBrokenSeq: expected });
        }
      }),
      { numRuns: 500 },
    );
  });

  it('reports, after several tamperings, the first position where the log departs from the original', () => {
    fc.assert(
      fc.property(
        fc.array(contentArb, { minLength: 1, maxLength: 20 }),
        fc.array(naiveTamperArb, { minLength: 1, maxLength: 5 }),
        (contents, tampers) => {
          const { events, head } = buildChain(contents);
          let rows = events;
          for (const tamper of tampers) if (rows.length) rows = applyTamper(rows, tamper).rows;
          const original = events.map(rowText);
          const stored = rows.map(rowText);
          let common = 0;
          while (common < stored.length && common < original.length && stored[common] === original[common]) {
            common += 1;
          }
          const untouched = common === stored.length && common === original.length;
          expect(checkChain(rows, head)).toEqual(
            untouched
              ? { valid: true, checked: original.length, firstBrokenSeq: null }
              : { valid: false, checked: common, firstBrokenSeq: common + 1 },
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
