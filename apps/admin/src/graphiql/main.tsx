/**
 * GraphiQL for the broker's two GraphQL endpoints, bundled from npm and served by the broker itself
 * (no CDN): a browser that opens `/graphql` or `/data/graphql` gets this page, which asks for an
 * API key, keeps it in this tab only (sessionStorage) and sends it as `Authorization: Bearer`.
 */
import { GraphiQL } from 'graphiql';
import 'graphiql/style.css';
import { type ExecutionResult, GraphQLError } from 'graphql';
import {
  type ComponentProps,
  type FormEvent,
  StrictMode,
  useCallback,
  useEffect,
  useMemo,
  useRef,
  useState,
} from 'react';
import { createRoot } from 'react-dom/client';
import './graphiql.css';

type Fetcher = ComponentProps<typeof GraphiQL>['fetcher'];
type GraphiqlStorage = NonNullable<ComponentProps<typeof GraphiQL>['storage']>;

interface Endpoint {
  path: '/graphql' | '/data/graphql';
  title: string;
  other: { path: string; title: string };
  defaultQuery: string;
}

const CONTROL: Endpoint = {
  path: '/graphql',
  title: 'Control plane',
  other: { path: '/data/graphql', title: 'Data plane' },
  defaultQuery: `# The control plane: agencies, datasets, agreements, the audit log.
# Open the documentation explorer (the book icon) to read every type, field and argument.
{
  me {
    email
    role
  }
}
`,
};

const DATA: Endpoint = {
  path: '/data/graphql',
  title: 'Data plane',
  other: { path: '/graphql', title: 'Control plane' },
  defaultQuery: `# The data plane: records released to your agency by the agreements in force.
# Its schema is yours alone: open the documentation explorer (the book icon) to see each dataset,
# the purposes you may name, and for every released name its source field, transform and agreements.
{
  __schema {
    queryType {
      fields {
        name
      }
    }
  }
}
`,
};

/** The endpoint this page is for: the path the browser opened. */
const ENDPOINT = window.location.pathname.replace(/\/+$/, '') === '/graphql' ? CONTROL : DATA;

const KEY_STORAGE = 'broker.graphiql.apiKey';

function storedKey(): string | null {
  try {
    return window.sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

function storeKey(key: string | null) {
  try {
    if (key === null) window.sessionStorage.removeItem(KEY_STORAGE);
    else window.sessionStorage.setItem(KEY_STORAGE, key);
  } catch {
    // Storage refused (private mode): the session lasts until the page is reloaded.
  }
}

/**
 * GraphiQL's tabs and history, kept for this tab only and per endpoint: queries may hold filter
 * values about people, which must not outlive the session on a shared computer.
 */
function sessionStore(prefix: string): GraphiqlStorage {
  const keys = () => {
    const found: string[] = [];
    for (let i = 0; i < window.sessionStorage.length; i++) {
      const key = window.sessionStorage.key(i);
      if (key?.startsWith(prefix)) found.push(key);
    }
    return found;
  };
  return {
    getItem: (key) => window.sessionStorage.getItem(prefix + key),
    setItem: (key, value) => window.sessionStorage.setItem(prefix + key, value),
    removeItem: (key) => window.sessionStorage.removeItem(prefix + key),
    clear: () => keys().forEach((key) => window.sessionStorage.removeItem(key)),
    get length() {
      return keys().length;
    },
  };
}

interface Me {
  email: string;
  role: string;
}

type SignIn =
  { state: 'out'; error: string | null } | { state: 'checking' } | { state: 'in'; key: string; me: Me };

/** Who a key belongs to, or an error message; asks the control plane, which records no refusal for `me`. */
async function whoIs(key: string): Promise<Me | string> {
  try {
    const response = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ query: '{ me { email role } }' }),
      credentials: 'omit',
      cache: 'no-store',
    });
    if (response.status === 401) return 'That API key is not valid';
    const body = (await response.json()) as { data?: { me?: Me } | null };
    return body.data?.me ?? 'The broker did not accept the key';
  } catch {
    return 'The broker cannot be reached';
  }
}

