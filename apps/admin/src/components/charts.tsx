import { useId } from 'react';
import type { AccessCount, ComparisonWeights, RefusalCount, RequestPlane, WeightBin } from '../api/schema';
import { formatNumber } from '../lib/format';
import { TableWrap } from './ui';

/** Distinct colours with enough contrast on white, in order. */
export const PALETTE = [
  '#1d4ed8',
  '#b45309',
  '#047857',
  '#7c3aed',
  '#be123c',
  '#0e7490',
  '#4d7c0f',
  '#a21caf',
];

const W = 720;
const H = 260;
const PAD = { left: 48, right: 16, top: 16, bottom: 40 };

/** Round numbers for an axis from 0 to at least `max`. */
function ticks(max: number): number[] {
  if (max <= 0) return [0, 1];
  const step = 10 ** Math.floor(Math.log10(max));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => max / s <= 5) ?? step * 10;
  const out: number[] = [];
  for (let v = 0; v <= max + nice / 2; v += nice) out.push(v);
  if (out[out.length - 1] < max) out.push(out[out.length - 1] + nice);
  return out;
}

/** Every UTC day from `from` to `to` inclusive, as 'YYYY-MM-DD'. */
export function daysBetween(from: Date, to: Date): string[] {
  const days: string[] = [];
  const at = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate()));
  while (at <= to) {
    days.push(at.toISOString().slice(0, 10));
    at.setUTCDate(at.getUTCDate() + 1);
  }
  return days;
}

/**
 * Data requests per agreement per day: a solid line of requests answered and a dashed one of
 * requests refused, one colour per agreement; the numbers are in a table below it.
 */
