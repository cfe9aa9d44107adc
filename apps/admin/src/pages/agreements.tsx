import { AGREEMENT_STATUSES, type Agreement, type AgreementStatus, Q } from '../api/schema';
import {
  EmptyState,
  ErrorMessage,
  Field,
  Loading,
  PageHeader,
  StatusBadge,
  TableWrap,
} from '../components/ui';
import { formatDay, humanize } from '../lib/format';
import { Link, navigate } from '../lib/router';
import { useSession } from '../lib/session';
import { useQuery } from '../lib/use-query';

/** Whether the caller's agency still has to approve the agreement's current version. */
export function awaitsApprovalBy(agreement: Agreement, agencyId: string | undefined): boolean {
  if (!agencyId || agreement.status === 'REVOKED') return false;
  const current = agreement.versions.find((v) => v.version === agreement.currentVersion);
  return !!current && !current.approvals.some((a) => a.agency.id === agencyId);
}

/** Agreements by status: a steward's own agency's, or all of them for auditors and operators. */
export function AgreementsPage({ status }: { status: AgreementStatus | null }) {
  const { me } = useSession();
  const { data, error, loading } = useQuery<{ agreements: Agreement[] }>(Q.agreements, { status });
  const agreements = data?.agreements ?? [];
  const steward = me.role === 'STEWARD';

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
