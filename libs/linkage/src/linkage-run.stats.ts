import { BLOCKING_RULES } from './core/blocking';
import { IDENTITY_ROLES, emptyUnparsedCounts } from './core/identity-fields';
import type { UnparsedCounts } from './core/normalise';
import { HISTOGRAM_MIN } from './core/scorer';
import type { RunStats } from './linkage.store';

/** What a normalise unit records. */
export interface NormaliseStats {
  records: number;
  unparsed?: UnparsedCounts;
}

/** What a score unit records. */
export interface ScoreStats {
  pairs: number;
  links: number;
  /** Sparse histogram: bin index (weight floor − HISTOGRAM_MIN) → pairs. */
  histogram: Record<string, number>;
  skippedBlocks: number;
  pairsByRule: number[];
  records: number;
  cpuMs: number;
}

/** What the cluster unit records. */
export interface ClusterStats {
  persons: number;
  merges?: number;
  refused: number;
  kept?: number;
  created?: number;
  cpuMs?: number;
}

/** One unit-wide bin of the run's match weights. */
export interface HistogramBin {
  lower: number;
  upper: number;
  pairs: number;
}

/**
 * A finished run's statistics and weight histogram, from its units' statistics (pure). The
 * histogram runs without gaps from the lowest bin any pair fell in to the highest.
 */
export function summariseRun(
  normalised: readonly NormaliseStats[],
  scored: readonly ScoreStats[],
  clustered: ClusterStats | undefined,
): { stats: RunStats; histogram: HistogramBin[] } {
  const bins = new Map<number, number>();
  for (const s of scored) {
    for (const [bin, pairs] of Object.entries(s.histogram))
      bins.set(Number(bin), (bins.get(Number(bin)) ?? 0) + pairs);
  }
  const histogram: HistogramBin[] = [];
  if (bins.size) {
    const lowest = Math.min(...bins.keys());
    const highest = Math.max(...bins.keys());
    for (let bin = lowest; bin <= highest; bin++) {
      histogram.push({
        lower: bin + HISTOGRAM_MIN,
        upper: bin + HISTOGRAM_MIN + 1,
        pairs: bins.get(bin) ?? 0,
      });
    }
  }
  const stats: RunStats = {
    records: normalised.reduce((n, s) => n + s.records, 0),
    candidatePairs: scored.reduce((n, s) => n + s.pairs, 0),
    links: scored.reduce((n, s) => n + s.links, 0),
    persons: clustered?.persons ?? 0,
    refusedMerges: clustered?.refused ?? 0,
    skippedBlocks: scored.reduce((n, s) => n + s.skippedBlocks, 0),
    scoreCpuMs: scored.reduce((n, s) => n + s.cpuMs, 0),
    unparsed: sumUnparsed(normalised.map((s) => s.unparsed)),
    pairsByRule: BLOCKING_RULES.map((rule, r) => ({
      rule: rule.name,
      pairs: scored.reduce((n, s) => n + (s.pairsByRule[r] ?? 0), 0),
    })),
  };
  return { stats, histogram };
}

/** Unparsed values per role, summed over the chunks. */
export function sumUnparsed(chunks: readonly (UnparsedCounts | undefined)[]): UnparsedCounts {
  const total = emptyUnparsedCounts();
  for (const chunk of chunks) {
    if (!chunk) continue;
    for (const role of IDENTITY_ROLES) total[role] += chunk[role] ?? 0;
  }
  return total;
}

/** The contract's four statistics, for the audit event and the log. */
export function headline(stats: RunStats) {
  return {
    records: stats.records,
    candidatePairs: stats.candidatePairs,
    links: stats.links,
    persons: stats.persons,
  };
}
