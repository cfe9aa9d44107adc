/**
 * Support for the admin UI's browser tests: the UI built once per source version, a broker on a
 * real port serving it, and Debian's chromium driven by playwright-core (no browser is downloaded).
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { TestBroker } from '@broker/testing';

const ROOT = resolve(__dirname, '..');
const ADMIN = join(ROOT, 'apps', 'admin');
/** Where screenshots go, for a reviewer to look at. */
export const SCREENSHOTS = join(ROOT, 'test-output', 'admin');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory())
      return entry.name === 'dist' || entry.name === 'node_modules' ? [] : sourceFiles(path);
    return [path];
  });
}

/**
 * Builds the admin UI with Vite into a temporary directory named after a hash of its sources, so
 * the test files of one run (and later runs) share one build, and returns the directory. The
 * build lands under a unique name first and is renamed into place, so concurrent builds never
 * serve a half-written one.
 */
export async function buildAdminUi(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of sourceFiles(ADMIN).sort()) {
    hash.update(relative(ADMIN, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  hash.update(readFileSync(join(ROOT, 'package-lock.json')));
  const dir = join(tmpdir(), `broker-admin-ui-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(join(dir, 'index.html'))) return dir;
  const staging = `${dir}.${randomBytes(4).toString('hex')}`;
  await promisify(execFile)(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'),
      'build',
      '--config',
      join(ADMIN, 'vite.config.mts'),
      '--outDir',
      staging,
      '--emptyOutDir',
      '--logLevel',
      'warn',
    ],
    { cwd: ROOT, env: { ...process.env, NODE_ENV: 'production' } },
  );
  try {
    renameSync(staging, dir);
  } catch {
    // Another test file built the same sources meanwhile: use its build.
    rmSync(staging, { recursive: true, force: true });
  }
  if (!statSync(join(dir, 'index.html')).isFile())
    throw new Error(`the admin UI build in ${dir} has no index.html`);
  return dir;
}

/** A broker serving a fresh build of the admin UI on a loopback port, and a headless chromium. */
export interface AdminHarness {
  broker: TestBroker;
  baseUrl: string;
  browser: Browser;
  /**
   * A new browser context (its own cookies and sessionStorage) with a page, at the given width.
   * `axe` lets axe-core's script in past the page's CSP; `clipboard` grants reading and writing it.
   */
  newPage(
    width?: number,
    options?: { axe?: boolean; clipboard?: boolean },
  ): Promise<{ context: BrowserContext; page: Page }>;
  /** Saves a full-page screenshot under test-output/admin/<name>.png. */
  screenshot(page: Page, name: string): Promise<void>;
  close(): Promise<void>;
}

/** Starts the broker (on its own database) and the browser for one test file. */
export async function startAdminHarness(
  label: string,
  env: Record<string, string> = {},
): Promise<AdminHarness> {
  const adminUiDir = await buildAdminUi();
  const broker = await TestBroker.start({ LABEL: label, ...env }, { adminUiDir });
  const baseUrl = await broker.listen();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  mkdirSync(SCREENSHOTS, { recursive: true });
  const pageErrors: string[] = [];
  return {
    broker,
    baseUrl,
    browser,
    async newPage(width = 1280, options = {}) {
      const context = await browser.newContext({
        baseURL: baseUrl,
        viewport: { width, height: 900 },
        // The page forbids every script of another source (CSP): axe-core's would be one.
        bypassCSP: options.axe === true,
      });
      if (options.clipboard) await context.grantPermissions(['clipboard-read', 'clipboard-write']);
      context.setDefaultTimeout(10_000);
      const page = await context.newPage();
      // A script error or a refused script or style (CSP) fails the test that caused it.
      page.on('pageerror', (error) => pageErrors.push(error.message));
      page.on('console', (message) => {
        if (message.type() === 'error' && !/status of 4\d\d/.test(message.text()))
          pageErrors.push(message.text());
      });
      return { context, page };
    },
    async screenshot(page, name) {
      await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
    },
    async close() {
      await browser.close();
      await broker.close();
      if (pageErrors.length) throw new Error(`errors in the page:\n${pageErrors.join('\n')}`);
    },
  };
}

/** Signs in on the sign-in page with an API key, as a person would (ending any session of the tab). */
export async function signIn(page: Page, apiKey: string): Promise<void> {
  // Forget the tab's key on a page of the same origin where the app does not run.
  await page.goto('/health');
  await page.evaluate('window.sessionStorage.clear()');
  await page.goto('/admin/');
  await page.getByLabel('API key').fill(apiKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

interface AxeResult {
  violations: { id: string; impact: string; nodes: { target: string[] }[] }[];
  passes: unknown[];
}

/**
 * The accessibility violations axe-core finds on the page as it is now (WCAG 2.1 A and AA rules,
 * and best practices), as `{ id, impact, nodes }`; the page's context must allow it (`axe: true`).
 */
export async function axeViolations(
  page: Page,
): Promise<{ id: string; impact: string; nodes: string[][] }[]> {
  if (!(await page.evaluate<boolean>(`typeof window.axe === 'object'`))) {
    await page.addScriptTag({ path: join(ROOT, 'node_modules', 'axe-core', 'axe.min.js') });
  }
  const result = await page.evaluate<AxeResult>(
    `axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } })`,
  );
  if (result.passes.length < 10) throw new Error('axe-core checked almost nothing: is the page empty?');
  return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target) }));
}
