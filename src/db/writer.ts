import type { TransactionSql } from 'postgres';
import type { Batch, BatchWriter, ChatRecord, MessageRecord, SyncMark, WriteResult } from '../domain.js';
import type { Sql } from './connect.js';
import { validateSchemaName } from './schema.js';
import { cleanJson, cleanNullableText, cleanText } from './text.js';

export interface BatchWriterOptions {
  /**
   * Most rows one INSERT carries (default 1,024). Statements are also kept under PostgreSQL's 65,534
   * parameters; a larger batch becomes several statements in the same transaction.
   */
  maxRowsPerStatement?: number;
}

/** The most bind parameters one statement may carry (the protocol counts them in 16 bits). */
export const MAX_PARAMETERS_PER_STATEMENT = 65_534;
/** Measured sweet spot of the multi-row helper: 500-1,000 rows per statement. */
const DEFAULT_MAX_ROWS_PER_STATEMENT = 1_024;

const MESSAGE_COLUMNS = [
  'session',
  'id',
  'chat_id',
  'wa_id',
  'from_me',
  'sender',
  'recipient',
  'participant',
  'body',
  'type',
  'has_media',
  'ack',
  'timestamp_s',
  'reply_to_id',
  'raw',
  'text_cleaned',
] as const;

const CHAT_COLUMNS = ['session', 'id', 'name', 'kind', 'last_activity_at', 'raw'] as const;

/** A `messages` row as sent: keys are column names, text already cleaned. */
interface MessageRow {
  session: string;
  id: string;
  chat_id: string;
  wa_id: string;
  from_me: boolean;
  sender: string | null;
  recipient: string | null;
  participant: string | null;
  body: string | null;
  type: string;
  has_media: boolean;
  ack: number | null;
  timestamp_s: number | null;
  reply_to_id: string | null;
  raw: object | null;
  text_cleaned: boolean;
}

interface ChatRow {
  session: string;
  id: string;
  name: string | null;
  kind: string;
  last_activity_at: Date | null;
  raw: object | null;
}

interface Keyed {
  session: string;
  id: string;
}

/**
 * Writes batches into `<schema>.chats` and `<schema>.messages`, each batch in exactly one transaction.
 *
 * Upserts are idempotent: a row identical to the stored one is left alone (no new row version,
 * `updated_at` kept), a row that differs in any stored column is updated and gets a new `updated_at`.
 * Counts are exact and `inserted + updated + unchanged` equals `batch.messages.length`: a message that
 * appears twice in one batch is written once (the last copy wins) and its other copies count as unchanged.
 * Rows go in primary-key order, so concurrent batches touching the same rows lock them in the same order
 * and cannot deadlock each other. A failing batch is rolled back entirely and its error propagates as is.
 */
