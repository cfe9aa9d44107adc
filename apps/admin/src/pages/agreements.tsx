import { useState } from 'react';
import { AGREEMENT_STATUSES, type Agreement, type AgreementStatus, Q } from '../api/schema';
import {
  EmptyState,
  ErrorMessage,
  Field,
  Loading,
  Notice,
  PageHeader,
  StatusBadge,
  TableWrap,
} from '../components/ui';
import { formatDay, humanize } from '../lib/format';
import { Link, navigate } from '../lib/router';
import { useSession } from '../lib/session';
import { useMutation, useQuery } from '../lib/use-query';

const DAY_MS = 86_400_000;

/**
 * Whether the recipient's stewards should attest destruction: the agreement binds them to a
 * retention, something may have been released under it longer ago than that, and the last
 * attestation (if any) is older than the retention.
 */
export function destructionDue(
  agreement: Agreement,
  agencyId: string | undefined,
  now = Date.now(),
): boolean {
  if (!agencyId || agreement.recipient.id !== agencyId || !agreement.inForceVersion) return false;
  const inForce = agreement.versions.find((v) => v.version === agreement.inForceVersion);
  const days = inForce?.content.retentionDays;
  if (!inForce || !days) return false;
  const since = Math.max(
    Date.parse(inForce.content.validFrom),
    agreement.destructionAttestedThrough ? Date.parse(agreement.destructionAttestedThrough) : 0,
  );
  return since + days * DAY_MS < now;
}

/** The reminder to a recipient's stewards: attest that rows past retention are destroyed. */
function DestructionReminders({
  agreements,
  onAttested,
}: {
  agreements: Agreement[];
  onAttested: () => void;
}) {
  const attest = useMutation<{ attestDestruction: Agreement }>(Q.attestDestruction);
  const [done, setDone] = useState<string | null>(null);
  if (!agreements.length && !done) return null;
  return (
    <section className="card stack" aria-labelledby="retention-heading">
      <h2 id="retention-heading">Destruction to attest</h2>
      {done ? <Notice>{done}</Notice> : null}
      <ErrorMessage error={attest.error} title="The attestation was not recorded" />
      {agreements.length ? (
        <ul>
          {agreements.map((a) => {
            const days = a.versions.find((v) => v.version === a.inForceVersion)?.content.retentionDays;
            return (
              <li key={a.id}>
                <Link to={`/agreements/${a.id}`}>{a.title}</Link> binds your agency to destroy what it
                received within {days} days
                {a.destructionAttestedThrough
                  ? `; you last attested destruction through ${formatDay(a.destructionAttestedThrough)}`
                  : '; no destruction has been attested yet'}
                . Once every row received more than {days} days ago is destroyed, attest it: the public
                register lists releases past retention that nobody attested.{' '}
                <button
                  type="button"
                  disabled={attest.busy}
                  onClick={() => {
                    const through = new Date(Date.now() - (days ?? 0) * DAY_MS).toISOString();
                    void attest.mutate({ id: a.id, through }).then((r) => {
                      if (r) {
                        setDone(`Attested for “${a.title}” through ${formatDay(through)}.`);
                        onAttested();
                      }
                    });
                  }}
                >
                  Attest destruction of rows received more than {days} days ago
                </button>
              </li>
            );
          })}
        </ul>
      ) : null}
    </section>
  );
}

/**
 * Whether the caller's agency still has to approve the agreement's current version (never one the
 * oversight board declined: that version can no longer be approved, only amended).
 */
export function awaitsApprovalBy(agreement: Agreement, agencyId: string | undefined): boolean {
  if (!agencyId || agreement.status === 'REVOKED') return false;
  const current = agreement.versions.find((v) => v.version === agreement.currentVersion);
  return !!current && !current.decline && !current.approvals.some((a) => a.agency.id === agencyId);
}

/** Whether the oversight board declined the agreement's current version (the parties may amend). */
export function currentDeclined(agreement: Agreement): boolean {
  return (
    agreement.status !== 'REVOKED' &&
    !!agreement.versions.find((v) => v.version === agreement.currentVersion)?.decline
  );
}

/** Agreements by status: a steward's own agency's, or all of them for auditors and operators. */
export function AgreementsPage({ status }: { status: AgreementStatus | null }) {
  const { me } = useSession();
  const { data, error, loading, reload } = useQuery<{ agreements: Agreement[] }>(Q.agreements, { status });
  const agreements = data?.agreements ?? [];
  const steward = me.role === 'STEWARD';
  const due = steward ? agreements.filter((a) => destructionDue(a, me.agency?.id)) : [];

  return (
    <>
      <PageHeader title="Agreements">
        {steward ? (
          <Link to="/agreements/new" className="button primary">
            Propose an agreement
          </Link>
        ) : null}
      </PageHeader>
      {!steward ? (
        <p className="muted">
          Read-only: agreements are negotiated and approved by the stewards of their parties.
        </p>
      ) : null}
      {steward ? <DestructionReminders agreements={due} onAttested={() => void reload()} /> : null}
      <Field label="Status">
        {(a) => (
          <select
            {...a}
            value={status ?? ''}
            onChange={(e) =>
              navigate(e.target.value ? `/agreements?status=${e.target.value}` : '/agreements')
            }
          >
            <option value="">All statuses</option>
            {AGREEMENT_STATUSES.map((s) => (
              <option key={s} value={s}>
                {humanize(s)}
              </option>
            ))}
          </select>
        )}
      </Field>
      <ErrorMessage error={error} />
      {loading && !data ? <Loading label="Loading agreements…" /> : null}
      {data && agreements.length === 0 ? (
        <EmptyState>
          {status ? `No ${humanize(status).toLowerCase()} agreements.` : 'No agreements yet'}
          {steward ? (
            <>
              {' '}
              — <Link to="/agreements/new">propose one</Link>
            </>
          ) : (
            '.'
          )}
        </EmptyState>
      ) : null}
      {agreements.length > 0 ? (
        <TableWrap label="Agreements">
          <table>
            <thead>
              <tr>
                <th scope="col">Title</th>
                <th scope="col">Provider → recipient</th>
                <th scope="col">Status</th>
                <th scope="col">Purposes</th>
                <th scope="col">Versions</th>
                <th scope="col">Valid</th>
              </tr>
            </thead>
            <tbody>
              {agreements.map((a) => (
                <tr key={a.id}>
                  <td>
                    <Link to={`/agreements/${a.id}`}>{a.title}</Link>
                    {steward && awaitsApprovalBy(a, me.agency?.id) ? (
                      <span className="badge badge-attention">Awaits your approval</span>
                    ) : null}
                    {currentDeclined(a) ? (
                      <span className="badge badge-attention">
                        v{a.currentVersion} declined by the oversight board
                      </span>
                    ) : null}
                  </td>
                  <td>
                    {a.provider.name} → {a.recipient.name}
                  </td>
                  <td>
                    <StatusBadge status={a.status} />
                  </td>
                  <td>{a.purposes.join(', ')}</td>
                  <td>
                    current v{a.currentVersion}
                    {a.inForceVersion ? `, in force v${a.inForceVersion}` : ', none in force'}
                  </td>
                  <td>
                    {formatDay(a.validFrom)} to {formatDay(a.validUntil)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      ) : null}
    </>
  );
}
