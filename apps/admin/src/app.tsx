import { type ReactNode, useCallback, useEffect, useMemo, useState } from 'react';
import { ApiError, graphql } from './api/client';
import { AGREEMENT_STATUSES, type AgreementStatus, Q, type Role, type User } from './api/schema';
import { SESSION_ENDED, SIGNED_OUT } from './components/api-key-sign-in';
import { EmptyState, Loading, PageHeader } from './components/ui';
import { humanize } from './lib/format';
import { Link, Redirect, match, navigate, useLocation } from './lib/router';
import { SessionContext, storeKey, storedKey } from './lib/session';
import { AccountPage, InvitationPage } from './pages/account';
import { AgreementPage } from './pages/agreement-detail';
import { AgreementFormPage } from './pages/agreement-form';
import { AgreementsPage } from './pages/agreements';
import { AnalystPage } from './pages/analyst';
import { LinkedCountPage } from './pages/linked-count';
import { SubjectAccessPage } from './pages/subject-access';
import { AccessChartPage, AuditLogPage, AuditVerifyPage } from './pages/audit';
import { DatasetPage } from './pages/dataset-detail';
import { DatasetFormPage } from './pages/dataset-form';
import { DatasetsPage } from './pages/datasets';
import { LinkageRunPage, LinkageRunsPage } from './pages/linkage';
import { AgenciesPage, PurposesPage } from './pages/operator';
import { OversightPage } from './pages/oversight';
import { SignInPage } from './pages/sign-in';
import { UsersPage } from './pages/users';

/** The navigation of each role: what it does here. */
const NAVIGATION: Record<Role, { to: string; label: string }[]> = {
  OPERATOR: [
    { to: '/agencies', label: 'Agencies' },
    { to: '/users', label: 'Users' },
    { to: '/purposes', label: 'Purposes' },
    { to: '/agreements', label: 'Agreements' },
    { to: '/linkage', label: 'Linkage' },
  ],
  STEWARD: [
    { to: '/agreements', label: 'Agreements' },
    { to: '/datasets', label: 'Datasets' },
    { to: '/subject-access', label: 'Subject access' },
    { to: '/users', label: 'Users' },
  ],
  AUDITOR: [
    { to: '/oversight', label: 'Oversight queue' },
    { to: '/audit', label: 'Audit log' },
    { to: '/audit/verify', label: 'Verification' },
    { to: '/audit/chart', label: 'Access chart' },
    { to: '/agreements', label: 'Agreements' },
    { to: '/users', label: 'Users' },
  ],
  ANALYST: [
    { to: '/analyst', label: 'Querying data' },
    { to: '/linked-count', label: 'Linked count' },
  ],
};

interface Route {
  pattern: string;
  roles: Role[];
  render: (params: Record<string, string>, query: URLSearchParams) => ReactNode;
}

const ROUTES: Route[] = [
  { pattern: '/agencies', roles: ['OPERATOR'], render: () => <AgenciesPage /> },
  { pattern: '/users', roles: ['OPERATOR', 'STEWARD', 'AUDITOR'], render: () => <UsersPage /> },
  {
    pattern: '/account',
    roles: ['OPERATOR', 'STEWARD', 'ANALYST', 'AUDITOR'],
    render: () => <AccountPage />,
  },
  { pattern: '/purposes', roles: ['OPERATOR'], render: () => <PurposesPage /> },
  { pattern: '/linkage', roles: ['OPERATOR', 'AUDITOR'], render: () => <LinkageRunsPage /> },
  {
    pattern: '/linkage/:id',
    roles: ['OPERATOR', 'AUDITOR'],
    render: (p) => <LinkageRunPage key={p.id} id={p.id} />,
  },
  { pattern: '/datasets', roles: ['STEWARD'], render: () => <DatasetsPage /> },
  { pattern: '/datasets/new', roles: ['STEWARD'], render: () => <DatasetFormPage /> },
  {
    pattern: '/datasets/:id',
    roles: ['STEWARD'],
    render: (p, q) => <DatasetPage key={p.id} id={p.id} justRegistered={q.has('registered')} />,
  },
  {
    pattern: '/agreements',
    roles: ['STEWARD', 'AUDITOR', 'OPERATOR'],
    render: (_p, q) => {
      const status = q.get('status');
      return (
        <AgreementsPage
          status={AGREEMENT_STATUSES.includes(status as AgreementStatus) ? (status as AgreementStatus) : null}
        />
      );
    },
  },
  { pattern: '/agreements/new', roles: ['STEWARD'], render: () => <AgreementFormPage /> },
  {
    pattern: '/agreements/:id',
    roles: ['STEWARD', 'AUDITOR', 'OPERATOR'],
    render: (p, q) => <AgreementPage key={p.id} id={p.id} query={q} />,
  },
  {
    pattern: '/agreements/:id/amend',
    roles: ['STEWARD'],
    render: (p) => <AgreementFormPage key={p.id} agreementId={p.id} />,
  },
  { pattern: '/oversight', roles: ['AUDITOR'], render: () => <OversightPage /> },
  { pattern: '/audit', roles: ['AUDITOR'], render: () => <AuditLogPage /> },
  { pattern: '/audit/verify', roles: ['AUDITOR'], render: () => <AuditVerifyPage /> },
  { pattern: '/audit/chart', roles: ['AUDITOR'], render: () => <AccessChartPage /> },
  { pattern: '/analyst', roles: ['ANALYST'], render: () => <AnalystPage /> },
  { pattern: '/linked-count', roles: ['ANALYST'], render: () => <LinkedCountPage /> },
  { pattern: '/subject-access', roles: ['STEWARD'], render: () => <SubjectAccessPage /> },
];

