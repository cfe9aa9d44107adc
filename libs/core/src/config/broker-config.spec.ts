import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CONFIG_VARIABLES,
  ConfigError,
  databaseName,
  loadConfig,
  loadConfigOrExit,
  parseByteSize,
  redactUrl,
} from './broker-config';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 3000,
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/broker',
      REDIS_URL: 'redis://127.0.0.1:6379',
      INGEST_MAX_BYTES: 2 * 1024 ** 3,
    });
    expect(config.BROKER_BOOTSTRAP_TOKEN).toBeUndefined();
  });

  it('takes any bootstrap token, however short: the operator key is that value', () => {
    expect(loadConfig({ BROKER_BOOTSTRAP_TOKEN: 'op-token' }).BROKER_BOOTSTRAP_TOKEN).toBe('op-token');
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '', BROKER_BOOTSTRAP_TOKEN: '' }).PORT).toBe(3000);
  });

  it('lists every problem in words a person can act on', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        DATABASE_URL: 'mysql://x/y',
        BROKER_BOOTSTRAP_TOKEN: 'x'.repeat(513),
        INGEST_MAX_BYTES: 'lots',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('PORT');
    expect(problems).toContain('DATABASE_URL must be a URL starting with postgres:// or postgresql://');
    expect(problems).toContain('BROKER_BOOTSTRAP_TOKEN must be at most 512 characters');
    expect(problems).toContain('INGEST_MAX_BYTES must be a size such as 1048576, 512MB or 2GiB');
  });

  it('takes the record indexes check interval in milliseconds, from a second to a day', () => {
    expect(loadConfig({}).RECORD_INDEX_CHECK_MS).toBe(900_000);
    expect(loadConfig({ RECORD_INDEX_CHECK_MS: '1000' }).RECORD_INDEX_CHECK_MS).toBe(1000);
    for (const bad of ['999', '86400001', '1.5', 'often']) {
      expect(() => loadConfig({ RECORD_INDEX_CHECK_MS: bad })).toThrow(ConfigError);
    }
  });

  it("takes the aggregate budgets, each analyst's and each agreement's, as whole numbers from 1 to 1,000,000", () => {
    expect(loadConfig({})).toMatchObject({
      AGGREGATE_DAILY_BUDGET: 200,
      AGGREGATE_AGREEMENT_DAILY_BUDGET: 1000,
    });
    expect(loadConfig({ AGGREGATE_AGREEMENT_DAILY_BUDGET: '1' }).AGGREGATE_AGREEMENT_DAILY_BUDGET).toBe(1);
    expect(loadConfig({ AGGREGATE_AGREEMENT_DAILY_BUDGET: '1000000' }).AGGREGATE_AGREEMENT_DAILY_BUDGET).toBe(
      1_000_000,
    );
    for (const name of ['AGGREGATE_DAILY_BUDGET', 'AGGREGATE_AGREEMENT_DAILY_BUDGET']) {
      for (const bad of ['0', '-5', '2.5', '1000001', 'many']) {
        expect(() => loadConfig({ [name]: bad })).toThrow(ConfigError);
      }
    }
  });

  it('parses sizes', () => {
    expect(parseByteSize('1048576')).toBe(1048576);
    expect(parseByteSize('64KiB')).toBe(65536);
    expect(parseByteSize('2 GB')).toBe(2e9);
    expect(() => parseByteSize('2 parsecs')).toThrow();
  });

  it('names the database and hides passwords', () => {
    expect(databaseName('postgres://u:p@h:5432/my%20db')).toBe('my db');
    expect(redactUrl('postgres://u:secret@h/db')).toBe('postgres://u:***@h/db');
  });
});

describe('loadConfigOrExit', () => {
  /** Runs it with process.exit and stderr captured: what it returned, or the exit code and what it wrote. */
  function run(...args: Parameters<typeof loadConfigOrExit>) {
    let written = '';
    const write = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      written += String(chunk);
      return true;
    });
    const exit = jest.spyOn(process, 'exit').mockImplementation((code) => {
      throw Object.assign(new Error('exit'), { exitCode: code });
    });
    try {
      return { config: loadConfigOrExit(...args), written };
    } catch (error) {
      return { exitCode: (error as { exitCode?: unknown }).exitCode, written };
    } finally {
      write.mockRestore();
      exit.mockRestore();
    }
  }
  const other = (env: NodeJS.ProcessEnv) => {
    if (env.OTHER_SETTING !== undefined) throw new ConfigError([`OTHER_SETTING is not ${env.OTHER_SETTING}`]);
  };

  it('returns the configuration when it and every other setting are valid', () => {
    expect(run({ PORT: '4000' }, other)).toEqual({
      config: expect.objectContaining({ PORT: 4000 }),
      written: '',
    });
  });

  it('does not start with an agreement budget of none or of a fraction', () => {
    for (const bad of ['0', '1.5']) {
      expect(run({ AGGREGATE_AGREEMENT_DAILY_BUDGET: bad })).toEqual({
        exitCode: 78,
        written: expect.stringMatching(
          /^Invalid configuration:\n {2}- AGGREGATE_AGREEMENT_DAILY_BUDGET .+\n$/,
        ),
      });
    }
  });

  it("exits 78 listing every problem, the other settings' with the broker's", () => {
    expect(run({ PORT: 'x', OTHER_SETTING: 'y' }, other)).toEqual({
      exitCode: 78,
      written: expect.stringMatching(
        /^Invalid configuration:\n {2}- PORT .+\n {2}- OTHER_SETTING is not y\n$/,
      ),
    });
    // An other setting alone stops the process as well, before anything connects.
    expect(run({ OTHER_SETTING: 'y' }, other)).toEqual({
      exitCode: 78,
      written: 'Invalid configuration:\n  - OTHER_SETTING is not y\n',
    });
  });
});

describe('.env.example', () => {
  const text = readFileSync(join(__dirname, '../../../../.env.example'), 'utf8');
  // `NAME=value` lines give a default; `# NAME=` lines a variable without one.
  const set = new Map([...text.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1], m[2]]));
  const unset = [...text.matchAll(/^# ([A-Z][A-Z0-9_]*)=$/gm)].map((m) => m[1]);

  it('lists every configuration variable, each once, with a comment saying what it means', () => {
    expect([...set.keys(), ...unset].sort()).toEqual([...CONFIG_VARIABLES].sort());
    for (const name of CONFIG_VARIABLES) {
      expect(text).toMatch(new RegExp(`# [^\\n]+\\n(# [^\\n]*\\n)*#? ?${name}=`));
    }
  });

  it('gives each default exactly as the broker applies it', () => {
    const defaults = loadConfig({});
    for (const [name, value] of set) {
      expect([name, loadConfig({ [name]: value })[name as keyof typeof defaults]]).toEqual([
        name,
        defaults[name as keyof typeof defaults],
      ]);
    }
    for (const name of unset)
      expect([name, defaults[name as keyof typeof defaults]]).toEqual([name, undefined]);
  });
});
