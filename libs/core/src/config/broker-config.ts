import { z } from 'zod';

const url = (protocols: string[]) =>
  z
    .string()
    .trim()
    .refine(
      (v) => {
        try {
          return protocols.includes(new URL(v).protocol);
        } catch {
          return false;
        }
      },
      `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
    );

const byteSize = z
  .string()
  .trim()
  .regex(/^\d+\s*(b|kb|kib|mb|mib|gb|gib)?$/i, 'must be a size such as 1048576, 512MB or 2GiB')
  .transform(parseByteSize);

const schema = z.object({
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  DATABASE_URL: url(['postgres:', 'postgresql:']).default('postgres://postgres@127.0.0.1:5432/broker'),
  REDIS_URL: url(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
  BROKER_BOOTSTRAP_TOKEN: z
    .string()
    .trim()
    .min(1)
    .max(512, 'must be at most 512 characters: it becomes the operator API key')
    .optional(),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[a-z][a-z0-9_-]{0,39}$/, 'must be lowercase letters, digits, _ or -')
    .default('broker'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  INGEST_MAX_BYTES: byteSize.default(parseByteSize('2GiB')),
  GRAPHQL_MAX_BYTES: byteSize.default(parseByteSize('16MiB')),
  TRUST_PROXY: z
    .enum(['true', 'false'], { message: 'must be true or false' })
    .default('false')
    .transform((v) => v === 'true'),
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  // Which records each data-plane release returned, for subject access reports. Off only to measure
  // what recording costs (bench:query): without it those reports miss the releases made meanwhile.
  RECORD_RELEASES: z
    .enum(['true', 'false'], { message: 'must be true or false' })
    .default('true')
    .transform((v) => v === 'true'),
  // Perturbed aggregates (docs/disclosure-control.md) each analyst may ask per agreement and UTC day:
  // averaging many answers erodes any perturbation, so their number is bounded.
  AGGREGATE_DAILY_BUDGET: z.coerce.number().int().min(1).max(1_000_000).default(200),
  // And per agreement and UTC day, shared by all the recipient's analysts (five analysts' worth by
  // default): a steward who creates more analysts does not multiply what an agreement answers.
  AGGREGATE_AGREEMENT_DAILY_BUDGET: z.coerce.number().int().min(1).max(1_000_000).default(1000),
  // How often each broker checks the record indexes of the versions in force and the declarations,
  // and builds again one that a failed concurrent build left invalid (RecordIndexKeeper).
  RECORD_INDEX_CHECK_MS: z.coerce.number().int().min(1000).max(86_400_000).default(900_000),
});

/** The name of every configuration variable (`.env.example` lists each with its default and meaning). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(schema.shape);

/** The broker's validated configuration, read once from the environment. */
export type BrokerConfig = z.infer<typeof schema>;

/** Nest injection token of the {@link BrokerConfig}. */
export const BROKER_CONFIG = Symbol('BROKER_CONFIG');

/** Thrown at boot when the environment does not describe a usable broker; its message lists every problem. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates the configuration, e.g. `loadConfig(process.env)`. Empty variables count as unset. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): BrokerConfig {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || 'environment'} ${issue.message}`),
    );
  }
  return parsed.data;
}

/**
 * The configuration of a process about to start, or exit code 78 (EX_CONFIG) with every problem on
 * stderr: a misconfigured broker or worker never starts half-way. `more` loads the settings of
 * other libraries the process reads from the environment (record linkage's `LINKAGE_*`), checked
 * with it, so that their problems are listed with the rest before anything connects.
 */
export function loadConfigOrExit(
  env: NodeJS.ProcessEnv = process.env,
  ...more: ((env: NodeJS.ProcessEnv) => unknown)[]
): BrokerConfig {
  const problems: string[] = [];
  const attempt = <T>(load: (env: NodeJS.ProcessEnv) => T): T | undefined => {
    try {
      return load(env);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
      return undefined;
    }
  };
  const config = attempt(loadConfig);
  for (const load of more) attempt(load);
  if (!config || problems.length) {
    process.stderr.write(`${new ConfigError(problems).message}\n`);
    process.exit(78);
  }
  return config;
}

/** Parses sizes such as `1048576`, `512MB` or `2GiB` into bytes. */
export function parseByteSize(text: string): number {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  if (!match) throw new Error(`not a size: ${text}`);
  const units: Record<string, number> = {
    '': 1,
    b: 1,
    kb: 1e3,
    kib: 1024,
    mb: 1e6,
    mib: 1024 ** 2,
    gb: 1e9,
    gib: 1024 ** 3,
  };
  const factor = units[match[2].toLowerCase()];
  if (factor === undefined) throw new Error(`unknown unit in ${text}`);
  return Number(match[1]) * factor;
}

/** The name of the database a PostgreSQL URL points at. */
export function databaseName(databaseUrl: string): string {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, ''));
  if (!name) throw new ConfigError([`DATABASE_URL names no database: ${redactUrl(databaseUrl)}`]);
  return name;
}

/** A URL with its password replaced, safe to log. */
export function redactUrl(value: string): string {
  try {
    const u = new URL(value);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}
