import { Controller, Get, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Public } from '@broker/core';
import { ADMIN_UI_HEADERS, AdminUiFiles, sendNotBuilt } from './admin-ui';

/** Where a browser's request for a GraphQL endpoint is answered: the GraphiQL page. */
export const GRAPHIQL_PATH = '/graphiql';

const ENDPOINTS: ReadonlySet<string> = new Set(['/graphql', '/data/graphql']);

/** What the built page holds where each response puts its style nonce. */
const NONCE_PLACEHOLDER = '__CSP_NONCE__';

/**
 * The GraphiQL page's headers: the admin UI's, with two differences. GraphiQL's stylesheet carries
 * its fonts inline (`data:` URLs), so fonts may come from `data:`; and its dialogs add one `<style>`
 * element (to lock scrolling), allowed by a nonce fresh in every response. Scripts stay `'self'`
 * only, with no `'unsafe-inline'` or `'unsafe-eval'` and no other origin.
 */
export function graphiqlHeaders(nonce: string): Record<string, string> {
  return {
    ...ADMIN_UI_HEADERS,
    'content-security-policy': ADMIN_UI_HEADERS['content-security-policy']
      .replace("font-src 'self'", "font-src 'self' data:")
      .replace("style-src 'self'", `style-src 'self' 'nonce-${nonce}'`),
  };
}

/**
 * Fastify's `rewriteUrl`: a browser's `GET /graphql` or `GET /data/graphql` (one that accepts
 * `text/html`) is the GraphiQL page; every other request keeps its URL, so POST and API clients'
 * GET (answered 405) are unchanged. Rewriting before routing lets the page be a route of its own,
 * declared public like the admin UI, beside the GraphQL routes of the same paths.
 */
export function rewriteGraphiqlUrl(request: Pick<IncomingMessage, 'method' | 'url' | 'headers'>): string {
  const url = request.url ?? '/';
  if (request.method !== 'GET' && request.method !== 'HEAD') return url;
  const path = url.split('?', 1)[0].replace(/(.)\/+$/, '$1');
  if (!ENDPOINTS.has(path)) return url;
  const accept = request.headers.accept;
  return typeof accept === 'string' && /(^|,)\s*text\/html\s*(;|,|$)/i.test(accept) ? GRAPHIQL_PATH : url;
}

/**
 * `GET /graphiql`: GraphiQL, built from npm with the admin UI (`dist/admin/graphiql.html`), public
 * like the admin UI's files: the page asks for an API key and every GraphQL request it sends is
 * authenticated. The page reads the endpoint from the path the browser opened.
 */
@Controller(GRAPHIQL_PATH.slice(1))
export class GraphiqlController {
  constructor(private readonly files: AdminUiFiles) {}

  @Public()
  @Get()
  page(@Res() reply: FastifyReply) {
    const nonce = randomBytes(18).toString('base64');
    for (const [name, value] of Object.entries(graphiqlHeaders(nonce))) void reply.header(name, value);
    // The same URL answers JSON to API clients: caches must keep the two apart. Each response has
    // a nonce of its own, so none is stored.
    void reply.header('vary', 'accept').header('cache-control', 'no-store');
    const page = this.files.get()?.get('graphiql.html');
    if (!page) return sendNotBuilt(reply);
    const html = page.body.toString('utf8').replace(NONCE_PLACEHOLDER, nonce);
    return reply.status(200).type(page.type).send(html);
  }
}
