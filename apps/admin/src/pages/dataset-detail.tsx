import { type FormEvent, type ReactNode, useEffect, useRef, useState } from 'react';
import { ApiError, type IngestReport, graphql, uploadCsv } from '../api/client';
import { type Dataset, type Purpose, Q, type RetentionPreview } from '../api/schema';
import {
  EmptyState,
  ErrorMessage,
  Field,
  Loading,
  Notice,
  PageHeader,
  ProgressBar,
  TableWrap,
  problemsAt,
} from '../components/ui';
import {
  type DatasetRetention,
  MAX_DATASET_RETENTION_DAYS,
  RETENTION_FIELD_TYPES,
  destroysSooner,
  retentionRefusal,
  retentionUpdate,
} from '../lib/dataset-retention';
import { formatInstant, formatNumber, humanize } from '../lib/format';
import { Link } from '../lib/router';
import { useSession } from '../lib/session';
import { useMutation, useQuery } from '../lib/use-query';

/**
 * One dataset: its fields and retention, and for its provider's steward, uploads, consent, its
 * retention and its title and description.
 */
export function DatasetPage({ id, justRegistered }: { id: string; justRegistered: boolean }) {
  const { me } = useSession();
  const { data, error, loading, reload } = useQuery<{ dataset: Dataset | null }>(Q.dataset, { id });
  const dataset = data?.dataset;
  // Uploads on this page change what a retention would destroy: its count is asked again.
  const [uploads, setUploads] = useState(0);

  if (loading && !data) return <Loading label="Loading the dataset…" />;
  if (error) {
    return (
      <>
        <PageHeader title="Dataset" />
        <ErrorMessage error={error} />
      </>
    );
  }
  if (!dataset) {
    return (
      <>
        <PageHeader title="Dataset not found" />
        <EmptyState>
          No dataset has this id. <Link to="/datasets">Back to the datasets</Link>
        </EmptyState>
      </>
    );
  }
  const own = dataset.provider.id === me.agency?.id;
  return (
    <>
      <PageHeader title={dataset.title} />
      {justRegistered ? (
        <Notice>
          Dataset <code>{dataset.slug}</code> registered. Upload its records below.
        </Notice>
      ) : null}
      <dl className="facts">
        <dt>Slug</dt>
        <dd>
          <code>{dataset.slug}</code>
        </dd>
        <dt>Provider</dt>
        <dd>{dataset.provider.name}</dd>
        <dt>Key field</dt>
        <dd>
          <code>{dataset.keyField}</code>
        </dd>
        <dt>Subject field</dt>
        <dd>
          {dataset.subjectField ? <code>{dataset.subjectField}</code> : 'none (consent cannot be recorded)'}
        </dd>
        <dt>Retention</dt>
        <dd>{retentionText(dataset)}</dd>
        <dt>Registered</dt>
        <dd>{formatInstant(dataset.createdAt)}</dd>
        {dataset.description ? (
          <>
            <dt>Description</dt>
            <dd>{dataset.description}</dd>
          </>
        ) : null}
      </dl>
      <section aria-labelledby="fields-heading">
        <h2 id="fields-heading">Fields</h2>
        <TableWrap label="Field list">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Type</th>
                <th scope="col">Classification</th>
                <th scope="col">Identity role</th>
                <th scope="col">Required</th>
                <th scope="col">Description</th>
              </tr>
            </thead>
            <tbody>
              {dataset.fields.map((f) => (
                <tr key={f.name}>
                  <td>
                    <code>{f.name}</code>
                  </td>
                  <td>{f.type}</td>
                  <td>{humanize(f.classification)}</td>
                  <td>{f.identity ? humanize(f.identity) : '—'}</td>
                  <td>{f.required ? 'yes' : 'no'}</td>
                  <td>{f.description ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      </section>
      {own ? <UploadSection dataset={dataset} onUploaded={() => setUploads((n) => n + 1)} /> : null}
      {own && dataset.subjectField ? <ConsentSection dataset={dataset} /> : null}
      {own ? <RetentionSection dataset={dataset} onSaved={reload} uploads={uploads} /> : null}
      {own ? <TitleSection dataset={dataset} onSaved={reload} /> : null}
    </>
  );
}

const days = (n: number) => `${formatNumber(n)} ${n === 1 ? 'day' : 'days'}`;

/** A dataset's retention in words: what the daily job destroys, or that it keeps everything. */
function retentionText({ retentionDays, retentionField }: DatasetRetention): ReactNode {
  if (retentionDays === null || retentionField === null) return 'not set: records are kept';
  return (
    <>
      {days(retentionDays)} after <code>{retentionField}</code>: older records are destroyed daily
    </>
  );
}

/**
 * The provider's steward sets, changes or removes the dataset's retention with updateDataset: a
 * number of days and one of its DATE or DATETIME fields, checked here as the broker checks them.
 * Once what is typed is valid and differs from the retention in force, the broker counts what it
 * would destroy at the next daily run (retentionPreview), said beside the form and in the question
 * a change that may destroy records sooner asks first. A refusal shows the broker's message and
 * changes nothing.
 */
function RetentionSection({
  dataset,
  onSaved,
  uploads,
}: {
  dataset: Dataset;
  onSaved: () => Promise<void>;
  /** How many uploads this page made: each changes what a retention would destroy. */
  uploads: number;
}) {
  const current: DatasetRetention = {
    retentionDays: dataset.retentionDays,
    retentionField: dataset.retentionField,
  };
  const dateFields = dataset.fields.filter((f) => RETENTION_FIELD_TYPES.includes(f.type));
  const [daysText, setDaysText] = useState(
    current.retentionDays === null ? '' : String(current.retentionDays),
  );
  const [field, setField] = useState(current.retentionField ?? '');
  const [invalid, setInvalid] = useState<ApiError | null>(null);
  const [confirming, setConfirming] = useState<{
    retention: { retentionDays: number; retentionField: string };
    input: Record<string, unknown>;
  } | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const { mutate, error, busy, reset } = useMutation<{ updateDataset: Dataset }>(Q.updateDataset);
  const confirmRef = useRef<HTMLParagraphElement>(null);
  const daysRef = useRef<HTMLInputElement>(null);
  const asked = useRef(false);
  // Each question counts anew, so that it says what the records hold when it is asked (another
  // session, or the daily run, may have changed them since the count beside the form).
  const [questions, setQuestions] = useState(0);
  // The question takes the focus, so it is read out; once answered, the focus returns to the form.
  useEffect(() => {
    if (confirming) confirmRef.current?.focus();
    else if (asked.current) daysRef.current?.focus();
    asked.current = confirming !== null;
  }, [confirming]);

  const refusal = invalid ?? error;
  const unchanged =
    daysText.trim() === (current.retentionDays === null ? '' : String(current.retentionDays)) &&
    field === (current.retentionField ?? '');
  const typed = retentionUpdate({ days: daysText, field }, dataset.fields);
  const count = useRetentionCount(
    dataset.id,
    current,
    typed.ok && !unchanged ? typed.retention : null,
    `${uploads}:${questions}`,
  );
  const counted = countText(count, current);
  const removing = daysText.trim() === '' && field === '' && current.retentionDays !== null;
  const edit = (change: () => void) => {
    change();
    setConfirming(null);
    setSaved(null);
  };

  const save = async (input: Record<string, unknown>) => {
    const result = await mutate({ id: dataset.id, input });
    setConfirming(null);
    if (!result) return;
    const { retentionDays, retentionField } = result.updateDataset;
    setDaysText(retentionDays === null ? '' : String(retentionDays));
    setField(retentionField ?? '');
    setSaved(
      retentionDays === null
        ? 'Retention removed: records are kept.'
        : `Retention saved: records whose ${retentionField} is more than ${days(retentionDays)} old are destroyed at each daily run.`,
    );
    await onSaved();
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setSaved(null);
    reset();
    const update = retentionUpdate({ days: daysText, field }, dataset.fields);
    if (!update.ok) {
      setInvalid(new ApiError(retentionRefusal(update.problems), 'BAD_USER_INPUT', update.problems));
      return;
    }
    setInvalid(null);
    if (destroysSooner(current, update.retention)) {
      setQuestions((n) => n + 1);
      setConfirming({ retention: update.retention, input: update.input });
    } else void save(update.input);
  };

  return (
    <section aria-labelledby="retention-heading" className="card">
      <h2 id="retention-heading">Retention</h2>
      <p>
        {current.retentionDays === null || current.retentionField === null ? (
          'No retention is set: records are kept until your agency removes them.'
        ) : (
          <>
            Records whose <code>{current.retentionField}</code> is more than {days(current.retentionDays)} old
            are destroyed at each daily run, with what linkage derived from them; records where it is empty
            are kept.
          </>
        )}
      </p>
      {dateFields.length === 0 ? (
        <p className="muted">
          Retention is measured from a DATE or DATETIME field, and this dataset has none; its fields cannot
          change.
        </p>
      ) : (
        <form onSubmit={submit} className="stack" noValidate>
          <div className="grid-2">
            <Field
              label="Retention (days)"
              hint={`A whole number of days, 1 to ${formatNumber(MAX_DATASET_RETENTION_DAYS)}. Clear both to remove retention.`}
              problem={problemsAt(refusal, 'retentionDays')}
            >
              {(a) => (
                <input
                  {...a}
                  ref={daysRef}
                  inputMode="numeric"
                  autoComplete="off"
                  value={daysText}
                  disabled={busy}
                  onChange={(e) => edit(() => setDaysText(e.target.value))}
                />
              )}
            </Field>
            <Field
              label="Measured from"
              hint="The date each record's retention runs from: one of its DATE or DATETIME fields."
              problem={problemsAt(refusal, 'retentionField')}
            >
              {(a) => (
                <select
                  {...a}
                  value={field}
                  disabled={busy}
                  onChange={(e) => edit(() => setField(e.target.value))}
                >
                  <option value="">None</option>
                  {dateFields.map((f) => (
                    <option key={f.name} value={f.name}>
                      {f.name} ({f.type})
                    </option>
                  ))}
                </select>
              )}
            </Field>
          </div>
          {/* Always there, so that screen readers announce each new count (politely). */}
          <p className="retention-count" aria-live="polite">
            {confirming ? null : counted}
          </p>
          <ErrorMessage error={refusal} title="The retention was not changed" problemsAtInputs />
          {saved ? <Notice>{saved}</Notice> : null}
          {confirming ? (
            <div className="confirm stack" role="group" aria-labelledby="retention-confirm">
              <p id="retention-confirm" tabIndex={-1} ref={confirmRef}>
                <strong>{confirmQuestion(current, confirming.retention)}</strong>{' '}
                <span aria-live="polite">{counted}</span> At the next daily run, every record whose{' '}
                <code>{confirming.retention.retentionField}</code> is more than{' '}
                {days(confirming.retention.retentionDays)} old is destroyed, with what linkage derived from
                it, and cannot be recovered.
              </p>
              <div className="form-actions">
                <button
                  type="button"
                  className="danger"
                  disabled={busy}
                  onClick={() => void save(confirming.input)}
                >
                  {busy
                    ? 'Saving…'
                    : `Yes, destroy records older than ${days(confirming.retention.retentionDays)}`}
                </button>
                <button type="button" onClick={() => setConfirming(null)} disabled={busy}>
                  Cancel
                </button>
              </div>
            </div>
          ) : (
            <div className="form-actions">
              <button type="submit" className="primary" disabled={busy || unchanged}>
                {busy ? 'Saving…' : removing ? 'Remove retention' : 'Save retention'}
              </button>
            </div>
          )}
        </form>
      )}
    </section>
  );
}

/** Where the count of what a retention would destroy stands. */
type RetentionCount =
  | { kind: 'idle' }
  | { kind: 'counting' }
  | { kind: 'counted'; preview: RetentionPreview }
  | { kind: 'failed'; error: ApiError };

/**
 * The broker's count of what `proposal` would destroy at the next daily run, beside `current`
 * (retentionPreview), asked after a short pause in typing, and again whenever `records` changes (an
 * upload, a question); idle without a proposal. An answer for an earlier proposal, given before the
 * retention in force changed, or before the records changed, is never shown.
 */
function useRetentionCount(
  datasetId: string,
  current: DatasetRetention,
  proposal: DatasetRetention | null,
  records: string,
): RetentionCount {
  const { apiKey } = useSession();
  const key = proposal
    ? JSON.stringify([
        proposal.retentionDays,
        proposal.retentionField,
        current.retentionDays,
        current.retentionField,
        records,
      ])
    : null;
  const [state, setState] = useState<{ key: string | null; count: RetentionCount }>({
    key: null,
    count: { kind: 'idle' },
  });
  useEffect(() => {
    if (!key) return;
    let current = true;
    const [retentionDays, retentionField] = JSON.parse(key) as (number | string | null)[];
    const timer = window.setTimeout(() => {
      graphql<{ retentionPreview: RetentionPreview }>(apiKey, Q.retentionPreview, {
        datasetId,
        retentionDays,
        retentionField,
      }).then(
        (data) => current && setState({ key, count: { kind: 'counted', preview: data.retentionPreview } }),
        (error: unknown) =>
          current &&
          setState({
            key,
            count: {
              kind: 'failed',
              error: error instanceof ApiError ? error : new ApiError(String(error), 'ERROR'),
            },
          }),
      );
    }, 300);
    return () => {
      current = false;
      window.clearTimeout(timer);
    };
  }, [apiKey, datasetId, key]);
  if (!key) return { kind: 'idle' };
  return state.key === key ? state.count : { kind: 'counting' };
}

const records = (n: number) => `${formatNumber(n)} ${n === 1 ? 'record' : 'records'}`;

/**
 * The count in words: "1,234 of 50,000 records would be destroyed at the next daily run (now 12
 * would be)."; a failure with the broker's message word for word.
 */
function countText(count: RetentionCount, current: DatasetRetention): string | null {
  switch (count.kind) {
    case 'idle':
      return null;
    case 'counting':
      return 'Counting the records this retention would destroy…';
    case 'failed':
      return `The records could not be counted: ${count.error.message}`;
    case 'counted': {
      const p = count.preview;
      const now =
        current.retentionDays === null
          ? 'now none would be: no retention is set'
          : `now ${formatNumber(p.destroyedByCurrent)} would be`;
      if (p.retentionDays === null || p.retentionField === null)
        return `No record would be destroyed at the next daily run; all ${records(p.records)} kept (${now}).`;
      const undated = p.keptWithoutDate
        ? ` ${records(p.keptWithoutDate)} without a ${p.retentionField} would be kept.`
        : '';
      return `${formatNumber(p.destroyed)} of ${records(p.records)} would be destroyed at the next daily run (${now}).${undated}`;
    }
  }
}

/** The question a steward answers before retention may destroy records sooner. */
function confirmQuestion(
  current: DatasetRetention,
  next: { retentionDays: number; retentionField: string },
): ReactNode {
  if (current.retentionDays === null || current.retentionField === null)
    return `Set retention to ${days(next.retentionDays)}?`;
  if (next.retentionField !== current.retentionField) {
    return (
      <>
        Measure retention from <code>{next.retentionField}</code> instead of{' '}
        <code>{current.retentionField}</code>, {days(next.retentionDays)}?
      </>
    );
  }
  return `Shorten retention from ${days(current.retentionDays)} to ${days(next.retentionDays)}?`;
}

/** The provider's steward renames the dataset or rewrites its description (updateDataset). */
function TitleSection({ dataset, onSaved }: { dataset: Dataset; onSaved: () => Promise<void> }) {
  const [title, setTitle] = useState(dataset.title);
  const [description, setDescription] = useState(dataset.description ?? '');
  const [saved, setSaved] = useState(false);
  const { mutate, error, busy } = useMutation<{ updateDataset: Dataset }>(Q.updateDataset);
  const unchanged = title === dataset.title && description === (dataset.description ?? '');
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(false);
    const result = await mutate({ id: dataset.id, input: { title, description } });
    if (!result) return;
    setTitle(result.updateDataset.title);
    setDescription(result.updateDataset.description ?? '');
    setSaved(true);
    await onSaved();
  };
  return (
    <section aria-labelledby="title-heading" className="card">
      <h2 id="title-heading">Title and description</h2>
      <p className="muted">
        What every signed-in user reads in the catalog. The slug and fields never change.
      </p>
      <form onSubmit={(e) => void submit(e)} className="stack" noValidate>
        <Field label="Title">
          {(a) => (
            <input
              {...a}
              value={title}
              maxLength={200}
              onChange={(e) => {
                setTitle(e.target.value);
                setSaved(false);
              }}
            />
          )}
        </Field>
        <Field label="Description (optional)">
          {(a) => (
            <textarea
              {...a}
              rows={3}
              value={description}
              maxLength={4000}
              onChange={(e) => {
                setDescription(e.target.value);
                setSaved(false);
              }}
            />
          )}
        </Field>
        <ErrorMessage error={error} title="The title and description were not changed" />
        {saved ? <Notice>Title and description saved.</Notice> : null}
        <div className="form-actions">
          <button type="submit" className="primary" disabled={busy || unchanged}>
            {busy ? 'Saving…' : 'Save title and description'}
          </button>
        </div>
      </form>
    </section>
  );
}

type UploadState =
  | { phase: 'idle' }
  | { phase: 'sending'; sent: number; total: number }
  | { phase: 'done'; report: IngestReport; file: string }
  | { phase: 'failed'; error: ApiError };

/** Streams a CSV file to the broker's upload route, showing progress, then the report or every row error. */
function UploadSection({ dataset, onUploaded }: { dataset: Dataset; onUploaded: () => void }) {
  const { apiKey } = useSession();
  const [file, setFile] = useState<File | null>(null);
  const [state, setState] = useState<UploadState>({ phase: 'idle' });
  const abort = useRef<(() => void) | null>(null);
  const resultRef = useRef<HTMLDivElement>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!file) return;
    setState({ phase: 'sending', sent: 0, total: file.size });
    const upload = uploadCsv(apiKey, dataset.id, file, (sent, total) =>
      setState((s) => (s.phase === 'sending' ? { phase: 'sending', sent, total } : s)),
    );
    abort.current = upload.abort;
    try {
      const report = await upload.done;
      setState({ phase: 'done', report, file: file.name });
      if (report.inserted + report.updated > 0) onUploaded();
    } catch (error) {
      setState({
        phase: 'failed',
        error: error instanceof ApiError ? error : new ApiError(String(error), 'ERROR'),
      });
    } finally {
      abort.current = null;
      resultRef.current?.focus();
    }
  };

  const sending = state.phase === 'sending';
  return (
    <section aria-labelledby="upload-heading" className="card">
      <h2 id="upload-heading">Upload records</h2>
      <p className="muted">
        A CSV file with a header row of field names:{' '}
        <code>{dataset.fields.map((f) => f.name).join(',')}</code>. An empty cell is null. Every row is
        checked first: if any is invalid, nothing is written and every error is listed. A record whose key
        exists is updated.
      </p>
      <form onSubmit={(e) => void submit(e)} className="stack">
        <Field label="CSV file">
          {(a) => (
            <input
              {...a}
              type="file"
              accept=".csv,text/csv"
              disabled={sending}
              onChange={(e) => {
                setFile(e.target.files?.[0] ?? null);
                setState({ phase: 'idle' });
              }}
            />
          )}
        </Field>
        <div className="form-actions">
          <button type="submit" className="primary" disabled={!file || sending}>
            Upload records
          </button>
          {sending ? (
            <button type="button" onClick={() => abort.current?.()}>
              Cancel upload
            </button>
          ) : null}
        </div>
        {sending ? (
          <>
            <ProgressBar label="Upload progress" value={state.total ? state.sent / state.total : 0} />
            <p className="muted" role="status">
              {state.sent >= state.total
                ? 'Sent; the broker is checking and writing the rows…'
                : `Sending ${formatNumber(state.sent)} of ${formatNumber(state.total)} bytes…`}
            </p>
          </>
        ) : null}
      </form>
      <div ref={resultRef} tabIndex={-1} className="upload-result">
        {state.phase === 'failed' ? <ErrorMessage error={state.error} title="The upload failed" /> : null}
        {state.phase === 'done' && state.report.rejected === 0 ? (
          <Notice>
            Uploaded {state.file}: {formatNumber(state.report.inserted)} records inserted,{' '}
            {formatNumber(state.report.updated)} updated.
          </Notice>
        ) : null}
        {state.phase === 'done' && state.report.rejected > 0 ? (
          <RowErrors report={state.report} file={state.file} />
        ) : null}
      </div>
    </section>
  );
}

function RowErrors({ report, file }: { report: IngestReport; file: string }) {
  return (
    <div className="alert alert-error" role="alert">
      <p className="alert-title">
        {file} was refused: {formatNumber(report.rejected)} {report.rejected === 1 ? 'row is' : 'rows are'}{' '}
        invalid, so nothing was written.
      </p>
      <p>Correct these rows and upload the whole file again.</p>
      <TableWrap label="Row errors">
        <table>
          <caption>
            Row errors{report.errors.length < report.rejected ? ` (the first ${report.errors.length})` : ''}
          </caption>
          <thead>
            <tr>
              <th scope="col" className="num">
                Row
              </th>
              <th scope="col" className="num">
                CSV line
              </th>
              <th scope="col">Field</th>
              <th scope="col">Problem</th>
            </tr>
          </thead>
          <tbody>
            {report.errors.map((e, i) => (
              <tr key={i}>
                <td className="num">{e.row}</td>
                <td className="num">{e.row + 2}</td>
                <td>{e.field ? <code>{e.field}</code> : '—'}</td>
                <td>{e.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      <p className="muted small">
        Row is the 0-based index of the data row; the CSV line counts the header as line 1.
      </p>
    </div>
  );
}

/** Records one subject's consent (or its refusal) to one purpose; the latest record is in force. */
function ConsentSection({ dataset }: { dataset: Dataset }) {
  const purposes = useQuery<{ purposes: Purpose[] }>(Q.purposes);
  const [subjectId, setSubjectId] = useState('');
  const [purpose, setPurpose] = useState('');
  const [granted, setGranted] = useState(true);
  const [done, setDone] = useState<string | null>(null);
  const { mutate, error, busy } = useMutation<{
    recordConsent: { subjectId: string; purpose: string; granted: boolean };
  }>(Q.recordConsent);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    const result = await mutate({
      input: { datasetId: dataset.id, subjectId, purpose, granted },
    });
    if (result) {
      const c = result.recordConsent;
      setDone(
        `Recorded: subject ${c.subjectId} ${c.granted ? 'consents' : 'does not consent'} to ${c.purpose}.`,
      );
      setSubjectId('');
    }
  };
  return (
    <section aria-labelledby="consent-heading" className="card">
      <h2 id="consent-heading">Record consent</h2>
      <p className="muted">
        Grants that require consent release a subject's rows for a purpose only while its latest record grants
        it.
      </p>
      <form onSubmit={(e) => void submit(e)} className="stack">
        <div className="grid-3">
          <Field label={`Subject id (${dataset.subjectField})`}>
            {(a) => (
              <input {...a} value={subjectId} onChange={(e) => setSubjectId(e.target.value)} required />
            )}
          </Field>
          <Field label="Purpose">
            {(a) => (
              <select {...a} value={purpose} onChange={(e) => setPurpose(e.target.value)} required>
                <option value="">Choose a purpose</option>
                {purposes.data?.purposes.map((p) => (
                  <option key={p.code} value={p.code}>
                    {p.code}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <fieldset className="field">
            <legend>Decision</legend>
            <label className="inline">
              <input type="radio" name="granted" checked={granted} onChange={() => setGranted(true)} />{' '}
              Consents
            </label>
            <label className="inline">
              <input type="radio" name="granted" checked={!granted} onChange={() => setGranted(false)} />{' '}
              Refuses
            </label>
          </fieldset>
        </div>
        <ErrorMessage error={error} title="The consent was not recorded" />
        {done ? <Notice>{done}</Notice> : null}
        <div className="form-actions">
          <button type="submit" className="primary" disabled={busy || subjectId === '' || !purpose}>
            Record consent
          </button>
        </div>
      </form>
    </section>
  );
}
