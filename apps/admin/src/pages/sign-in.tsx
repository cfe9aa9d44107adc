import type { ApiError } from '../api/client';
import { ApiKeySignIn } from '../components/api-key-sign-in';

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
  return (
    <ApiKeySignIn
      heading="Data-sharing broker"
      lead="Stewards negotiate agreements, operators onboard agencies, auditors read the trail."
      hint={
        <>
          The key your operator or steward gave you. It stays in this browser tab only and is forgotten when
          you sign out or close the tab.
        </>
      }
      documentTitle="Sign in · Data-sharing broker"
      onSignIn={onSignIn}
      error={error}
      busy={busy}
      notice={notice}
    />
  );
}
