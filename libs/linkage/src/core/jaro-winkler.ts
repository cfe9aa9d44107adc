/**
 * Jaro-Winkler similarity of two short strings, as Winkler (1990) defines it for names: the Jaro
 * similarity, raised for a common prefix of up to four characters by 0.1 per character.
 * 1 for equal strings, 0 when nothing matches. Allocation-free: names are short, and the scorer
 * calls it for every new pair of distinct names.
 */

// Math's functions as module constants: read once, not looked up on the global object in hot loops.
const { max, min } = Math;

const MAX_LENGTH = 64;
const flagsA = new Uint8Array(MAX_LENGTH);
const flagsB = new Uint8Array(MAX_LENGTH);

/** Jaro similarity in [0, 1]. Strings longer than 64 characters are compared on their first 64. */
export function jaro(a: string, b: string): number {
  if (a === b) return a.length === 0 ? 0 : 1;
  const la = min(a.length, MAX_LENGTH);
  const lb = min(b.length, MAX_LENGTH);
  if (la === 0 || lb === 0) return 0;
  const window = max(0, (max(la, lb) >> 1) - 1);
  flagsA.fill(0, 0, la);
  flagsB.fill(0, 0, lb);
  let matches = 0;
  for (let i = 0; i < la; i++) {
    const c = a.charCodeAt(i);
    const from = max(0, i - window);
    const to = min(lb - 1, i + window);
    for (let j = from; j <= to; j++) {
      if (flagsB[j] === 0 && b.charCodeAt(j) === c) {
        flagsA[i] = 1;
        flagsB[j] = 1;
        matches++;
        break;
      }
    }
  }
  if (matches === 0) return 0;
  let transpositions = 0;
  let j = 0;
  for (let i = 0; i < la; i++) {
    if (flagsA[i] === 0) continue;
    while (flagsB[j] === 0) j++;
    if (a.charCodeAt(i) !== b.charCodeAt(j)) transpositions++;
    j++;
  }
  const m = matches;
  return (m / la + m / lb + (m - transpositions / 2) / m) / 3;
}

/** Jaro-Winkler similarity in [0, 1] with the standard prefix scale 0.1 and prefix of at most 4. */
export function jaroWinkler(a: string, b: string): number {
  const j = jaro(a, b);
  if (j === 0 || j === 1) return j;
  let prefix = 0;
  const limit = min(4, a.length, b.length);
  while (prefix < limit && a.charCodeAt(prefix) === b.charCodeAt(prefix)) prefix++;
  return j + prefix * 0.1 * (1 - j);
}
