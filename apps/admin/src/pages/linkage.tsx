import { useEffect, useState } from 'react';
import { ApiError, graphql } from '../api/client';
import { type LinkageReviewPair, type LinkageRun, Q } from '../api/schema';
import { MatchWeightsChart, WeightHistogram } from '../components/charts';
import { EmptyState, ErrorMessage, Loading, PageHeader, ProgressBar, TableWrap } from '../components/ui';
import { formatInstant, formatNumber, humanize } from '../lib/format';
import { Link, navigate } from '../lib/router';
import { useSession } from '../lib/session';
import { useMutation, useQuery } from '../lib/use-query';

const POLL_MS = 1000;
const live = (run: LinkageRun) => run.status === 'QUEUED' || run.status === 'RUNNING';

/** A broker without linkage answers with a validation error naming the missing field. */
function LinkageError({ error }: { error: ApiError }) {
  if (/Cannot query field "(linkageRuns?|startLinkage)"/.test(error.message)) {
    return (
      <div className="alert alert-error" role="alert">
        <p className="alert-title">Record linkage is not available on this broker</p>
        <p>
          This broker’s API has no linkage runs yet. Upgrade the broker and its worker to a version with
          record linkage, then reload this page.
        </p>
      </div>
    );
  }
  return <ErrorMessage error={error} />;
}

function StatusCell({ run }: { run: LinkageRun }) {
  return (
    <span className={`badge badge-linkage-${run.status.toLowerCase()}`}>
      {humanize(run.status)}
      {live(run) ? ` ${Math.round(run.progress * 100)}%` : ''}
    </span>
  );
}

/** Linkage runs, newest first; the operator starts one over every dataset field with an identity role. */
export function LinkageRunsPage() {
  const { me } = useSession();
  const { data, error, loading, reload } = useQuery<{ linkageRuns: LinkageRun[] }>(Q.linkageRuns);
  const start = useMutation<{ startLinkage: LinkageRun }>(Q.startLinkage);
  const runs = data?.linkageRuns ?? [];

  // While any run is under way, the list follows it.
  const anyLive = runs.some(live);
  useEffect(() => {
    if (!anyLive) return;
    const timer = window.setTimeout(() => void reload(), POLL_MS);
    return () => window.clearTimeout(timer);
  }, [anyLive, reload, data]);

  const onStart = async () => {
    const result = await start.mutate();
    if (result) navigate(`/linkage/${result.startLinkage.id}`);
  };

  return (
    <>
      <PageHeader title="Record linkage">
        {me.role === 'OPERATOR' ? (
          <button type="button" className="primary" onClick={() => void onStart()} disabled={start.busy}>
            {start.busy ? 'Starting…' : 'Start a linkage run'}
          </button>
        ) : null}
      </PageHeader>
      <p className="muted">
        Linkage finds the same person across agencies from the fields with an identity role, and gives
        analysts pseudonyms (personKey) only: never the identifiers themselves.
      </p>
      {start.error ? <LinkageError error={start.error} /> : null}
      {error ? <LinkageError error={error} /> : null}
      {loading && !data ? <Loading label="Loading linkage runs…" /> : null}
      {data && runs.length === 0 ? (
        <EmptyState>No linkage run yet. Uploads start one; so does “Start a linkage run”.</EmptyState>
      ) : null}
      {runs.length ? (
        <TableWrap label="Linkage runs">
          <table>
            <thead>
              <tr>
                <th scope="col">Run</th>
                <th scope="col">Status</th>
                <th scope="col">Trigger</th>
                <th scope="col">Created</th>
                <th scope="col">Finished</th>
                <th scope="col" className="num">
                  Records
                </th>
                <th scope="col" className="num">
                  Persons
                </th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.id}>
                  <td>
                    <Link to={`/linkage/${r.id}`}>Run {r.id.slice(0, 8)}</Link>
                  </td>
                  <td>
                    <StatusCell run={r} />
                  </td>
                  <td>{r.trigger}</td>
                  <td>{formatInstant(r.createdAt)}</td>
                  <td>{formatInstant(r.finishedAt)}</td>
                  <td className="num">{formatNumber(r.stats?.records)}</td>
                  <td className="num">{formatNumber(r.stats?.persons)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      ) : null}
    </>
  );
}

