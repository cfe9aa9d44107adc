import { createHash } from 'node:crypto';

/**
 * The pure core of the audit log: how an event is hashed into the chain and how a sequence of
 * stored events is checked. No Nest, no database; `audit-verifier.ts` feeds it rows.
 *
 * Hash format (stored chains depend on it, so it never changes; a new format needs a new marker):
 * `hash = sha256_hex(prevHash + '\n' + canonicalJson(content))`, where `content` holds exactly the
 * fourteen stored fields of {@link AuditEventContent}, absent ones as `null`, and `at` is the stored
 * timestamp in ISO 8601 UTC with microseconds (`2025-11-23T00:00:00.123000Z`).
 */

/**
 * The digest of a release's record list (its row ids as PostgreSQL writes a bigint[] as text,
 * `{1,2,3}`): the event that released them holds it in `details.releaseDigest`, sealed in the chain,
 * and so vouches for the list stored beside it in `release_record`.
 */
export function releaseDigest(rids: string): string {
  return new ReleaseDigest().add(rids).digest();
}

/**
 * {@link releaseDigest} of a list whose text is written a part at a time (a page's, as its rows
 * arrive): the same digest as of the whole text, so the work is done while the rest is on its way.
 */
export class ReleaseDigest {
  private readonly hash = createHash('sha256');

  /** The next part of the list's text. */
  add(part: string): this {
    this.hash.update(part);
    return this;
  }

