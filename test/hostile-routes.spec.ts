/**
 * Every route the broker serves, asked with any method, path variant, query string, headers and
 * body (fast-check): no answer is a 5xx, none carries a stack trace or a path of the server's, a
 * JSON answer parses, a refusal in an endpoint's own shape carries a contract code, and nothing but
 * the public register, GraphiQL, health, metrics (without METRICS_TOKEN) and the admin UI answer
 * without sign-in. The routes are read from the running broker, so a route added later is fuzzed
 * too; the admin UI and GraphiQL are built, as deployed (not built, they answer 503).
 */
import fc from 'fast-check';
import { TestBroker } from '@broker/testing';
import { buildAdminUi } from './admin-browser';

const CODES = new Set(['UNAUTHENTICATED', 'FORBIDDEN', 'BAD_USER_INPUT', 'NOT_FOUND', 'CONFLICT']);
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;
type Method = (typeof METHODS)[number];
/** What leaks a server's internals: a stack frame, a source path, a driver's message. */
const INTERNALS =
  /\n\s+at \S|\.(ts|js):\d+|node_modules|\/work\/|\/home\/|\/tmp\/|QueryFailedError|relation "/;

describe('hostile routes: any method, query, headers and body on every route', () => {
  let broker: TestBroker;
  let keys: string[];
  let routes: { method: string; url: string }[];
  let datasetId: string;

  beforeAll(async () => {
    // The admin UI and GraphiQL as built, so that their routes answer as they do when deployed.
    broker = await TestBroker.start({ LABEL: 'hostile_routes' }, { adminUiDir: await buildAdminUi() });
    const parties = await broker.sharingParties('Provider', 'Recipient', 'RESEARCH');
    datasetId = (
      await broker.registerDataset(parties.providerSteward.apiKey, {
        slug: 'people',
        title: 'People',
        keyField: 'k',
        fields: [
          { name: 'k', type: 'STRING', classification: 'NON_SENSITIVE' },
          { name: 'n', type: 'INTEGER', classification: 'NON_SENSITIVE' },
        ],
      })
    ).id;
    keys = [
      parties.providerSteward.apiKey,
      parties.analyst.apiKey,
      broker.operatorKey,
      'not-a-key',
      `${parties.analyst.apiKey}x`,
    ];
    // Fastify's own list of what it routes, as `METHOD /path` lines under a tree.
    const listing = broker.http.printRoutes({ commonPrefix: false, includeHooks: false });
    routes = [];
    for (const line of listing.split('\n')) {
      const match = /(\/\S*) \(([A-Z, ]+)\)/.exec(line);
      if (!match) continue;
      for (const method of match[2].split(', ')) routes.push({ method, url: match[1] });
    }
  }, 180_000);
  afterAll(() => broker.close());

  it('reads the routes it fuzzes from the broker', () => {
    const urls = new Set(routes.map((r) => r.url));
    for (const url of [
      '/graphql',
      '/data/graphql',
      '/data/export',
      '/api/register',
      '/register',
      '/metrics',
      '/health',
      '/api/datasets/:id/records',
    ]) {
      expect([url, urls.has(url)]).toEqual([url, true]);
    }
  });

  it('never answers 5xx, never shows internals, and answers each refusal in a contract shape', async () => {
    const segment = fc.oneof(
      fc.constantFrom(
        datasetId,
        '00000000-0000-4000-8000-000000000000',
        '..',
        '%00',
        '%2e%2e',
        "'",
        'x'.repeat(300),
      ),
      fc.webSegment(),
    );
    const path = fc
      .tuple(fc.constantFrom(...routes), segment, fc.constantFrom('', '/', '//', '/extra'))
      .map(([route, value, tail]) => ({
        route,
        url: route.url.replace(/:[a-z]+/g, encodeURIComponent(value)).replace(/\*$/, value) + tail,
      }));
    const query = fc.oneof(
      fc.constant(''),
      fc.webQueryParameters().map((q) => `?${q}`),
      fc.constantFrom(
        '?query=%7B__typename%7D',
        '?query=mutation%7BdefinePurpose(input%3A%7Bcode%3A%22X%22%2Cdescription%3A%22d%22%7D)%7Bcode%7D%7D',
        '?query=%7B',
        '?format=csv&format=ndjson',
        '?__proto__[x]=1',
        `?q=${'%'.repeat(3)}`,
      ),
    );
    const contentType = fc.constantFrom(
      undefined,
      'application/json',
      'application/json; charset=latin1',
      'text/csv',
      'application/x-ndjson',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'text/plain',
      'application/graphql',
      '*/*',
    );
    const body = fc.oneof(
      fc.constant(undefined),
      fc.string({ maxLength: 200 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.constantFrom(
        '{"query":"{ people(purpose: RESEARCH) { nodes { k } } }","format":"csv"}',
        '{"query":"{ __schema { types { name } } }"}',
        'k,n\nK1,1\n',
        '{"query":',
        '\u0000\u0001',
      ),
    );
    const headers = fc.record(
      {
        authorization: fc.oneof(
          fc.constantFrom(...[0, 1, 2, 3, 4].map((i) => `Bearer ${i}`)),
          fc.constantFrom('Bearer', 'Basic dXNlcjpwYXNz', 'Bearer \u00ff'),
          fc.string({ maxLength: 40 }),
        ),
        accept: fc.constantFrom(
          'text/html',
          'application/json',
          'text/csv',
          'application/x-ndjson',
          '*/*',
          'x/y',
        ),
        'if-none-match': fc.constantFrom('*', '"register-0"', 'W/"x"'),
        origin: fc.constantFrom('https://evil.example', 'null'),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(
        path,
        fc.option(fc.constantFrom(...METHODS), { nil: undefined }),
        query,
        contentType,
        body,
        headers,
        async ({ route, url }, otherMethod, q, type, payload, extra) => {
          const method = (otherMethod ?? route.method) as Method;
          const sent: Record<string, string> = {};
          for (const [name, value] of Object.entries(extra)) {
            // A key index stands for one of the broker's real keys.
            const real = /^Bearer (\d)$/.exec(value);
            sent[name] = real ? `Bearer ${keys[Number(real[1])]}` : value;
          }
          if (type !== undefined) sent['content-type'] = type;
          const response = await broker.http.inject({
            method,
            url: url + q,
            headers: sent,
            ...(payload !== undefined && method !== 'GET' && method !== 'HEAD' ? { payload } : {}),
          });
          const context = `${method} ${url + q} ${JSON.stringify(sent)} -> ${response.statusCode} ${response.body.slice(0, 300)}`;
          if (response.statusCode >= 500) throw new Error(`5xx: ${context}`);
          if (INTERNALS.test(response.body)) throw new Error(`internals shown: ${context}`);
          const contentTypeOut = String(response.headers['content-type'] ?? '');
          if (method !== 'HEAD' && contentTypeOut.startsWith('application/json') && response.body.length) {
            let parsed: Record<string, unknown>;
            try {
              parsed = JSON.parse(response.body) as Record<string, unknown>;
            } catch {
              throw new Error(`JSON that does not parse: ${context}`);
            }
            if (response.statusCode >= 400) {
              const errors = parsed.errors as { extensions?: { code?: string } }[] | undefined;
              const code = errors?.[0]?.extensions?.code ?? (parsed.code as string | undefined);
              if (code !== undefined && !CODES.has(code) && code !== 'PAYLOAD_TOO_LARGE') {
                throw new Error(`code not in the contract: ${context}`);
              }
            }
          }
        },
      ),
      { numRuns: 400 },
    );
  }, 120_000);

  it('answers without sign-in only the register, GraphiQL, health, metrics and the admin UI', async () => {
    const open = new Set<string>();
    for (const { method, url } of routes) {
      if (method === 'HEAD' || method === 'OPTIONS') continue;
      const response = await broker.http.inject({
        method: method as Method,
        url: url.replace(/:[a-z]+/g, datasetId).replace(/\*$/, 'x'),
        headers: { 'content-type': 'application/json' },
        ...(method === 'POST' ? { payload: '{"query":"{ __typename }"}' } : {}),
      });
      expect([url, response.statusCode < 500]).toEqual([url, true]);
      if (response.statusCode < 300) open.add(`${method} ${url.replace(/\/\*$/, '/*')}`);
    }
    for (const reached of open) {
      expect([
        reached,
        /^GET \/(api\/register|register|health|graphql|data\/graphql|admin(\/\*)?|metrics|graphiql)$/.test(
          reached,
        ),
      ]).toEqual([reached, true]);
    }
  });
});
