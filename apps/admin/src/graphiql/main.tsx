/**
 * GraphiQL for the broker's two GraphQL endpoints, bundled from npm and served by the broker itself
 * (no CDN): a browser that opens `/graphql` or `/data/graphql` gets this page, which asks for an
 * API key, keeps it in this tab only (sessionStorage) and sends it as `Authorization: Bearer`.
 */
import CodeMirror from 'codemirror';
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

/**
 * CodeMirror 5's contenteditable input, for every editor GraphiQL creates (it imports this same
 * module): the editable text is then inside the editor's scroll area, so keyboard and screen reader
 * reach the text that scrolls, where the default hidden textarea sits outside it. CodeMirror's
 * manual calls this model the better one for screen readers.
 */
CodeMirror.defaults.inputStyle = 'contenteditable';

/**
 * Whether CodeMirror runs with its macOS keys, where Cmd does what Ctrl does elsewhere (indenting,
 * among others): the keyboard help names the keys this browser's editors answer to. CodeMirror
 * chooses its default key map by platform (its types leave the key maps out).
 */
const KEY_MAPS = (CodeMirror as unknown as { keyMap: Record<string, object> }).keyMap;
const MAC_KEYS = KEY_MAPS.default === KEY_MAPS.macDefault;

/** The ids of the keyboard help's two parts: leaving an editor, and editing in one. */
const KEYS_MOVE = 'gq-keys-move';
const KEYS_EDIT = 'gq-keys-edit';

/**
 * What each of GraphiQL's editors is, for a screen reader (CodeMirror's input has no label), and
 * the parts of the keyboard help that describe it: the response is read only, so only leaving it.
 */
const EDITORS: { selector: string; label: string; keys: string[] }[] = [
  { selector: '.graphiql-query-editor', label: 'Query', keys: [KEYS_MOVE, KEYS_EDIT] },
  { selector: '.graphiql-editor-tool', label: 'Variables (JSON)', keys: [KEYS_MOVE, KEYS_EDIT] },
  { selector: '.result-window', label: 'Response', keys: [KEYS_MOVE] },
];

/** The id of the hint that says how a tab is closed from the keyboard. */
const TAB_HINT = 'gq-tab-hint';

/** Editors already made accessible: GraphiQL keeps each one while the page lives. */
const prepared = new WeakSet<CodeMirror.Editor>();

/**
 * Each editor as it appears: named, exposed as a multi-line text box, described by the keyboard
 * help above the editors, and left with Tab and Shift+Tab, which move the focus to the next control
 * as everywhere else on the page rather than indent (CodeMirror indents each new line itself; Ctrl+]
 * and Ctrl+[ indent by hand). While completions are shown, their own Tab still picks one.
 */
function prepareEditors(container: HTMLElement) {
  for (const wrapper of container.querySelectorAll<HTMLElement>('.CodeMirror')) {
    const editor = (wrapper as HTMLElement & { CodeMirror?: CodeMirror.Editor }).CodeMirror;
    if (!editor || prepared.has(editor)) continue;
    const found = EDITORS.find(({ selector }) => wrapper.closest(selector));
    if (!found) continue;
    prepared.add(editor);
    editor.setOption('screenReaderLabel', found.label);
    const input = editor.getInputField();
    input.setAttribute('role', 'textbox');
    input.setAttribute('aria-multiline', 'true');
    input.setAttribute('aria-describedby', found.keys.join(' '));
    if (editor.getOption('readOnly')) input.setAttribute('aria-readonly', 'true');
    editor.addKeyMap({ Tab: false, 'Shift-Tab': false }, true);
  }
}

/**
 * GraphiQL's tabs, as the ARIA tabs pattern has them. GraphiQL gives the role `tab` to each list
 * item, which holds the tab's button and (with more than one tab) its close button: controls nested
 * in a control. The role moves to the button (the list item is presentation only), and the close
 * button is left to the pointer, hidden from screen readers and out of the Tab order: the focused
 * tab closes with Delete, as the pattern provides, and says so. Only attributes change: React keeps
 * the elements, and its own attributes are copied again whenever it sets them.
 */
function prepareTabs(container: HTMLElement) {
  for (const item of container.querySelectorAll<HTMLElement>('.graphiql-tabs > .graphiql-tab')) {
    const button = item.querySelector<HTMLElement>(':scope > .graphiql-tab-button');
    if (!button) continue;
    const close = item.querySelector<HTMLElement>(':scope > .graphiql-tab-close');
    setAttribute(item, 'role', 'none');
    if (item.hasAttribute('aria-selected')) item.removeAttribute('aria-selected');
    setAttribute(button, 'role', 'tab');
    setAttribute(button, 'aria-selected', String(item.classList.contains('graphiql-tab-active')));
    if (close) {
      setAttribute(close, 'aria-hidden', 'true');
      setAttribute(close, 'tabindex', '-1');
      setAttribute(button, 'aria-keyshortcuts', 'Delete');
      setAttribute(button, 'aria-describedby', TAB_HINT);
    } else {
      if (button.hasAttribute('aria-keyshortcuts')) button.removeAttribute('aria-keyshortcuts');
      if (button.hasAttribute('aria-describedby')) button.removeAttribute('aria-describedby');
    }
  }
}

