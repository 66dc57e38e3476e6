import { cleanJson, cleanText, isStorableText, REPLACEMENT_CHARACTER } from '../src/db/text.js';
import { statementSlices } from '../src/db/writer.js';

describe('text cleaning', () => {
  test('replaces each NUL and each lone surrogate with U+FFFD, and nothing else', () => {
    expect(cleanText('a\u0000b\u0000')).toBe('a\uFFFDb\uFFFD');
    expect(cleanText('\ud83d')).toBe(REPLACEMENT_CHARACTER);
    expect(cleanText('x\udc00\ud800y')).toBe('x\uFFFD\uFFFDy');
    expect(cleanText('👍🏽 ção 中文')).toBe('👍🏽 ção 中文');
    expect(isStorableText('👍🏽')).toBe(true);
    expect(isStorableText('\ud83d')).toBe(false);
    expect(isStorableText('\u0000')).toBe(false);
  });

  test('a clean JSON value is returned as it is, not copied', () => {
    const raw = { id: 'x', list: [1, 'two', { three: '👍' }], nested: { empty: null, yes: true } };
    const cleaned = cleanJson(raw);
    expect(cleaned.changed).toBe(false);
    expect(cleaned.value).toBe(raw);
  });

  test('cleans strings and keys at any depth without touching the input', () => {
    const raw = { ok: 'fine', deep: { list: ['a\u0000', { 'k\ud800': 'v' }] }, n: 1 };
    const snapshot = structuredClone(raw);
    const cleaned = cleanJson(raw);
    expect(cleaned).toEqual({
      changed: true,
      value: { ok: 'fine', deep: { list: ['a\uFFFD', { 'k\uFFFD': 'v' }] }, n: 1 },
    });
    expect(raw).toEqual(snapshot);
    expect(JSON.stringify(cleaned.value)).not.toMatch(/\\u0000|\\ud[89a-f]/i);
  });

  test('a __proto__ key stays plain data', () => {
    const raw = JSON.parse('{"__proto__": {"polluted": "\\u0000"}}') as unknown;
    const cleaned = cleanJson(raw).value as Record<string, unknown>;
    expect(Object.getPrototypeOf(cleaned)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(cleaned, '__proto__')?.value).toEqual({ polluted: '\uFFFD' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('statementSlices', () => {
  const sizes = (count: number, limit: number): number[] =>
    [
      ...statementSlices(
        Array.from({ length: count }, (_, i) => i),
        limit,
      ),
    ].map((slice) => slice.length);

  test('full statements first, the remainder in powers of two, every row exactly once in order', () => {
    expect(sizes(0, 1024)).toEqual([]);
    expect(sizes(1, 1024)).toEqual([1]);
    expect(sizes(100, 1024)).toEqual([64, 32, 4]);
    expect(sizes(2500, 1024)).toEqual([1024, 1024, 256, 128, 64, 4]);
    expect(sizes(10_000, 4095)).toEqual([4095, 4095, 1024, 512, 256, 16, 2]);
    const rows = Array.from({ length: 777 }, (_, i) => i);
    expect([...statementSlices(rows, 100)].flat()).toEqual(rows);
  });

  test('a connection never needs more than one statement shape per power of two', () => {
    const shapes = new Set<number>();
    for (let count = 0; count <= 3000; count++) for (const size of sizes(count, 1024)) shapes.add(size);
    expect(shapes.size).toBe(11);
  });
});
