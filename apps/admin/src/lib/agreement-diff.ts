import type { AgreementContent, GrantContent } from '../api/schema';
import { describeRowFilter, formatInstant, humanize } from './format';

/** One line of a side-by-side comparison of two agreement versions. */
export interface DiffRow {
  section: string;
  label: string;
  left: string;
  right: string;
  changed: boolean;
}

/** How names are shown: agencies and datasets by name rather than id. */
export interface DiffNames {
  agency: (id: string) => string;
  dataset: (id: string) => string;
}

const NONE = '—';

function text(value: string | number | null | undefined): string {
  return value == null || value === '' ? NONE : String(value);
}

function grantRows(
  left: GrantContent | undefined,
  right: GrantContent | undefined,
  section: string,
): DiffRow[] {
  const rows: DiffRow[] = [];
  const row = (label: string, l: string, r: string) =>
    rows.push({ section, label, left: l, right: r, changed: l !== r });
  const absent = 'not granted';
  row('Dataset', left ? 'granted' : absent, right ? 'granted' : absent);
  row('Access', left ? humanize(left.access) : NONE, right ? humanize(right.access) : NONE);
  const names = [...new Set([...(left?.fields ?? []), ...(right?.fields ?? [])].map((f) => f.name))].sort();
  for (const name of names) {
    const l = left?.fields.find((f) => f.name === name);
    const r = right?.fields.find((f) => f.name === name);
    row(`Field ${name}`, l ? l.transform : absent, r ? r.transform : absent);
    if (l?.justification || r?.justification)
      row(`Justification of ${name}`, text(l?.justification), text(r?.justification));
  }
  row(
    'Row filter',
    left ? describeRowFilter(left.rowFilter) : NONE,
    right ? describeRowFilter(right.rowFilter) : NONE,
  );
  row(
    'Consent required',
    left ? (left.requireConsent ? 'yes' : 'no') : NONE,
    right ? (right.requireConsent ? 'yes' : 'no') : NONE,
  );
  row('Minimum cell size', left ? String(left.minCellSize) : NONE, right ? String(right.minCellSize) : NONE);
  row(
    'Releases personKey',
    left ? (left.linkage ? 'yes' : 'no') : NONE,
    right ? (right.linkage ? 'yes' : 'no') : NONE,
  );
  return rows;
}

/** Every term of two versions side by side, with the ones that differ marked. */
export function diffContents(left: AgreementContent, right: AgreementContent, names: DiffNames): DiffRow[] {
  const rows: DiffRow[] = [];
  const terms = 'Terms';
  const row = (label: string, l: string, r: string) =>
    rows.push({ section: terms, label, left: l, right: r, changed: l !== r });
  row('Title', left.title, right.title);
  row('Provider', names.agency(left.providerAgencyId), names.agency(right.providerAgencyId));
  row('Recipient', names.agency(left.recipientAgencyId), names.agency(right.recipientAgencyId));
  row('Purposes', left.purposes.join(', '), right.purposes.join(', '));
  row('Valid from', formatInstant(left.validFrom), formatInstant(right.validFrom));
  row('Valid until', formatInstant(left.validUntil), formatInstant(right.validUntil));
  row('Retention (days)', text(left.retentionDays), text(right.retentionDays));
  row('Legal basis', text(left.legalBasis), text(right.legalBasis));
  row('Terms of use', text(left.termsOfUse), text(right.termsOfUse));
  row('Community benefit', text(left.communityBenefit), text(right.communityBenefit));
  const ids = [...new Set([...left.grants, ...right.grants].map((g) => g.datasetId))];
  for (const id of ids) {
    rows.push(
      ...grantRows(
        left.grants.find((g) => g.datasetId === id),
        right.grants.find((g) => g.datasetId === id),
        `Dataset ${names.dataset(id)}`,
      ),
    );
  }
  return rows;
}
