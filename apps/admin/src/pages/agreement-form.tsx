import { type FormEvent, useMemo, useRef, useState } from 'react';
import {
  type Agency,
  type Agreement,
  type AgreementContent,
  type Dataset,
  type DatasetField,
  type FieldTransform,
  type GrantAccess,
  type Purpose,
  Q,
} from '../api/schema';
import { LivePreview } from '../components/agreement-preview';
import { EmptyState, ErrorMessage, Field, Loading, PageHeader, problemsAt } from '../components/ui';
import { dayToInstant, describeRowFilter, releasedName } from '../lib/format';
import { Link, navigate } from '../lib/router';
import {
  EMPTY_FILTER,
  FILTER_OPERATORS,
  type FilterDraft,
  type FilterOperator,
  draftFromFilter,
  filterFromDraft,
} from '../lib/row-filter';
import { useSession } from '../lib/session';
import { useMutation, useQuery } from '../lib/use-query';

interface GrantDraft {
  datasetId: string;
  access: GrantAccess;
  /** Granted fields and their transforms, by field name. */
  fields: Record<string, FieldTransform>;
  /** Why the purpose needs each field at its precision, by field name. */
  justifications: Record<string, string>;
  filter: FilterDraft;
  requireConsent: boolean;
  minCellSize: string;
  linkage: boolean;
}

interface AgreementDraft {
  title: string;
  providerAgencyId: string;
  recipientAgencyId: string;
  purposes: string[];
  /** ISO instants; the date inputs set midnight UTC, and an untouched stored instant is kept as it is. */
  validFrom: string;
  validUntil: string;
  retentionDays: string;
  legalBasis: string;
  termsOfUse: string;
  communityBenefit: string;
  grants: GrantDraft[];
}

function newGrant(datasetId: string): GrantDraft {
  return {
    datasetId,
    access: 'ROWS',
    fields: {},
    justifications: {},
    filter: EMPTY_FILTER,
    requireConsent: false,
    minCellSize: '11',
    linkage: false,
  };
}

function draftFromContent(content: AgreementContent): AgreementDraft {
  return {
    title: content.title,
    providerAgencyId: content.providerAgencyId,
    recipientAgencyId: content.recipientAgencyId,
    purposes: [...content.purposes],
    validFrom: content.validFrom,
    validUntil: content.validUntil,
    retentionDays: content.retentionDays == null ? '' : String(content.retentionDays),
    legalBasis: content.legalBasis ?? '',
    termsOfUse: content.termsOfUse ?? '',
    communityBenefit: content.communityBenefit ?? '',
    grants: content.grants.map((g) => ({
      datasetId: g.datasetId,
      access: g.access,
      fields: Object.fromEntries(g.fields.map((f) => [f.name, f.transform])),
      justifications: Object.fromEntries(g.fields.map((f) => [f.name, f.justification ?? ''])),
      filter: draftFromFilter(g.rowFilter),
      requireConsent: g.requireConsent,
      minCellSize: String(g.minCellSize),
      linkage: g.linkage,
    })),
  };
}

function isoDay(offsetDays: number): string {
  const day = new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
  return `${day}T00:00:00.000Z`;
}

/**
 * The AgreementInput a draft stands for, or the first problem that keeps it from being one (a
 * missing date, a row filter the builder cannot turn into JSON). Everything else is the broker's
 * to judge, so its messages are the ones shown.
 */
