import { type FormEvent, useRef, useState } from 'react';
import { ApiError, type IngestReport, uploadCsv } from '../api/client';
import { type Dataset, type Purpose, Q } from '../api/schema';
import {
  EmptyState,
  ErrorMessage,
  Field,
  Loading,
  Notice,
  PageHeader,
  ProgressBar,
  TableWrap,
} from '../components/ui';
import { formatInstant, formatNumber, humanize } from '../lib/format';
import { Link } from '../lib/router';
import { useSession } from '../lib/session';
import { useMutation, useQuery } from '../lib/use-query';

/** One dataset: its fields, and for its provider's steward, uploads and consent. */
export function DatasetPage({ id, justRegistered }: { id: string; justRegistered: boolean }) {
  const { me } = useSession();
  const { data, error, loading } = useQuery<{ dataset: Dataset | null }>(Q.dataset, { id });
  const dataset = data?.dataset;

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
      {own ? <UploadSection dataset={dataset} /> : null}
      {own && dataset.subjectField ? <ConsentSection dataset={dataset} /> : null}
    </>
  );
}

type UploadState =
  | { phase: 'idle' }
  | { phase: 'sending'; sent: number; total: number }
  | { phase: 'done'; report: IngestReport; file: string }
  | { phase: 'failed'; error: ApiError };

/** Streams a CSV file to the broker's upload route, showing progress, then the report or every row error. */
function UploadSection({ dataset }: { dataset: Dataset }) {
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
