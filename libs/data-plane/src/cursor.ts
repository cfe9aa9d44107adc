/**
 * Page cursors: opaque to the caller. Today a cursor is the offset of the next row of the same
 * ordering; `after` accepts only what {@link encodeCursor} wrote.
 */
export function encodeCursor(offset: number): string {
  return Buffer.from(`o:${offset}`).toString('base64url');
}

/** The offset a cursor stands for, or null for anything this API did not write. */
export function decodeCursor(cursor: unknown): number | null {
  if (typeof cursor !== 'string' || cursor.length > 64) return null;
  const match = /^o:(\d{1,12})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return match ? Number(match[1]) : null;
}