function toInput(
  draft: AgreementDraft,
  datasets: Map<string, Dataset>,
): { input: Record<string, unknown> | null; problem: string | null } {
  if (!draft.validFrom)
    return { input: null, problem: 'Choose the first day of the agreement (Valid from).' };
  if (!draft.validUntil) return { input: null, problem: 'Choose the day the agreement ends (Valid until).' };
  const grants: Record<string, unknown>[] = [];
  for (const g of draft.grants) {
    const dataset = datasets.get(g.datasetId);
    const filter = filterFromDraft(g.filter, dataset?.fields ?? []);
    if (filter.problem)
      return { input: null, problem: `Row filter of ${dataset?.slug ?? 'a dataset'}: ${filter.problem}` };
    const order = dataset?.fields.map((f) => f.name) ?? Object.keys(g.fields);
    const minCellSize = Number(g.minCellSize);
    grants.push({
      datasetId: g.datasetId,
      access: g.access,
      fields: order
        .filter((name) => g.fields[name])
        .map((name) => ({
          name,
          transform: g.fields[name],
          justification: g.justifications[name]?.trim() || null,
        })),
      rowFilter: filter.filter,
      requireConsent: g.requireConsent,
      minCellSize: g.minCellSize.trim() === '' || !Number.isFinite(minCellSize) ? 11 : minCellSize,
      linkage: g.linkage,
    });
  }
  const retention = draft.retentionDays.trim();
  return {
    input: {
      title: draft.title,
      providerAgencyId: draft.providerAgencyId,
      recipientAgencyId: draft.recipientAgencyId,
      purposes: draft.purposes,
      validFrom: draft.validFrom,
      validUntil: draft.validUntil,
      retentionDays:
        retention === '' ? null : Number.isFinite(Number(retention)) ? Number(retention) : retention,
      legalBasis: draft.legalBasis.trim() || null,
      termsOfUse: draft.termsOfUse.trim() || null,
      communityBenefit: draft.communityBenefit.trim() || null,
      grants,
    },
    problem: null,
  };
}

/** Proposing a new agreement, or amending one (`agreementId`): a new version the other party approves. */
export function AgreementFormPage({ agreementId }: { agreementId?: string }) {
  const agencies = useQuery<{ agencies: Agency[] }>(Q.agencies);
  const purposes = useQuery<{ purposes: Purpose[] }>(Q.purposes);
  const datasets = useQuery<{ datasets: Dataset[] }>(Q.datasets);
  const existing = useQuery<{ agreement: Agreement | null }>(Q.agreement, { id: agreementId }, !agreementId);

  const loadError = agencies.error ?? purposes.error ?? datasets.error ?? existing.error;
  const ready = agencies.data && purposes.data && datasets.data && (!agreementId || existing.data);
  const title = agreementId ? 'Amend the agreement' : 'Propose an agreement';

  if (loadError) {
    return (
      <>
        <PageHeader title={title} />
        <ErrorMessage error={loadError} />
      </>
    );
  }
  if (!ready) return <Loading label="Loading agencies, purposes and datasets…" />;
  const agreement = existing.data?.agreement ?? null;
  if (agreementId && !agreement) {
    return (
      <>
        <PageHeader title="Agreement not found" />
        <EmptyState>
          No agreement with this id is visible to you. <Link to="/agreements">Back to the agreements</Link>
        </EmptyState>
      </>
    );
  }
  return (
    <AgreementForm
      title={title}
      agreement={agreement}
      agencies={agencies.data!.agencies}
      purposes={purposes.data!.purposes}
      datasets={datasets.data!.datasets}
    />
  );
}

