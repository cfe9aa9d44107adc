import { type FormEvent, useCallback, useEffect, useMemo, useState } from 'react';
import { ApiError, graphql } from '../api/client';
import {
  type AccessCount,
  type Agency,
  type Agreement,
  type AuditEvent,
  type AuditVerification,
  type Dataset,
  Q,
  type RefusalCount,
  type RequestPlane,
  type User,
} from '../api/schema';
import { AccessChart, RefusalChart, daysBetween } from '../components/charts';
import { EmptyState, ErrorMessage, Field, Loading, Notice, PageHeader, TableWrap } from '../components/ui';
import { dayToInstant, formatInstant, formatNumber, humanize } from '../lib/format';
import { parseHeads } from '../lib/known-heads';
import { Link } from '../lib/router';
import { useSession } from '../lib/session';
import { useQuery } from '../lib/use-query';

/** Every action the log records (libs/audit's AuditAction), for the filter. */
const ACTIONS = [
  'QUERY',
  'AGGREGATE',
  'EXPORT',
  'REQUEST_REFUSED',
  'AGREEMENT_PROPOSED',
  'AGREEMENT_AMENDED',
  'AGREEMENT_APPROVED',
  'AGREEMENT_DECLINED',
  'AGREEMENT_REVOKED',
  'DESTRUCTION_ATTESTED',
  'DATASET_REGISTERED',
  'DATASET_UPDATED',
  'RECORDS_INGESTED',
  'RECORDS_DESTROYED',
  'CONSENT_RECORDED',
  'SUBJECT_ACCESS_REPORT',
  'LINKAGE_RUN',
  'LINKAGE_PAIR_DECIDED',
  'LINKAGE_PAIR_READ',
  'AGENCY_CREATED',
  'PURPOSE_DEFINED',
  'USER_CREATED',
  'USER_DEACTIVATED',
  'API_KEY_ROTATED',
  'ACCOUNTS_VOUCHED',
];

const PLANES: Record<RequestPlane, string> = { CONTROL: 'control plane', DATA: 'data plane' };

interface AuditFilterDraft {
  action: string;
  decision: string;
  actorAgencyId: string;
  datasetId: string;
  agreementId: string;
  from: string;
  to: string;
}

const NO_FILTER: AuditFilterDraft = {
  action: '',
  decision: '',
  actorAgencyId: '',
  datasetId: '',
  agreementId: '',
  from: '',
  to: '',
};

function filterInput(f: AuditFilterDraft): Record<string, unknown> {
  const next = (day: string) => {
    const at = dayToInstant(day);
    return at ? new Date(new Date(at).getTime() + 86_400_000).toISOString() : null;
  };
  return {
    action: f.action || null,
    decision: f.decision || null,
    actorAgencyId: f.actorAgencyId || null,
    datasetId: f.datasetId || null,
    agreementId: f.agreementId || null,
    from: dayToInstant(f.from),
    // "To" a day includes that whole day.
    to: next(f.to),
  };
}

/** Lookups from ids to names for the log, from the catalog lists the caller may read. */
function useNames() {
  const agencies = useQuery<{ agencies: Agency[] }>(Q.agencies);
  const datasets = useQuery<{ datasets: Dataset[] }>(Q.datasets);
  const agreements = useQuery<{ agreements: Agreement[] }>(Q.agreements, {});
  // Who acted: the users the caller may list (analysts may not, and see only their own events).
  const { me } = useSession();
  const users = useQuery<{ users: User[] }>(Q.users, undefined, me.role === 'ANALYST');
  return useMemo(
    () => ({
      agencies: agencies.data?.agencies ?? [],
      datasets: datasets.data?.datasets ?? [],
      agreements: agreements.data?.agreements ?? [],
      agency: (id: string | null) =>
        id ? (agencies.data?.agencies.find((a) => a.id === id)?.name ?? id.slice(0, 8)) : '—',
      dataset: (id: string | null) =>
        id ? (datasets.data?.datasets.find((d) => d.id === id)?.slug ?? id.slice(0, 8)) : '—',
      agreement: (id: string) =>
        agreements.data?.agreements.find((a) => a.id === id)?.title ?? id.slice(0, 8),
      user: (id: string | null) =>
        id
          ? id === me.id
            ? me.email
            : (users.data?.users.find((u) => u.id === id)?.email ?? id.slice(0, 8))
          : '—',
    }),
    [agencies.data, datasets.data, agreements.data, users.data, me],
  );
}

