/**
 * Background builds of one kind (lookup tables, say): one at a time per process, each asked for by
 * its id at most once every `intervalMs`. A build that fails is forgotten, so the next ask retries
 * it; after {@link close}, nothing more starts.
 */
export class BackgroundBuilds {
  private readonly asked = new Map<string, number>();
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly intervalMs: number) {}

  /**
   * Starts `build` in the background unless `id` was asked for less than `intervalMs` ago (or this is
   * closed); `failed` gets its error. Never throws, never waits.
   */
  ask(id: string, build: () => Promise<unknown>, failed: (error: unknown) => void): void {
    if (this.closed) return;
    const now = Date.now();
    const last = this.asked.get(id);
    if (last !== undefined && now - last < this.intervalMs) return;
    this.asked.set(id, now);
    void this.serially(build).catch((error: unknown) => {
      this.asked.delete(id);
      failed(error);
    });
  }

  /** Forgets when `id` was last asked for: the next ask builds it at once. */
  forget(id: string): void {
    this.asked.delete(id);
  }

  /** Runs `work` after every build or work started before it; refused once this is closed. */
  serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain
      .catch(() => undefined)
      .then(() => (this.closed ? Promise.reject(new Error('shutting down')) : work()));
    this.chain = next;
    return next;
  }

  /** Starts nothing more; one under way is not waited for. */
  close(): void {
    this.closed = true;
  }
}