/**
 * The run's pairs nearest its threshold, as comparison patterns: each comparison's level and the
 * weight it adds, never a value. The operator decides (stewards do not reach this page: through
 * the API a steward reviews only pairs both of whose records its agency holds); the decision is
 * kept and applied by every later run.
 */
function UncertainPairs({ runId }: { runId: string }) {
  const { me } = useSession();
  const { data, error, loading, reload } = useQuery<{ linkageReviewPairs: LinkageReviewPair[] }>(
    Q.linkageReviewPairs,
    { runId },
  );
  const decide = useMutation<{ decideLinkagePair: { pair: number; decision: boolean } }>(Q.decideLinkagePair);
  const pairs = data?.linkageReviewPairs ?? [];
  const canDecide = me.role === 'OPERATOR' || me.role === 'STEWARD';
  const onDecide = async (pair: number, same: boolean) => {
    if (await decide.mutate({ runId, pair, same })) await reload();
  };
  if (error) return <ErrorMessage error={error} />;
  if (loading && !data) return <Loading label="Loading the uncertain pairs…" />;
  if (!pairs.length) return <p className="muted">No pair was near the threshold.</p>;
  const comparisons = pairs[0].levels.map((l) => l.comparison);
  return (
    <>
      {decide.error ? <ErrorMessage error={decide.error} /> : null}
      <TableWrap label="Uncertain pairs">
        <table>
          <thead>
            <tr>
              <th scope="col">Pair</th>
              <th scope="col" className="num">
                Probability
              </th>
              {comparisons.map((c) => (
                <th scope="col" key={c}>
                  {humanize(c)}
                </th>
              ))}
              <th scope="col">Decision</th>
            </tr>
          </thead>
          <tbody>
            {pairs.map((p) => (
              <tr key={p.pair}>
                <td>{p.pair}</td>
                <td className="num">{p.probability.toFixed(3)}</td>
                {p.levels.map((l) => (
                  <td key={l.comparison} title={`weight ${l.weight.toFixed(2)}`}>
                    {l.level === 'missing'
                      ? '—'
                      : `${humanize(l.level)} (${l.weight >= 0 ? '+' : ''}${l.weight.toFixed(1)})`}
                  </td>
                ))}
                <td>
                  {p.decision === null ? 'none' : p.decision ? 'same person' : 'not the same'}
                  {canDecide ? (
                    <>
                      {' '}
                      <button
                        type="button"
                        onClick={() => void onDecide(p.pair, true)}
                        disabled={decide.busy}
                      >
                        Same
                      </button>{' '}
                      <button
                        type="button"
                        onClick={() => void onDecide(p.pair, false)}
                        disabled={decide.busy}
                      >
                        Not same
                      </button>
                    </>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
    </>
  );
}

/** One run, followed live while queued or running: its progress, results and match weights. */
export function LinkageRunPage({ id }: { id: string }) {
  const { apiKey } = useSession();
  const [run, setRun] = useState<LinkageRun | null | undefined>(undefined);
  const [error, setError] = useState<ApiError | null>(null);

  useEffect(() => {
    let stopped = false;
    let timer = 0;
    const poll = async () => {
      try {
        const { linkageRun } = await graphql<{ linkageRun: LinkageRun | null }>(apiKey, Q.linkageRun, { id });
        if (stopped) return;
        setRun(linkageRun);
        setError(null);
        if (linkageRun && live(linkageRun)) timer = window.setTimeout(() => void poll(), POLL_MS);
      } catch (e) {
        if (stopped) return;
        setError(e instanceof ApiError ? e : new ApiError(String(e), 'ERROR'));
        // A passing network failure should not end the live view; a refusal does.
        if (e instanceof ApiError && e.code === 'NETWORK')
          timer = window.setTimeout(() => void poll(), POLL_MS * 3);
      }
    };
    void poll();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [apiKey, id]);

  if (error && !run) {
    return (
      <>
        <PageHeader title="Linkage run" />
        <LinkageError error={error} />
      </>
    );
  }
  if (run === undefined) return <Loading label="Loading the run…" />;
  if (run === null) {
    return (
      <>
        <PageHeader title="Linkage run not found" />
        <EmptyState>
          No linkage run has this id. <Link to="/linkage">Back to the runs</Link>
        </EmptyState>
      </>
    );
  }
  return (
    <>
      <PageHeader title={`Linkage run ${run.id.slice(0, 8)}`} />
      {error ? <ErrorMessage error={error} title="Lost contact with the broker; retrying" /> : null}
      <dl className="facts">
        <dt>Status</dt>
        <dd>
          <StatusCell run={run} />
        </dd>
        <dt>Trigger</dt>
        <dd>{run.trigger}</dd>
        <dt>Created</dt>
        <dd>{formatInstant(run.createdAt)}</dd>
        <dt>Started</dt>
        <dd>{formatInstant(run.startedAt)}</dd>
        <dt>Finished</dt>
        <dd>{formatInstant(run.finishedAt)}</dd>
        {run.restarts > 0 ? (
          <>
            <dt>Restarts</dt>
            <dd>
              {run.restarts === 1 ? 'Once' : `${formatNumber(run.restarts)} times`}: retention destroyed
              records the run had learned from, so it learned its model again without them.
            </dd>
          </>
        ) : null}
      </dl>
      <ProgressBar label="Linkage progress" value={run.status === 'SUCCEEDED' ? 1 : run.progress} />
      <p role="status" className="muted">
        {live(run)
          ? `${humanize(run.status)}: ${Math.round(run.progress * 100)}% done.`
          : `${humanize(run.status)}.`}
      </p>
      {run.status === 'FAILED' ? (
        <div className="alert alert-error" role="alert">
          <p className="alert-title">The run failed</p>
          <p>{run.error ?? 'No reason was recorded.'}</p>
        </div>
      ) : null}
      {run.stats ? (
        <section aria-labelledby="stats-heading">
          <h2 id="stats-heading">Results</h2>
          <dl className="facts">
            <dt>Records compared</dt>
            <dd>{formatNumber(run.stats.records)}</dd>
            <dt>Candidate pairs</dt>
            <dd>{formatNumber(run.stats.candidatePairs)}</dd>
            <dt>Links</dt>
            <dd>{formatNumber(run.stats.links)}</dd>
            <dt>Persons</dt>
            <dd>{formatNumber(run.stats.persons)}</dd>
            <dt>Values not understood</dt>
            <dd>
              {run.stats.unparsed.some((u) => u.values > 0)
                ? run.stats.unparsed
                    .filter((u) => u.values > 0)
                    .map((u) => `${humanize(u.role)} ${formatNumber(u.values)}`)
                    .join(', ')
                : 'none'}
            </dd>
          </dl>
          {run.stats.pairsByRule.length ? (
            <TableWrap label="Pairs per blocking rule">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Blocking rule</th>
                    <th scope="col" className="num">
                      Pairs compared
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {run.stats.pairsByRule.map((r) => (
                    <tr key={r.rule}>
                      <td>{r.rule}</td>
                      <td className="num">{formatNumber(r.pairs)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          ) : null}
        </section>
      ) : null}
      {run.comparisons.length ? (
        <section aria-labelledby="model-heading">
          <h2 id="model-heading">What the run learned</h2>
          <p className="muted">
            A pair links at a match probability of{' '}
            {run.thresholdProbability === null ? '—' : run.thresholdProbability.toFixed(3)} or more.
          </p>
          <MatchWeightsChart comparisons={run.comparisons} />
        </section>
      ) : null}
      {run.status === 'SUCCEEDED' ? (
        <section aria-labelledby="review-heading">
          <h2 id="review-heading">Pairs near the threshold</h2>
          <p className="muted">
            Each comparison’s level and the weight it adds; no value is shown. A decision is kept for later
            runs.
          </p>
          <UncertainPairs runId={run.id} />
        </section>
      ) : null}
      {run.weightHistogram.length || run.status === 'SUCCEEDED' ? (
        <section aria-labelledby="weights-heading">
          <h2 id="weights-heading">Match weights</h2>
          <WeightHistogram bins={run.weightHistogram} threshold={run.threshold} />
        </section>
      ) : null}
      <p>
        <Link to="/linkage">All linkage runs</Link>
      </p>
    </>
  );
}