export function createBatchWriter(sql: Sql, schema: string, options: BatchWriterOptions = {}): BatchWriter {
  validateSchemaName(schema);
  const maxRows = options.maxRowsPerStatement ?? DEFAULT_MAX_ROWS_PER_STATEMENT;
  if (!Number.isInteger(maxRows) || maxRows < 1) {
    throw new RangeError(`maxRowsPerStatement must be a positive integer, not ${maxRows}`);
  }
  const messageRowsPerStatement = rowsPerStatement(maxRows, MESSAGE_COLUMNS.length);
  const chatRowsPerStatement = rowsPerStatement(maxRows, CHAT_COLUMNS.length);
  let transactions = 0;

  async function writeBatch(batch: Batch): Promise<WriteResult> {
    const result: WriteResult = { inserted: 0, updated: 0, unchanged: 0, cleaned: 0 };
    const synced = uniqueSyncMarks(batch.synced ?? []);
    const cleared = batch.completedListed ?? [];
    if (
      batch.chats.length === 0 &&
      batch.messages.length === 0 &&
      synced.length === 0 &&
      cleared.length === 0 &&
      !batch.progress
    )
      return result;

    const chats = uniqueByKey(batch.chats.map(chatRow));
    const messages = uniqueByKey(batch.messages.map(messageRow));
    for (const row of messages) if (row.text_cleaned) result.cleaned++;

    await sql.begin(async (tx) => {
      for (const rows of statementSlices(chats, chatRowsPerStatement)) {
        await upsertChats(tx, schema, rows);
      }
      const relinked = messages.length > 0 ? await dropOtherIdForms(tx, schema, messages) : 0;
      // A message stored under its other id form is the same message under a new id: an update.
      result.inserted -= relinked;
      result.updated += relinked;
      for (const rows of statementSlices(messages, messageRowsPerStatement)) {
        for (const { inserted } of await upsertMessages(tx, schema, rows)) {
          if (inserted) result.inserted++;
          else result.updated++;
        }
      }
      // After the messages, in the same transaction: a chat is marked complete only with its messages.
      if (synced.length > 0) await upsertSyncMarks(tx, schema, synced);
      // A chat completed now is no longer a failed one: cleared with the commit that proves it.
      if (cleared.length > 0) {
        await tx`
          delete from ${tx(schema)}.failed_chats f
          using unnest(${cleared.map((c) => c.session)}::text[], ${cleared.map((c) => c.chatId)}::text[])
            as v(session, chat_id)
          where f.session = v.session and f.chat_id = v.chat_id`;
      }
      // Last, so the row is locked only for the end of the transaction: concurrent batches queue briefly.
      if (batch.progress) {
        await tx`
          insert into ${tx(schema)}.checkpoint_progress (checkpoint_id, session, transactions, messages)
          values (${batch.progress.checkpointId}, ${cleanText(batch.progress.session)}, 1, ${batch.messages.length})
          on conflict (checkpoint_id) do update set
            transactions = checkpoint_progress.transactions + 1,
            messages = checkpoint_progress.messages + excluded.messages,
            updated_at = now()`;
      }
    });
    transactions++;
    result.unchanged = batch.messages.length - result.inserted - result.updated;
    return result;
  }

  return {
    writeBatch,
    get transactions() {
      return transactions;
    },
  };
}

function rowsPerStatement(maxRows: number, columns: number): number {
  return Math.min(maxRows, Math.floor(MAX_PARAMETERS_PER_STATEMENT / columns));
}

/**
 * Cuts `rows` into statements of at most `limit` rows, with the remainder split into powers of two.
 * postgres.js keeps every statement text it has prepared, per connection, for the connection's lifetime;
 * with arbitrary remainders a long import would prepare hundreds of different, large INSERTs. This way a
 * connection needs at most one statement per power of two, and reuses them.
 */
export function* statementSlices<T>(rows: readonly T[], limit: number): Generator<T[]> {
  let start = 0;
  while (rows.length - start >= limit) {
    yield rows.slice(start, start + limit);
    start += limit;
  }
  for (let size = highestPowerOfTwo(rows.length - start); start < rows.length; size /= 2) {
    if (rows.length - start < size) continue;
    yield rows.slice(start, start + size);
    start += size;
  }
}

function highestPowerOfTwo(n: number): number {
  let power = 1;
  while (power * 2 <= n) power *= 2;
  return power;
}

/**
 * One row per primary key, the last one given winning (ON CONFLICT cannot touch a row twice), in key
 * order.
 */
function uniqueByKey<T extends Keyed>(rows: T[]): T[] {
  const byKey = new Map<string, T>();
  for (const row of rows) byKey.set(`${row.session.length}:${row.session}${row.id}`, row);
  if (byKey.size === rows.length && isSortedByKey(rows)) return rows;
  return [...byKey.values()].sort(compareKeys);
}

function isSortedByKey(rows: Keyed[]): boolean {
  for (let i = 1; i < rows.length; i++) if (compareKeys(rows[i - 1]!, rows[i]!) > 0) return false;
  return true;
}