  /** The digest of every part, in order; the digest ends here. */
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** The lowercase hex SHA-256 of an SQL expression's text, in UTF-8. */
function textDigestSql(expression: string): string {
  return `encode(sha256(convert_to((${expression})::text, 'UTF8')), 'hex')`;
}

/** {@link releaseDigest} in SQL, of a bigint[] expression: the same digest of the same list. */
export function releaseDigestSql(rids: string): string {
  return textDigestSql(rids);
}

/**
 * The digest of an agreement version's stored terms (a jsonb expression), computed by PostgreSQL from
 * the jsonb it stores: its text is one text per value (keys ordered, no duplicates), so the same terms
 * always give the same digest. The event that proposed or amended the version seals it in
 * `details.contentDigest`, and verification recomputes it from the stored terms.
 */
export function contentDigestSql(content: string): string {
  return textDigestSql(content);
}

/**
 * SQL for the exact microseconds since the epoch of a timestamptz expression, as text. Appends and
 * verification both read timestamps through it, so the hashed `at` is the stored one to the
 * microsecond (`to_char` would round, and drop the era).
 */
export function microsSql(expression: string): string {
  return `CASE WHEN isfinite(${expression}) THEN (extract(epoch FROM ${expression}) * 1000000)::bigint::text END`;
}

/**
 * The digest of a user's account as stored (`user`: an `app_user` row's alias): what decides what
 * the user may do, that is its id, agency, e-mail, role and deactivation, and each of its API keys
 * (`api_key`: id, hash, prefix, whether an invitation, revocation), in one jsonb text (keys in id
 * order), so the same rows always give the same digest and any other rows another. Every event that
 * changes an account seals it in `details.accounts` (user id → digest), computed in the transaction
 * that made the change from what it stored; verification recomputes it from the tables.
 */
export function accountDigestSql(user: string): string {
  const key = `jsonb_build_object('id', k.id, 'keyHash', encode(k.key_hash, 'hex'), 'prefix', k.prefix,
    'invitation', k.invitation, 'revoked', k.revoked_at IS NOT NULL, 'revokedAt', ${microsSql('k.revoked_at')})`;
  return textDigestSql(`jsonb_build_object(
    'id', ${user}.id, 'agencyId', ${user}.agency_id, 'email', ${user}.email, 'role', ${user}.role,
    'deactivated', ${user}.deactivated_at IS NOT NULL, 'deactivatedAt', ${microsSql(`${user}.deactivated_at`)},
    'keys', (SELECT coalesce(jsonb_agg(${key} ORDER BY k.id), '[]'::jsonb)
               FROM api_key k WHERE k.user_id = ${user}.id))`);
}

/**
 * The events that change users and their keys, and so vouch for them: each carries
 * `details.accounts`, the {@link accountDigestSql} of every account it changed, as committed.
 * `ACCOUNTS_VOUCHED` vouches once for the accounts that existed before the chain vouched for any
 * (see the accounts-vouched migration).
 */
export const ACCOUNT_ACTIONS: readonly string[] = [
  'USER_CREATED',
  'USER_DEACTIVATED',
  'API_KEY_ROTATED',
  'ACCOUNTS_VOUCHED',
];

/**
 * The data requests the public register counts per agreement (DESIGN §4.4): the append moves the
 * counts, and verification recomputes them, by these.
 */
export const REGISTER_ACTIONS: readonly string[] = ['QUERY', 'AGGREGATE', 'EXPORT'];
/** Of those, the ones that release rows (counted in `rows_released`). */
export const ROW_ACTIONS: readonly string[] = ['QUERY', 'EXPORT'];

/**
 * Whether a denial counts for the register (SQL over an event's acting agency and its agreement's
 * row): only a party's users' denials do, so that no third agency can move an agreement's counts.
 */
export function registerCountsDenialSql(actorAgency: string, agreement: string): string {
  return `${actorAgency} IN (${agreement}.provider_agency_id, ${agreement}.recipient_agency_id)`;
}

/** An SQL list of constant names, e.g. `('QUERY', 'EXPORT')` (the names are the code's, never input). */
export function sqlNames(names: readonly string[]): string {
  if (names.some((n) => !/^[A-Z_]+$/.test(n))) throw new TypeError('an SQL name list takes upper-case names');
  return `(${names.map((n) => `'${n}'`).join(', ')})`;
}

/**
 * The reason of the approval event that brought a version into force: the one event that vouches for
 * `agreement.in_force_version`.
 */
export const IN_FORCE_REASON = 'every required approval given: version in force';

/** The `prevHash` of event 1, and the head's hash while the log is empty. */
export const GENESIS_HASH = '0'.repeat(64);

/** A JSON value as PostgreSQL's jsonb stores it and reads it back. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Every stored field of an event that its hash covers: all columns but `prev_hash` and `hash`. */
export interface AuditEventContent {
  seq: number;
  /** ISO 8601 UTC with microseconds, exactly the stored instant (see {@link isoFromMicros}). */
  at: string;
  actorUserId: string | null;
  actorAgencyId: string | null;
  action: string;
  decision: string;
  reason: string | null;
  purpose: string | null;
  datasetId: string | null;
  agreementId: string | null;
  agreementVersion: number | null;
  fields: string[] | null;
  rowCount: number | null;
  details: { [key: string]: JsonValue } | null;
}

/** An event with its place in the chain. */
export interface ChainedAuditEvent extends AuditEventContent {
  prevHash: string;
  hash: string;
}

/** The tip of the chain as `audit_head` records it. */
export interface ChainHead {
  seq: number;
  hash: string;
}

/**
 * A head someone wrote down earlier (from the public register, or from an earlier verification):
 * the chain must still hold an event with that seq and that hash. `audit_head` is in the same
 * database as the events, so whoever can rewrite the events can rewind or reseal it too; only a head
 * kept outside the database shows a tail cut off, or a log resealed, since it was written down.
 */
export type KnownHead = ChainHead;

/**
 * A head as it is written down: its seq (a non-negative integer), a colon and its hash (64 hexadecimal
 * digits, either case), e.g. `1234:9f86…`; the head, its hash lowercased, or null for any other text.
 */
export function knownHeadOfText(text: string): KnownHead | null {
  const match = /^([0-9]{1,15}):([0-9a-fA-F]{64})$/.exec(text);
  return match ? { seq: Number(match[1]), hash: match[2].toLowerCase() } : null;
}

/**
 * The outcome of checking a chain. `checked` counts the events found intact before the break (all
 * of them when valid). `firstBrokenSeq` is the lowest seq at which the stored log departs from an
 * intact chain: the seq of a changed event, of a deleted one (the first seq missing), of the first of
 * two reordered ones, of an inserted one, or head seq + 1 after a truncated tail. Against a head
 * written down earlier ({@link KnownHead}), the seq of that head where the log holds another event
 * there (the log was resealed at that seq or before it), or the first seq missing below it.
 */
export interface ChainVerification {
  valid: boolean;
  checked: number;
  firstBrokenSeq: number | null;
}

/**
 * JSON with object keys sorted by UTF-16 code units and no whitespace, numbers and strings as
 * `JSON.stringify` writes them (the RFC 8785 scheme): one text per value, whatever the key order.
 * Accepts JSON values only; anything else throws, so nothing is silently dropped from a hash.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON has no ${value}`);
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        throw new TypeError('canonical JSON takes plain objects only');
      }
      const record = value as Record<string, unknown>;
      const members = Object.keys(record)
        .sort()
        .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`);
      return `{${members.join(',')}}`;
    }
    case 'bigint':
    case 'function':
    case 'symbol':
    case 'undefined':
    default:
      throw new TypeError(`canonical JSON has no ${typeof value}`);
  }
}

// Lone surrogates become U+FFFD on their way to UTF-8, and PostgreSQL refuses NUL in text and jsonb.
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * A string as PostgreSQL stores and returns it: NUL and unpaired surrogates replaced by U+FFFD.
 * Hashing anything else would hash a value other than the one read back, and break the chain.
 */
export function storableText(text: string): string {
  return text.replace(UNSTORABLE, '\uFFFD');
}

/**
 * A value turned into the JSON that jsonb gives back: `toJSON` applied (dates become strings),
 * undefined members dropped, non-finite numbers null, strings made {@link storableText}.
 */
export function toStorableJson(value: unknown): JsonValue {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError('the value has no JSON form');
  return clean(JSON.parse(text) as JsonValue);
}

function clean(value: JsonValue): JsonValue {
  if (typeof value === 'string') return storableText(value);
  if (typeof value === 'number') return value === 0 ? 0 : value;
  if (Array.isArray(value)) return value.map(clean);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [storableText(k), clean(v)]));
  }
  return value;
}

