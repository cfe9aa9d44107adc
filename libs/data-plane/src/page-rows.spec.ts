import { openCursor } from './cursor';
import { NodeJsonWriter } from './node-json';
import { type PageRow, pageRows } from './page-sql';

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
    const page = read.write();
    expect(page.nodesJson).toBe('[{"id":"k1"},{"id":"k2"}]');
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
    expect(empty.write()).toMatchObject({
      nodesJson: '[]',
      pageInfo: { hasNextPage: false, endCursor: null },
    });
  });

  it('is written once: the rows are let go after it, so a second write fails rather than answer anything', () => {
    const read = pageRows({ first: 1, cursor: scope }, statement, [row(1)]);
    expect(read.write().nodesJson).toBe('[{"id":"k1"}]');
    expect(() => read.write()).toThrow('a page is written once');
  });
});
