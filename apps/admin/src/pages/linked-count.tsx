import { type FormEvent, useState } from 'react';
import { ApiError, graphql } from '../api/client';
import { type Agreement, type Dataset, type GrantContent, Q } from '../api/schema';
import { EmptyState, ErrorMessage, Field, Loading, PageHeader, TableWrap } from '../components/ui';
import { releasedName } from '../lib/format';
import { useSession } from '../lib/session';
import { useQuery } from '../lib/use-query';

/** A dataset an agreement in force grants the analyst's agency, with its released names. */
interface Granted {
  agreement: Agreement;
  dataset: Dataset;
  grant: GrantContent;
  names: { name: string; date: boolean }[];
}

interface Answer {
  groups: { key: Record<string, unknown>; count: number | null; suppressed: boolean }[];
  noise: number;
}

/** PascalCase of a slug: the data plane's type names. */
const typeName = (slug: string) =>
  slug
    .split('_')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');

/**
 * Builds a linked count (DESIGN §4.2) for an analyst: a cohort (a dataset, optionally only its
 * records with a date), an outcome in another dataset (exists or not, within a window of days after
 * a cohort date), a field to group by, records or persons. Runs it on the data plane and shows the
 * table, each cell marked exact, perturbed (±noise) or suppressed.
 */