const NUMBER_TOKEN = /-?([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?/y;

/** A decimal number's exact value as `<sign><digits>e<exponent>`, without redundant zeros. */
function exactDecimal(int: string, frac = '', exp = '0', negative = false): string {
  let digits = (int + frac).replace(/^0+/, '');
  let exponent = BigInt(exp) - BigInt(frac.length);
  if (!digits) return '0';
  const trailing = digits.length - digits.replace(/0+$/, '').length;
  digits = digits.slice(0, digits.length - trailing);
  exponent += BigInt(trailing);
  return `${negative ? '-' : ''}${digits}e${exponent}`;
}

/**
 * Whether every number in a JSON text (as jsonb writes it) is exactly the number JavaScript reads
 * from it. jsonb keeps numbers as exact decimals, and a hash covers them as JavaScript parses them:
 * `5.0000000000000001` or `9007199254740993` would read back as 5 and 9007199254740992 and hash as
 * those, so changing one to the other would go unseen. The broker only ever stores numbers that
 * JavaScript wrote, which are exact; any other was written past it.
 */
export function exactJsonNumbers(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: skip to its closing quote, over escapes.
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
      continue;
    }
    if (c !== 0x2d && (c < 0x30 || c > 0x39)) continue;
    NUMBER_TOKEN.lastIndex = i;
    const match = NUMBER_TOKEN.exec(text);
    if (!match) return false;
    const token = match[0];
    const value = Number(token);
    if (!Number.isFinite(value)) return false;
    const read = /^(-?)([0-9]+)(?:\.([0-9]+))?(?:e([+-]?[0-9]+))?$/.exec(JSON.stringify(value))!;
    const stored = exactDecimal(match[1], match[2], match[3], token.startsWith('-'));
    if (stored !== exactDecimal(read[2], read[3], read[4], read[1] === '-')) return false;
    i += token.length - 1;
  }
  return true;
}

/**
 * The ISO 8601 UTC form, with six fractional digits, of a count of microseconds since the Unix
 * epoch (what `extract(epoch FROM at) * 1e6` gives); null when JavaScript cannot represent it.
 * Exact and one-to-one, unlike `to_char`, so no change to a stored timestamp goes unhashed.
 */
export function isoFromMicros(micros: bigint | string): string | null {
  let value: bigint;
  try {
    value = BigInt(micros);
  } catch {
    return null;
  }
  let millis = value / 1000n;
  let rest = value % 1000n;
  if (rest < 0n) {
    rest += 1000n;
    millis -= 1n;
  }
  const date = new Date(Number(millis));
  if (Number.isNaN(date.getTime())) return null;
  return `${date.toISOString().slice(0, -1)}${rest.toString().padStart(3, '0')}Z`;
}

/** The fourteen hashed fields of an event, and nothing else it may carry. */
export function contentOf(event: AuditEventContent): AuditEventContent {
  return {
    seq: event.seq,
    at: event.at,
    actorUserId: event.actorUserId,
    actorAgencyId: event.actorAgencyId,
    action: event.action,
    decision: event.decision,
    reason: event.reason,
    purpose: event.purpose,
    datasetId: event.datasetId,
    agreementId: event.agreementId,
    agreementVersion: event.agreementVersion,
    fields: event.fields,
    rowCount: event.rowCount,
    details: event.details,
  };
}

