import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..', '..');

/**
 * Worker processes for tests of background jobs, as production runs them: `apps/worker` compiled
 * (once per test file, into a folder of its own) and started as child processes with the
 * environment a test gives, their output kept for failure messages.
 *
 * @example
 * const workers = new WorkerProcesses('linkage-test', { DATABASE_URL: url, REDIS_URL: redis });
 * workers.compile();
 * const worker = workers.start({ LINKAGE_PARTITIONS: '6' });
 * await workers.stop(worker, 'SIGKILL');
 * await workers.stopAll();
 */
export class WorkerProcesses {
  /** Everything the workers wrote, stdout and stderr, in order. */
  readonly output: string[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly build: string;

  constructor(
    label: string,
    /** Environment of every worker (a worker's own comes on top). */
    private readonly env: () => Record<string, string | undefined>,
  ) {
    this.build = resolve(ROOT, 'dist', `.${label}-${process.pid}`);
  }

  /** Compiles the apps and libraries with swc, as `npm run build` does. */
  compile(): void {
    execFileSync(
      resolve(ROOT, 'node_modules', '.bin', 'swc'),
      ['apps', 'libs', '-d', this.build, '--copy-files', '--quiet', '--ignore', '**/*.spec.ts'],
      { cwd: ROOT, stdio: 'pipe' },
    );
  }

  /** Starts a worker process. */
  start(env: Record<string, string> = {}): ChildProcess {
    const child = spawn(process.execPath, [resolve(this.build, 'apps', 'worker', 'src', 'main.js')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, ...this.env(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => this.output.push(chunk.toString());
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    this.children.push(child);
    return child;
  }

  /** Stops a worker (SIGTERM lets it finish its job; SIGKILL does not) and waits for its exit. */
  async stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  }

  /** Stops every worker this started. */
  async stopAll(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    for (const child of this.children) await this.stop(child, signal);
  }

  /** The last `characters` of the workers' output. */
  tail(characters: number): string {
    return this.output.join('').slice(-characters);
  }

  /** Removes the compiled folder. */
  remove(): void {
    rmSync(this.build, { recursive: true, force: true });
  }
}