export function AccessChart({
  counts,
  days,
  name,
}: {
  counts: AccessCount[];
  days: string[];
  name: (agreementId: string) => string;
}) {
  const titleId = useId();
  const descId = useId();
  const agreements = [...new Set(counts.map((c) => c.agreementId))];
  const max = Math.max(1, ...counts.map((c) => Math.max(c.allowed, c.denied)));
  const yTicks = ticks(max);
  const top = yTicks[yTicks.length - 1];
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const x = (i: number) => PAD.left + (days.length <= 1 ? innerW / 2 : (i * innerW) / (days.length - 1));
  const y = (v: number) => PAD.top + innerH - (v / top) * innerH;
  const index = new Map(days.map((d, i) => [d, i]));
  const series = (id: string, key: 'allowed' | 'denied') => {
    const byDay = new Map(counts.filter((c) => c.agreementId === id).map((c) => [c.day, c[key]]));
    return days.map((d, i) => `${x(i).toFixed(1)},${y(byDay.get(d) ?? 0).toFixed(1)}`).join(' ');
  };
  const labelEvery = Math.max(1, Math.ceil(days.length / 6));
  const totals = agreements.map((id) => ({
    id,
    allowed: counts.filter((c) => c.agreementId === id).reduce((n, c) => n + c.allowed, 0),
    denied: counts.filter((c) => c.agreementId === id).reduce((n, c) => n + c.denied, 0),
  }));

  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={`${titleId} ${descId}`}>
        <title id={titleId}>Data requests per agreement per day</title>
        <desc id={descId}>
          {totals.map((t) => `${name(t.id)}: ${t.allowed} answered, ${t.denied} refused`).join('; ')} from{' '}
          {days[0]} to {days[days.length - 1]}.
        </desc>
        {yTicks.map((v) => (
          <g key={v}>
            <line x1={PAD.left} x2={W - PAD.right} y1={y(v)} y2={y(v)} className="grid" />
            <text x={PAD.left - 6} y={y(v) + 4} textAnchor="end" className="axis-label">
              {v}
            </text>
          </g>
        ))}
        {days.map((d, i) =>
          i % labelEvery === 0 || i === days.length - 1 ? (
            <text key={d} x={x(i)} y={H - PAD.bottom + 18} textAnchor="middle" className="axis-label">
              {d.slice(5)}
            </text>
          ) : null,
        )}
        {agreements.map((id, i) => (
          <g key={id}>
            <polyline
              points={series(id, 'allowed')}
              fill="none"
              stroke={PALETTE[i % PALETTE.length]}
              strokeWidth={2}
            />
            <polyline
              points={series(id, 'denied')}
              fill="none"
              stroke={PALETTE[i % PALETTE.length]}
              strokeWidth={2}
              strokeDasharray="5 4"
            />
            {counts
              .filter((c) => c.agreementId === id)
              .map((c) => (
                <circle
                  key={c.day}
                  cx={x(index.get(c.day) ?? 0)}
                  cy={y(c.allowed)}
                  r={3}
                  fill={PALETTE[i % PALETTE.length]}
                />
              ))}
          </g>
        ))}
      </svg>
      <figcaption>
        <ul className="legend">
          {agreements.map((id, i) => (
            <li key={id}>
              <span
                className="swatch"
                style={{ background: PALETTE[i % PALETTE.length] }}
                aria-hidden="true"
              />
              {name(id)}
            </li>
          ))}
          <li className="muted">solid: answered · dashed: refused</li>
        </ul>
      </figcaption>
      <TableWrap label="Data requests per agreement and day">
        <table>
          <caption>Data requests per agreement and day (UTC)</caption>
          <thead>
            <tr>
              <th scope="col">Day</th>
              <th scope="col">Agreement</th>
              <th scope="col" className="num">
                Answered
              </th>
              <th scope="col" className="num">
                Refused
              </th>
            </tr>
          </thead>
          <tbody>
            {counts.map((c) => (
              <tr key={`${c.day}-${c.agreementId}`}>
                <td>{c.day}</td>
                <td>{name(c.agreementId)}</td>
                <td className="num">{formatNumber(c.allowed)}</td>
                <td className="num">{formatNumber(c.denied)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
    </figure>
  );
}

const PLANE_NAMES: Record<RequestPlane, string> = { CONTROL: 'Control plane', DATA: 'Data plane' };
const PLANE_ORDER: RequestPlane[] = ['CONTROL', 'DATA'];

/**
 * Refused requests per day, a bar per plane (control, data), and below it who was refused and why:
 * a row per day, plane, agency, user and reason, merged limit refusals counted one by one.
 */
export function RefusalChart({
  counts,
  days,
  agency,
  user,
}: {
  counts: RefusalCount[];
  days: string[];
  agency: (agencyId: string | null) => string;
  user: (userId: string | null) => string;
}) {
  const titleId = useId();
  const descId = useId();
  const perDay = new Map<string, Record<RequestPlane, number>>();
  for (const c of counts) {
    const day = perDay.get(c.day) ?? { CONTROL: 0, DATA: 0 };
    day[c.plane] += c.refusals;
    perDay.set(c.day, day);
  }
  const max = Math.max(1, ...[...perDay.values()].flatMap((d) => [d.CONTROL, d.DATA]));
  const yTicks = ticks(max);
  const top = yTicks[yTicks.length - 1];
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const slot = innerW / Math.max(1, days.length);
  const barW = Math.max(1, Math.min(14, (slot - 2) / 2));
  const y = (v: number) => PAD.top + innerH - (v / top) * innerH;
  const labelEvery = Math.max(1, Math.ceil(days.length / 6));
  const total = (plane: RequestPlane) =>
    counts.filter((c) => c.plane === plane).reduce((n, c) => n + c.refusals, 0);
  const byAgency = new Map<string | null, number>();
  for (const c of counts) byAgency.set(c.actorAgencyId, (byAgency.get(c.actorAgencyId) ?? 0) + c.refusals);
  const agencies = [...byAgency].sort((a, b) => b[1] - a[1]);

  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={`${titleId} ${descId}`}>
        <title id={titleId}>Refused requests per day, by plane</title>
        <desc id={descId}>
          {PLANE_ORDER.map((p) => `${PLANE_NAMES[p]}: ${total(p)} refused`).join('; ')} from {days[0]} to{' '}
          {days[days.length - 1]}. By agency:{' '}
          {agencies.map(([id, n]) => `${id ? agency(id) : 'no agency'} ${n}`).join(', ')}.
        </desc>
        {yTicks.map((v) => (
          <g key={v}>
            <line x1={PAD.left} x2={W - PAD.right} y1={y(v)} y2={y(v)} className="grid" />
            <text x={PAD.left - 6} y={y(v) + 4} textAnchor="end" className="axis-label">
              {v}
            </text>
          </g>
        ))}
        {days.map((d, i) => {
          const center = PAD.left + slot * (i + 0.5);
          const day = perDay.get(d);
          return (
            <g key={d}>
              {i % labelEvery === 0 || i === days.length - 1 ? (
                <text x={center} y={H - PAD.bottom + 18} textAnchor="middle" className="axis-label">
                  {d.slice(5)}
                </text>
              ) : null}
              {day
                ? PLANE_ORDER.map((plane, k) =>
                    day[plane] > 0 ? (
                      <rect
                        key={plane}
                        x={center - barW + k * barW}
                        y={y(day[plane])}
                        width={barW}
                        height={PAD.top + innerH - y(day[plane])}
                        fill={PALETTE[k]}
                      />
                    ) : null,
                  )
                : null}
            </g>
          );
        })}
      </svg>
      <figcaption>
        <ul className="legend">
          {PLANE_ORDER.map((plane, k) => (
            <li key={plane}>
              <span className="swatch" style={{ background: PALETTE[k] }} aria-hidden="true" />
              {PLANE_NAMES[plane]} ({formatNumber(total(plane))})
            </li>
          ))}
          <li className="muted">left bar: control plane · right bar: data plane</li>
        </ul>
      </figcaption>
      <TableWrap label="Refused requests by day, user and reason">
        <table>
          <caption>Refused requests by day (UTC), plane, user and reason</caption>
          <thead>
            <tr>
              <th scope="col">Day</th>
              <th scope="col">Plane</th>
              <th scope="col">Agency</th>
              <th scope="col">User</th>
              <th scope="col">Reason</th>
              <th scope="col" className="num">
                Refused
              </th>
              <th scope="col" className="num">
                Events
              </th>
            </tr>
          </thead>
          <tbody>
            {counts.map((c) => (
              <tr key={`${c.day}-${c.plane}-${c.actorAgencyId}-${c.actorUserId}-${c.reason}`}>
                <td>{c.day}</td>
                <td>{PLANE_NAMES[c.plane]}</td>
                <td>{agency(c.actorAgencyId)}</td>
                <td>{user(c.actorUserId)}</td>
                <td>{c.reason ?? '—'}</td>
                <td className="num">{formatNumber(c.refusals)}</td>
                <td className="num">{formatNumber(c.events)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
    </figure>
  );
}

/**
 * A histogram of candidate pairs by match weight, with the linkage threshold marked: pairs at or
 * above it are linked.
 */
export function WeightHistogram({ bins, threshold }: { bins: WeightBin[]; threshold: number | null }) {
  const titleId = useId();
  const descId = useId();
  if (!bins.length) return <p className="muted">No candidate pairs were scored.</p>;
  // One unit of room on each side, so that a threshold at the edge of the data stays visible.
  const lower = Math.floor(Math.min(...bins.map((b) => b.lower), threshold ?? Infinity)) - 1;
  const upper = Math.ceil(Math.max(...bins.map((b) => b.upper), threshold ?? -Infinity)) + 1;
  const max = Math.max(1, ...bins.map((b) => b.pairs));
  const yTicks = ticks(max);
  const top = yTicks[yTicks.length - 1];
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const span = upper - lower || 1;
  const x = (v: number) => PAD.left + ((v - lower) / span) * innerW;
  const y = (v: number) => PAD.top + innerH - (v / top) * innerH;
  const linked =
    threshold === null ? 0 : bins.filter((b) => b.lower >= threshold).reduce((n, b) => n + b.pairs, 0);
  const total = bins.reduce((n, b) => n + b.pairs, 0);
  const xTicks = ticks(upper - lower)
    .map((t) => lower + t)
    .filter((t) => t <= upper);

  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={`${titleId} ${descId}`}>
        <title id={titleId}>Candidate pairs by match weight</title>
        <desc id={descId}>
          {formatNumber(total)} pairs from weight {lower.toFixed(1)} to {upper.toFixed(1)}
          {threshold === null
            ? ''
            : `; threshold ${threshold.toFixed(2)}, ${formatNumber(linked)} pairs at or above it`}
          .
        </desc>
        {yTicks.map((v) => (
          <g key={v}>
            <line x1={PAD.left} x2={W - PAD.right} y1={y(v)} y2={y(v)} className="grid" />
            <text x={PAD.left - 6} y={y(v) + 4} textAnchor="end" className="axis-label">
              {formatNumber(v)}
            </text>
          </g>
        ))}
        {xTicks.map((t) => (
          <text key={t} x={x(t)} y={H - PAD.bottom + 18} textAnchor="middle" className="axis-label">
            {Number(t.toFixed(1))}
          </text>
        ))}
        {bins.map((b) => (
          <rect
            key={`${b.lower}-${b.upper}`}
            x={x(b.lower) + 0.5}
            y={y(b.pairs)}
            width={Math.max(1, x(b.upper) - x(b.lower) - 1)}
            height={PAD.top + innerH - y(b.pairs)}
            className={threshold !== null && b.lower >= threshold ? 'bar bar-linked' : 'bar'}
          />
        ))}
        {threshold !== null ? (
          <g>
            <line
              x1={x(threshold)}
              x2={x(threshold)}
              y1={PAD.top}
              y2={PAD.top + innerH}
              className="threshold"
            />
            <text x={x(threshold) + 4} y={PAD.top + 12} className="axis-label threshold-label">
              threshold {threshold.toFixed(2)}
            </text>
          </g>
        ) : null}
      </svg>
      <figcaption className="muted">
        Weight on the horizontal axis, pairs on the vertical one. Pairs at or above the threshold are linked
        {threshold === null ? '' : ` (${formatNumber(linked)} of ${formatNumber(total)})`}.
      </figcaption>
    </figure>
  );
}

const ROW_H = 18;
const LABEL_W = 260;

/**
 * The weights a run learned, one bar per level of every comparison (Splink's "match weights"
 * chart): log2(m/u), right of zero for evidence that two records are one person, left for evidence
 * against. A level never seen keeps a bar of its smoothed weight; missing values weigh nothing
 * and have no bar.
 */
export function MatchWeightsChart({ comparisons }: { comparisons: ComparisonWeights[] }) {
  const titleId = useId();
  const descId = useId();
  const rows = comparisons.flatMap((c) =>
    c.levels.map((l, k) => ({
      key: `${c.comparison}/${l.level}`,
      first: k === 0,
      comparison: c.comparison,
      ...l,
    })),
  );
  if (!rows.length) return <p className="muted">The run has not learned its model yet.</p>;
  const bound = Math.ceil(Math.max(1, ...rows.map((r) => Math.abs(r.weight))));
  const width = W - LABEL_W - PAD.right;
  const x = (v: number) => LABEL_W + ((v + bound) / (2 * bound)) * width;
  const height = PAD.top + rows.length * ROW_H + PAD.bottom;
  const xTicks = ticks(bound).flatMap((t) => (t === 0 ? [0] : [-t, t]));
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${height}`} role="img" aria-labelledby={`${titleId} ${descId}`}>
        <title id={titleId}>Learned match weights per comparison level</title>
        <desc id={descId}>
          {rows.map((r) => `${r.comparison} ${r.level}: ${r.weight.toFixed(2)}`).join('; ')}.
        </desc>
        {xTicks.map((t) => (
          <g key={t}>
            <line x1={x(t)} x2={x(t)} y1={PAD.top} y2={height - PAD.bottom} className="grid" />
            <text x={x(t)} y={height - PAD.bottom + 16} textAnchor="middle" className="axis-label">
              {t}
            </text>
          </g>
        ))}
        {rows.map((r, i) => {
          const y = PAD.top + i * ROW_H;
          const from = x(Math.min(0, r.weight));
          const to = x(Math.max(0, r.weight));
          return (
            <g key={r.key}>
              <text x={LABEL_W - 8} y={y + ROW_H - 5} textAnchor="end" className="axis-label">
                {r.first ? `${r.comparison}: ` : ''}
                {r.level}
              </text>
              <rect
                x={from}
                y={y + 2}
                width={Math.max(1, to - from)}
                height={ROW_H - 4}
                className={r.weight >= 0 ? 'bar bar-linked' : 'bar bar-against'}
              />
            </g>
          );
        })}
      </svg>
      <figcaption className="muted">
        Weight log2(m/u) of each level, learned from this run’s records: m is how often the level occurs among
        pairs of one person (estimated by EM), u among random pairs.
      </figcaption>
      <TableWrap label="Learned weights">
        <table>
          <thead>
            <tr>
              <th scope="col">Comparison</th>
              <th scope="col">Level</th>
              <th scope="col" className="num">
                m
              </th>
              <th scope="col" className="num">
                u
              </th>
              <th scope="col" className="num">
                Weight
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.key}>
                <td>{r.comparison}</td>
                <td>{r.level}</td>
                <td className="num">{r.m.toPrecision(3)}</td>
                <td className="num">{r.u.toPrecision(3)}</td>
                <td className="num">{r.weight.toFixed(2)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
    </figure>
  );
}
