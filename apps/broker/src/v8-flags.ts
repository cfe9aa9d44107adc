import { setFlagsFromString } from 'node:v8';

/**
 * V8's allocation-site pretenuring off, before the broker allocates anything of its own. Under load,
 * the objects of requests in flight (held while their release's audit append commits) survive a
 * young-generation collection or two, and V8 learns to allocate them straight into the old
 * generation, where they become garbage that only a full collection frees: a broker left 210 MB of
 * it after the query benchmark's pages, which an export then counted in its RSS. Without it the old
 * space held 55 MB there, at the same throughput (docs/benchmarks.md, "Export memory"). The flag is
 * read at each collection, so setting it as the process starts applies it to every one.
 */
setFlagsFromString('--no-allocation-site-pretenuring');