/** The audit log, newest first, with filters; pages on as far as the reader wants. */
export function AuditLogPage() {
  const { apiKey } = useSession();
  const names = useNames();
  const [draft, setDraft] = useState<AuditFilterDraft>(NO_FILTER);
  const [applied, setApplied] = useState<AuditFilterDraft>(NO_FILTER);
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [more, setMore] = useState(false);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<ApiError | null>(null);

  const load = useCallback(
    async (filter: AuditFilterDraft, after: string | null) => {
      setLoading(true);
      setError(null);
      try {
        const { auditEvents } = await graphql<{
          auditEvents: { nodes: AuditEvent[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } };
        }>(apiKey, Q.auditEvents, { filter: filterInput(filter), first: 50, after });
        setEvents((list) => (after ? [...list, ...auditEvents.nodes] : auditEvents.nodes));
        setCursor(auditEvents.pageInfo.endCursor);
        setMore(auditEvents.pageInfo.hasNextPage);
      } catch (e) {
        setError(e instanceof ApiError ? e : new ApiError(String(e), 'ERROR'));
      } finally {
        setLoading(false);
      }
    },
    [apiKey],
  );

  useEffect(() => {
    void load(applied, null);
  }, [applied, load]);

  const apply = (event: FormEvent) => {
    event.preventDefault();
    setApplied({ ...draft });
  };
  const set = (change: Partial<AuditFilterDraft>) => setDraft((d) => ({ ...d, ...change }));
  const filtered = Object.values(applied).some(Boolean);
  const refused = events.reduce((n, e) => n + (e.refusals ?? 0), 0);

  return (
    <>
      <PageHeader title="Audit log" />
      <p className="muted">
        Every data access and refusal, and every change to agencies, users, datasets and agreements, in one
        hash chain. A refusal names the plane that refused it; repeated refusals of one user for a limit are
        merged into one event per minute, which says how many requests it records.{' '}
        <Link to="/audit/verify">Verify the chain</Link>.
      </p>
      <form onSubmit={apply} className="card filters" aria-label="Filter the audit log">
        <div className="grid-4">
          <Field label="Action">
            {(a) => (
              <select {...a} value={draft.action} onChange={(e) => set({ action: e.target.value })}>
                <option value="">Any action</option>
                {ACTIONS.map((x) => (
                  <option key={x} value={x}>
                    {humanize(x)}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Decision">
            {(a) => (
              <select {...a} value={draft.decision} onChange={(e) => set({ decision: e.target.value })}>
                <option value="">Allowed or denied</option>
                <option value="ALLOW">Allowed</option>
                <option value="DENY">Denied</option>
              </select>
            )}
          </Field>
          <Field label="Acting agency">
            {(a) => (
              <select
                {...a}
                value={draft.actorAgencyId}
                onChange={(e) => set({ actorAgencyId: e.target.value })}
              >
                <option value="">Any agency</option>
                {names.agencies.map((x) => (
                  <option key={x.id} value={x.id}>
                    {x.name}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Dataset">
            {(a) => (
              <select {...a} value={draft.datasetId} onChange={(e) => set({ datasetId: e.target.value })}>
                <option value="">Any dataset</option>
                {names.datasets.map((x) => (
                  <option key={x.id} value={x.id}>
                    {x.slug}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Agreement">
            {(a) => (
              <select {...a} value={draft.agreementId} onChange={(e) => set({ agreementId: e.target.value })}>
                <option value="">Any agreement</option>
                {names.agreements.map((x) => (
                  <option key={x.id} value={x.id}>
                    {x.title}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="From (UTC day)">
            {(a) => (
              <input {...a} type="date" value={draft.from} onChange={(e) => set({ from: e.target.value })} />
            )}
          </Field>
          <Field label="To (UTC day, included)">
            {(a) => (
              <input {...a} type="date" value={draft.to} onChange={(e) => set({ to: e.target.value })} />
            )}
          </Field>
        </div>
        <div className="form-actions">
          <button type="submit" className="primary">
            Apply filters
          </button>
          <button
            type="button"
            onClick={() => {
              setDraft(NO_FILTER);
              setApplied(NO_FILTER);
            }}
            disabled={!filtered && !Object.values(draft).some(Boolean)}
          >
            Clear filters
          </button>
        </div>
      </form>
      <ErrorMessage error={error} />
      {loading && events.length === 0 ? <Loading label="Loading events…" /> : null}
      {!loading && !error && events.length === 0 ? (
        <EmptyState>{filtered ? 'No event matches these filters.' : 'The log is empty.'}</EmptyState>
      ) : null}
      {events.length > 0 ? (
        <>
          <p role="status" className="muted">
            Showing {formatNumber(events.length)} events{more ? ' (more below)' : ''}, newest first.
            {refused > 0 ? ` They record ${formatNumber(refused)} refused requests.` : ''}
          </p>
          <TableWrap label="Audit events">
            <table className="compact">
              <thead>
                <tr>
                  <th scope="col" className="num">
                    Seq
                  </th>
                  <th scope="col">When</th>
                  <th scope="col">Action</th>
                  <th scope="col">Decision</th>
                  <th scope="col">Who</th>
                  <th scope="col">Agency</th>
                  <th scope="col">Purpose</th>
                  <th scope="col">Dataset</th>
                  <th scope="col">Agreement</th>
                  <th scope="col">Fields or operations</th>
                  <th scope="col" className="num">
                    Rows
                  </th>
                  <th scope="col">Reason</th>
                </tr>
              </thead>
              <tbody>
                {events.map((e) => (
                  <tr key={e.seq}>
                    <td className="num">{e.seq}</td>
                    <td className="nowrap">{formatInstant(e.at)}</td>
                    <td>
                      {humanize(e.action)}
                      {e.plane ? <span className="muted small"> ({PLANES[e.plane]})</span> : null}
                    </td>
                    <td>
                      <span className={`badge ${e.decision === 'DENY' ? 'badge-revoked' : 'badge-active'}`}>
                        {e.decision === 'DENY' ? 'Denied' : 'Allowed'}
                      </span>
                      {e.refusals && e.refusals > 1 ? (
                        <span className="nowrap"> × {formatNumber(e.refusals)} requests</span>
                      ) : null}
                    </td>
                    <td>{names.user(e.actorUserId)}</td>
                    <td>{names.agency(e.actorAgencyId)}</td>
                    <td>{e.purpose ?? '—'}</td>
                    <td>{names.dataset(e.datasetId)}</td>
                    <td>
                      {e.agreementId ? (
                        <Link to={`/agreements/${e.agreementId}`}>
                          {names.agreement(e.agreementId)}
                          {e.agreementVersion ? ` v${e.agreementVersion}` : ''}
                        </Link>
                      ) : (
                        '—'
                      )}
                    </td>
                    <td>
                      {e.fields?.length
                        ? e.fields.join(', ')
                        : e.operations?.length
                          ? e.operations.join(', ')
                          : '—'}
                    </td>
                    <td className="num">{e.decision === 'DENY' ? '—' : formatNumber(e.rowCount)}</td>
                    <td className="reason">{e.reason ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
          {more ? (
            <button type="button" onClick={() => void load(applied, cursor)} disabled={loading}>
              {loading ? 'Loading…' : 'Load older events'}
            </button>
          ) : null}
        </>
      ) : null}
    </>
  );
}

/**
 * Recomputes the whole hash chain on the broker and says whether, and where, it was tampered with,
 * checking it against heads written down earlier (which show a tail cut off, or a log resealed, by
 * someone who can write to the database), and shows the head to write down now.
 */
export function AuditVerifyPage() {
  const { apiKey } = useSession();
  const [result, setResult] = useState<{
    verification: AuditVerification;
    at: Date;
    against: number;
    head: { seq: number; hash: string } | null;
  } | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [headsText, setHeadsText] = useState('');
  const [headsProblem, setHeadsProblem] = useState<string | null>(null);
  const verify = async () => {
    const parsed = parseHeads(headsText);
    if ('bad' in parsed) {
      setHeadsProblem(
        `Line${parsed.bad.length > 1 ? 's' : ''} ${parsed.bad.join(', ')}: write each head as its number, a colon and its 64 hexadecimal digits, e.g. 1234:9f86d0…`,
      );
      return;
    }
    if (parsed.heads.length > 100) {
      setHeadsProblem('At most 100 heads at a time: keep the most recent ones.');
      return;
    }
    setHeadsProblem(null);
    setBusy(true);
    setError(null);
    try {
      const { verifyAuditChain } = await graphql<{ verifyAuditChain: AuditVerification }>(
        apiKey,
        Q.verifyAuditChain,
        { knownHeads: parsed.heads.length ? parsed.heads : null },
      );
      // The head to write down now, as the public register shows it (read after the verification).
      let head: { seq: number; hash: string } | null = null;
      try {
        const response = await fetch('/api/register');
        if (response.ok)
          head = ((await response.json()) as { auditHead?: { seq: number; hash: string } }).auditHead ?? null;
      } catch {
        head = null;
      }
      setResult({ verification: verifyAuditChain, at: new Date(), against: parsed.heads.length, head });
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(String(e), 'ERROR'));
    } finally {
      setBusy(false);
    }
  };
  const v = result?.verification;
  return (
    <>
      <PageHeader title="Chain verification" />
      <p>
        Each audit event carries the hash of the one before it. Verification recomputes every hash from the
        stored events: a changed, deleted, inserted or reordered event breaks the chain at the exact place.
        Someone who can write to the database could also cut off the newest events, or rewrite events and
        reseal everything after them; what shows that is a head written down earlier, outside the database.
      </p>
      <Field
        label="Heads written down earlier (optional)"
        hint="One a line: the event's number, a colon and its hash, as the public register or an earlier verification showed them."
        problem={headsProblem}
      >
        {(a) => (
          <textarea
            {...a}
            rows={3}
            spellCheck={false}
            value={headsText}
            onChange={(e) => setHeadsText(e.target.value)}
          />
        )}
      </Field>
      <div className="form-actions">
        <button type="button" className="primary" onClick={() => void verify()} disabled={busy}>
          {busy ? 'Verifying…' : 'Verify the chain'}
        </button>
      </div>
      <ErrorMessage error={error} title="The chain could not be verified" />
      <div aria-live="polite">
        {v && v.valid ? (
          <Notice>
            <strong>The chain is intact.</strong> {formatNumber(v.checked)} events checked at{' '}
            {formatInstant(result.at.toISOString())}; none was changed, deleted, inserted or reordered
            {result.against
              ? `, and the log still holds the ${result.against === 1 ? 'head' : `${result.against} heads`} written down earlier`
              : ''}
            .
          </Notice>
        ) : null}
        {v && !v.valid ? (
          <div className="alert alert-error" role="alert">
            <p className="alert-title">The chain is broken at event #{v.firstBrokenSeq}.</p>
            <p>
              {formatNumber(v.checked)} events before it are intact. Event #{v.firstBrokenSeq} or its
              neighbour was changed, deleted, inserted or moved, or the log no longer holds a head written
              down earlier: compare the log with your backups from that point.
            </p>
          </div>
        ) : null}
        {result?.head && v?.valid ? (
          <div className="written-head">
            <p>
              Write this head down, somewhere the database&apos;s administrators cannot reach, to check the
              log against it later:
            </p>
            <p>
              <code>
                {result.head.seq}:{result.head.hash}
              </code>
            </p>
          </div>
        ) : null}
        {!v && !error ? <p className="muted">Not verified yet in this session.</p> : null}
      </div>
    </>
  );
}

const PERIODS = [7, 30, 90, 365];

/** Data requests per agreement over time, answered and refused, and every refused request by whom. */
export function AccessChartPage() {
  const names = useNames();
  const [days, setDays] = useState(30);
  const [now] = useState(() => new Date());
  const from = useMemo(() => {
    const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    start.setUTCDate(start.getUTCDate() - days + 1);
    return start;
  }, [now, days]);
  const period = { from: from.toISOString(), to: now.toISOString() };
  const access = useQuery<{ auditAccessSeries: AccessCount[] }>(Q.auditAccessSeries, period);
  const refusals = useQuery<{ auditRefusalSeries: RefusalCount[] }>(Q.auditRefusalSeries, period);
  const counts = access.data?.auditAccessSeries ?? [];
  const refused = refusals.data?.auditRefusalSeries ?? [];
  return (
    <>
      <PageHeader title="Accesses and refusals" />
      <p className="muted">
        Data requests recorded in the audit log, per agreement and day (UTC): how many were answered and how
        many refused; then every refused request of either plane, by whom and why.
      </p>
      <Field label="Period">
        {(a) => (
          <select {...a} value={days} onChange={(e) => setDays(Number(e.target.value))}>
            {PERIODS.map((p) => (
              <option key={p} value={p}>
                Last {p} days
              </option>
            ))}
          </select>
        )}
      </Field>
      <section aria-labelledby="per-agreement">
        <h2 id="per-agreement">Data requests per agreement</h2>
        <ErrorMessage error={access.error} />
        {access.loading && !access.data ? <Loading label="Counting accesses…" /> : null}
        {access.data && counts.length === 0 ? (
          <EmptyState>No data requests in the last {days} days.</EmptyState>
        ) : null}
        {counts.length > 0 ? (
          <AccessChart counts={counts} days={daysBetween(from, now)} name={names.agreement} />
        ) : null}
      </section>
      <section aria-labelledby="refused">
        <h2 id="refused">Refused requests</h2>
        <p className="muted">
          Refusals of signed-in users on the control plane (<code>/graphql</code>, uploads) and the data
          plane, counted request by request (merged limit refusals included), with the user and agency
          refused. Requests without a valid key are counted in the broker’s metrics, not here.
        </p>
        <ErrorMessage error={refusals.error} />
        {refusals.loading && !refusals.data ? <Loading label="Counting refusals…" /> : null}
        {refusals.data && refused.length === 0 ? (
          <EmptyState>No refused requests in the last {days} days.</EmptyState>
        ) : null}
        {refused.length > 0 ? (
          <RefusalChart
            counts={refused}
            days={daysBetween(from, now)}
            agency={names.agency}
            user={names.user}
          />
        ) : null}
      </section>
    </>
  );
}
