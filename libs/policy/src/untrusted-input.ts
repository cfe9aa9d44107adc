/**
 * Reading untrusted JSON-like input without trusting its prototype: only own, enumerable data
 * properties are read, each once, into a Map, so no key the caller sends can reach a prototype.
 */

/** Keys refused wherever the caller names keys, so no input can touch an object's prototype chain. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** At most this many problems are reported, so a hostile input cannot make the answer huge. */
export const MAX_PROBLEMS = 100;

/** One problem with an input, naming where it is. */
export interface InputProblem {
  path: string;
  message: string;
}

/** Collects problems up to {@link MAX_PROBLEMS}. */
export class ProblemList {
  readonly problems: InputProblem[] = [];

  add(path: string, message: string): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push({ path, message });
  }

  get full(): boolean {
    return this.problems.length >= MAX_PROBLEMS;
  }

  get empty(): boolean {
    return this.problems.length === 0;
  }
}

/**
 * The own enumerable data properties of an object, or null when the value is not an object (arrays
 * and dates are not) or has an accessor property, whose value could change between two reads.
 * Properties whose value is undefined are left out, as JSON would.
 */
export function ownFields(value: unknown): Map<string, unknown> | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Date)
    return null;
  const fields = new Map<string, unknown>();
  for (const key of Object.keys(value)) {
    const descriptor = Object.getOwnPropertyDescriptor(value, key);
    if (!descriptor || !('value' in descriptor)) return null;
    if (descriptor.value !== undefined) fields.set(key, descriptor.value);
  }
  return fields;
}

/** A copy of an array's elements, or null when the value is not an array. */
export function ownArray(value: unknown): unknown[] | null {
  return Array.isArray(value) ? Array.from(value as unknown[]) : null;
}

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A path segment for a key the caller sent, cut short so a hostile key cannot bloat a message. */
export function keyPath(path: string, key: string): string {
  if (PLAIN_KEY.test(key) && key.length <= 64) return path ? `${path}.${key}` : key;
  const shown = key.length > 64 ? `${key.slice(0, 64)}…` : key;
  return `${path}[${JSON.stringify(shown)}]`;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why a string cannot be stored or compared, or null when it can. PostgreSQL's text and jsonb hold
 * no NUL, and a lone surrogate has no UTF-8 form (the driver would silently replace it).
 */
export function textProblem(value: string, maxLength: number): string | null {
  if (value.length > maxLength) return `must be at most ${maxLength} characters`;
  if (value.includes('\u0000')) return 'must not contain a NUL character';
  if (LONE_SURROGATE.test(value)) return 'must be valid Unicode (it has a lone surrogate)';
  return null;
}
