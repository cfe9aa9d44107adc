import { GraphQLObjectType, GraphQLSchema, GraphQLString, parse } from 'graphql';
import { DocumentCache } from './request-analysis';

const schema = () =>
  new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: { a: { type: GraphQLString } } }),
  });

describe('DocumentCache', () => {
  it('keeps documents per schema object: one validated under another schema is never found', () => {
    const cache = new DocumentCache();
    const first = schema();
    const second = schema();
    const entry = cache.set(first, '{ a }', parse('{ a }'));
    expect(cache.get(first, '{ a }')).toBe(entry);
    expect(cache.get(second, '{ a }')).toBeUndefined();
  });

  it('forgets the least recently used queries beyond its budget of characters', () => {
    const cache = new DocumentCache(30, 20);
    const s = schema();
    const q = (n: number) => `{ a } # ${String(n).padStart(2, '0')}`; // 10 characters each
    cache.set(s, q(1), parse(q(1)));
    cache.set(s, q(2), parse(q(2)));
    cache.set(s, q(3), parse(q(3)));
    expect(cache.get(s, q(1))).toBeDefined(); // now the most recently used
    cache.set(s, q(4), parse(q(4)));
    expect(cache.get(s, q(2))).toBeUndefined();
    expect([1, 3, 4].map((n) => cache.get(s, q(n)) !== undefined)).toEqual([true, true, true]);
  });

  it('does not keep queries longer than its limit', () => {
    const cache = new DocumentCache(1000, 20);
    const s = schema();
    const long = `{ a } ${'#'.repeat(30)}`;
    expect(cache.set(s, long, parse(long)).document).toBeDefined();
    expect(cache.get(s, long)).toBeUndefined();
  });
});