export function LinkedCountPage() {
  const { me, apiKey } = useSession();
  const agreements = useQuery<{ agreements: Agreement[] }>(Q.agreements, { status: 'ACTIVE' });
  const datasets = useQuery<{ datasets: Dataset[] }>(Q.datasets);
  const byId = new Map((datasets.data?.datasets ?? []).map((d) => [d.id, d]));
  const granted: Granted[] = (agreements.data?.agreements ?? [])
    .filter((a) => a.recipient.id === me.agency?.id)
    .flatMap((agreement) => {
      const content = agreement.versions.find((v) => v.version === agreement.inForceVersion)?.content;
      return (content?.grants ?? []).flatMap((grant) => {
        const dataset = byId.get(grant.datasetId);
        if (!dataset || !grant.linkage) return [];
        const names = grant.fields.flatMap((f) => {
          const field = dataset.fields.find((x) => x.name === f.name);
          const name = field ? releasedName(field.name, field.type, f.transform) : null;
          const date =
            !!field && f.transform === 'RAW' && (field.type === 'DATE' || field.type === 'DATETIME');
          return name ? [{ name, date }] : [];
        });
        return [{ agreement, dataset, grant, names }];
      });
    });
  const [cohortIndex, setCohortIndex] = useState(0);
  const [outcomeIndex, setOutcomeIndex] = useState(1);
  const [purpose, setPurpose] = useState('');
  const [groupBy, setGroupBy] = useState('');
  const [cohortHas, setCohortHas] = useState('');
  const [exists, setExists] = useState(true);
  const [after, setAfter] = useState('');
  const [on, setOn] = useState('');
  const [minDays, setMinDays] = useState('0');
  const [maxDays, setMaxDays] = useState('365');
  const [unit, setUnit] = useState<'RECORDS' | 'PERSONS'>('RECORDS');
  const [answer, setAnswer] = useState<Answer | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [running, setRunning] = useState(false);

  const cohort = granted[cohortIndex];
  const outcome = granted[outcomeIndex];
  const purposes = cohort
    ? cohort.agreement.purposes.filter((p) => outcome?.agreement.purposes.includes(p))
    : [];

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!cohort || !outcome) return;
    setRunning(true);
    setError(null);
    const slug = cohort.dataset.slug;
    const window =
      after && on
        ? { after, on, minDays: Number(minDays), maxDays: maxDays === '' ? null : Number(maxDays) }
        : {};
    const query = `query($a: ID, $g: [${typeName(slug)}Field!]!, $w: ${typeName(slug)}Where, $l: ${typeName(slug)}Linked, $u: CountUnit) {
      count: ${slug}_aggregate(purpose: ${purpose || purposes[0]}, agreement: $a, groupBy: $g, where: $w, unit: $u, linked: $l) {
        groups { key count suppressed } noise } }`;
    try {
      const data = await graphql<{ count: Answer }>(
        apiKey,
        query,
        {
          a: cohort.agreement.id,
          g: groupBy ? [groupBy] : [],
          w: cohortHas ? { [cohortHas]: { isNull: false } } : null,
          u: unit,
          l: { [outcome.dataset.slug]: { exists, agreement: outcome.agreement.id, ...window } },
        },
        '/data/graphql',
      );
      setAnswer(data.count);
    } catch (e) {
      setAnswer(null);
      setError(e instanceof ApiError ? e : new ApiError(String(e), 'ERROR'));
    } finally {
      setRunning(false);
    }
  };

  const option = (g: Granted, i: number) => (
    <option key={`${g.agreement.id}/${g.dataset.id}`} value={i}>
      {g.dataset.title} ({g.dataset.slug}) — {g.agreement.title}
    </option>
  );

  return (
    <>
      <PageHeader title="Linked count" />
      <p>
        Count the records (or persons) of a cohort whose person has, or has not, a record in another dataset
        within a window of days. Each dataset is read under its own agreement; where you cannot read the rows,
        counts are perturbed (within ±noise) and groups below the minimum cell size are left out.
      </p>
      <ErrorMessage error={agreements.error ?? datasets.error} />
      {agreements.loading && !agreements.data ? <Loading label="Loading your agency’s agreements…" /> : null}
      {agreements.data && granted.length < 2 ? (
        <EmptyState>A linked count needs two datasets granted to your agency with linkage.</EmptyState>
      ) : null}
      {granted.length >= 2 && cohort && outcome ? (
        <form onSubmit={(e) => void submit(e)} className="form">
          <fieldset>
            <legend>Cohort</legend>
            <Field label="Dataset and agreement">
              {(attrs) => (
                <select
                  {...attrs}
                  value={cohortIndex}
                  onChange={(e) => setCohortIndex(Number(e.target.value))}
                >
                  {granted.map(option)}
                </select>
              )}
            </Field>
            <Field label="Only records with a value in" hint="e.g. a completion date">
              {(attrs) => (
                <select {...attrs} value={cohortHas} onChange={(e) => setCohortHas(e.target.value)}>
                  <option value="">(every record)</option>
                  {cohort.names.map((n) => (
                    <option key={n.name}>{n.name}</option>
                  ))}
                </select>
              )}
            </Field>
            <Field label="Group by">
              {(attrs) => (
                <select {...attrs} value={groupBy} onChange={(e) => setGroupBy(e.target.value)}>
                  <option value="">(no grouping: one total)</option>
                  {cohort.names.map((n) => (
                    <option key={n.name}>{n.name}</option>
                  ))}
                </select>
              )}
            </Field>
            <Field label="Count">
              {(attrs) => (
                <select
                  {...attrs}
                  value={unit}
                  onChange={(e) => setUnit(e.target.value as 'RECORDS' | 'PERSONS')}
                >
                  <option value="RECORDS">records</option>
                  <option value="PERSONS">distinct persons</option>
                </select>
              )}
            </Field>
          </fieldset>
          <fieldset>
            <legend>Outcome</legend>
            <Field label="Dataset and agreement">
              {(attrs) => (
                <select
                  {...attrs}
                  value={outcomeIndex}
                  onChange={(e) => setOutcomeIndex(Number(e.target.value))}
                >
                  {granted.map(option)}
                </select>
              )}
            </Field>
            <Field label="Counted">
              {(attrs) => (
                <select
                  {...attrs}
                  value={String(exists)}
                  onChange={(e) => setExists(e.target.value === 'true')}
                >
                  <option value="true">those who have such a record</option>
                  <option value="false">those who have none</option>
                </select>
              )}
            </Field>
          </fieldset>
          <fieldset>
            <legend>Window</legend>
            <Field label="After this cohort date">
              {(attrs) => (
                <select {...attrs} value={after} onChange={(e) => setAfter(e.target.value)}>
                  <option value="">(no window)</option>
                  {cohort.names
                    .filter((n) => n.date)
                    .map((n) => (
                      <option key={n.name}>{n.name}</option>
                    ))}
                </select>
              )}
            </Field>
            <Field label="The outcome date">
              {(attrs) => (
                <select {...attrs} value={on} onChange={(e) => setOn(e.target.value)}>
                  <option value="">(no window)</option>
                  {outcome.names
                    .filter((n) => n.date)
                    .map((n) => (
                      <option key={n.name}>{n.name}</option>
                    ))}
                </select>
              )}
            </Field>
            <Field label="From day">
              {(attrs) => (
                <input
                  {...attrs}
                  type="number"
                  value={minDays}
                  onChange={(e) => setMinDays(e.target.value)}
                />
              )}
            </Field>
            <Field label="To day" hint="Empty: no upper bound">
              {(attrs) => (
                <input
                  {...attrs}
                  type="number"
                  value={maxDays}
                  onChange={(e) => setMaxDays(e.target.value)}
                />
              )}
            </Field>
          </fieldset>
          <Field label="Purpose">
            {(attrs) => (
              <select
                {...attrs}
                value={purpose || purposes[0] || ''}
                onChange={(e) => setPurpose(e.target.value)}
              >
                {purposes.map((p) => (
                  <option key={p}>{p}</option>
                ))}
              </select>
            )}
          </Field>
          <button type="submit" disabled={running || !purposes.length}>
            {running ? 'Counting…' : 'Count'}
          </button>
        </form>
      ) : null}
      <ErrorMessage error={error} title="The count was refused" />
      {answer ? (
        <section aria-labelledby="linked-result">
          <h2 id="linked-result">Result</h2>
          <p className="muted">
            {answer.noise
              ? `Perturbed: each count is within ±${answer.noise} of the truth; groups below the minimum cell size are left out.`
              : 'Exact counts: you can read the rows of both datasets under these agreements.'}
          </p>
          {answer.groups.length ? (
            <TableWrap label="Linked count">
              <table>
                <thead>
                  <tr>
                    <th scope="col">{groupBy || 'Total'}</th>
                    <th scope="col">Count</th>
                    <th scope="col">Cell</th>
                  </tr>
                </thead>
                <tbody>
                  {answer.groups.map((g) => (
                    <tr key={JSON.stringify(g.key)}>
                      <td>
                        {groupBy
                          ? g.key[groupBy] == null
                            ? '(none)'
                            : JSON.stringify(g.key[groupBy])
                          : 'all'}
                      </td>
                      <td>{g.suppressed ? '—' : g.count}</td>
                      <td>
                        {g.suppressed ? (
                          <span className="badge">suppressed</span>
                        ) : answer.noise ? (
                          <span className="badge">perturbed ±{answer.noise}</span>
                        ) : (
                          <span className="badge badge-active">exact</span>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          ) : (
            <EmptyState>No group reaches the minimum cell size.</EmptyState>
          )}
        </section>
      ) : null}
    </>
  );
}
