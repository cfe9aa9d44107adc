import { type FormEvent, useEffect, useMemo, useState } from 'react';
import { ApiError, graphql } from '../api/client';
import {
  type Agency,
  type Agreement,
  type AgreementContent,
  type AgreementVersion,
  type Dataset,
  type PurposePreview,
  Q,
} from '../api/schema';
import { PreviewView } from '../components/agreement-preview';
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
import { type DiffNames, diffContents } from '../lib/agreement-diff';
import { describeRowFilter, formatInstant, humanize } from '../lib/format';
import { Link } from '../lib/router';
import { useSession } from '../lib/session';
import { useMutation, useQuery } from '../lib/use-query';
import { awaitsApprovalBy } from './agreements';

/** One agreement: its terms, versions and approvals; for its stewards, approve, amend and revoke. */
export function AgreementPage({ id, query }: { id: string; query: URLSearchParams }) {
  const { me } = useSession();
  const { data, error, loading, reload } = useQuery<{ agreement: Agreement | null }>(Q.agreement, { id });
  const agencies = useQuery<{ agencies: Agency[] }>(Q.agencies);
  const datasets = useQuery<{ datasets: Dataset[] }>(Q.datasets);
  const [changed, setChanged] = useState<{ agreement: Agreement; message: string } | null>(null);
  const agreement = changed?.agreement ?? data?.agreement ?? null;

  const names: DiffNames = useMemo(() => {
    const agencyNames = new Map(agencies.data?.agencies.map((a) => [a.id, a.name]));
    const datasetNames = new Map(datasets.data?.datasets.map((d) => [d.id, d.slug]));
    return {
      agency: (agencyId) => agencyNames.get(agencyId) ?? agencyId,
      dataset: (datasetId) => datasetNames.get(datasetId) ?? datasetId,
    };
  }, [agencies.data, datasets.data]);

  if (loading && !data) return <Loading label="Loading the agreement…" />;
  if (error) {
    return (
      <>
        <PageHeader title="Agreement" />
        <ErrorMessage error={error} />
      </>
    );
  }
  if (!agreement) {
    return (
      <>
        <PageHeader title="Agreement not found" />
        <EmptyState>
          No agreement with this id is visible to you. <Link to="/agreements">Back to the agreements</Link>
        </EmptyState>
      </>
    );
  }
  const steward = me.role === 'STEWARD';
  const party = steward && [agreement.provider.id, agreement.recipient.id].includes(me.agency?.id ?? '');
  const proposed = query.get('proposed') ?? query.get('amended');

  return (
    <>
      <PageHeader title={agreement.title} />
      {proposed && !changed ? (
        <Notice>
          Version {proposed} proposed and approved by your side. It takes effect once the other party’s
          steward approves it
          {agreement.oversightRequired ? ', and the oversight board too' : ''}.
        </Notice>
      ) : null}
      {changed ? <Notice>{changed.message}</Notice> : null}
      <dl className="facts">
        <dt>Status</dt>
        <dd>
          <StatusBadge status={agreement.status} />
        </dd>
        <dt>Provider → recipient</dt>
        <dd>
          {agreement.provider.name} → {agreement.recipient.name}
        </dd>
        <dt>Current version</dt>
        <dd>v{agreement.currentVersion}</dd>
        <dt>In force</dt>
        <dd>
          {agreement.inForceVersion
            ? `v${agreement.inForceVersion}`
            : `no version yet: both parties${
                agreement.oversightRequired ? ' and the oversight board' : ''
              } must approve one`}
        </dd>
        <dt>Purposes</dt>
        <dd>{agreement.purposes.join(', ')}</dd>
        <dt>Valid</dt>
        <dd>
          {formatInstant(agreement.validFrom)} to {formatInstant(agreement.validUntil)}
        </dd>
        {agreement.revokedAt ? (
          <>
            <dt>Revoked</dt>
            <dd>
              {formatInstant(agreement.revokedAt)}: {agreement.revokeReason}
            </dd>
          </>
        ) : null}
      </dl>
      {party && agreement.status !== 'REVOKED' ? (
        <StewardActions
          agreement={agreement}
          onChanged={(next, message) => setChanged({ agreement: next, message })}
          reload={async () => {
            setChanged(null);
            await reload();
          }}
        />
      ) : null}
      <VersionsSection agreement={agreement} />
      {agreement.versions.length > 1 ? <DiffSection agreement={agreement} names={names} /> : null}
      <VersionContentSection agreement={agreement} names={names} canPreview={party} />
    </>
  );
}

