import { isUtf8 } from 'node:buffer';

/**
 * The bytes a response body was parsed from, kept so that each message's `raw` can be stored as the
 * bytes WAHA sent instead of being serialised again from the parsed object (JSON.stringify of every
 * message was the largest single cost of the writer in Node, and the parsed objects, held until their
 * batch commits, much of what the garbage collector had to trace). The bytes, not the decoded text, are
 * what the messages keep: a Buffer's contents live outside the JavaScript heap, so the collector never
 * copies them, and they go to PostgreSQL without being encoded again.
 */

/**
 * Array bodies and the bytes they were parsed from; an entry lives as long as the parsed array does.
 * Only the bytes: the elements are found in them, so the decoded text need not outlive the parse.
 */
const sources = new WeakMap<object, Buffer>();

/** Records that `value` (a parsed array) was parsed from the UTF-8 `bytes`. */
export function rememberJsonSource(value: unknown, bytes: Buffer): void {
  if (Array.isArray(value)) sources.set(value, bytes);
}

/** The text `value` was parsed from, when the HTTP layer recorded it. */
export function jsonSourceOf(value: unknown): string | undefined {
  return value !== null && typeof value === 'object' ? sources.get(value)?.toString('utf8') : undefined;
}

/**
 * The UTF-8 bytes of each element of `value`, a parsed array, as they came in its response: views of the
 * response's bytes, in order. Null when the HTTP layer did not record its source, when the bytes are not
 * valid UTF-8 (the decoded text then differs from them: U+FFFD stands for each bad sequence), or when the
 * elements found do not match the array.
 */
export function elementBytes(value: unknown[]): Buffer[] | null {
  const bytes = sources.get(value);
  if (bytes === undefined) return null;
  // Bytes that are not UTF-8 were decoded with U+FFFD in their place: what is stored is that text. (As
  // many characters as bytes does not prove ASCII: one bad byte is one U+FFFD.)
  if (!isUtf8(bytes)) return null;
  const spans = arrayElementSpans(bytes);
  if (spans === null || spans.length !== value.length * 2) return null;
  return viewsOf(bytes, spans);
}

function viewsOf(bytes: Buffer, spans: number[]): Buffer[] {
  const out: Buffer[] = new Array<Buffer>(spans.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = bytes.subarray(spans[i * 2], spans[i * 2 + 1]);
  return out;
}

/**
 * A JSON array body kept as the bytes of its elements, each parsed only when asked. A list whose items
 * are big (a WEBJS chat list: every chat in one response, each with its newest message and a group with
 * its members) is then never one object tree, nor one decoded text: parsing it whole took the text (up to
 * two bytes a character) and the tree (several times the text) at once, for items whose fields are read
 * once.
 */
export class JsonElements {
  constructor(private readonly elements: Buffer[]) {}

  get length(): number {
    return this.elements.length;
  }

  /** The element's UTF-8 bytes as they came. */
  bytes(index: number): Buffer {
    return this.elements[index]!;
  }

  /** The element parsed; a SyntaxError when it is not JSON. */
  value(index: number): unknown {
    return JSON.parse(this.elements[index]!.toString('utf8')) as unknown;
  }
}

/**
 * `bytes` split into its array's elements, or null when it is not an array of the plain form
 * `[e, e, ...]` in valid UTF-8: the caller then parses it whole, which names what is wrong. Each element
 * is checked only when parsed (a broken one is a SyntaxError then).
 */
export function splitJsonArray(bytes: Buffer): JsonElements | null {
  if (!isUtf8(bytes)) return null;
  const spans = arrayElementSpans(bytes);
  if (spans === null) return null;
  // The span finder trusts its input to be JSON; what lies between elements is checked here.
  for (let i = 0; i < spans.length; i += 2) {
    let at = spans[i + 1]!;
    while (isJsonWhitespace(bytes[at]!)) at++;
    if (bytes[at] !== (i + 2 < spans.length ? COMMA : CLOSE_BRACKET)) return null;
  }
  return new JsonElements(viewsOf(bytes, spans));
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/** Past the end (undefined) is not whitespace. */
function isJsonWhitespace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * Where each element of a top-level JSON array lies in its UTF-8 `bytes`: start and end offsets (end
 * exclusive), two numbers per element, surrounding whitespace excluded. Nothing is validated here, only
 * the structure is followed (strings, with their escapes, and brackets), so what it is given must be
 * JSON that `JSON.parse` accepted, or have its elements parsed after. Every byte it looks for is ASCII,
 * which a UTF-8 sequence of another character never contains. Null when the bytes are not an array or
 * do not end where expected.
 */
export function arrayElementSpans(bytes: Buffer): number[] | null {
  const length = bytes.length;
  let i = 0;
  while (i < length && isJsonWhitespace(bytes[i])) i++;
  if (bytes[i] !== OPEN_BRACKET) return null;
  i++;
  const spans: number[] = [];
  while (i < length && isJsonWhitespace(bytes[i])) i++;
  if (bytes[i] === CLOSE_BRACKET) return spans;
  for (;;) {
    const start = i;
    let depth = 0;
    let c = 0;
    for (; i < length; i++) {
      c = bytes[i]!;
      if (c === QUOTE) {
        i = closingQuote(bytes, i + 1);
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
    while (end > start && isJsonWhitespace(bytes[end - 1])) end--;
    if (end === start) return null;
    spans.push(start, end);
    i++;
    if (c === CLOSE_BRACKET) break;
    while (i < length && isJsonWhitespace(bytes[i])) i++;
  }
  while (i < length && isJsonWhitespace(bytes[i])) i++;
  return i === length ? spans : null;
}

/** The offset of the quote that ends the string whose first character is at `from`; -1 if none. */
function closingQuote(bytes: Buffer, from: number): number {
  // A plain loop: Buffer#indexOf is a call into C++ for every string of the body, a cost that showed.
  const length = bytes.length;
  for (let quote = from; quote < length; quote++) {
    if (bytes[quote] !== QUOTE) continue;
    // Escaped when an odd number of backslashes comes right before it.
    let backslashes = 0;
    while (bytes[quote - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote;
  }
  return -1;
}
