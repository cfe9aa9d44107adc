import { Foundation1763769600000 } from './1763769600000-foundation';

/** Every migration, oldest first. A landed migration is never edited: add a new one. */
export const MIGRATIONS = [Foundation1763769600000];