/** Approve the current version, amend, or revoke with a reason. */
function StewardActions({
  agreement,
  onChanged,
  reload,
}: {
  agreement: Agreement;
  onChanged: (agreement: Agreement, message: string) => void;
  reload: () => Promise<void>;
}) {
  const { me } = useSession();
  const approve = useMutation<{ approveAgreement: Agreement }>(Q.approveAgreement);
  const revoke = useMutation<{ revokeAgreement: Agreement }>(Q.revokeAgreement);
  const [revoking, setRevoking] = useState(false);
  const [reason, setReason] = useState('');
  const awaits = awaitsApprovalBy(agreement, me.agency?.id);
  const current = agreement.versions.find((v) => v.version === agreement.currentVersion);
  const parties = [agreement.provider.id, agreement.recipient.id];
  const otherParty = parties.find((id) => id !== me.agency?.id) ?? '';
  const otherApproved = !!current?.approvals.some((a) => a.agency.id === otherParty);
  const boardApproved = !!current?.approvals.some((a) => !parties.includes(a.agency.id));

  const onApprove = async () => {
    const result = await approve.mutate({ id: agreement.id, version: agreement.currentVersion });
    if (result) {
      onChanged(
        result.approveAgreement,
        result.approveAgreement.inForceVersion === agreement.currentVersion
          ? `Version ${agreement.currentVersion} approved by both parties${
              result.approveAgreement.oversightRequired ? ' and the oversight board' : ''
            }: it is in force.`
          : `Version ${agreement.currentVersion} approved by your side${
              result.approveAgreement.oversightRequired
                ? '; it also needs the oversight board’s approval before it comes into force'
                : ''
            }.`,
      );
    } else await reload();
  };
  const onRevoke = async (event: FormEvent) => {
    event.preventDefault();
    const result = await revoke.mutate({ id: agreement.id, reason: reason.trim() });
    if (result) {
      setRevoking(false);
      onChanged(result.revokeAgreement, 'The agreement is revoked: access stopped at once, on every broker.');
    }
  };

  return (
    <section className="card" aria-labelledby="actions-heading">
      <h2 id="actions-heading">Your decisions</h2>
      <ErrorMessage error={approve.error} title="The approval was not recorded" />
      {current?.decline ? (
        <div className="alert alert-error" role="alert">
          <p className="alert-title">The oversight board declined version {agreement.currentVersion}</p>
          <p>
            {current.decline.agency.name}, {formatInstant(current.decline.at)}: “{current.decline.reason}”
          </p>
          <p>
            This version will never come into force
            {agreement.inForceVersion ? `; version ${agreement.inForceVersion} stays in force meanwhile` : ''}
            . Amend the agreement to answer the board with a new version, or revoke it.
          </p>
        </div>
      ) : awaits ? (
        <div className="stack">
          <p>
            Version {agreement.currentVersion} awaits your agency’s approval. Review its terms and what the
            recipient would see below, then approve it.
          </p>
          <div className="form-actions">
            <button
              type="button"
              className="primary"
              disabled={approve.busy}
              onClick={() => void onApprove()}
            >
              Approve version {agreement.currentVersion}
            </button>
          </div>
        </div>
      ) : (
        <p className="muted">
          Your agency approved version {agreement.currentVersion}
          {agreement.inForceVersion === agreement.currentVersion
            ? `; so did the other party${current?.oversightRequired ? ' and the oversight board' : ''}.`
            : !otherApproved
              ? `; the other party has not yet${
                  current?.oversightRequired && !boardApproved
                    ? ', and it also needs the oversight board’s approval'
                    : ''
                }.`
              : current?.oversightRequired && !boardApproved
                ? '; so did the other party. It now awaits the oversight board’s approval.'
                : '; so did the other party.'}
        </p>
      )}
      <div className="form-actions">
        <Link to={`/agreements/${agreement.id}/amend`} className="button">
          Amend
        </Link>
        {!revoking ? (
          <button type="button" className="danger" onClick={() => setRevoking(true)}>
            Revoke…
          </button>
        ) : null}
      </div>
      {revoking ? (
        <form
          onSubmit={(e) => void onRevoke(e)}
          className="stack revoke-form"
          aria-label="Revoke the agreement"
        >
          <p>
            Revocation is final and stops access at once. To change the terms while access continues, amend
            instead.
          </p>
          <Field label="Reason for revoking" hint="Recorded in the audit log and shown to both parties.">
            {(a) => (
              <textarea
                {...a}
                rows={3}
                value={reason}
                onChange={(e) => setReason(e.target.value)}
                required
                autoFocus
              />
            )}
          </Field>
          <ErrorMessage error={revoke.error} title="The agreement was not revoked" />
          <div className="form-actions">
            <button type="submit" className="danger" disabled={!reason.trim() || revoke.busy}>
              Revoke agreement
            </button>
            <button type="button" onClick={() => setRevoking(false)}>
              Keep the agreement
            </button>
          </div>
        </form>
      ) : null}
    </section>
  );
}