function AgreementForm({
  title,
  agreement,
  agencies,
  purposes,
  datasets,
}: {
  title: string;
  agreement: Agreement | null;
  agencies: Agency[];
  purposes: Purpose[];
  datasets: Dataset[];
}) {
  const { me } = useSession();
  const ownAgency = me.agency?.id ?? '';
  // The oversight board signs off on agreements but is party to none: the broker refuses it as one.
  const parties = agencies.filter((ag) => ag.kind?.toLowerCase() !== 'oversight');
  const [draft, setDraft] = useState<AgreementDraft>(() => {
    const current = agreement?.versions.find((v) => v.version === agreement.currentVersion);
    if (current) return draftFromContent(current.content);
    return {
      title: '',
      providerAgencyId: ownAgency,
      recipientAgencyId: '',
      purposes: [],
      validFrom: isoDay(0),
      validUntil: isoDay(365),
      retentionDays: '',
      legalBasis: '',
      communityBenefit: '',
      termsOfUse: '',
      grants: [],
    };
  });
  const propose = useMutation<{ proposeAgreement: Agreement }>(Q.proposeAgreement);
  const amend = useMutation<{ amendAgreement: Agreement }>(Q.amendAgreement);
  const { error, busy } = agreement ? amend : propose;
  const errorRef = useRef<HTMLDivElement>(null);

  const byId = useMemo(() => new Map(datasets.map((d) => [d.id, d])), [datasets]);
  const providerDatasets = datasets.filter((d) => d.provider.id === draft.providerAgencyId);
  const { input, problem } = toInput(draft, byId);
  const set = (change: Partial<AgreementDraft>) => setDraft((d) => ({ ...d, ...change }));
  const setGrant = (datasetId: string, change: Partial<GrantDraft>) =>
    setDraft((d) => ({
      ...d,
      grants: d.grants.map((g) => (g.datasetId === datasetId ? { ...g, ...change } : g)),
    }));
  const toggleDataset = (datasetId: string, on: boolean) =>
    setDraft((d) => ({
      ...d,
      grants: on ? [...d.grants, newGrant(datasetId)] : d.grants.filter((g) => g.datasetId !== datasetId),
    }));
  const partyProblem =
    draft.providerAgencyId &&
    draft.recipientAgencyId &&
    ![draft.providerAgencyId, draft.recipientAgencyId].includes(ownAgency)
      ? 'Your agency must be the provider or the recipient.'
      : null;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!input) return;
    const result = agreement
      ? (await amend.mutate({ id: agreement.id, input }))?.amendAgreement
      : (await propose.mutate({ input }))?.proposeAgreement;
    if (result)
      navigate(`/agreements/${result.id}?${agreement ? 'amended' : 'proposed'}=${result.currentVersion}`);
    else errorRef.current?.scrollIntoView({ block: 'nearest' });
  };

  return (
    <>
      <PageHeader title={title} />
      {agreement ? (
        <p className="muted">
          Your changes become version {agreement.currentVersion + 1} of “{agreement.title}”, approved by your
          side.
          {agreement.inForceVersion
            ? ` Version ${agreement.inForceVersion} stays in force until the other party approves the new one.`
            : ''}
        </p>
      ) : (
        <p className="muted">
          Proposing approves version 1 for your side; the agreement is in force once the other party’s steward
          approves it too.
        </p>
      )}
      <div className="with-aside">
        <form onSubmit={(e) => void submit(e)} className="stack" noValidate aria-label={title}>
          <div ref={errorRef}>
            <ErrorMessage
              error={error}
              title={agreement ? 'The amendment was not proposed' : 'The agreement was not proposed'}
            />
          </div>
          <Field label="Title" problem={problemsAt(error, 'title')}>
            {(a) => (
              <input {...a} value={draft.title} onChange={(e) => set({ title: e.target.value })} required />
            )}
          </Field>
          <div className="grid-2">
            <Field
              label="Provider"
              hint="The agency whose datasets are shared."
              problem={problemsAt(error, 'providerAgencyId')}
            >
              {(a) => (
                <select
                  {...a}
                  value={draft.providerAgencyId}
                  disabled={!!agreement}
                  onChange={(e) => set({ providerAgencyId: e.target.value, grants: [] })}
                >
                  <option value="">Choose an agency</option>
                  {parties.map((ag) => (
                    <option key={ag.id} value={ag.id}>
                      {ag.name}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field
              label="Recipient"
              hint="The agency whose analysts will query the data."
              problem={problemsAt(error, 'recipientAgencyId') ?? partyProblem}
            >
              {(a) => (
                <select
                  {...a}
                  value={draft.recipientAgencyId}
                  disabled={!!agreement}
                  onChange={(e) => set({ recipientAgencyId: e.target.value })}
                >
                  <option value="">Choose an agency</option>
                  {parties
                    .filter((ag) => ag.id !== draft.providerAgencyId)
                    .map((ag) => (
                      <option key={ag.id} value={ag.id}>
                        {ag.name}
                      </option>
                    ))}
                </select>
              )}
            </Field>
          </div>

          <fieldset
            className="choices"
            aria-describedby={problemsAt(error, 'purposes') ? 'purposes-problem' : undefined}
          >
            <legend>Purposes</legend>
            {purposes.length === 0 ? (
              <p className="muted">No purposes are defined yet; the operator defines them.</p>
            ) : null}
            {purposes.map((p) => (
              <label key={p.code} className="choice">
                <input
                  type="checkbox"
                  checked={draft.purposes.includes(p.code)}
                  onChange={(e) =>
                    set({
                      purposes: e.target.checked
                        ? [...draft.purposes, p.code]
                        : draft.purposes.filter((c) => c !== p.code),
                    })
                  }
                />
                <span>
                  <code>{p.code}</code> <span className="muted">{p.description}</span>
                </span>
              </label>
            ))}
            {problemsAt(error, 'purposes') ? (
              <p className="field-problem" id="purposes-problem">
                {problemsAt(error, 'purposes')}
              </p>
            ) : null}
          </fieldset>

          <div className="grid-2">
            <Field
              label="Valid from"
              hint="From midnight UTC of this day."
              problem={problemsAt(error, 'validFrom')}
            >
              {(a) => (
                <input
                  {...a}
                  type="date"
                  value={draft.validFrom.slice(0, 10)}
                  onChange={(e) => set({ validFrom: dayToInstant(e.target.value) ?? '' })}
                  required
                />
              )}
            </Field>
            <Field
              label="Valid until"
              hint="Access stops at midnight UTC of this day."
              problem={problemsAt(error, 'validUntil')}
            >
              {(a) => (
                <input
                  {...a}
                  type="date"
                  value={draft.validUntil.slice(0, 10)}
                  onChange={(e) => set({ validUntil: dayToInstant(e.target.value) ?? '' })}
                  required
                />
              )}
            </Field>
          </div>

          <fieldset className="choices">
            <legend>Datasets</legend>
            {!draft.providerAgencyId ? <p className="muted">Choose the provider first.</p> : null}
            {draft.providerAgencyId && providerDatasets.length === 0 ? (
              <p className="muted">The provider has not registered any dataset yet.</p>
            ) : null}
            {providerDatasets.map((d) => (
              <label key={d.id} className="choice">
                <input
                  type="checkbox"
                  checked={draft.grants.some((g) => g.datasetId === d.id)}
                  onChange={(e) => toggleDataset(d.id, e.target.checked)}
                />
                <span>
                  {d.title} <code>{d.slug}</code>
                </span>
              </label>
            ))}
            {problemsAt(error, 'grants') && draft.grants.length === 0 ? (
              <p className="field-problem">{problemsAt(error, 'grants')}</p>
            ) : null}
          </fieldset>

          {draft.grants.map((g, i) => {
            const dataset = byId.get(g.datasetId);
            return dataset ? (
              <GrantEditor
                key={g.datasetId}
                dataset={dataset}
                grant={g}
                problem={problemsAt(error, `grants[${i}]`)}
                onChange={(change) => setGrant(g.datasetId, change)}
                onRemove={() => toggleDataset(g.datasetId, false)}
              />
            ) : null;
          })}

          <div className="card">
            <Field
              label="Community benefit"
              hint="Who in the community gains, and how. Required, with a justification per field, where the oversight board must sign off: identifying or sensitive fields not released as a code, or linkage."
              problem={problemsAt(error, 'communityBenefit')}
            >
              {(a) => (
                <textarea
                  {...a}
                  rows={3}
                  value={draft.communityBenefit}
                  onChange={(e) => set({ communityBenefit: e.target.value })}
                />
              )}
            </Field>
          </div>
          <details className="card">
            <summary>Retention, legal basis and terms of use (optional)</summary>
            <div className="stack">
              <Field
                label="Retention (days)"
                hint="How long the recipient may keep extracts."
                problem={problemsAt(error, 'retentionDays')}
              >
                {(a) => (
                  <input
                    {...a}
                    type="number"
                    min={1}
                    inputMode="numeric"
                    value={draft.retentionDays}
                    onChange={(e) => set({ retentionDays: e.target.value })}
                  />
                )}
              </Field>
              <Field label="Legal basis" problem={problemsAt(error, 'legalBasis')}>
                {(a) => (
                  <input
                    {...a}
                    value={draft.legalBasis}
                    onChange={(e) => set({ legalBasis: e.target.value })}
                  />
                )}
              </Field>
              <Field label="Terms of use" problem={problemsAt(error, 'termsOfUse')}>
                {(a) => (
                  <textarea
                    {...a}
                    rows={4}
                    value={draft.termsOfUse}
                    onChange={(e) => set({ termsOfUse: e.target.value })}
                  />
                )}
              </Field>
            </div>
          </details>

          {problem ? (
            <p className="field-problem" role="status">
              {problem}
            </p>
          ) : null}
          <div className="form-actions">
            <button type="submit" className="primary" disabled={busy || !input}>
              {busy
                ? 'Sending…'
                : agreement
                  ? `Propose version ${agreement.currentVersion + 1}`
                  : 'Propose agreement'}
            </button>
            <Link to={agreement ? `/agreements/${agreement.id}` : '/agreements'}>Cancel</Link>
          </div>
        </form>
        <LivePreview
          input={input}
          blocked={
            problem ??
            (draft.grants.length === 0 || draft.purposes.length === 0 || !draft.recipientAgencyId
              ? 'Choose the recipient, at least one purpose and one dataset to see the preview.'
              : null)
          }
        />
      </div>
    </>
  );
}

const TRANSFORM_LABELS: Record<FieldTransform, string> = {
  RAW: 'As stored (RAW)',
  HASH: 'Keyed hash (HASH)',
  GENERALIZE: 'Generalised (GENERALIZE)',
};

/** One dataset's grant: access, fields and their transforms, a row filter, consent, cell size, linkage. */
function GrantEditor({
  dataset,
  grant,
  problem,
  onChange,
  onRemove,
}: {
  dataset: Dataset;
  grant: GrantDraft;
  problem: string | null;
  onChange: (change: Partial<GrantDraft>) => void;
  onRemove: () => void;
}) {
  const setField = (name: string, transform: FieldTransform | null) => {
    const fields = { ...grant.fields };
    if (transform) fields[name] = transform;
    else delete fields[name];
    onChange({ fields });
  };
  const setJustification = (name: string, text: string) =>
    onChange({ justifications: { ...grant.justifications, [name]: text } });
  return (
    <fieldset className="card grant">
      <legend>Grant of {dataset.title}</legend>
      {problem ? <p className="field-problem">{problem}</p> : null}
      <div className="grid-3">
        <Field label="Access">
          {(a) => (
            <select
              {...a}
              value={grant.access}
              onChange={(e) => onChange({ access: e.target.value as GrantAccess })}
            >
              <option value="ROWS">Rows</option>
              <option value="AGGREGATE_ONLY">Aggregates only</option>
            </select>
          )}
        </Field>
        <Field label="Minimum cell size" hint="Aggregate counts below it are suppressed.">
          {(a) => (
            <input
              {...a}
              type="number"
              min={1}
              max={1000}
              inputMode="numeric"
              value={grant.minCellSize}
              onChange={(e) => onChange({ minCellSize: e.target.value })}
            />
          )}
        </Field>
      </div>
      <div className="checks">
        <label className="choice">
          <input
            type="checkbox"
            checked={grant.requireConsent}
            disabled={!dataset.subjectField && !grant.requireConsent}
            onChange={(e) => onChange({ requireConsent: e.target.checked })}
          />
          <span>
            Require consent to the purpose
            {!dataset.subjectField ? (
              <span className="muted"> (the dataset has no subject field)</span>
            ) : null}
          </span>
        </label>
        <label className="choice">
          <input
            type="checkbox"
            checked={grant.linkage}
            onChange={(e) => onChange({ linkage: e.target.checked })}
          />
          <span>Release personKey, the linked person’s pseudonym</span>
        </label>
      </div>
      <table className="compact grant-fields">
        <caption>Fields of {dataset.slug}</caption>
        <thead>
          <tr>
            <th scope="col">Grant</th>
            <th scope="col">Transform</th>
            <th scope="col">Released as</th>
            <th scope="col">Justification</th>
          </tr>
        </thead>
        <tbody>
          {dataset.fields.map((f) => (
            <GrantFieldRow
              key={f.name}
              field={f}
              transform={grant.fields[f.name] ?? null}
              justification={grant.justifications[f.name] ?? ''}
              onChange={(t) => setField(f.name, t)}
              onJustify={(text) => setJustification(f.name, text)}
            />
          ))}
        </tbody>
      </table>
      <RowFilterBuilder
        fields={dataset.fields}
        draft={grant.filter}
        onChange={(filter) => onChange({ filter })}
      />
      <div className="row-actions">
        <button type="button" className="danger" onClick={onRemove}>
          Remove {dataset.slug} from the agreement
        </button>
      </div>
    </fieldset>
  );
}

function GrantFieldRow({
  field,
  transform,
  justification,
  onChange,
  onJustify,
}: {
  field: DatasetField;
  transform: FieldTransform | null;
  justification: string;
  onChange: (transform: FieldTransform | null) => void;
  onJustify: (text: string) => void;
}) {
  const overseen =
    !!transform &&
    transform !== 'HASH' &&
    (field.classification === 'DIRECT_IDENTIFIER' || field.classification === 'SENSITIVE');
  const released = transform ? releasedName(field.name, field.type, transform) : null;
  return (
    <tr>
      <td>
        <label className="choice">
          <input
            type="checkbox"
            aria-label={`Grant ${field.name}`}
            checked={!!transform}
            onChange={(e) => onChange(e.target.checked ? 'RAW' : null)}
          />
          <span>
            <code>{field.name}</code> <span className="muted small">{field.type.toLowerCase()}</span>
          </span>
        </label>
      </td>
      <td>
        <select
          aria-label={`Transform of ${field.name}`}
          value={transform ?? 'RAW'}
          disabled={!transform}
          onChange={(e) => onChange(e.target.value as FieldTransform)}
        >
          {(Object.keys(TRANSFORM_LABELS) as FieldTransform[]).map((t) => (
            <option key={t} value={t} disabled={t === 'GENERALIZE' && field.type === 'BOOLEAN'}>
              {TRANSFORM_LABELS[t]}
            </option>
          ))}
        </select>
      </td>
      <td>{released ? <code>{released}</code> : <span className="muted">not granted</span>}</td>
      <td>
        <input
          aria-label={`Justification of ${field.name}`}
          value={justification}
          disabled={!transform}
          required={overseen}
          placeholder={overseen ? 'Required: why the purpose needs it at this precision' : ''}
          onChange={(e) => onJustify(e.target.value)}
        />
      </td>
    </tr>
  );
}

/** Conditions on the dataset's raw fields, joined by all or any; JSON for anything more. */
function RowFilterBuilder({
  fields,
  draft,
  onChange,
}: {
  fields: DatasetField[];
  draft: FilterDraft;
  onChange: (draft: FilterDraft) => void;
}) {
  const built = filterFromDraft(draft, fields);
  const setCondition = (index: number, change: Partial<FilterDraft['conditions'][number]>) =>
    onChange({
      ...draft,
      conditions: draft.conditions.map((c, i) => (i === index ? { ...c, ...change } : c)),
    });
  return (
    <fieldset className="row-filter">
      <legend>Row filter</legend>
      {draft.mode === 'json' ? (
        <Field
          label="Row filter (JSON)"
          hint='For example {"$or": [{"program": "JOBS"}, {"age": {"$gte": 18}}]}.'
        >
          {(a) => (
            <textarea
              {...a}
              rows={5}
              className="mono"
              value={draft.json}
              onChange={(e) => onChange({ ...draft, json: e.target.value })}
            />
          )}
        </Field>
      ) : (
        <>
          {draft.conditions.length === 0 ? (
            <p className="muted">No conditions: every row is released.</p>
          ) : null}
          {draft.conditions.length > 1 ? (
            <Field label="Release rows matching">
              {(a) => (
                <select
                  {...a}
                  value={draft.join}
                  onChange={(e) => onChange({ ...draft, join: e.target.value as '$and' | '$or' })}
                >
                  <option value="$and">all of the conditions</option>
                  <option value="$or">any of the conditions</option>
                </select>
              )}
            </Field>
          ) : null}
          <ol className="conditions">
            {draft.conditions.map((c, i) => {
              const list = c.op === '$in' || c.op === '$nin';
              return (
                <li key={i} className="condition">
                  <select
                    aria-label={`Condition ${i + 1} field`}
                    value={c.field}
                    onChange={(e) => setCondition(i, { field: e.target.value })}
                  >
                    <option value="">Field</option>
                    {fields.map((f) => (
                      <option key={f.name} value={f.name}>
                        {f.name}
                      </option>
                    ))}
                  </select>
                  <select
                    aria-label={`Condition ${i + 1} operator`}
                    value={c.op}
                    onChange={(e) => setCondition(i, { op: e.target.value as FilterOperator })}
                  >
                    {FILTER_OPERATORS.map((o) => (
                      <option key={o.value} value={o.value}>
                        {o.label}
                      </option>
                    ))}
                  </select>
                  <input
                    aria-label={`Condition ${i + 1} value${list ? 's, separated by commas' : ''}`}
                    placeholder={list ? 'a, b, c' : 'value'}
                    value={c.value}
                    onChange={(e) => setCondition(i, { value: e.target.value })}
                  />
                  <button
                    type="button"
                    className="danger"
                    aria-label={`Remove condition ${i + 1}`}
                    onClick={() =>
                      onChange({ ...draft, conditions: draft.conditions.filter((_c, j) => j !== i) })
                    }
                  >
                    Remove
                  </button>
                </li>
              );
            })}
          </ol>
        </>
      )}
      <div className="row-actions">
        {draft.mode === 'builder' ? (
          <button
            type="button"
            onClick={() =>
              onChange({ ...draft, conditions: [...draft.conditions, { field: '', op: '$eq', value: '' }] })
            }
          >
            Add a condition
          </button>
        ) : null}
        <button
          type="button"
          onClick={() =>
            draft.mode === 'builder'
              ? onChange({
                  ...draft,
                  mode: 'json',
                  json: built.filter ? JSON.stringify(built.filter, null, 2) : '',
                })
              : onChange(built.problem ? draft : { ...draftFromFilter(built.filter), json: draft.json })
          }
        >
          {draft.mode === 'builder' ? 'Edit as JSON' : 'Use the builder'}
        </button>
      </div>
      <p className="muted">
        {built.problem ? (
          <span className="field-problem">{built.problem}</span>
        ) : (
          <>Rows released: {describeRowFilter(built.filter)}.</>
        )}
      </p>
    </fieldset>
  );
}
