/**
 * GraphiQL for the broker's two GraphQL endpoints, bundled from npm and served by the broker itself
 * (no CDN): a browser that opens `/graphql` or `/data/graphql` gets this page, which asks for an
 * API key, keeps it in this tab only (sessionStorage) and sends it as `Authorization: Bearer`.
 */
import { GraphiQL } from 'graphiql';
import 'graphiql/style.css';
import { type ExecutionResult, GraphQLError } from 'graphql';
import { type ComponentProps, StrictMode, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { ApiError, graphql } from '../api/client';
import { ApiKeySignIn, SESSION_ENDED, SIGNED_OUT } from '../components/api-key-sign-in';
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

type Session = { state: 'out' } | { state: 'checking' } | { state: 'in'; key: string; me: Me };

/**
 * Signs in as the admin UI does, with the same form and messages: a key is checked against the
 * control plane's `me` (which records no refusal) before it is kept for the tab; a kept key that no
 * longer works ends the session with a notice rather than a refusal.
 */
function App() {
  const [session, setSession] = useState<Session>(() =>
    storedKey() ? { state: 'checking' } : { state: 'out' },
  );
  const [error, setError] = useState<ApiError | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const signIn = useCallback(async (key: string, restoring = false) => {
    setSession({ state: 'checking' });
    setError(null);
    setNotice(null);
    try {
      const { me } = await graphql<{ me: Me }>(key, '{ me { email role } }');
      storeKey(key);
      setSession({ state: 'in', key, me });
    } catch (e) {
      const failure = e instanceof ApiError ? e : new ApiError(String(e), 'ERROR');
      if (restoring && failure.code === 'UNAUTHENTICATED') {
        storeKey(null);
        setNotice(SESSION_ENDED);
      } else setError(failure);
      setSession({ state: 'out' });
    }
  }, []);

  useEffect(() => {
    const key = storedKey();
    if (key) void signIn(key, true);
  }, [signIn]);

  /** Forgets the key; `ended` when the broker stopped accepting it rather than the person signing out. */
  const signOut = useCallback((ended = false) => {
    storeKey(null);
    setError(null);
    setNotice(ended ? SESSION_ENDED : SIGNED_OUT);
    setSession({ state: 'out' });
  }, []);

  useEffect(() => {
    document.title = `${ENDPOINT.title} · GraphiQL · Data-sharing broker`;
  }, []);

  if (session.state === 'in') return <Explorer apiKey={session.key} me={session.me} onSignOut={signOut} />;
  return (
    <ApiKeySignIn
      heading={
        <>
          GraphiQL · {ENDPOINT.title} <code>{ENDPOINT.path}</code>
        </>
      }
      hint={
        <>
          Requests carry it as <code>Authorization: Bearer</code>. It stays in this browser tab only and is
          forgotten when you sign out or close the tab.
        </>
      }
      busy={session.state === 'checking'}
      error={error}
      notice={notice}
      onSignIn={(key) => void signIn(key)}
    />
  );
}

/** What each of GraphiQL's editors is, for a screen reader: CodeMirror's input has no label. */
const EDITOR_LABELS: [selector: string, label: string][] = [
  ['.graphiql-query-editor', 'Query'],
  ['.graphiql-editor-tool', 'Variables (JSON)'],
  ['.result-window', 'Response'],
];

function labelEditors(container: HTMLElement) {
  for (const textarea of container.querySelectorAll<HTMLTextAreaElement>('.CodeMirror textarea')) {
    if (textarea.hasAttribute('aria-label')) continue;
    const label = EDITOR_LABELS.find(([selector]) => textarea.closest(selector))?.[1];
    if (label) textarea.setAttribute('aria-label', label);
  }
}

function Explorer({
  apiKey,
  me,
  onSignOut,
}: {
  apiKey: string;
  me: Me;
  onSignOut: (ended?: boolean) => void;
}) {
  const storage = useMemo(() => sessionStore(`broker.graphiql${ENDPOINT.path}:`), []);
  // GraphiQL creates and replaces its editors as tabs and panes open: label each one as it appears.
  const ide = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const container = ide.current;
    if (!container) return;
    labelEditors(container);
    const observer = new MutationObserver(() => labelEditors(container));
    observer.observe(container, { childList: true, subtree: true });
    return () => observer.disconnect();
  }, []);
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
      if (response.status === 401) onSignOut(true);
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
      <div className="gq-ide" ref={ide}>
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
