import { Controller, Get, Inject, Injectable, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join, relative, resolve, sep } from 'node:path';
import { Public } from '@broker/core';

/** Where `npm run build` puts the admin UI: `dist/admin`, beside `dist/apps/broker/src`. */
export const DEFAULT_ADMIN_UI_DIR = resolve(__dirname, '../../../admin');

/** Nest injection token of the directory the built admin UI is read from. */
export const ADMIN_UI_DIR = Symbol('ADMIN_UI_DIR');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/**
 * The admin UI is a client of the public API only: its pages load no script, style or data from
 * anywhere but the broker, never inline, and no other site may frame them (clickjacking).
 */
export const ADMIN_UI_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
};

export interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
  /** Vite names assets after their content hash: they never change under the same name. */
  immutable: boolean;
}

/** Every file of a built admin UI, by its path under `/admin/`; null when it is not built there. */
function loadFiles(dir: string): Map<string, StaticFile> | null {
  try {
    if (!statSync(join(dir, 'index.html')).isFile()) return null;
  } catch {
    return null;
  }
  const files = new Map<string, StaticFile>();
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.name.startsWith('.')) continue;
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) {
        const body = readFileSync(path);
        const name = relative(dir, path).split(sep).join('/');
        files.set(name, {
          body,
          type: TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream',
          etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
          immutable: name.startsWith('assets/'),
        });
      }
    }
  };
  walk(dir);
  return files;
}

/** The built admin UI's files, read at the first request that needs them. */
@Injectable()
export class AdminUiFiles {
  private files: Map<string, StaticFile> | null = null;

  constructor(@Inject(ADMIN_UI_DIR) private readonly dir: string) {}

  /** Every file by its path under `/admin/`; null while the UI is not built (read again next time). */
  get(): Map<string, StaticFile> | null {
    // A broker started before the build finds it at the next request.
    this.files ??= loadFiles(this.dir);
    return this.files;
  }
}

/** Sends a built file with its validators, or 304 when the browser holds it already. */
export function sendStaticFile(request: FastifyRequest, reply: FastifyReply, file: StaticFile) {
  void reply
    .type(file.type)
    .header('etag', file.etag)
    .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
  if (request.headers['if-none-match'] === file.etag) return reply.status(304).send();
  return reply.status(200).send(file.body);
}

/** The answer while the UI is not built: a hint for the operator, never a stale page. */
export function sendNotBuilt(reply: FastifyReply) {
  return reply
    .status(503)
    .type('text/plain; charset=utf-8')
    .header('cache-control', 'no-store')
    .send('The admin UI is not built here: run `npm run build`, which builds it into dist/admin.\n');
}

/**
 * `GET /admin/...`: the admin UI's static files, public (the UI signs in with an API key and calls
 * the APIs, which authenticate every request). A path that is not a file is a page of the
 * single-page app and gets `index.html`; a missing asset is a 404.
 */
@Controller('admin')
export class AdminUiController {
  constructor(private readonly files: AdminUiFiles) {}

  @Public()
  @Get()
  root(@Res() reply: FastifyReply) {
    return reply.status(308).header('location', '/admin/').send();
  }

  @Public()
  @Get('*')
  file(@Req() request: FastifyRequest, @Res() reply: FastifyReply) {
    const files = this.files.get();
    for (const [name, value] of Object.entries(ADMIN_UI_HEADERS)) void reply.header(name, value);
    if (!files) return sendNotBuilt(reply);
    const path = decodePath(request.url);
    const asset = path === null ? undefined : files.get(path);
    if (!asset && (path === null || path.startsWith('assets/') || /\.[a-z0-9]+$/i.test(path))) {
      return reply
        .status(404)
        .type('text/plain; charset=utf-8')
        .header('cache-control', 'no-store')
        .send('Not found\n');
    }
    return sendStaticFile(request, reply, asset ?? files.get('index.html')!);
  }
}

/** The path under `/admin/` a URL asks for, without its query; null when it is not a plain path. */
function decodePath(url: string): string | null {
  const pathname = url.split(/[?#]/, 1)[0].replace(/^\/admin\/?/, '');
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (path.includes('\0') || path.split('/').some((s) => s === '..' || s === '.')) return null;
  return path === '' ? 'index.html' : path;
}
