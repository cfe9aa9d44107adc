import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { type CursorScope, openCursor, sealCursor } from './cursor';

describe('page cursors', () => {
  const scope: CursorScope = { secret: randomBytes(32), binding: '["a",1,"P","d",[],"w"]' };

  it('are as long whatever the length of the key they hold, up to keys far longer than usual', () => {
    // A position: an ordering value the caller sees, the random row id, the key (maybe unreleased).
    const lengths = new Set(
      Array.from(
        { length: 200 },
        (_, n) => sealCursor(scope, ['2020-01-01', '-4611686018427387904', 'K'.repeat(n)]).length,
      ),
    );
    expect([...lengths]).toEqual([sealCursor(scope, ['2020-01-01', '1', '']).length]);
    // Far longer keys say only which power of two their position is under.
    const long = (n: number) => sealCursor(scope, ['1', 'é'.repeat(n)]).length;
    expect(long(200)).toBe(long(250));
    expect(long(300)).toBeGreaterThan(long(250));
  });

  it('open to exactly the values they were sealed with, for this query only (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.option(fc.string({ unit: 'binary', maxLength: 300 }), { nil: null }), { maxLength: 6 }),
        (values) => {
          const cursor = sealCursor(scope, values);
          expect(openCursor(scope, cursor)).toEqual(values);
          expect(sealCursor(scope, values)).toBe(cursor);
          expect(openCursor({ ...scope, binding: `${scope.binding} ` }, cursor)).toBeNull();
          const flipped = Buffer.from(cursor, 'base64url');
          flipped[flipped.length - 1] ^= 1;
          expect(openCursor(scope, flipped.toString('base64url'))).toBeNull();
        },
      ),
    );
  });
});
