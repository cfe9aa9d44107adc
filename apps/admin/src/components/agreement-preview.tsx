import { useEffect, useState } from 'react';
import { ApiError, graphql } from '../api/client';
import { type PurposePreview, Q } from '../api/schema';
import { describeRowFilter, formatNumber, humanize } from '../lib/format';
import { useSession } from '../lib/session';
import { ErrorMessage, Loading, TableWrap } from './ui';

/** What the recipient would see, per purpose, as the broker's policy engine computed it. */
export function PreviewView({ previews }: { previews: PurposePreview[] }) {
  return (
    <div className="preview">
      {previews.map((p) => (
        <section key={p.purpose} aria-label={`Preview for ${p.purpose}`} className="preview-purpose">
          <h3>
            For <code>{p.purpose}</code>
          </h3>
          {p.datasets.map((d) => (
            <div key={d.dataset.id} className="preview-dataset">
              <h4>
                <code>{d.dataset.slug}</code>{' '}
                <span className="muted">{d.access === 'ROWS' ? 'rows' : 'aggregates only'}</span>
              </h4>
              <TableWrap label={`Fields of ${d.dataset.slug} released for ${p.purpose}`}>
                <table className="compact">
                  <thead>
                    <tr>
                      <th scope="col">Recipient sees</th>
                      <th scope="col">Type</th>
                      <th scope="col">From</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.fields.map((f) => (
                      <tr key={f.name}>
                        <td>
                          <code>{f.name}</code>
                        </td>
                        <td>{f.type}</td>
                        <td>
                          <code>{f.sourceField}</code>
                          {f.transform === 'RAW' ? '' : ` (${humanize(f.transform).toLowerCase()})`}
                        </td>
                      </tr>
                    ))}
                    {d.personKey ? (
                      <tr>
                        <td>
                          <code>personKey</code>
                        </td>
                        <td>String</td>
                        <td>linkage pseudonym</td>
                      </tr>
                    ) : null}
                  </tbody>
                </table>
              </TableWrap>
              <ul className="preview-facts">
                <li>Rows: {describeRowFilter(d.rowFilter)}</li>
                {d.requireConsent ? <li>Only subjects who consent to {p.purpose}</li> : null}
                {d.access === 'AGGREGATE_ONLY' ? <li>Counts below {d.minCellSize} are suppressed</li> : null}
                <li>
                  {d.rowsReleased === null
                    ? 'Rows released now: counted for the provider’s steward only'
                    : `Rows released now: ${formatNumber(d.rowsReleased)}`}
                </li>
              </ul>
            </div>
          ))}
        </section>
      ))}
    </div>
  );
}

type PreviewState =
  | { kind: 'idle' }
  | { kind: 'loading' }
  | { kind: 'ok'; previews: PurposePreview[] }
  | { kind: 'error'; error: ApiError };

/**
 * The live preview of agreement content: asked again (after a short pause in typing) whenever the
 * content changes; also the quickest check of the content, as the broker validates it as it would
 * a proposal.
 */
export function LivePreview({
  input,
  blocked,
}: {
  input: Record<string, unknown> | null;
  blocked: string | null;
}) {
  const { apiKey } = useSession();
  const [state, setState] = useState<PreviewState>({ kind: 'idle' });
  const key = input ? JSON.stringify(input) : null;

  useEffect(() => {
    if (!key || blocked) {
      setState({ kind: 'idle' });
      return;
    }
    let current = true;
    setState((s) => (s.kind === 'ok' ? s : { kind: 'loading' }));
    const timer = window.setTimeout(() => {
      graphql<{ previewAgreement: PurposePreview[] }>(apiKey, Q.previewAgreement, {
        input: JSON.parse(key) as unknown,
      }).then(
        (data) => current && setState({ kind: 'ok', previews: data.previewAgreement }),
        (error: unknown) =>
          current &&
          setState({
            kind: 'error',
            error: error instanceof ApiError ? error : new ApiError(String(error), 'ERROR'),
          }),
      );
    }, 400);
    return () => {
      current = false;
      window.clearTimeout(timer);
    };
  }, [apiKey, key, blocked]);

  return (
    <aside
      className="card live-preview"
      aria-labelledby="live-preview-heading"
      aria-busy={state.kind === 'loading'}
    >
      <h2 id="live-preview-heading">What the recipient would see</h2>
      <p className="visually-hidden" role="status">
        {state.kind === 'ok'
          ? `Preview updated for ${state.previews.map((p) => p.purpose).join(', ')}.`
          : state.kind === 'error'
            ? 'The agreement is not valid yet.'
            : ''}
      </p>
      {blocked ? <p className="muted">{blocked}</p> : null}
      {!blocked && state.kind === 'loading' ? <Loading label="Asking the broker…" /> : null}
      {state.kind === 'error' ? <ErrorMessage error={state.error} title="Not valid yet" /> : null}
      {state.kind === 'ok' ? <PreviewView previews={state.previews} /> : null}
    </aside>
  );
}
