import { type FormEvent, type ReactNode, useEffect, useRef, useState } from 'react';
import type { ApiError } from '../api/client';
import { ErrorMessage } from './ui';

/** What the form says when a key is refused, whichever page asked. */
export const KEY_REFUSED = 'That API key is not valid';

/** What a page says when the key it kept for the tab stopped working. */
export const SESSION_ENDED = 'Your session ended: the API key is no longer valid. Sign in again.';

/** What a page says after its user signed out. */
export const SIGNED_OUT = 'You signed out. The API key was removed from this browser tab.';

/**
 * Signing in with an API key, as the admin UI and GraphiQL both ask for it: one labelled password
 * field, focused when the form opens and again after a refusal, described by a hint saying where the
 * key is kept; a notice (announced politely) and a refusal (announced at once) above the button. The
 * page decides what signing in does and keeps the key; this form only collects it, trimmed.
 * Each page styles the same markup: `.sign-in`, `.card`, `.field`, `.hint`, `.alert`, `button.primary`.
 */
export function ApiKeySignIn({
  heading,
  lead,
  hint,
  onSignIn,
  error,
  busy,
  notice,
  documentTitle,
}: {
  heading: ReactNode;
  /** A sentence under the heading on what the page is for. */
  lead?: ReactNode;
  /** What the key is and where it is kept. */
  hint: ReactNode;
  onSignIn: (key: string) => void;
  error: ApiError | null;
  busy: boolean;
  notice: string | null;
  /** The browser tab's title while the form shows; left as it is when omitted. */
  documentTitle?: string;
}) {
  const [key, setKey] = useState('');
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (documentTitle) document.title = documentTitle;
  }, [documentTitle]);
  // On opening and after each refusal, so that the person can type again at once.
  useEffect(() => {
    input.current?.focus();
  }, [error]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (key.trim()) onSignIn(key.trim());
  };
  return (
    <main className="sign-in" id="main">
      <h1>{heading}</h1>
      {lead ? <p className="lead">{lead}</p> : null}
      <form onSubmit={submit} className="card" aria-describedby="sign-in-hint">
        <div className="field">
          <label htmlFor="api-key">API key</label>
          <input
            id="api-key"
            ref={input}
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={key}
            onChange={(e) => setKey(e.target.value)}
            aria-invalid={error ? true : undefined}
            aria-describedby="sign-in-hint"
            required
          />
          <p className="hint" id="sign-in-hint">
            {hint}
          </p>
        </div>
        {notice ? (
          <p className="alert alert-info" role="status">
            {notice}
          </p>
        ) : null}
        <ErrorMessage error={error} title={error?.code === 'UNAUTHENTICATED' ? KEY_REFUSED : undefined} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
