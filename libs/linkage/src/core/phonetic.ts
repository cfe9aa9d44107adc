/**
 * NYSIIS, the New York State Identification and Intelligence System phonetic code (Taft, 1970),
 * truncated to six characters as the original specifies. It was designed for surnames in criminal
 * justice records, and keeps more of a name than Soundex: "Macintosh" and "Mcintosh" → MCANT,
 * "Schmidt" and "Smith" differ, "Hernandez" and "Hernandes" agree.
 */

const VOWELS = new Set(['a', 'e', 'i', 'o', 'u']);
const CACHE = new Map<string, string>();
const CACHE_LIMIT = 200_000;

/** The NYSIIS code of a folded name (lower case letters; anything else is ignored), '' for none. */
export function nysiis(name: string): string {
  let code = CACHE.get(name);
  if (code === undefined) {
    code = compute(name);
    if (CACHE.size < CACHE_LIMIT) CACHE.set(name, code);
  }
  return code;
}

function compute(input: string): string {
  let name = input.replace(/[^a-z]/g, '');
  if (!name) return '';
  // Prefixes.
  if (name.startsWith('mac')) name = 'mcc' + name.slice(3);
  else if (name.startsWith('kn')) name = 'nn' + name.slice(2);
  else if (name.startsWith('k')) name = 'c' + name.slice(1);
  else if (name.startsWith('ph') || name.startsWith('pf')) name = 'ff' + name.slice(2);
  else if (name.startsWith('sch')) name = 'sss' + name.slice(3);
  // Suffixes.
  if (name.endsWith('ee') || name.endsWith('ie')) name = name.slice(0, -2) + 'y';
  else if (/(dt|rt|rd|nt|nd)$/.test(name)) name = name.slice(0, -2) + 'd';

  const chars = name.split('');
  let key = chars[0];
  let i = 1;
  while (i < chars.length) {
    const c = chars[i];
    const next = chars[i + 1];
    let replacement: string[];
    if (c === 'e' && next === 'v') {
      replacement = ['a', 'f'];
    } else if (VOWELS.has(c)) {
      replacement = ['a'];
    } else if (c === 'q') {
      replacement = ['g'];
    } else if (c === 'z') {
      replacement = ['s'];
    } else if (c === 'm') {
      replacement = ['n'];
    } else if (c === 'k') {
      replacement = next === 'n' ? ['n'] : ['c'];
    } else if (c === 's' && next === 'c' && chars[i + 2] === 'h') {
      replacement = ['s', 's', 's'];
    } else if (c === 'p' && next === 'h') {
      replacement = ['f', 'f'];
    } else if (c === 'h' && (!VOWELS.has(chars[i - 1]) || (next !== undefined && !VOWELS.has(next)))) {
      replacement = [chars[i - 1]];
    } else if (c === 'w' && VOWELS.has(chars[i - 1])) {
      replacement = [chars[i - 1]];
    } else {
      replacement = [c];
    }
    for (let k = 0; k < replacement.length; k++) chars[i + k] = replacement[k];
    const current = chars[i];
    if (current !== key[key.length - 1]) key += current;
    i++;
  }
  if (key.length > 1 && key.endsWith('s')) key = key.slice(0, -1);
  if (key.length > 2 && key.endsWith('ay')) key = key.slice(0, -2) + 'y';
  if (key.length > 1 && key.endsWith('a')) key = key.slice(0, -1);
  return key.slice(0, 6);
}