function VersionsSection({ agreement }: { agreement: Agreement }) {
  return (
    <section aria-labelledby="versions-heading">
      <h2 id="versions-heading">Versions and approvals</h2>
      <TableWrap label="Version list">
        <table>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Created</th>
              <th scope="col">Approved by</th>
              <th scope="col">Content hash</th>
            </tr>
          </thead>
          <tbody>
            {[...agreement.versions].reverse().map((v) => (
              <tr key={v.version}>
                <td>
                  v{v.version}
                  {v.version === agreement.inForceVersion ? (
                    <span className="badge badge-active">in force</span>
                  ) : null}
                  {v.version === agreement.currentVersion && v.version !== agreement.inForceVersion ? (
                    <span className="badge badge-proposed">current</span>
                  ) : null}
                </td>
                <td>{formatInstant(v.createdAt)}</td>
                <td>
                  <ul className="plain">
                    {v.approvals.map((a) => (
                      <li key={a.agency.id}>
                        {a.agency.name} ({a.user.email}), {formatInstant(a.at)}
                      </li>
                    ))}
                    {v.decline ? (
                      <li>
                        <strong>Declined</strong> by {v.decline.agency.name}, {formatInstant(v.decline.at)}: “
                        {v.decline.reason}”
                      </li>
                    ) : null}
                  </ul>
                </td>
                <td>
                  <code title={v.hash}>{v.hash.slice(0, 12)}…</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
    </section>
  );
}

function VersionSelect({
  label,
  agreement,
  value,
  onChange,
}: {
  label: string;
  agreement: Agreement;
  value: number;
  onChange: (v: number) => void;
}) {
  return (
    <Field label={label}>
      {(a) => (
        <select {...a} value={value} onChange={(e) => onChange(Number(e.target.value))}>
          {agreement.versions.map((v) => (
            <option key={v.version} value={v.version}>
              v{v.version}
              {v.version === agreement.inForceVersion
                ? ' (in force)'
                : v.version === agreement.currentVersion
                  ? ' (current)'
                  : ''}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
}

/** Two versions side by side, the terms that differ marked. */
function DiffSection({ agreement, names }: { agreement: Agreement; names: DiffNames }) {
  // By default: what is in force against what is proposed, or else the last change made.
  const [left, setLeft] = useState(
    agreement.inForceVersion && agreement.inForceVersion !== agreement.currentVersion
      ? agreement.inForceVersion
      : Math.max(1, agreement.currentVersion - 1),
  );
  const [right, setRight] = useState(agreement.currentVersion);
  const [onlyChanges, setOnlyChanges] = useState(true);
  const a = agreement.versions.find((v) => v.version === left);
  const b = agreement.versions.find((v) => v.version === right);
  const rows = a && b ? diffContents(a.content, b.content, names) : [];
  const shown = onlyChanges ? rows.filter((r) => r.changed) : rows;
  const changes = rows.filter((r) => r.changed).length;
  return (
    <section aria-labelledby="diff-heading">
      <h2 id="diff-heading">Compare versions</h2>
      <div className="grid-3 align-end">
        <VersionSelect label="Compare version" agreement={agreement} value={left} onChange={setLeft} />
        <VersionSelect label="with version" agreement={agreement} value={right} onChange={setRight} />
        <label className="choice">
          <input type="checkbox" checked={onlyChanges} onChange={(e) => setOnlyChanges(e.target.checked)} />
          <span>Only the differences</span>
        </label>
      </div>
      <p role="status">
        {left === right
          ? 'The same version on both sides.'
          : changes === 0
            ? `v${left} and v${right} have the same terms.`
            : `${changes} ${changes === 1 ? 'term differs' : 'terms differ'} between v${left} and v${right}.`}
      </p>
      {shown.length ? (
        <TableWrap label={`Differences between version ${left} and version ${right}`}>
          <table className="diff">
            <thead>
              <tr>
                <th scope="col">Term</th>
                <th scope="col">v{left}</th>
                <th scope="col">v{right}</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <tr key={`${r.section}/${r.label}`} className={r.changed ? 'changed' : undefined}>
                  <th scope="row">
                    <span className="muted small">{r.section}</span> {r.label}
                    {r.changed ? <span className="visually-hidden"> (changed)</span> : null}
                  </th>
                  <td className={r.changed ? 'removed' : undefined}>{r.left}</td>
                  <td className={r.changed ? 'added' : undefined}>{r.right}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      ) : null}
    </section>
  );
}

/** The AgreementInput that re-states a stored version's content, for the preview. */
function contentInput(content: AgreementContent): Record<string, unknown> {
  return {
    title: content.title,
    providerAgencyId: content.providerAgencyId,
    recipientAgencyId: content.recipientAgencyId,
    purposes: content.purposes,
    validFrom: content.validFrom,
    validUntil: content.validUntil,
    retentionDays: content.retentionDays,
    legalBasis: content.legalBasis,
    termsOfUse: content.termsOfUse,
    grants: content.grants.map((g) => ({
      datasetId: g.datasetId,
      access: g.access,
      fields: g.fields.map((f) => ({ name: f.name, transform: f.transform })),
      rowFilter: g.rowFilter,
      requireConsent: g.requireConsent,
      minCellSize: g.minCellSize,
      linkage: g.linkage,
    })),
  };
}

/** The terms of one version, and for its parties' stewards, what its recipient would see. */
function VersionContentSection({
  agreement,
  names,
  canPreview,
}: {
  agreement: Agreement;
  names: DiffNames;
  canPreview: boolean;
}) {
  const [shown, setShown] = useState(agreement.currentVersion);
  useEffect(() => setShown(agreement.currentVersion), [agreement.currentVersion]);
  const version =
    agreement.versions.find((v) => v.version === shown) ?? agreement.versions[agreement.versions.length - 1];
  return (
    <section aria-labelledby="content-heading">
      <h2 id="content-heading">Terms of version {version.version}</h2>
      {agreement.versions.length > 1 ? (
        <VersionSelect
          label="Show version"
          agreement={agreement}
          value={version.version}
          onChange={setShown}
        />
      ) : null}
      <div className="with-aside">
        <ContentView version={version} names={names} />
        {canPreview ? <VersionPreview version={version} /> : null}
      </div>
    </section>
  );
}

function ContentView({ version, names }: { version: AgreementVersion; names: DiffNames }) {
  const c = version.content;
  return (
    <div className="stack">
      <dl className="facts">
        <dt>Purposes</dt>
        <dd>{c.purposes.join(', ')}</dd>
        <dt>Valid</dt>
        <dd>
          {formatInstant(c.validFrom)} to {formatInstant(c.validUntil)}
        </dd>
        <dt>Retention</dt>
        <dd>{c.retentionDays ? `${c.retentionDays} days` : 'not set'}</dd>
        <dt>Legal basis</dt>
        <dd>{c.legalBasis ?? 'not set'}</dd>
        {c.termsOfUse ? (
          <>
            <dt>Terms of use</dt>
            <dd className="pre">{c.termsOfUse}</dd>
          </>
        ) : null}
        <dt>Community benefit</dt>
        <dd className="pre">{c.communityBenefit || 'not stated'}</dd>
      </dl>
      {c.grants.map((g) => (
        <div key={g.datasetId} className="card">
          <h3>
            <code>{names.dataset(g.datasetId)}</code>{' '}
            <span className="muted">{humanize(g.access).toLowerCase()}</span>
          </h3>
          <ul className="plain">
            {g.fields.map((f) => (
              <li key={f.name}>
                <code>{f.name}</code>{' '}
                {f.transform === 'RAW' ? 'as stored' : humanize(f.transform).toLowerCase()}
                {f.justification ? <span className="muted">: {f.justification}</span> : null}
              </li>
            ))}
          </ul>
          <p>Rows: {describeRowFilter(g.rowFilter)}</p>
          <p className="muted">
            {g.requireConsent ? 'Consent required. ' : ''}Minimum cell size {g.minCellSize}.
            {g.linkage ? ' Releases personKey.' : ''}
          </p>
        </div>
      ))}
    </div>
  );
}

function VersionPreview({ version }: { version: AgreementVersion }) {
  const { apiKey } = useSession();
  const [state, setState] = useState<{ previews?: PurposePreview[]; error?: ApiError }>({});
  useEffect(() => {
    let current = true;
    setState({});
    graphql<{ previewAgreement: PurposePreview[] }>(apiKey, Q.previewAgreement, {
      input: contentInput(version.content),
    }).then(
      (data) => current && setState({ previews: data.previewAgreement }),
      (error: unknown) =>
        current &&
        setState({ error: error instanceof ApiError ? error : new ApiError(String(error), 'ERROR') }),
    );
    return () => {
      current = false;
    };
  }, [apiKey, version]);
  return (
    <section className="card side" aria-labelledby="version-preview-heading">
      <h3 id="version-preview-heading">What the recipient sees under v{version.version}</h3>
      {!state.previews && !state.error ? <Loading label="Asking the broker…" /> : null}
      <ErrorMessage error={state.error ?? null} title="No preview" />
      {state.previews ? <PreviewView previews={state.previews} /> : null}
    </section>
  );
}