/** Code-unit order: the same in every process, which is all that lock ordering needs. */
function compareKeys(a: Keyed, b: Keyed): number {
  if (a.session !== b.session) return a.session < b.session ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** One mark per chat (the widest span given), in key order like every other row. */
function uniqueSyncMarks(marks: SyncMark[]): SyncMark[] {
  const byKey = new Map<string, SyncMark>();
  for (const mark of marks) {
    const key = `${mark.session.length}:${mark.session}${mark.chatId}`;
    const seen = byKey.get(key);
    byKey.set(
      key,
      seen ? { ...mark, fromS: Math.min(seen.fromS, mark.fromS), toS: Math.max(seen.toS, mark.toS) } : mark,
    );
  }
  return [...byKey.values()].sort((a, b) =>
    compareKeys({ session: a.session, id: a.chatId }, { session: b.session, id: b.chatId }),
  );
}

/**
 * Widens a chat's known-complete span when the new one touches or overlaps it. A span disjoint from the
 * stored one is not recorded: the gap between them was never fetched, and keeping the older `synced_to_s`
 * makes the next incremental run fetch across it.
 */
async function upsertSyncMarks(tx: TransactionSql, schema: string, marks: SyncMark[]): Promise<void> {
  const rows = marks.map((mark) => ({
    session: cleanText(mark.session),
    chat_id: cleanText(mark.chatId),
    synced_from_s: mark.fromS,
    synced_to_s: mark.toS,
  }));
  await tx`
    insert into ${tx(schema)}.chat_sync ${tx(rows, 'session', 'chat_id', 'synced_from_s', 'synced_to_s')}
    on conflict (session, chat_id) do update set
      synced_from_s = least(chat_sync.synced_from_s, excluded.synced_from_s),
      synced_to_s = greatest(chat_sync.synced_to_s, excluded.synced_to_s),
      updated_at = now()
    where excluded.synced_from_s <= chat_sync.synced_to_s + 1
      and excluded.synced_to_s >= chat_sync.synced_from_s - 1
      and (excluded.synced_from_s < chat_sync.synced_from_s or excluded.synced_to_s > chat_sync.synced_to_s)`;
}

/**
 * WhatsApp moves a person between a phone-number id (`@c.us`) and a hidden one (`@lid`), and WAHA then
 * serves the same messages under new serialized ids: the waId stays, the chat or participant part
 * changes. Before the new rows go in, the stored copies under the other form are removed, so the table
 * keeps one row per message, as WAHA serves it now. Two ids are forms of one message when they share the
 * session and waId, one has `@lid` where the other has `@c.us`, and they are equal once every
 * `…@lid`/`…@c.us` part is blanked (copies of a broadcast to several people share a waId but are all
 * `@c.us`: they stay apart). Returns how many of the incoming messages replaced such a copy.
 */
async function dropOtherIdForms(tx: TransactionSql, schema: string, rows: MessageRow[]): Promise<number> {
  // postgres.js prepares every statement; after five runs PostgreSQL may keep a generic plan, and one
  // made while the table was small (a new schema, autovacuum off) is a hash join that runs the regular
  // expressions over every stored row: 471 ms a batch at 200,000 rows instead of 8 ms. Planned anew each
  // time, with the real arrays and table size, it uses the (session, wa_id) index.
  await tx`set local plan_cache_mode = force_custom_plan`;
  const deleted = await tx<Array<{ id: string }>>`
    delete from ${tx(schema)}.messages m
    using unnest(
      ${rows.map((r) => r.session)}::text[], ${rows.map((r) => r.id)}::text[], ${rows.map((r) => r.wa_id)}::text[]
    ) as v(session, id, wa_id)
    where m.session = v.session
      and m.wa_id = v.wa_id
      and m.id <> v.id
      and (m.id like '%@lid%') <> (v.id like '%@lid%')
      and regexp_replace(m.id, '[^_@]+@(lid|c[.]us)', '*', 'g') = regexp_replace(v.id, '[^_@]+@(lid|c[.]us)', '*', 'g')
    returning v.id`;
  await tx`set local plan_cache_mode = auto`;
  return new Set(deleted.map((row) => row.id)).size;
}

/**
 * A value PostgreSQL cannot hold, found before sending it. Carries SQLSTATE 54001 (what PostgreSQL says
 * of JSON nested past its stack), so callers treat it like the server's own refusal of that record.
 */
export class RecordTooDeepError extends Error {
  readonly code = '54001';
}

/** `raw` cleaned for storage; JSON nested thousands of levels deep is refused here, by name, not by a crash. */
function cleanRaw(message: MessageRecord): { value: unknown; changed: boolean } {
  try {
    return cleanJson(message.raw ?? null);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw new RecordTooDeepError(
      `message ${message.id} is JSON nested too deeply to store (${error.message})`,
    );
  }
}

function messageRow(message: MessageRecord): MessageRow {
  let cleaned = false;
  const text = (value: string): string => {
    const result = cleanText(value);
    if (result !== value) cleaned = true;
    return result;
  };
  const nullableText = (value: string | null): string | null => {
    const result = cleanNullableText(value);
    if (result.changed) cleaned = true;
    return result.value;
  };
  const raw = cleanRaw(message);
  if (raw.changed) cleaned = true;
  return {
    session: text(message.session),
    id: text(message.id),
    chat_id: text(message.chatId),
    wa_id: text(message.waId),
    from_me: message.fromMe,
    sender: nullableText(message.sender),
    recipient: nullableText(message.recipient),
    participant: nullableText(message.participant),
    body: nullableText(message.body),
    type: text(message.type),
    has_media: message.hasMedia,
    ack: message.ack,
    timestamp_s: message.timestampS,
    reply_to_id: nullableText(message.replyToId),
    raw: raw.value as object | null,
    // Last: every text field above has been cleaned by the time this is evaluated.
    text_cleaned: cleaned,
  };
}

function chatRow(chat: ChatRecord): ChatRow {
  return {
    session: cleanText(chat.session),
    // The stored id, one per person across id forms; WAHA's listed id stays in `raw`.
    id: cleanText(chat.chatId),
    name: cleanNullableText(chat.name).value,
    kind: cleanText(chat.kind),
    last_activity_at: chat.lastActivityAt,
    raw: cleanJson(chat.raw ?? null).value as object | null,
  };
}

/**
 * No alias on the target table: postgres.js picks the helper's shape from the last keyword before it,
 * and `as` would turn the insert list into a select list. `raw` goes in as a JS object: postgres.js
 * learns from the server that the column is jsonb and JSON-encodes it once. (A string would be encoded
 * again and stored as a JSON string.)
 */
async function upsertMessages(
  tx: TransactionSql,
  schema: string,
  rows: MessageRow[],
): Promise<Array<{ inserted: boolean }>> {
  return tx<Array<{ inserted: boolean }>>`
    insert into ${tx(schema)}.messages ${tx(rows, MESSAGE_COLUMNS)}
    on conflict (session, id) do update set
      chat_id = excluded.chat_id,
      wa_id = excluded.wa_id,
      from_me = excluded.from_me,
      sender = excluded.sender,
      recipient = excluded.recipient,
      participant = excluded.participant,
      body = excluded.body,
      type = excluded.type,
      has_media = excluded.has_media,
      ack = excluded.ack,
      timestamp_s = excluded.timestamp_s,
      reply_to_id = excluded.reply_to_id,
      raw = excluded.raw,
      text_cleaned = excluded.text_cleaned,
      updated_at = now()
    where (
      messages.chat_id, messages.wa_id, messages.from_me, messages.sender, messages.recipient,
      messages.participant, messages.body, messages.type, messages.has_media, messages.ack,
      messages.timestamp_s, messages.reply_to_id, messages.raw, messages.text_cleaned
    ) is distinct from (
      excluded.chat_id, excluded.wa_id, excluded.from_me, excluded.sender, excluded.recipient,
      excluded.participant, excluded.body, excluded.type, excluded.has_media, excluded.ack,
      excluded.timestamp_s, excluded.reply_to_id, excluded.raw, excluded.text_cleaned
    )
    returning (xmax = 0) as inserted`;
}

async function upsertChats(tx: TransactionSql, schema: string, rows: ChatRow[]): Promise<void> {
  await tx`
    insert into ${tx(schema)}.chats ${tx(rows, CHAT_COLUMNS)}
    on conflict (session, id) do update set
      name = excluded.name,
      kind = excluded.kind,
      last_activity_at = excluded.last_activity_at,
      raw = excluded.raw,
      updated_at = now()
    where (chats.name, chats.kind, chats.last_activity_at, chats.raw)
      is distinct from (excluded.name, excluded.kind, excluded.last_activity_at, excluded.raw)`;
}
