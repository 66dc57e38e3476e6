import type { Sql } from '../../src/db/connect.js';
import type { GroundTruth, WaMessage } from '../../src/sim/index.js';

/**
 * Value equality through canonical JSON (keys sorted). Not util.isDeepStrictEqual: under Jest's VM
 * contexts, arrays parsed by postgres.js and arrays built here have different prototypes.
 */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}

function isDeepStrictEqual(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

/** What the README promises for text PostgreSQL refuses: NUL and lone surrogates become U+FFFD. */
function expectedText(value: string): string {
  return value.replaceAll('\u0000', '\uFFFD').toWellFormed();
}

function expectedJson(value: unknown): unknown {
  if (typeof value === 'string') return expectedText(value);
  if (Array.isArray(value)) return value.map(expectedJson);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [expectedText(k), expectedJson(v)]));
  }
  return value;
}

/**
 * Compares the messages table with the simulator's ground truth, row by row and column by column. Given
 * the whole GroundTruth, the stored chat id and participant come from the simulator's model (`expected`:
 * canonical ids on every engine); given only the served messages (NOWEB, `@c.us` ids), from their ids.
 */
export async function expectDatabaseMatches(
  sql: Sql,
  schema: string,
  session: string,
  truthOrMessages: WaMessage[] | GroundTruth,
): Promise<void> {
  const truth = Array.isArray(truthOrMessages) ? truthOrMessages : truthOrMessages.messages;
  const model = new Map(
    Array.isArray(truthOrMessages) ? [] : truthOrMessages.expected.map((e) => [e.id, e] as const),
  );
  const rows = await sql<
    Array<{
      id: string;
      chat_id: string;
      wa_id: string;
      body: string | null;
      ack: number | null;
      timestamp_s: string;
      from_me: boolean;
      has_media: boolean;
      participant: string | null;
      raw: unknown;
      text_cleaned: boolean;
    }>
  >`select id, chat_id, wa_id, body, ack, timestamp_s::text, from_me, has_media, participant, raw, text_cleaned
    from ${sql(schema)}.messages where session = ${session} order by id`;
  const expected = [...truth].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  expect(rows.map((r) => r.id)).toEqual(expected.map((m) => m.id));
  const mismatches: string[] = [];
  rows.forEach((row, i) => {
    const m = expected[i]!;
    const body = m.body === null || m.body === undefined ? null : expectedText(m.body);
    // The writer flags a message when any of its text needed cleaning (a quoted reply's body too), and
    // every text field is also in `raw`.
    const cleaned = canonical(expectedJson(m)) !== canonical(m);
    const modelled = model.get(m.id);
    const want = {
      chat_id: modelled?.chatId ?? m.id.split('_')[1],
      wa_id: m.id.split('_')[2],
      body,
      ack: m.ack ?? null,
      timestamp_s: String(modelled?.timestampS ?? m.timestamp),
      from_me: m.fromMe,
      has_media: m.hasMedia,
      participant: modelled ? modelled.participant : (m.participant ?? null),
      raw: expectedJson(m),
      text_cleaned: cleaned,
    };
    const got = {
      chat_id: row.chat_id,
      wa_id: row.wa_id,
      body: row.body,
      ack: row.ack,
      timestamp_s: row.timestamp_s,
      from_me: row.from_me,
      has_media: row.has_media,
      participant: row.participant,
      raw: row.raw,
      text_cleaned: row.text_cleaned,
    };
    if (!isDeepStrictEqual(got, want)) mismatches.push(`${m.id}: ${describeDifference(got, want)}`);
  });
  expect(mismatches.slice(0, 3)).toEqual([]);
}

/** Names the fields (nested, dotted) that differ, with both values, so a failure says what is wrong. */
function describeDifference(got: unknown, want: unknown, prefix = ''): string {
  if (got && want && typeof got === 'object' && typeof want === 'object' && !Array.isArray(got)) {
    const keys = new Set([...Object.keys(got), ...Object.keys(want)]);
    return [...keys]
      .filter(
        (k) => !isDeepStrictEqual((got as Record<string, unknown>)[k], (want as Record<string, unknown>)[k]),
      )
      .map((k) =>
        describeDifference(
          (got as Record<string, unknown>)[k],
          (want as Record<string, unknown>)[k],
          `${prefix}${k}.`,
        ),
      )
      .join('; ');
  }
  return `${prefix.slice(0, -1)}: got ${JSON.stringify(got)?.slice(0, 120)}, want ${JSON.stringify(want)?.slice(0, 120)}`;
}