/** The hash of an event that follows `prevHash`: sha256 hex of the previous hash and the content. */
export function hashEvent(prevHash: string, content: AuditEventContent): string {
  return createHash('sha256')
    .update(`${prevHash}\n${canonicalJson(contentOf(content))}`, 'utf8')
    .digest('hex');
}

/** Links an event's content after `prevHash`. */
export function sealEvent(prevHash: string, content: AuditEventContent): ChainedAuditEvent {
  return { ...contentOf(content), prevHash, hash: hashEvent(prevHash, content) };
}

/**
 * Checks stored events fed one by one in ascending seq order, keeping only the last hash, so a log
 * of any length is checked in constant memory. The head is read in the same snapshot as the events.
 *
 * @example
 * const checker = new ChainChecker(head);
 * for (const event of events) if (!checker.push(event)) break;
 * const result = checker.finish();
 */
export class ChainChecker {
  private expectedSeq = 1;
  private prevHash = GENESIS_HASH;
  private broken: number | null = null;

  /** The hash each known head expects at its seq. */
  private readonly known = new Map<number, string>();
  /** The highest seq a known head names: the log must reach it. */
  private readonly knownTip: number;

  /**
   * `knownHeads`: heads written down earlier (see {@link KnownHead}); an event at one of their seqs
   * with another hash, or a log that ends before one of them, is broken there.
   */
  constructor(
    private readonly head: ChainHead,
    knownHeads: readonly KnownHead[] = [],
  ) {
    let tip = 0;
    for (const known of knownHeads) {
      // Two different hashes for one seq: whichever the log has, the other is not in it.
      const hash = this.known.has(known.seq) && this.known.get(known.seq) !== known.hash ? '' : known.hash;
      this.known.set(known.seq, hash);
      tip = Math.max(tip, known.seq);
    }
    this.knownTip = tip;
    // The empty log's head is the genesis hash; a known head of seq 0 with another is no head of ours.
    if (this.known.has(0) && this.known.get(0) !== GENESIS_HASH) this.broken = 1;
  }

  /**
   * Takes the next event; false once the chain is broken, when reading further is pointless.
   * `recordsIntact` is whether what is stored beside the event agrees with what it seals (its
   * release's record list: see verifyChain), and whether its stored details are exactly what was
   * hashed ({@link exactJsonNumbers}); if not, the event counts as changed.
   */
  push(event: ChainedAuditEvent, recordsIntact = true): boolean {
    if (this.broken !== null) return false;
    // Every event the head does not count is an insertion, however well it is linked.
    if (
      !recordsIntact ||
      event.seq !== this.expectedSeq ||
      this.expectedSeq > this.head.seq ||
      event.prevHash !== this.prevHash ||
      safeHash(event) !== event.hash ||
      // Well linked and well hashed, but not the event a head written down earlier saw at this seq:
      // the log was resealed from here or before.
      (this.known.has(event.seq) && this.known.get(event.seq) !== event.hash)
    ) {
      this.broken = this.expectedSeq;
      return false;
    }
    this.prevHash = event.hash;
    this.expectedSeq += 1;
    return true;
  }

  /** The verdict once every event was pushed (or `push` returned false). */
  finish(): ChainVerification {
    const intact = this.expectedSeq - 1;
    if (this.broken !== null) return { valid: false, checked: intact, firstBrokenSeq: this.broken };
    // Events missing at the end: the head, or a head written down earlier, counted more than the log
    // holds (a tail cut off, and audit_head rewound with it).
    if (intact < Math.max(this.head.seq, this.knownTip)) {
      return { valid: false, checked: intact, firstBrokenSeq: intact + 1 };
    }
    // The last event was replaced by one that links and hashes well but is not the one the head saw.
    if (this.head.hash !== this.prevHash) {
      return { valid: false, checked: Math.max(intact - 1, 0), firstBrokenSeq: Math.max(intact, 1) };
    }
    return { valid: true, checked: intact, firstBrokenSeq: null };
  }
}

function safeHash(event: ChainedAuditEvent): string | null {
  try {
    return hashEvent(event.prevHash, event);
  } catch {
    // Content that cannot be hashed was not written by the broker.
    return null;
  }
}

/**
 * Checks a whole sequence of stored events (in ascending seq order) against the head, and against
 * any heads written down earlier.
 */
export function checkChain(
  events: Iterable<ChainedAuditEvent>,
  head: ChainHead,
  knownHeads: readonly KnownHead[] = [],
): ChainVerification {
  const checker = new ChainChecker(head, knownHeads);
  for (const event of events) if (!checker.push(event)) break;
  return checker.finish();
}
