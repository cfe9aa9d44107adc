import { useEffect, useRef, useState } from 'react';
import { type CreatedUser, Q, type User } from '../api/schema';
import { NewKey } from '../components/new-key';
import { ErrorMessage, Notice, PageHeader } from '../components/ui';
import { humanize } from '../lib/format';
import { useSession } from '../lib/session';
import { useMutation } from '../lib/use-query';

/**
 * `rotateApiKey` for the signed-in user: the broker replaces the key (the old one stops at once, on
 * every instance) and answers the new one, which this tab then carries; the new key is kept here to
 * be shown once.
 */
function useRotation() {
  const { replaceKey } = useSession();
  const rotate = useMutation<{ rotateApiKey: CreatedUser }>(Q.rotateApiKey);
  const [newKey, setNewKey] = useState<string | null>(null);
  const run = async () => {
    const result = await rotate.mutate();
    if (!result) return;
    setNewKey(result.rotateApiKey.apiKey);
    replaceKey(result.rotateApiKey.apiKey, result.rotateApiKey.user);
  };
  return { newKey, run, busy: rotate.busy, error: rotate.error };
}

function who(me: User): string {
  return [me.displayName ?? me.email, humanize(me.role), me.agency?.name].filter(Boolean).join(' · ');
}

/** The signed-in user's own key: what it is for, and replacing it. */
export function AccountPage() {
  const { me } = useSession();
  const rotation = useRotation();
  const [confirming, setConfirming] = useState(false);
  const rotate = async () => {
    await rotation.run();
    setConfirming(false);
  };
  return (
    <>
      <PageHeader title="Your API key" />
      <p>
        Signed in as <strong>{who(me)}</strong>
        {me.displayName ? ` (${me.email})` : ''}. Your API key signs you in here and authenticates every
        script or tool that calls the broker as you.
      </p>
      <section className="card" aria-labelledby="rotate-key">
        <h2 id="rotate-key">Rotate your key</h2>
        <p>
          Rotate it when it may have been seen by someone else, when a script that held it is retired, or
          routinely. The broker creates a new key and the current one stops working at once, on every broker
          instance: update your scripts with the new key. This tab carries on with the new key; other tabs
          signed in with the old one are signed out at their next request.
        </p>
        <ErrorMessage error={rotation.error} title="The key was not rotated" />
        {rotation.newKey ? (
          <>
            <Notice>
              Your key was rotated. The old key no longer works; this is your new key, shown only this once.
            </Notice>
            <NewKey apiKey={rotation.newKey} label="Your new API key" />
          </>
        ) : null}
        {confirming ? (
          <div className="confirm stack" role="group" aria-labelledby="rotate-confirm">
            <p id="rotate-confirm">
              <strong>Rotate your key now?</strong> Anything still using your current key stops working.
            </p>
            <div className="form-actions">
              <button
                type="button"
                className="primary"
                disabled={rotation.busy}
                onClick={() => void rotate()}
              >
                {rotation.busy ? 'Rotating…' : 'Yes, rotate my key'}
              </button>
              <button type="button" onClick={() => setConfirming(false)} disabled={rotation.busy}>
                Cancel
              </button>
            </div>
          </div>
        ) : (
          <div className="form-actions">
            <button type="button" className="primary" onClick={() => setConfirming(true)}>
              Rotate my API key
            </button>
          </div>
        )}
      </section>
    </>
  );
}

/**
 * What a user signed in with an invitation sees instead of the application: the key the operator
 * created works for nothing else until its owner replaces it with a key of its own (DESIGN §4.1
 * "Users"), so the page explains that and leads to the rotation, then shows the new key once.
 */
export function InvitationPage({ onContinue }: { onContinue: () => void }) {
  const { me, signOut } = useSession();
  const rotation = useRotation();
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = 'Accept your invitation · Data-sharing broker';
    heading.current?.focus();
  }, []);
  return (
    <main className="sign-in" id="main">
      <h1 tabIndex={-1} ref={heading}>
        Accept your invitation
      </h1>
      <p className="lead">Signed in as {who(me)}.</p>
      <div className="card stack">
        {rotation.newKey ? (
          <>
            <Notice>
              Invitation accepted: the key you signed in with no longer works. This is your own API key, shown
              only this once.
            </Notice>
            <NewKey
              apiKey={rotation.newKey}
              label="Your API key"
              hint="Store it now, in a password manager: you sign in with it from now on. The broker keeps only its hash and cannot show it again."
            />
            <div className="form-actions">
              <button type="button" className="primary" onClick={onContinue}>
                Continue to the broker
              </button>
            </div>
          </>
        ) : (
          <>
            <p>
              The key you signed in with is an <strong>invitation</strong>: the operator created it for you,
              and it works for nothing else until you replace it with a key of your own. Only you will know
              the new key; the invitation stops working at once, so whoever saw it cannot use it.
            </p>
            <ErrorMessage error={rotation.error} title="The invitation was not accepted" />
            <div className="form-actions">
              <button
                type="button"
                className="primary"
                disabled={rotation.busy}
                onClick={() => void rotation.run()}
              >
                {rotation.busy ? 'Creating your key…' : 'Create my own key'}
              </button>
              <button type="button" onClick={signOut}>
                Sign out
              </button>
            </div>
          </>
        )}
      </div>
    </main>
  );
}
