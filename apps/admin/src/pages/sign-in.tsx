import { type FormEvent, useEffect, useRef, useState } from 'react';
import type { ApiError } from '../api/client';
import { ErrorMessage } from '../components/ui';

/**
 * Signing in is giving an API key: the UI keeps it for this tab only (sessionStorage) and sends it
 * with every request, as any API client does.
 */
export function SignInPage({
  onSignIn,
  error,
  busy,
  notice,
}: {
  onSignIn: (key: string) => void;
  error: ApiError | null;
  busy: boolean;
  notice: string | null;
}) {
  const [key, setKey] = useState('');
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    document.title = 'Sign in · Data-sharing broker';
    input.current?.focus();
  }, []);
  useEffect(() => {
    if (error) input.current?.focus();
  }, [error]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (key.trim()) onSignIn(key.trim());
  };
  return (
    <main className="sign-in" id="main">
      <h1>Data-sharing broker</h1>
      <p className="lead">
        Stewards negotiate agreements, operators onboard agencies, auditors read the trail.
      </p>
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
            The key your operator or steward gave you. It stays in this browser tab only and is forgotten when
            you sign out or close the tab.
          </p>
        </div>
        {notice ? (
          <p className="alert alert-info" role="status">
            {notice}
          </p>
        ) : null}
        <ErrorMessage
          error={error}
          title={error?.code === 'UNAUTHENTICATED' ? 'That API key is not valid' : undefined}
        />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
