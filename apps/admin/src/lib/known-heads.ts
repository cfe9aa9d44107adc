/**
 * A head of the audit log as it is written down: `SEQ:HASH`, the seq a non-negative integer and the
 * hash 64 hexadecimal digits (libs/audit's knownHeadOfText, which this browser bundle cannot import;
 * libs/audit/src/known-heads.spec.ts fails when the two differ).
 */
const HEAD_LINE = /^([0-9]{1,15}):([0-9a-fA-F]{64})$/;

/** The heads in `text`, one a line (blank lines and spaces around a line skipped), or the numbers of the lines that are none. */
export function parseHeads(text: string): { heads: { seq: number; hash: string }[] } | { bad: number[] } {
  const heads: { seq: number; hash: string }[] = [];
  const bad: number[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const m = HEAD_LINE.exec(line);
    if (m) heads.push({ seq: Number(m[1]), hash: m[2].toLowerCase() });
    else bad.push(i + 1);
  });
  return bad.length ? { bad } : { heads };
}
