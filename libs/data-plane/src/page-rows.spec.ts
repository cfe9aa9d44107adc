import { releaseDigest } from '@broker/audit';
import { openCursor } from './cursor';
import { NodeJsonWriter } from './node-json';
import fc from 'fast-check';
import { PageBuilder, type PageRow, pageRows } from './page-sql';

const scope = { secret: Buffer.alloc(32, 7), binding: '["agreement",1,"P","dataset",[["id","ASC"]],"x"]' };
const statement = {
  writer: new NodeJsonWriter([{ key: 'id', type: 'String' as const }], ['c0']),
  positionColumns: ['p0', 'rid'],
};
const row = (i: number): PageRow => ({ c0: `k${i}`, p0: `k${i}`, rid: String(1000 + i) });

describe('pageRows', () => {
  it('records the returned rows at once, and writes the page from them, not the row past it', () => {
    const read = pageRows({ first: 2, cursor: scope }, statement, [row(1), row(2), row(3)]);
    // What the release records is known before the page is written.
    expect(read.rowCount).toBe(2);
    expect(read.rids).toBe('{1001,1002}');
    expect(read.releaseDigest).toBe(releaseDigest('{1001,1002}'));
    const page = read.write();
    expect(page.nodes.toString()).toBe('[{"id":"k1"},{"id":"k2"}]');
    expect(page.pageInfo.hasNextPage).toBe(true);
    expect(openCursor(scope, page.pageInfo.endCursor)).toEqual(['k2', '1002']);
    expect(page.rids).toBe('{1001,1002}');
  });

  it('says there is no next page, and no cursor, when the statement returned no more rows', () => {
    expect(pageRows({ first: 2, cursor: scope }, statement, [row(1)]).write().pageInfo).toEqual({
      hasNextPage: false,
      endCursor: expect.any(String) as string,
    });
    const empty = pageRows({ first: 2, cursor: scope }, statement, []);
    expect(empty.rids).toBeNull();
    expect(empty.releaseDigest).toBeNull();
    const written = empty.write();
    expect(written.nodes.toString()).toBe('[]');
    expect(written.pageInfo).toEqual({ hasNextPage: false, endCursor: null });
  });

  it('is written once: the rows are let go after it, so a second write fails rather than answer anything', () => {
    const read = pageRows({ first: 1, cursor: scope }, statement, [row(1)]);
    expect(read.write().nodes.toString()).toBe('[{"id":"k1"}]');
    expect(() => read.write()).toThrow('a page is written once');
  });
});

describe('PageBuilder', () => {
  // Three values of each kind a node holds, the strings with what JSON escapes and what it need not.
  const writer = new NodeJsonWriter(
    [
      { key: 'name', type: 'String' as const },
      { key: 'score', type: 'Float' as const },
      { key: 'at', type: 'DateTime' as const },
    ],
    ['c0', 'c1', 'c2'],
  );
  const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constant('a"b\\c\n\u0000\ud800'));
  const float = fc.oneof(
    fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
    fc.constantFrom('NaN', 'Infinity', '-Infinity'),
  );
  const instant = fc.constantFrom(
    '2024-02-29 23:59:59.123456',
    '0001-01-01 00:00:00',
    '2024-01-01 00:00:00 BC',
  );
  const rowOf = fc.record({
    c0: fc.option(text, { nil: null }),
    c1: fc.option(float, { nil: null }),
    c2: fc.option(instant, { nil: null }),
    p0: fc.string(),
    rid: fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }).map(String),
  });
  // Page sizes at and around the batches it writes as rows arrive (64 rows).
  const size = fc.constantFrom(1, 2, 63, 64, 65, 127, 128, 129, 200);

  it('writes, as rows arrive, the very bytes and release the page written from all its rows has', () => {
    fc.assert(
      fc.property(
        size,
        fc.array(rowOf, { maxLength: 260, size: 'max' }),
        fc.boolean(),
        (first, rows, recorded) => {
          const read = recorded ? rows : rows.map(({ rid: _rid, ...rest }) => rest);
          const plan = { first, cursor: scope };
          const stmt = { writer, positionColumns: ['p0'] };
          const eager = new PageBuilder(plan, stmt, true);
          for (const r of read) eager.push(r);
          const streamed = eager.finish();
          const whole = pageRows(plan, stmt, read);
          expect(streamed.rowCount).toBe(Math.min(read.length, first));
          expect(streamed.rids).toBe(whole.rids);
          expect(streamed.rids).toBe(
            recorded && read.length
              ? `{${rows
                  .slice(0, first)
                  .map((r) => r.rid)
                  .join(',')}}`
              : null,
          );
          // The digest the release seals, computed batch by batch as the rows came: the list's own.
          expect(streamed.releaseDigest).toBe(streamed.rids === null ? null : releaseDigest(streamed.rids));
          expect(whole.releaseDigest).toBe(streamed.releaseDigest);
          const a = streamed.write();
          const b = whole.write();
          // The reference: the writer's JSON of the page's rows in one piece.
          const reference = writer.writeNodes(read, Math.min(read.length, first));
          expect(a.nodes.toString('utf8')).toBe(reference.json);
          expect(b.nodes.toString('utf8')).toBe(reference.json);
          expect(a.unrepresentable).toBe(reference.unrepresentable);
          expect(a.pageInfo).toEqual(b.pageInfo);
          expect(a.pageInfo.hasNextPage).toBe(read.length > first);
          expect(JSON.parse(a.nodes.toString('utf8'))).toHaveLength(Math.min(read.length, first));
        },
      ),
      { numRuns: 150, seed: 20261207 },
    );
  });

  it('takes no row once finished, and is written once', () => {
    const builder = new PageBuilder({ first: 2, cursor: scope }, statement, true);
    builder.push(row(1));
    const read = builder.finish();
    expect(() => builder.push(row(2))).toThrow('a page takes no row once it is finished');
    expect(read.write().nodes.toString()).toBe('[{"id":"k1"}]');
    expect(() => read.write()).toThrow('a page is written once');
  });

  it('keeps none of its rows, nor the bytes written as they came, once the page is written', () => {
    for (const eager of [true, false]) {
      const builder = new PageBuilder({ first: 200, cursor: scope }, statement, eager);
      for (let i = 1; i <= 201; i++) builder.push(row(i));
      const read = builder.finish();
      const { nodes } = read.write();
      expect(JSON.parse(nodes.toString())).toHaveLength(200);
      // The page stays referenced until its release is recorded: what it holds then is only the answer.
      const kept = builder as unknown as { rows: unknown[]; chunks: Buffer[]; last: unknown };
      expect({ rows: kept.rows.length, chunks: kept.chunks.length, last: kept.last }).toEqual({
        rows: 0,
        chunks: 0,
        last: null,
      });
    }
  });
});
