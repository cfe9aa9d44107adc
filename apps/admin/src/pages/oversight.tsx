import { type FormEvent, useState } from 'react';
import { type Agreement, type AgreementVersion, type Dataset, Q } from '../api/schema';
import { LivePreview } from '../components/agreement-preview';
import { EmptyState, ErrorMessage, Field, Loading, Notice, PageHeader, TableWrap } from '../components/ui';
import { formatDay, humanize } from '../lib/format';
import { Link } from '../lib/router';
import { useMutation, useQuery } from '../lib/use-query';

/** The current version of an agreement, if it awaits the oversight board: needed, not decided yet. */
export function awaitingOversight(agreement: Agreement): AgreementVersion | null {
  if (agreement.status === 'REVOKED') return null;
  const current = agreement.versions.find((v) => v.version === agreement.currentVersion);
  if (!current || !current.oversightRequired || current.decline) return null;
  const parties = new Set([agreement.provider.id, agreement.recipient.id]);
  return current.approvals.some((a) => !parties.has(a.agency.id)) ? null : current;
}

/** The input a version's content makes, for the preview (the same validation as a proposal). */
function inputOf(version: AgreementVersion): Record<string, unknown> {
  const c = version.content;
  return {
    title: c.title,
    providerAgencyId: c.providerAgencyId,
    recipientAgencyId: c.recipientAgencyId,
    purposes: c.purposes,
    validFrom: c.validFrom,
    validUntil: c.validUntil,
    retentionDays: c.retentionDays,
    legalBasis: c.legalBasis,
    termsOfUse: c.termsOfUse,
    communityBenefit: c.communityBenefit ?? null,
    grants: c.grants,
  };
}

