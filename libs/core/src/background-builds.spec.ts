import { BackgroundBuilds } from './background-builds';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('BackgroundBuilds', () => {
  it('builds an id at most once an interval, one build at a time, in the order asked', async () => {
    const builds = new BackgroundBuilds(60_000);
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    builds.ask('a', async () => (log.push('a start'), await gate, log.push('a end')), fail);
    builds.ask('b', () => Promise.resolve(log.push('b')), fail);
    builds.ask('a', () => Promise.resolve(log.push('a again')), fail);
    await tick();
    expect(log).toEqual(['a start']);
    release();
    await builds.serially(() => Promise.resolve());
    expect(log).toEqual(['a start', 'a end', 'b']);
  });

  it('forgets a build that failed, so that the next ask retries it', async () => {
    const builds = new BackgroundBuilds(60_000);
    const errors: unknown[] = [];
    let runs = 0;
    const build = () => {
      runs += 1;
      return runs === 1 ? Promise.reject(new Error('first fails')) : Promise.resolve();
    };
    builds.ask('a', build, (error) => errors.push(error));
    await builds.serially(() => Promise.resolve());
    expect(errors).toEqual([new Error('first fails')]);
    builds.ask('a', build, (error) => errors.push(error));
    await builds.serially(() => Promise.resolve());
    expect(runs).toBe(2);
    // Succeeded: asked again within the interval, it does not run.
    builds.ask('a', build, (error) => errors.push(error));
    await builds.serially(() => Promise.resolve());
    expect(runs).toBe(2);
    // Forgotten: the next ask builds at once.
    builds.forget('a');
    builds.ask('a', build, (error) => errors.push(error));
    await builds.serially(() => Promise.resolve());
    expect(runs).toBe(3);
  });

  it('starts nothing once closed, and refuses work', async () => {
    const builds = new BackgroundBuilds(0);
    builds.close();
    let ran = false;
    builds.ask('a', () => Promise.resolve((ran = true)), fail);
    await expect(builds.serially(() => Promise.resolve(1))).rejects.toThrow('shutting down');
    expect(ran).toBe(false);
  });
});

function fail(error: unknown): never {
  throw error;
}
