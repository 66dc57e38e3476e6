/**
 * Text PostgreSQL will not store, and what is stored instead.
 *
 * PostgreSQL rejects the character U+0000 (NUL) in `text` and in `jsonb`, and a lone UTF-16 surrogate
 * (half of an emoji cut in two, for instance) is not valid Unicode: `jsonb` rejects it and a `text`
 * column would silently receive U+FFFD from the UTF-8 encoder anyway. WhatsApp messages do contain both.
 * Rather than dropping such a message, waha-import replaces each NUL and each lone surrogate with
 * U+FFFD (the Unicode replacement character, �), in every text column and in every string and object
 * key anywhere inside `raw`. Everything else is stored exactly as WAHA sent it. A message that needed
 * this has `text_cleaned = true`, so it can be found (`where text_cleaned`) and compared with WAHA.
 */

/** U+FFFD, what replaces each NUL and each lone surrogate. */
export const REPLACEMENT_CHARACTER = '\uFFFD';

// ES2024 String methods: present on Node 20, but not in the ES2023 lib this project compiles against.
interface WellFormedString {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/** True when PostgreSQL takes the string as it is; cheap (native scans, no copy). */
export function isStorableText(value: string): boolean {
  return !value.includes('\u0000') && (value as unknown as WellFormedString).isWellFormed();
}

/** The string with each NUL and each lone surrogate replaced by U+FFFD; the same string when clean. */
export function cleanText(value: string): string {
  if (isStorableText(value)) return value;
  const withoutNul = value.replaceAll('\u0000', REPLACEMENT_CHARACTER);
  return (withoutNul as unknown as WellFormedString).toWellFormed();
}

export interface Cleaned<T> {
  value: T;
  /** Whether anything had to be replaced. */
  changed: boolean;
}

/** `cleanText` for a nullable column. */
export function cleanNullableText(value: string | null): Cleaned<string | null> {
  if (value === null || isStorableText(value)) return { value, changed: false };
  return { value: cleanText(value), changed: true };
}

/**
 * Cleans every string and every object key inside a JSON-like value. A clean value (the common case) is
 * only scanned, never copied; otherwise a copy is returned and the input is left untouched. If cleaning
 * makes two keys of one object equal, the later one wins, as in `JSON.parse`.
 */
export function cleanJson(value: unknown): Cleaned<unknown> {
  if (!jsonNeedsCleaning(value)) return { value, changed: false };
  return { value: cleanJsonValue(value), changed: true };
}

function jsonNeedsCleaning(value: unknown): boolean {
  if (typeof value === 'string') return !isStorableText(value);
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some(jsonNeedsCleaning);
  if (!isPlainObject(value)) return false;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    if (!isStorableText(key) || jsonNeedsCleaning(value[key])) return true;
  }
  return false;
}

function cleanJsonValue(value: unknown): unknown {
  if (typeof value === 'string') return cleanText(value);
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(cleanJsonValue);
  if (!isPlainObject(value)) return value;
  // fromEntries defines own properties, so a `__proto__` key stays data instead of becoming a prototype.
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [cleanText(key), cleanJsonValue(item)]),
  );
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}
