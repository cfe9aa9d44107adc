import { type AuditEventInput, type AuditService, ReleaseWithdrawnError } from '@broker/audit';
import { AuditBatcher } from './audit-batcher';

/** A database that commits a transaction's appends only when it reaches COMMIT. */
function fakes(
  options: {
    failDb?: (event: AuditEventInput) => boolean;
    /** What the n-th transaction's COMMIT waits for (5 ms unless given). */
    commitWait?: (transaction: number) => Promise<void>;
  } = {},
) {
  const committed: string[] = [];
  const groups: string[][] = [];
  let transactions = 0;
  const audit = {
    // As the real one: a malformed event throws before any statement; the group is one transaction,
    // whose COMMIT waits for the disk, during which further requests queue up.
    appendGroup: async (events: AuditEventInput[]) => {
      if (events.some((e) => e.reason === 'malformed')) {
        throw new TypeError('audit fields must be an array of strings');
      }
      // As the real one: a release whose condition no longer holds writes nothing of its group.
      const withdrawn = events.flatMap((e, i) => (e.reason?.startsWith('withdrawn') ? [i] : []));
      if (withdrawn.length) {
        transactions++;
        groups.push(events.map((e) => e.reason!));
        throw new ReleaseWithdrawnError(withdrawn);
      }
      transactions++;
      groups.push(events.map((e) => e.reason!));
      if (events.some((e) => options.failDb?.(e))) throw new Error('connection lost');
      await (options.commitWait?.(transactions) ?? new Promise((resolve) => setTimeout(resolve, 5)));
      committed.push(...events.map((e) => e.reason!));
      return events.map(() => ({ seq: 0, hash: '' }));
    },
    recordGroupCommit: () => undefined,
  } as unknown as AuditService;
  return { batcher: new AuditBatcher(audit), committed, groups, transactions: () => transactions };
}

const event = (reason: string): AuditEventInput => ({ action: 'QUERY' as never, decision: 'ALLOW', reason });

describe('AuditBatcher', () => {
  it('commits the events of concurrent requests together, in order, and resolves each after its commit', async () => {
    const { batcher, committed, transactions } = fakes();
    const order: string[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        batcher.append([event(`r${i}a`), event(`r${i}b`)]).then(() => {
          // Resolved only once its own events are committed.
          expect(committed).toEqual(expect.arrayContaining([`r${i}a`, `r${i}b`]));
          order.push(`r${i}`);
        }),
      ),
    );
    expect(committed).toEqual(Array.from({ length: 20 }, (_, i) => [`r${i}a`, `r${i}b`]).flat());
    // The first request commits alone; the 19 that queued meanwhile share one commit.
    expect(transactions()).toBe(2);
    expect(order).toHaveLength(20);
  });

  it('fails only the requests whose releases were withdrawn, and commits the others in the next group', async () => {
    let release!: () => void;
    const first = new Promise<void>((resolve) => (release = resolve));
    const { batcher, committed, groups } = fakes({
      commitWait: (n) => (n === 1 ? first : Promise.resolve()),
    });
    const settled = Promise.allSettled([
      batcher.append([event('first')]),
      batcher.append([event('a1'), event('a2')]),
      batcher.append([event('b1'), event('withdrawn-b2')]),
      batcher.append([event('c1')]),
      batcher.append([event('withdrawn-d1')]),
      batcher.append([event('e1')]),
    ]);
    release();
    const results = await settled;
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    // Each withdrawn request learns which of its own events were withdrawn.
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(ReleaseWithdrawnError);
    expect(((results[2] as PromiseRejectedResult).reason as ReleaseWithdrawnError).positions).toEqual([1]);
    expect(((results[4] as PromiseRejectedResult).reason as ReleaseWithdrawnError).positions).toEqual([0]);
    expect(groups).toEqual([
      ['first'],
      ['a1', 'a2', 'b1', 'withdrawn-b2', 'c1', 'withdrawn-d1', 'e1'],
      ['a1', 'a2', 'c1', 'e1'],
    ]);
    expect(committed).toEqual(['first', 'a1', 'a2', 'c1', 'e1']);
  });

  it('fails the whole group when a withdrawal names no event of it, rather than retry it for ever', async () => {
    const audit = {
      appendGroup: () => Promise.reject(new ReleaseWithdrawnError([7])),
      recordGroupCommit: () => undefined,
    } as unknown as AuditService;
    const batcher = new AuditBatcher(audit);
    const results = await Promise.allSettled([batcher.append([event('x')]), batcher.append([event('y')])]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });

  it('fails only the request with a malformed event, and commits the others', async () => {
    const { batcher, committed } = fakes();
    const results = await Promise.allSettled([
      batcher.append([event('first')]),
      batcher.append([event('ok1')]),
      batcher.append([event('malformed')]),
      batcher.append([event('ok2')]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(committed).toEqual(['first', 'ok1', 'ok2']);
  });

  it('appends a request that names a staged release list in a group of its own, so its failure fails no other', async () => {
    const staged = (reason: string): AuditEventInput => ({
      ...event(reason),
      release: {
        datasetId: '00000000-0000-4000-8000-000000000001',
        staged: '00000000-0000-4000-8000-000000000002',
      },
    });
    const { batcher, committed, groups } = fakes({ failDb: (e) => e.reason === 'export' });
    const results = await Promise.allSettled([
      batcher.append([event('first')]),
      batcher.append([event('p1')]),
      batcher.append([staged('export')]),
      batcher.append([event('p2')]),
      batcher.append([event('p3')]),
      batcher.append([staged('export2')]),
    ]);
    expect(groups).toEqual([['first'], ['p1'], ['export'], ['p2', 'p3'], ['export2']]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    expect(committed).toEqual(['first', 'p1', 'p2', 'p3', 'export2']);
  });

  it('fails every request of a group whose transaction fails, and commits none of it', async () => {
    const { batcher, committed } = fakes({ failDb: (e) => e.reason === 'ok2' });
    const results = await Promise.allSettled([
      batcher.append([event('first')]),
      batcher.append([event('ok1')]),
      batcher.append([event('ok2')]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    expect(committed).toEqual(['first']);
    // And it goes on afterwards.
    await batcher.append([event('later')]);
    expect(committed).toEqual(['first', 'later']);
  });

  it('lets the requests whose turn comes with a commit join the next group', async () => {
    let commitReplies!: () => void;
    const firstCommit = new Promise<void>((resolve) => (commitReplies = resolve));
    const { batcher, groups } = fakes({
      commitWait: (n) => (n === 1 ? firstCommit : Promise.resolve()),
    });
    const first = batcher.append([event('a')]);
    const queued = batcher.append([event('b')]);
    // The first COMMIT's reply, then a request whose rows arrive in the same turn of the event loop
    // (two callbacks of one phase, with the first's promise reactions run between them). Had the
    // batcher formed its next group in those reactions, 'c' would wait for a third transaction.
    let late: Promise<void> | undefined;
    setImmediate(commitReplies);
    setImmediate(() => {
      late = batcher.append([event('c')]);
    });
    await Promise.all([first, queued]);
    await late;
    expect(groups).toEqual([['a'], ['b', 'c']]);
  });
});
