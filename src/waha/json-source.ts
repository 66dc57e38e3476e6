import { isUtf8 } from 'node:buffer';

/**
 * The JSON text a response body was parsed from, kept so that each message's `raw` can be stored as the
 * bytes WAHA sent instead of being serialised again from the parsed object (JSON.stringify of every
 * message was the largest single cost of the writer in Node, and the parsed objects, held until their
 * batch commits, much of what the garbage collector had to trace). The bytes, not the decoded text, are
 * what the messages keep: a Buffer's contents live outside the JavaScript heap, so the collector never
 * copies them, and they go to PostgreSQL without being encoded again.
 */

interface Source {
  text: string;
  bytes: Buffer;
}

/** Array bodies and what they were parsed from; an entry lives as long as the parsed array does. */
const sources = new WeakMap<object, Source>();

/** Records that `value` (a parsed array) was parsed from `text`, decoded from `bytes`. */
export function rememberJsonSource(value: unknown, text: string, bytes: Buffer): void {
  if (Array.isArray(value)) sources.set(value, { text, bytes });
}

/** The text `value` was parsed from, when the HTTP layer recorded it. */
export function jsonSourceOf(value: unknown): string | undefined {
  return value !== null && typeof value === 'object' ? sources.get(value)?.text : undefined;
}

/**
 * The UTF-8 bytes of each element of `value`, a parsed array, as they came in its response: views of the
 * response's bytes, in order. Null when the HTTP layer did not record its source, when the bytes are not
 * valid UTF-8 (the decoded text then differs from them: U+FFFD stands for each bad sequence), or when the
 * elements found do not match the array.
 */
export function elementBytes(value: unknown[]): Buffer[] | null {
  const source = sources.get(value);
  if (source === undefined) return null;
  const { text, bytes } = source;
  const spans = arrayElementSpans(text);
  if (spans === null || spans.length !== value.length * 2) return null;
  const out: Buffer[] = new Array<Buffer>(value.length);
  if (bytes.length === text.length) {
    // One byte per character: ASCII, so text offsets are byte offsets (and the bytes valid UTF-8).
    for (let i = 0; i < value.length; i++) out[i] = bytes.subarray(spans[i * 2], spans[i * 2 + 1]);
    return out;
  }
  if (!isUtf8(bytes)) return null;
  // Text offsets to byte offsets: each stretch's UTF-8 length, in order.
  let charAt = 0;
  let byteAt = 0;
  for (let i = 0; i < value.length; i++) {
    const start = spans[i * 2]!;
    const end = spans[i * 2 + 1]!;
    byteAt += Buffer.byteLength(text.slice(charAt, start), 'utf8');
    const length = Buffer.byteLength(text.slice(start, end), 'utf8');
    out[i] = bytes.subarray(byteAt, byteAt + length);
    byteAt += length;
    charAt = end;
  }
  return out;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

function isJsonWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * Where each element of a top-level JSON array lies in `text`: start and end offsets (end exclusive),
 * two numbers per element, surrounding whitespace excluded. `text` must be JSON that `JSON.parse`
 * accepted (nothing is validated here, only the structure is followed: strings, with their escapes, and
 * brackets). Null when the text is not an array or does not end where expected.
 */
export function arrayElementSpans(text: string): number[] | null {
  const length = text.length;
  let i = 0;
  while (i < length && isJsonWhitespace(text.charCodeAt(i))) i++;
  if (text.charCodeAt(i) !== OPEN_BRACKET) return null;
  i++;
  const spans: number[] = [];
  while (i < length && isJsonWhitespace(text.charCodeAt(i))) i++;
  if (text.charCodeAt(i) === CLOSE_BRACKET) return spans;
  for (;;) {
    const start = i;
    let depth = 0;
    let c = 0;
    for (; i < length; i++) {
      c = text.charCodeAt(i);
      if (c === QUOTE) {
        i = closingQuote(text, i + 1);
        if (i < 0) return null;
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        depth++;
      } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        if (depth === 0) break;
        depth--;
      } else if (c === COMMA && depth === 0) {
        break;
      }
    }
    if (i >= length) return null;
    let end = i;
    while (end > start && isJsonWhitespace(text.charCodeAt(end - 1))) end--;
    if (end === start) return null;
    spans.push(start, end);
    i++;
    if (c === CLOSE_BRACKET) break;
    while (i < length && isJsonWhitespace(text.charCodeAt(i))) i++;
  }
  while (i < length && isJsonWhitespace(text.charCodeAt(i))) i++;
  return i === length ? spans : null;
}

/** The offset of the quote that ends the string whose first character is at `from`; -1 if none. */
function closingQuote(text: string, from: number): number {
  for (let i = from; ;) {
    const quote = text.indexOf('"', i);
    if (quote < 0) return -1;
    // Escaped when an odd number of backslashes comes right before it.
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote;
    i = quote + 1;
  }
}