function OversightItem({
  agreement,
  version,
  datasets,
  onDecided,
}: {
  agreement: Agreement;
  version: AgreementVersion;
  datasets: Map<string, Dataset>;
  onDecided: (message: string) => void;
}) {
  const approve = useMutation<{ approveAgreement: Agreement }>(Q.approveAgreement);
  const decline = useMutation<{ declineAgreement: Agreement }>(Q.declineAgreement);
  const [declining, setDeclining] = useState(false);
  const [reason, setReason] = useState('');
  const headingId = `oversight-${agreement.id}`;
  const parties = new Set([agreement.provider.id, agreement.recipient.id]);
  const approvedBy = version.approvals.filter((a) => parties.has(a.agency.id)).map((a) => a.agency.name);

  const onApprove = async () => {
    const result = await approve.mutate({ id: agreement.id, version: version.version });
    if (result) {
      onDecided(
        result.approveAgreement.inForceVersion === version.version
          ? `“${agreement.title}” version ${version.version} approved: it is in force.`
          : `“${agreement.title}” version ${version.version} approved by oversight; it awaits a party.`,
      );
    }
  };
  const onDecline = async (event: FormEvent) => {
    event.preventDefault();
    const result = await decline.mutate({
      id: agreement.id,
      version: version.version,
      reason: reason.trim(),
    });
    if (result)
      onDecided(`“${agreement.title}” version ${version.version} declined; the parties may amend it.`);
  };

  return (
    <article className="card stack" aria-labelledby={headingId}>
      <h2 id={headingId}>
        <Link to={`/agreements/${agreement.id}`}>{agreement.title}</Link>{' '}
        <span className="muted">version {version.version}</span>
      </h2>
      <p>
        {agreement.provider.name} → {agreement.recipient.name}, for {version.content.purposes.join(', ')};{' '}
        {formatDay(version.content.validFrom)} to {formatDay(version.content.validUntil)}. Approved so far by:{' '}
        {approvedBy.length ? approvedBy.join(', ') : 'no party'}.
      </p>
      <dl className="facts">
        <dt>Who benefits</dt>
        <dd>{version.content.communityBenefit ?? 'not stated'}</dd>
        <dt>Legal basis</dt>
        <dd>{version.content.legalBasis ?? 'not stated'}</dd>
        <dt>Retention</dt>
        <dd>{version.content.retentionDays ? `${version.content.retentionDays} days` : 'none set'}</dd>
      </dl>
      {version.content.grants.map((grant) => {
        const dataset = datasets.get(grant.datasetId);
        const fields = new Map(dataset?.fields.map((f) => [f.name, f]));
        return (
          <TableWrap key={grant.datasetId} label={`Fields of ${dataset?.title ?? grant.datasetId}`}>
            <table>
              <caption>
                {dataset?.title ?? grant.datasetId}: {humanize(grant.access)}
                {grant.linkage ? ', linked across agencies' : ''}
              </caption>
              <thead>
                <tr>
                  <th scope="col">Field</th>
                  <th scope="col">Classification</th>
                  <th scope="col">Released as</th>
                  <th scope="col">Justification</th>
                </tr>
              </thead>
              <tbody>
                {grant.fields.map((f) => (
                  <tr key={f.name}>
                    <th scope="row">{f.name}</th>
                    <td>{humanize(fields.get(f.name)?.classification ?? 'unknown')}</td>
                    <td>{humanize(f.transform)}</td>
                    <td>{f.justification ?? <span className="muted">none given</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        );
      })}
      <LivePreview input={inputOf(version)} blocked={null} />
      <ErrorMessage error={approve.error} title="The approval was not recorded" />
      <div className="form-actions">
        <button type="button" className="primary" disabled={approve.busy} onClick={() => void onApprove()}>
          Approve version {version.version}
        </button>
        {!declining ? (
          <button type="button" className="danger" onClick={() => setDeclining(true)}>
            Decline…
          </button>
        ) : null}
      </div>
      {declining ? (
        <form onSubmit={(e) => void onDecline(e)} className="stack" aria-label={`Decline ${agreement.title}`}>
          <Field label="Reason for declining" hint="Recorded in the audit log and shown to both parties.">
            {(a) => (
              <textarea {...a} rows={3} value={reason} onChange={(e) => setReason(e.target.value)} required />
            )}
          </Field>
          <ErrorMessage error={decline.error} title="The version was not declined" />
          <div className="form-actions">
            <button type="submit" className="danger" disabled={!reason.trim() || decline.busy}>
              Decline version {version.version}
            </button>
            <button type="button" onClick={() => setDeclining(false)}>
              Cancel
            </button>
          </div>
        </form>
      ) : null}
    </article>
  );
}

/**
 * The oversight queue (AUDITOR): versions that release identifying or sensitive fields, or link
 * people, and await the board's sign-off; with the justifications beside the fields and the preview
 * of what the recipient would see.
 */
export function OversightPage() {
  const agreements = useQuery<{ agreements: Agreement[] }>(Q.agreements, {});
  const datasets = useQuery<{ datasets: Dataset[] }>(Q.datasets);
  const [notice, setNotice] = useState<string | null>(null);
  const queue = (agreements.data?.agreements ?? [])
    .map((a) => ({ agreement: a, version: awaitingOversight(a) }))
    .filter((x): x is { agreement: Agreement; version: AgreementVersion } => x.version !== null);
  const byId = new Map((datasets.data?.datasets ?? []).map((d) => [d.id, d]));
  return (
    <>
      <PageHeader title="Oversight queue" />
      <p className="muted">
        Versions that release identifying or sensitive fields other than as a code, or link people across
        agencies, come into force only once the oversight board approves them as well as both parties.
      </p>
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorMessage error={agreements.error ?? datasets.error} />
      {agreements.loading && !agreements.data ? <Loading label="Loading the queue…" /> : null}
      {agreements.data && queue.length === 0 ? (
        <EmptyState>Nothing awaits the oversight board.</EmptyState>
      ) : null}
      {queue.map(({ agreement, version }) => (
        <OversightItem
          key={`${agreement.id}:${version.version}`}
          agreement={agreement}
          version={version}
          datasets={byId}
          onDecided={(message) => {
            setNotice(message);
            void agreements.reload();
          }}
        />
      ))}
    </>
  );
}