function NotFound() {
  return (
    <>
      <PageHeader title="Page not found" />
      <EmptyState>
        This page does not exist, or it is not one for your role. <Link to="/">Go to your start page</Link>
      </EmptyState>
    </>
  );
}

/** The signed-in frame: who is signed in, the role's navigation, and the current page. */
function Shell({ me, onSignOut }: { me: User; onSignOut: () => void }) {
  const { path, query } = useLocation();
  const items = NAVIGATION[me.role];
  if (path === '/') return <Redirect to={items[0].to} />;
  let page: ReactNode = <NotFound />;
  for (const route of ROUTES) {
    const params = match(route.pattern, path);
    if (params && route.roles.includes(me.role)) {
      page = route.render(params, query);
      break;
    }
  }
  const current = items
    .filter((item) => path === item.to || path.startsWith(`${item.to}/`))
    .sort((a, b) => b.to.length - a.to.length)[0];
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="top">
        <div className="brand">
          <Link to="/">Data-sharing broker</Link>
        </div>
        <div className="who">
          <span>
            <strong>{me.displayName ?? me.email}</strong>
            <span className="muted">
              {' '}
              · {humanize(me.role)}
              {me.agency ? ` · ${me.agency.name}` : ''}
            </span>
          </span>
          <Link to="/account" aria-current={path === '/account' ? 'page' : undefined}>
            Your API key
          </Link>
          <button type="button" onClick={onSignOut}>
            Sign out
          </button>
        </div>
        <nav aria-label="Main">
          <ul>
            {items.map((item) => (
              <li key={item.to}>
                <Link to={item.to} aria-current={item === current ? 'page' : undefined}>
                  {item.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}

/**
 * Signs in with an API key, keeps it for the tab, and adapts everything to the key's role. A key
 * that is an invitation leads to its rotation first (InvitationPage): it can do nothing else.
 */
export function App() {
  const [session, setSession] = useState<{ apiKey: string; me: User } | null>(null);
  // Shown from a sign-in with an invitation until its new key was shown and the user went on.
  const [accepting, setAccepting] = useState(false);
  const [checking, setChecking] = useState(() => storedKey() !== null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);

  const signIn = useCallback(async (apiKey: string, restoring = false) => {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      const { me } = await graphql<{ me: User }>(apiKey, Q.me);
      storeKey(apiKey);
      setSession({ apiKey, me });
      setAccepting(me.invitationPending === true);
    } catch (e) {
      const failure = e instanceof ApiError ? e : new ApiError(String(e), 'ERROR');
      if (restoring && failure.code === 'UNAUTHENTICATED') {
        storeKey(null);
        setNotice(SESSION_ENDED);
      } else setError(failure);
    } finally {
      setBusy(false);
      setChecking(false);
    }
  }, []);

  useEffect(() => {
    const key = storedKey();
    if (key) void signIn(key, true);
  }, [signIn]);

  const signOut = useCallback(() => {
    storeKey(null);
    setSession(null);
    setAccepting(false);
    setNotice(SIGNED_OUT);
    navigate('/', { replace: true });
  }, []);

  const replaceKey = useCallback((apiKey: string, me: User) => {
    storeKey(apiKey);
    setSession({ apiKey, me });
  }, []);

  const value = useMemo(
    () => (session ? { ...session, signOut, replaceKey } : null),
    [session, signOut, replaceKey],
  );

  if (checking) {
    return (
      <main id="main">
        <Loading label="Signing in…" />
      </main>
    );
  }
  if (!value)
    return <SignInPage onSignIn={(key) => void signIn(key)} error={error} busy={busy} notice={notice} />;
  return (
    <SessionContext.Provider value={value}>
      {accepting ? (
        <InvitationPage
          onContinue={() => {
            setAccepting(false);
            navigate('/', { replace: true });
          }}
        />
      ) : (
        <Shell me={value.me} onSignOut={signOut} />
      )}
    </SessionContext.Provider>
  );
}
