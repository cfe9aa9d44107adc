import { ConfigError, databaseName, loadConfig, parseByteSize, redactUrl } from './broker-config';

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

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '', BROKER_BOOTSTRAP_TOKEN: '' }).PORT).toBe(3000);
  });

  it('lists every problem in words a person can act on', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        DATABASE_URL: 'mysql://x/y',
        BROKER_BOOTSTRAP_TOKEN: 'short',
        INGEST_MAX_BYTES: 'lots',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('PORT');
    expect(problems).toContain('DATABASE_URL must be a URL starting with postgres:// or postgresql://');
    expect(problems).toContain('BROKER_BOOTSTRAP_TOKEN must be at least 24 characters');
    expect(problems).toContain('INGEST_MAX_BYTES must be a size such as 1048576, 512MB or 2GiB');
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
