/**
 * The public register as a page anyone can read, without JavaScript: plain words, each agreement's
 * purposes and fields explained, monthly data requests drawn as a small chart (with the same figures
 * in a table), and the audit head to quote. Pure: the register in, HTML out.
 */
import { createHash } from 'node:crypto';
import { type GeneralizedKind, generalizedKind } from '@broker/policy';
import type { Register, RegisterAgreement, RegisterGrant, RegisterMonth } from './register.types';

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.5;color:#1a1a1a;background:#fff;margin:0}
header,main,footer{max-width:60rem;margin:0 auto;padding:0 1rem}
header{padding-top:1.5rem}
h1{font-size:1.8rem;margin:.5rem 0}
h2{font-size:1.4rem;margin-top:2rem;border-bottom:2px solid #1a1a1a}
h3{font-size:1.2rem;margin-bottom:.25rem}
h4{font-size:1rem;margin-bottom:.25rem}
article{border:1px solid #767676;border-radius:6px;padding:0 1rem 1rem;margin:1.5rem 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}
dt{font-weight:600}
dd{margin:0}
table{border-collapse:collapse;margin:.5rem 0;width:100%}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{border:1px solid #767676;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}
code{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
.warn{background:#fff4e5;border-left:4px solid #8a4b00;padding:.5rem}
.muted{color:#4d4d4d}
a{color:#0b4f9c}
svg text{font-size:10px;fill:#1a1a1a}
`;

/** The CSP hash of the page's only style: no script at all, no other source. */
export const REGISTER_PAGE_CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256')
  .update(STYLE, 'utf8')
  .digest('base64')}'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

function esc(value: string | number | null | undefined): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const day = (iso: string) => iso.slice(0, 10);

const STATUS_WORDS: Record<string, string> = {
  ACTIVE: 'In force: data may be requested under it now.',
  PENDING: 'Agreed, but its period has not started yet.',
  EXPIRED: 'Its period has ended: no data may be requested under it.',
  REVOKED: 'Revoked by one of the agencies: no data may be requested under it.',
};

const TRANSFORM_WORDS: Record<string, string> = {
  RAW: 'as recorded',
  HASH: 'replaced by a code: equal values get the same code within this agreement only, and the value cannot be read back',
  GENERALIZE: 'coarsened: a date to its year, a number to its band of 5, a text to its first 3 characters',
};

/** How a coarsened field is coarsened, by what GENERALIZE kept of it (DESIGN's transforms). */
const GENERALIZED_WORDS: Record<GeneralizedKind, string> = {
  year: 'coarsened: only the year of the date',
  band: 'coarsened: only the band of 5 the number falls in (37 is shared as 35, for 35 to 39)',
  prefix: 'coarsened: only the first 3 characters of the text',
};

function transformWords(field: { released: string; field: string; transform: string }): string {
  const kind = field.transform === 'GENERALIZE' ? generalizedKind(field.released, field.field) : null;
  return kind ? GENERALIZED_WORDS[kind] : (TRANSFORM_WORDS[field.transform] ?? field.transform);
}

const OPERATOR_WORDS: Record<string, string> = {
  $eq: 'equal to',
  $ne: 'not equal to',
  $gt: 'greater than',
  $gte: 'at least',
  $lt: 'less than',
  $lte: 'at most',
  $in: 'one of a list',
  $nin: 'none of a list',
};

function grantHtml(grant: RegisterGrant, id: string): string {
  const access =
    grant.access === 'ROWS'
      ? 'The recipient may read the rows below, field by field as listed.'
      : `The recipient may only count records (aggregates); counts of fewer than ${grant.minCellSize} are withheld.`;
  const filter = grant.rowFilter
    ? `<p>Only some records are shared: those selected by conditions on ${grant.rowFilter.fields
        .map(
          (f) =>
            `<strong>${esc(f.field)}</strong> (${f.operators.map((o) => esc(OPERATOR_WORDS[o] ?? o)).join(', ')})`,
        )
        .join(
          '; ',
        )}${grant.rowFilter.combines.length ? `, combined with ${grant.rowFilter.combines.map((c) => (c === '$and' ? 'and' : 'or')).join(' and ')}` : ''}. The values compared with are not published.</p>`
    : '<p>All records of the dataset are covered.</p>';
  const rows = grant.fields
    .map(
      (f) =>
        `<tr><th scope="row"><code>${esc(f.released)}</code></th><td><code>${esc(f.field)}</code>${
          f.classification
            ? `<br><span class="muted">${esc(f.classification.toLowerCase().replace(/_/g, ' '))}</span>`
            : ''
        }</td><td>${esc(transformWords(f))}</td><td>${esc(f.description ?? '')}</td><td>${esc(
          f.justification ?? '',
        )}</td></tr>`,
    )
    .join('');
  return `<h4 id="${id}">From the dataset “${esc(grant.dataset)}”</h4>
${grant.datasetDescription ? `<p class="muted">${esc(grant.datasetDescription)}</p>` : ''}
<p>${esc(access)}${grant.requireConsent ? ' Only records of people who consented to this purpose are shared.' : ''}${
    grant.linkage
      ? ' Records are linked to the same person across agencies, under a code that only this recipient and purpose see.'
      : ''
  }${grant.access === 'ROWS' ? ` Counts of fewer than ${grant.minCellSize} are withheld.` : ''}</p>
${filter}
<table aria-describedby="${id}"><caption>Fields shared from “${esc(grant.dataset)}”</caption>
<thead><tr><th scope="col">Field as received</th><th scope="col">From field</th><th scope="col">How it is shared</th><th scope="col">What it holds</th><th scope="col">Why it is needed</th></tr></thead>
<tbody>${rows}</tbody></table>`;
}

function chart(months: RegisterMonth[], id: string): string {
  if (!months.length) return '<p>No data has been requested under this agreement yet.</p>';
  const shown = months.slice(-12);
  const max = Math.max(1, ...shown.map((m) => m.allowed + m.denied));
  const bar = 28;
  const height = 80;
  const width = shown.length * (bar + 8) + 8;
  const bars = shown
    .map((m, i) => {
      const x = 8 + i * (bar + 8);
      const allowed = Math.round((m.allowed / max) * height);
      const denied = Math.round((m.denied / max) * height);
      return `<rect x="${x}" y="${10 + height - allowed - denied}" width="${bar}" height="${denied}" fill="#b3261e"></rect><rect x="${x}" y="${10 + height - allowed}" width="${bar}" height="${allowed}" fill="#0b4f9c"></rect><text x="${x}" y="${height + 22}">${esc(m.month.slice(2))}</text>`;
    })
    .join('');
  const summary = shown.map((m) => `${m.month}: ${m.allowed} allowed, ${m.denied} denied`).join('; ');
  const table = shown
    .map(
      (m) =>
        `<tr><th scope="row">${esc(m.month)}</th><td>${m.allowed}</td><td>${m.denied}</td><td>${m.rowsReleased}</td></tr>`,
    )
    .join('');
  return `<figure>
<svg role="img" aria-labelledby="${id}-t" width="${width}" height="${height + 30}" viewBox="0 0 ${width} ${height + 30}"><title id="${id}-t">Data requests per month (blue allowed, red denied): ${esc(summary)}</title>${bars}</svg>
<figcaption>Data requests per month: blue bars were allowed, red ones denied.</figcaption></figure>
<table><caption>Data requests per month (UTC)</caption><thead><tr><th scope="col">Month</th><th scope="col">Requests allowed</th><th scope="col">Requests denied</th><th scope="col">Records released</th></tr></thead><tbody>${table}</tbody></table>`;
}

function agreementHtml(a: RegisterAgreement, n: number): string {
  const id = `agreement-${n}`;
  const approvals = a.approvals
    .map((ap) => `${esc(ap.agency)}${ap.oversight ? ' (oversight)' : ''} on ${esc(day(ap.at))}`)
    .join('; ');
  const retention =
    a.retentionDays === null
      ? 'No retention limit is set: the recipient may keep what it received.'
      : `The recipient must destroy what it received within ${a.retentionDays} days.${
          a.destructionAttestedThrough
            ? ` It attested destruction of everything received up to ${esc(day(a.destructionAttestedThrough))}.`
            : ''
        }`;
  const overdue =
    a.unattestedPastRetention && a.unattestedPastRetention.rows > 0
      ? `<p class="warn">${a.unattestedPastRetention.rows} records released more than ${a.retentionDays} days ago (the oldest on ${esc(
          a.unattestedPastRetention.oldestDay,
        )}) have not been attested as destroyed.</p>`
      : '';
  return `<article aria-labelledby="${id}">
<h3 id="${id}">${esc(a.title)}</h3>
<p><strong>${esc(a.provider)}</strong> shares data with <strong>${esc(a.recipient)}</strong>. ${esc(STATUS_WORDS[a.status] ?? a.status)}</p>
<dl>
<dt>Purposes</dt><dd><ul>${a.purposes.map((p) => `<li><strong>${esc(p.code)}</strong>${p.description ? `: ${esc(p.description)}` : ''}</li>`).join('')}</ul></dd>
<dt>Period</dt><dd>${esc(day(a.validFrom))} to ${esc(day(a.validUntil))}${a.revokedAt ? ` (revoked on ${esc(day(a.revokedAt))})` : ''}</dd>
<dt>Legal basis</dt><dd>${esc(a.legalBasis ?? 'not stated')}</dd>
<dt>Who benefits</dt><dd>${esc(a.communityBenefit ?? 'not stated')}</dd>
<dt>Approved by</dt><dd>${approvals}${a.oversightRequired ? '. It shares identifying or sensitive data or links people, so the oversight board had to approve it too.' : ''} (version ${a.version})</dd>
<dt>Retention</dt><dd>${retention}</dd>
</dl>
${overdue}
${a.grants.map((g, i) => grantHtml(g, `${id}-g${i}`)).join('\n')}
<h4>How it has been used</h4>
${chart(a.months, `${id}-chart`)}
</article>`;
}

/** The register page. */
export function renderRegisterPage(register: Register): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Public register of data-sharing agreements</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>Public register of data-sharing agreements</h1>
<p>Agencies of the county share data about people only under written agreements, and this broker lets them see nothing else. This page lists every agreement that has ever been in force: who shares what with whom, why, which fields and how precisely, and how often data has been requested under it. It never shows any person's data, nor who asked.</p>
</header>
<main>
<h2>The audit log</h2>
<p>Every data request is written to a tamper-evident log: each entry seals the one before it. Its latest entry is number <strong>${register.auditHead.seq}</strong>, with the seal</p>
<p><code>${esc(register.auditHead.hash)}</code></p>
<p>Quote these two values: if the log is ever rewritten, they will no longer match it. This page was produced at ${esc(register.generatedAt)}.</p>
<h2>Agreements (${register.agreements.length})</h2>
${register.agreements.length ? register.agreements.map(agreementHtml).join('\n') : '<p>No agreement has been in force yet.</p>'}
</main>
<footer><p>The same register as data: <a href="/api/register">/api/register</a> (JSON).</p></footer>
</body>
</html>
`;
}