/** The panes GraphiQL resizes, and hides by moving them off screen (transparent) rather than away. */
const PANES =
  '.graphiql-plugin, .graphiql-editors, .graphiql-query-editor, .graphiql-editor-tool, .graphiql-response';

/**
 * A pane GraphiQL has hidden (the variables while the editor tools are closed) stays in the page,
 * where Tab would reach an editor no one sees: it is inert while hidden.
 */
function preparePanes(container: HTMLElement) {
  for (const pane of container.querySelectorAll<HTMLElement>(PANES)) {
    const hidden = pane.style.position === 'absolute' && pane.style.opacity === '0';
    if (pane.inert !== hidden) pane.inert = hidden;
  }
}

/** Sets an attribute only when it differs, so that the page's observer does not wake itself. */
function setAttribute(element: Element, name: string, value: string) {
  if (element.getAttribute(name) !== value) element.setAttribute(name, value);
}

/**
 * Keys of the tabs pattern on GraphiQL's tabs: Delete closes the focused tab (by its close button,
 * so GraphiQL closes it as a click would) and the focus moves to the tab then active; Left and
 * Right arrows, Home and End move between tabs.
 */
function onTabKey(event: KeyboardEvent) {
  const button = event.target instanceof HTMLElement ? event.target.closest('.graphiql-tab-button') : null;
  const list = button?.closest('.graphiql-tabs');
  if (!button || !list) return;
  const buttons = [...list.querySelectorAll<HTMLElement>('.graphiql-tab > .graphiql-tab-button')];
  const at = buttons.indexOf(button as HTMLElement);
  let next: HTMLElement | undefined;
  switch (event.key) {
    case 'Delete': {
      const close = button.parentElement?.querySelector<HTMLElement>(':scope > .graphiql-tab-close');
      if (!close) return;
      event.preventDefault();
      close.click();
      focusActiveTabAfter(button, list);
      return;
    }
    case 'ArrowLeft':
      next = buttons[(at - 1 + buttons.length) % buttons.length];
      break;
    case 'ArrowRight':
      next = buttons[(at + 1) % buttons.length];
      break;
    case 'Home':
      next = buttons[0];
      break;
    case 'End':
      next = buttons[buttons.length - 1];
      break;
    default:
      return;
  }
  event.preventDefault();
  next?.focus();
}

/** Once GraphiQL has removed the closed tab, focuses the tab then active. */
function focusActiveTabAfter(closed: Element, list: Element, frames = 30) {
  requestAnimationFrame(() => {
    if (closed.isConnected) {
      if (frames > 0) focusActiveTabAfter(closed, list, frames - 1);
      return;
    }
    list.querySelector<HTMLElement>('.graphiql-tab-active > .graphiql-tab-button')?.focus();
  });
}

/**
 * The keyboard help, shown above the editors and describing each of them (`aria-describedby`): Tab
 * leaves an editor, as it leaves every other control, so the keys that indent are said where they
 * are used. Only keys the editors answer to are named: CodeMirror's indenting (Cmd on macOS), and
 * GraphiQL's completion, run and prettify keys (`Ctrl-Space`; `Cmd-Enter` and `Ctrl-Enter`;
 * `Shift-Ctrl-P`, Ctrl on every system).
 */
function EditorKeys() {
  const mod = MAC_KEYS ? 'Cmd' : 'Ctrl';
  return (
    <p className="gq-keys">
      <span className="gq-keys-title">Editor keys:</span>{' '}
      <span id={KEYS_MOVE}>
        <kbd>Tab</kbd> and <kbd>Shift+Tab</kbd> move to the next or previous control.
      </span>{' '}
      <span id={KEYS_EDIT}>
        <kbd>{mod}+]</kbd> indents, <kbd>{mod}+[</kbd> outdents, <kbd>Ctrl+Space</kbd> completes,{' '}
        <kbd>{mod}+Enter</kbd> runs the query, <kbd>Shift+Ctrl+P</kbd> prettifies.
      </span>
    </p>
  );
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
  // GraphiQL creates its editors and tabs as they open, React sets the tabs' attributes again as
  // they change, and panes are hidden and shown by their style: each is made accessible as it is.
  const ide = useRef<HTMLElement>(null);
  useEffect(() => {
    const container = ide.current;
    if (!container) return;
    const prepare = () => {
      prepareEditors(container);
      prepareTabs(container);
      preparePanes(container);
    };
    prepare();
    const observer = new MutationObserver(prepare);
    observer.observe(container, {
      childList: true,
      subtree: true,
      attributes: true,
      attributeFilter: ['class', 'role', 'aria-selected', 'style'],
    });
    container.addEventListener('keydown', onTabKey);
    return () => {
      observer.disconnect();
      container.removeEventListener('keydown', onTabKey);
    };
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
        <h1 className="gq-title">
          {ENDPOINT.title} <code>{ENDPOINT.path}</code>
        </h1>
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
        <span id={TAB_HINT} hidden>
          Delete closes the tab.
        </span>
      </header>
      <main className="gq-ide" ref={ide}>
        <EditorKeys />
        <GraphiQL
          fetcher={fetcher}
          storage={storage}
          defaultQuery={ENDPOINT.defaultQuery}
          isHeadersEditorEnabled={false}
          shouldPersistHeaders={false}
        />
      </main>
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
