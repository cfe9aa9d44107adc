import { z } from 'zod';
import { ConfigError } from '@broker/core';
import { DEFAULT_SETTINGS, MAX_CHUNK_RECORDS } from './core/pipeline';

const ms = (fallback: number) => z.coerce.number().int().min(1).max(86_400_000).default(fallback);

const schema = z.object({
  /** Match weight at or above which two records are linked (log2 odds). */
  LINKAGE_THRESHOLD: z.coerce.number().min(-50).max(50).default(DEFAULT_SETTINGS.threshold),
  /**
   * The same threshold as a match probability (0.5 to 0.999999): when set, it replaces
   * LINKAGE_THRESHOLD with log2(p / (1 − p)).
   */
  LINKAGE_THRESHOLD_PROBABILITY: z.coerce.number().min(0.5).max(0.999999).optional(),
  /** Records per normalisation job. */
  LINKAGE_CHUNK_RECORDS: z.coerce.number().int().min(10).max(MAX_CHUNK_RECORDS).default(50_000),
  /** Partitions scored as separate jobs; by default about one per 20,000 records. */
  LINKAGE_PARTITIONS: z.coerce.number().int().min(1).max(1024).optional(),
  /** Random record pairs that u is counted on. */
  LINKAGE_RANDOM_PAIRS: z.coerce
    .number()
    .int()
    .min(1000)
    .max(100_000_000)
    .default(DEFAULT_SETTINGS.randomPairs),
  /** Quiet time after the last ingestion before the run it triggers starts. */
  LINKAGE_DEBOUNCE_MS: ms(30_000),
  /** Linkage jobs a worker process runs at once (they are CPU-bound: one per core is plenty). */
  LINKAGE_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  /** BullMQ lock of an active job; a worker that dies loses its jobs to others after this. */
  LINKAGE_LOCK_MS: ms(30_000),
  /** How often workers look for jobs whose worker died. */
  LINKAGE_STALLED_INTERVAL_MS: ms(30_000),
  /** Times a job may be found stalled (its worker died) before it fails. */
  LINKAGE_MAX_STALLED: z.coerce.number().int().min(1).max(1000).default(10),
  /** Attempts of a job that throws, with exponential back-off, before its run fails. */
  LINKAGE_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(3),
  /** How often each worker re-drives runs from PostgreSQL, in case their jobs were lost. */
  LINKAGE_WATCHDOG_MS: ms(15_000),
  /** A pause inside every unit before it commits: only for tests that kill workers mid-unit. */
  LINKAGE_UNIT_PAUSE_MS: z.coerce.number().int().min(0).max(600_000).default(0),
});

/** The match weight a run links at: the probability's when one is set, else LINKAGE_THRESHOLD. */
export function thresholdWeight(
  config: Pick<LinkageConfig, 'LINKAGE_THRESHOLD' | 'LINKAGE_THRESHOLD_PROBABILITY'>,
) {
  const p = config.LINKAGE_THRESHOLD_PROBABILITY;
  return p === undefined ? config.LINKAGE_THRESHOLD : Math.log2(p / (1 - p));
}

/** Linkage settings, read from the environment (all optional). */
export type LinkageConfig = z.infer<typeof schema>;

/** Nest injection token of the {@link LinkageConfig}. */
export const LINKAGE_CONFIG = Symbol('LINKAGE_CONFIG');

/** Reads and validates the linkage settings; throws a ConfigError listing every problem. */
export function loadLinkageConfig(env: NodeJS.ProcessEnv = process.env): LinkageConfig {
  const present = Object.fromEntries(
    Object.entries(env).filter(([k, v]) => k.startsWith('LINKAGE_') && v !== undefined && v !== ''),
  );
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || 'environment'} ${issue.message}`),
    );
  }
  return parsed.data;
}