function App() {
  const [session, setSession] = useState<SignIn>(() =>
    storedKey() ? { state: 'checking' } : { state: 'out', error: null },
  );

  const signIn = useCallback(async (key: string) => {
    setSession({ state: 'checking' });
    const me = await whoIs(key);
    if (typeof me === 'string') {
      storeKey(null);
      setSession({ state: 'out', error: me });
    } else {
      storeKey(key);
      setSession({ state: 'in', key, me });
    }
  }, []);

  useEffect(() => {
    const key = storedKey();
    if (key) void signIn(key);
  }, [signIn]);

  const signOut = useCallback((error: string | null = null) => {
    storeKey(null);
    setSession({ state: 'out', error });
  }, []);

  useEffect(() => {
    document.title = `${ENDPOINT.title} · GraphiQL · Data-sharing broker`;
  }, []);

  if (session.state === 'in') return <Explorer apiKey={session.key} me={session.me} onSignOut={signOut} />;
  return (
    <SignInForm
      busy={session.state === 'checking'}
      error={session.state === 'out' ? session.error : null}
      onSignIn={(key) => void signIn(key)}
    />
  );
}

function SignInForm({
  busy,
  error,
  onSignIn,
}: {
  busy: boolean;
  error: string | null;
  onSignIn: (key: string) => void;
}) {
  const [key, setKey] = useState('');
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), [error]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (key.trim()) onSignIn(key.trim());
  };
  return (
    <main className="gq-sign-in">
      <h1>
        GraphiQL · {ENDPOINT.title} <code>{ENDPOINT.path}</code>
      </h1>
      <form onSubmit={submit}>
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
          aria-describedby="api-key-hint"
          required
        />
        <p id="api-key-hint" className="gq-hint">
          Requests carry it as <code>Authorization: Bearer</code>. It stays in this browser tab only and is
          forgotten when you sign out or close the tab.
        </p>
        {error ? (
          <p className="gq-error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

function Explorer({
  apiKey,
  me,
  onSignOut,
}: {
  apiKey: string;
  me: Me;
  onSignOut: (error?: string | null) => void;
}) {
  const storage = useMemo(() => sessionStore(`broker.graphiql${ENDPOINT.path}:`), []);
  const fetcher = useMemo<Fetcher>(
    () => async (params) => {
      const response = await fetch(ENDPOINT.path, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          authorization: `Bearer ${apiKey}`,
        },
        body: JSON.stringify(params),
        credentials: 'omit',
        cache: 'no-store',
      });
      if (response.status === 401) {
        onSignOut('The broker no longer accepts this API key: sign in again');
      }
      try {
        return (await response.json()) as ExecutionResult;
      } catch {
        return { errors: [new GraphQLError(`The broker answered HTTP ${response.status}`)] };
      }
    },
    [apiKey, onSignOut],
  );
  return (
    <div className="gq-page">
      <header className="gq-bar">
        <span>
          <strong>{ENDPOINT.title}</strong> <code>{ENDPOINT.path}</code>
        </span>
        <a href={ENDPOINT.other.path}>{ENDPOINT.other.title}</a>
        <span className="gq-who">
          Signed in as {me.email} ({me.role})
        </span>
        {ENDPOINT === DATA && me.role !== 'ANALYST' ? (
          <span className="gq-note" role="note">
            Only analysts query records
          </span>
        ) : null}
        <button type="button" onClick={() => onSignOut()}>
          Sign out
        </button>
      </header>
      <div className="gq-ide">
        <GraphiQL
          fetcher={fetcher}
          storage={storage}
          defaultQuery={ENDPOINT.defaultQuery}
          isHeadersEditorEnabled={false}
          shouldPersistHeaders={false}
        />
      </div>
    </div>
  );
}

// GraphiQL's dialogs lock scrolling with a <style> element (react-remove-scroll), which reads its
// nonce from `__webpack_nonce__`; the broker's CSP allows styles of this response's nonce only.
declare global {
  interface Window {
    __webpack_nonce__?: string;
  }
}
const nonce = document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content;
if (nonce && nonce !== '__CSP_NONCE__') window.__webpack_nonce__ = nonce;

const root = document.getElementById('root');
if (!root) throw new Error('graphiql.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
