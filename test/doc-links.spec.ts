import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';
import GithubSlugger from 'github-slugger';
import MarkdownIt from 'markdown-it';

const ROOT = join(__dirname, '..');
const markdown = new MarkdownIt({ html: true });

/** The documents a reader follows links between: the README and every page of docs/. */
function documents(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`);
  return ['README.md', ...docs.sort()];
}

type Token = ReturnType<MarkdownIt['parse']>[number];

/** The text of a heading as GitHub slugs it: its words and inline code, without markup. */
function headingText(inline: Token): string {
  return (inline.children ?? [])
    .filter((child) => child.type === 'text' || child.type === 'code_inline')
    .map((child) => child.content)
    .join('');
}

/** The anchors of a page: GitHub's slug of each heading (a repeated one numbered), and `<a id|name>`. */
function anchorsOf(tokens: Token[]): Set<string> {
  const slugger = new GithubSlugger();
  const anchors = new Set<string>();
  tokens.forEach((token, i) => {
    if (token.type === 'heading_open') anchors.add(slugger.slug(headingText(tokens[i + 1])));
    if (token.type === 'html_block' || token.type === 'html_inline') {
      for (const m of token.content.matchAll(/<a\s[^>]*\b(?:id|name)="([^"]+)"/g)) anchors.add(m[1]);
    }
    for (const child of token.children ?? []) {
      if (child.type !== 'html_inline') continue;
      for (const m of child.content.matchAll(/<a\s[^>]*\b(?:id|name)="([^"]+)"/g)) anchors.add(m[1]);
    }
  });
  return anchors;
}

/** Every link target of a page: markdown links and images, and `href`/`src` of inline HTML. */
function linksOf(tokens: Token[]): string[] {
  const links: string[] = [];
  const fromHtml = (html: string) => {
    for (const m of html.matchAll(/\b(?:href|src)="([^"]+)"/g)) links.push(m[1]);
  };
  for (const token of tokens) {
    if (token.type === 'html_block') fromHtml(token.content);
    for (const child of token.children ?? []) {
      if (child.type === 'link_open') links.push(child.attrGet('href') ?? '');
      if (child.type === 'image') links.push(child.attrGet('src') ?? '');
      if (child.type === 'html_inline') fromHtml(child.content);
    }
  }
  return links;
}

/**
 * What is wrong with the relative links of some pages (path → text, paths relative to `root`): a
 * file that does not exist, a path that leaves the repository, or an anchor that no heading of the
 * target page has. Links with a scheme (`https:`, `mailto:`) are not followed.
 */
function linkProblems(pages: Record<string, string>, root: string): string[] {
  const parsed = new Map(Object.entries(pages).map(([path, text]) => [path, markdown.parse(text, {})]));
  const anchors = new Map([...parsed].map(([path, tokens]) => [path, anchorsOf(tokens)]));
  const anchorsOfFile = (path: string): Set<string> | null => {
    if (anchors.has(path)) return anchors.get(path)!;
    if (!path.endsWith('.md')) return null;
    const set = anchorsOf(markdown.parse(readFileSync(join(root, path), 'utf8'), {}));
    anchors.set(path, set);
    return set;
  };
  const problems: string[] = [];
  for (const [page, tokens] of parsed) {
    for (const href of linksOf(tokens)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith('//')) continue;
      const [pathPart, anchor] = href.split('#', 2) as [string, string | undefined];
      const target = pathPart ? normalize(join(dirname(page), decodeURIComponent(pathPart))) : page;
      if (target.startsWith('..') || target.split(sep)[0] === '..') {
        problems.push(`${page}: ${href}: outside the repository`);
        continue;
      }
      const path = target.split(sep).join('/');
      if (!(path in pages) && !existsSync(join(root, path))) {
        problems.push(`${page}: ${href}: no file ${path}`);
        continue;
      }
      if (anchor === undefined || anchor === '') continue;
      const known = anchorsOfFile(path);
      if (known === null) problems.push(`${page}: ${href}: an anchor into ${path}, which is not markdown`);
      else if (!known.has(decodeURIComponent(anchor)))
        problems.push(`${page}: ${href}: no heading #${anchor}`);
    }
  }
  return problems;
}

describe('links between the README and docs/', () => {
  it('finds a missing file, a missing anchor and a path outside the repository, and slugs as GitHub does', () => {
    const pages = {
      'README.md': [
        '# Data-sharing broker',
        'See [ops](docs/ops.md#backups-and-retention), [gone](docs/gone.md),',
        '[the runs](docs/ops.md#runs-npm-run-benchlinkage), [self](#data-sharing-broker),',
        '[a typo](docs/ops.md#backup), [up](../elsewhere.md) and [web](https://example.org/#x).',
      ].join('\n'),
      'docs/ops.md': [
        '# Operations',
        '## Backups and retention',
        '## Runs (`npm run bench:linkage`)',
        '## Backups and retention',
        '[again](#backups-and-retention-1) [back](../README.md#nothing)',
      ].join('\n'),
    };
    expect(linkProblems(pages, ROOT)).toEqual([
      'README.md: docs/gone.md: no file docs/gone.md',
      'README.md: docs/ops.md#backup: no heading #backup',
      'README.md: ../elsewhere.md: outside the repository',
      'docs/ops.md: ../README.md#nothing: no heading #nothing',
    ]);
  });

  it('resolves every relative link and anchor of README.md and docs/*.md', () => {
    const files = documents();
    expect(files).toEqual(
      expect.arrayContaining(['README.md', 'docs/architecture.md', 'docs/operations.md']),
    );
    const pages = Object.fromEntries(files.map((path) => [path, readFileSync(join(ROOT, path), 'utf8')]));
    const links = Object.values(pages).flatMap((text) => linksOf(markdown.parse(text, {})));
    // The pages do link to each other: the check has something to check.
    expect(links.filter((href) => href.includes('.md#')).length).toBeGreaterThan(20);
    expect(linkProblems(pages, ROOT)).toEqual([]);
  });
});
