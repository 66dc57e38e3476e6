import { Readable } from 'node:stream';
import type { TransactionSql } from 'postgres';
import { BinaryCopyWriter } from './copy-binary.js';
import { copyIn } from './copy-in.js';
import type {
  Batch,
  BatchOrder,
  BatchWriter,
  ChatRecord,
  MessageRecord,
  SyncMark,
  WriteResult,
} from '../domain.js';
import { answerDeadlineMs, DEFAULT_TIMEOUTS, type Sql } from './connect.js';
import { validateSchemaName } from './schema.js';
import { cleanJson, cleanNullableText, cleanText } from './text.js';

export interface BatchWriterOptions {
  /**
   * Most chat rows one INSERT carries (default 1,024); more chats become several statements in the same
   * transaction. (The chats go as one array per column, six parameters whatever their number; messages
   * go by COPY, any number in one.)
   */
  maxRowsPerStatement?: number;
  /**
   * How long a batch written with an `order` may wait inside its transaction for the batch before it
   * (milliseconds; 0: as long as it takes). Such a wait is the importer's own, not a forgotten session:
   * where the server sets `idle_in_transaction_session_timeout` or `lock_timeout` (for the role, the
   * database or in the URL), the batch's own transaction raises them to this, so the server does not
   * end it while it waits its turn; every other transaction keeps the server's limits. Default
   * DEFAULT_ORDER_WAIT_MS.
   */
  orderWaitMs?: number;
  /**
   * Called when PostgreSQL ended a batch's transaction to break a deadlock, before it is written again
   * (`attempt` is the attempt that was ended, from 1). After DEADLOCK_ATTEMPTS the error is thrown.
   */
  onDeadlock?: (attempt: number) => void;
}

/** Attempts at a batch that PostgreSQL ends to break a deadlock, before its error is thrown. */
export const DEADLOCK_ATTEMPTS = 5;

function isDeadlock(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '40P01';
}

/** A connection's answer deadline under the default statement timeout (300 s + 5 s). */
export const DEFAULT_ORDER_WAIT_MS = answerDeadlineMs(DEFAULT_TIMEOUTS);

/** Chat rows per INSERT unless told otherwise. */
const DEFAULT_MAX_ROWS_PER_STATEMENT = 1_024;

/** The columns the importer writes into `messages`; the rest are defaults and generated. */
export const MESSAGE_COLUMNS = [
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
  /** `raw` as JSON text (or its UTF-8 bytes), cleaned: what the jsonb column parses. */
  raw: string | Buffer | null;
  text_cleaned: boolean;
}

interface ChatRow {
  session: string;
  id: string;
  name: string | null;
  kind: string;
  last_activity_at: Date | null;
  raw: string | null;
}

interface Keyed {
  session: string;
  id: string;
}

/**
 * Statements of one transaction sent without awaiting each (postgres.js pipelines them on the
 * transaction's connection, and PostgreSQL runs them in order). When one fails, those after it fail only
 * because the transaction is aborted: the error that counts, and is thrown, is the first in order.
 */
class InOrder {
  private readonly sent: Array<Promise<unknown>> = [];

  /** Takes a statement's answer; nothing goes unhandled if it fails before it is settled. */
  add<T>(answer: Promise<T>): Promise<T> {
    answer.catch(() => {});
    this.sent.push(answer);
    return answer;
  }

  /** Waits for `last` and everything before it; throws the first failure in order. */
  async settle<T>(last: Promise<T>): Promise<T> {
    this.add(last);
    const results = await Promise.allSettled(this.sent);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return last;
  }

  /** The first failure in order among what was sent, else `error`. */
  async firstError(error: unknown): Promise<unknown> {
    const results = await Promise.allSettled(this.sent);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    return failed ? failed.reason : error;
  }
}

/**
 * `inner` with `before` awaited ahead of every batch (a lock or a job still held) and `around` applied to
 * each write, passing the batch's `order` through: a wrapper that dropped it let streaming's next batch
 * commit before the one ahead of it, so a batch refused after it no longer kept the failed chat's later
 * pages and completion out of the database.
 */
export function checkedWriter(
  inner: BatchWriter,
  before: () => Promise<void>,
  around: <T>(work: Promise<T>) => Promise<T> = (work) => work,
): BatchWriter {
  return {
    writeBatch: async (batch, order) => {
      await around(before());
      return around(inner.writeBatch(batch, order));
    },
    get transactions() {
      return inner.transactions;
    },
  };
}

/**
 * Writes batches into `<schema>.chats` and `<schema>.messages`, each batch in exactly one transaction.
 *
 * Upserts are idempotent: a row identical to the stored one is left alone (no new row version,
 * `updated_at` kept), a row that differs in any stored column is updated and gets a new `updated_at`.
 * Counts are exact and `inserted + updated + unchanged` equals `batch.messages.length`: a message that
 * appears twice in one batch is written once (the last copy wins) and its other copies count as unchanged.
 * Rows go in primary-key order, and every batch writes its messages before its chats, so concurrent
 * batches touching the same rows lock them in the same order and cannot deadlock each other. A failing
 * batch is rolled back entirely and its error propagates as is.
 */
export function createBatchWriter(sql: Sql, schema: string, options: BatchWriterOptions = {}): BatchWriter {
  validateSchemaName(schema);
  const maxRows = options.maxRowsPerStatement ?? DEFAULT_MAX_ROWS_PER_STATEMENT;
  if (!Number.isInteger(maxRows) || maxRows < 1) {
    throw new RangeError(`maxRowsPerStatement must be a positive integer, not ${maxRows}`);
  }
  const orderWaitMs = options.orderWaitMs ?? DEFAULT_ORDER_WAIT_MS;
  if (!Number.isInteger(orderWaitMs) || orderWaitMs < 0) {
    throw new RangeError(`orderWaitMs must be a whole number of milliseconds, 0 or more, not ${orderWaitMs}`);
  }
  let transactions = 0;

  async function writeBatch(batch: Batch, order?: BatchOrder): Promise<WriteResult> {
    const synced = uniqueSyncMarks(batch.synced ?? []);
    const syncedForms = uniqueSyncMarks(batch.synced ?? [], true);
    const cleared = batch.completedListed ?? [];
    if (
      batch.chats.length === 0 &&
      batch.messages.length === 0 &&
      synced.length === 0 &&
      cleared.length === 0 &&
      !batch.progress
    )
      return { inserted: 0, updated: 0, unchanged: 0, cleaned: 0 };

    const chats = uniqueByKey(batch.chats.map(chatRow));
    // Only the keys now (to drop duplicates and order the rows); the rest of each row is built while
    // the COPY sends the rows before it.
    const messages = uniqueByKey(withoutEarlierForms(batch.messages).map(messageKey));
    const sessions = [...new Set(messages.map((m) => m.message.session))].sort();
    // The batch before committed (awaited once, whichever step or attempt needs it first).
    let before: Promise<void> | undefined;
    const beforeCommitted = () => (before ??= order?.commit?.() ?? Promise.resolve());

    const attempt = () =>
      sql.begin(async (tx) => {
        const result: WriteResult = { inserted: 0, updated: 0, unchanged: 0, cleaned: 0 };
        // Statements are sent as soon as they are known, without waiting for the answers of those before:
        // PostgreSQL runs them in order while Node goes on (the connection sat idle a third of each
        // transaction, waiting for Node between statements, when each answer was awaited first).
        const sent = new InOrder();
        // Waiting for the batch before (idle between statements, or on its row locks) is ours to bound.
        if (order) sent.add(allowOrderWait(tx, orderWaitMs));
        // The staging table is this connection's own: filling it touches no row another transaction
        // could want, so it may go ahead of the batch before. Everything after it waits for its turn.
        const staged = messages.length > 0 ? await sent.settle(stageMessages(tx, messages)) : undefined;
        // A row that could not be built stopped the rows after it; the whole batch is rolled back.
        if (staged?.error !== undefined) throw await sent.firstError(staged.error);
        if (order?.statements) await order.statements();
        const counts = staged && sent.add(upsertStagedMessages(tx, schema));
        // The chats after their messages: a chat read across batches is in each of them, and its row stays
        // locked by the batch before until that commits (ON CONFLICT locks it even when nothing changed).
        // Written first, that wait held this batch's messages back behind the commit before; written
        // here, only what this batch must do after that commit anyway waits for it.
        for (const rows of statementSlices(chats, maxRows)) {
          sent.add(upsertChats(tx, schema, rows));
        }
        // After the messages, in the same transaction: a chat is marked complete only with its messages.
        if (synced.length > 0) sent.add(upsertSyncMarks(tx, schema, 'chat_sync', synced));
        if (syncedForms.length > 0) sent.add(upsertSyncMarks(tx, schema, 'chat_sync_forms', syncedForms));
        // A chat completed now is no longer a failed one: cleared with the commit that proves it, when the
        // window it completed covers the one it failed in (a row without a window: any completion).
        if (cleared.length > 0) {
          sent.add(tx`
          delete from ${tx(schema)}.failed_chats f
          using unnest(
            ${cleared.map((c) => c.session)}::text[],
            ${cleared.map((c) => c.chatId)}::text[],
            ${cleared.map((c) => c.window?.fromS ?? null)}::bigint[],
            ${cleared.map((c) => c.window?.toS ?? null)}::bigint[]
          ) as v(session, chat_id, from_s, to_s)
          where f.session = v.session and f.chat_id = v.chat_id
            and (f.window_from_s is null or v.from_s is null or v.from_s <= f.window_from_s)
            and (f.window_to_s is null or v.to_s is null or v.to_s >= f.window_to_s)`);
        }
        // Last, so the row is locked only for the end of the transaction. The row is this connection's own
        // slot of the checkpoint's counters: batches written at once on other connections count into
        // theirs, and none waits for another's commit (one row per checkpoint made them commit in turn).
        if (batch.progress) {
          sent.add(tx`
          insert into ${tx(schema)}.checkpoint_progress (checkpoint_id, slot, session, transactions, messages)
          values (${batch.progress.checkpointId}, pg_backend_pid(), ${cleanText(batch.progress.session)}, 1, ${batch.messages.length})
          on conflict (checkpoint_id, slot) do update set
            transactions = checkpoint_progress.transactions + 1,
            messages = checkpoint_progress.messages + excluded.messages,
            updated_at = now()`);
        }
        if (staged && counts) {
          result.cleaned = staged.cleaned;
          // The stored copies of these messages under their other id form go last, once the batch before
          // has committed: one that batch wrote is visible only then (streaming writes it on another
          // connection), and would otherwise stay beside this form. This batch holds one form of each
          // message (withoutEarlierForms), so nothing it wrote itself is such a copy.
          if (order?.commit) {
            await sent.settle(Promise.resolve());
            await beforeCommitted();
          }
          // Another process importing this session (a queue worker) may be writing the other form of one of
          // these messages now: each batch holds the session's lock from its clean-up to its commit, so of
          // two such batches the later clean-up runs after the earlier commit, and sees its rows.
          for (const session of sessions) sent.add(lockOtherIdForms(tx, schema, session, staged.lidForms));
          const relinked = await sent.settle(dropOtherIdForms(tx, schema, staged));
          const { inserted, updated } = await counts;
          // A message stored under its other id form is the same message under a new id: an update.
          result.inserted += inserted - relinked;
          result.updated += updated + relinked;
        }
        await sent.settle(Promise.resolve());
        order?.ran?.();
        await beforeCommitted();
        return result;
      });

    for (let attempts = 1; ; attempts++) {
      let result: WriteResult;
      try {
        result = await attempt();
      } catch (error) {
        // That lock and the row locks of the INSERT can meet in a cycle (two batches holding the two forms
        // of one message): PostgreSQL ends one of them, which is then written again, from the start.
        if (!isDeadlock(error) || attempts >= DEADLOCK_ATTEMPTS) throw error;
        options.onDeadlock?.(attempts);
        continue;
      }
      transactions++;
      result.unchanged = batch.messages.length - result.inserted - result.updated;
      return result;
    }
  }

  return {
    writeBatch,
    get transactions() {
      return transactions;
    },
  };
}

/**
 * Raises, for this transaction only, the server's limits on an idle transaction and on a lock wait to
 * `ms` where the server sets them (0 stays 0: no limit). postgres.js answers a session the server ended
 * for idling with a closed connection, which would fail the run.
 */
function allowOrderWait(tx: TransactionSql, ms: number): Promise<unknown> {
  const value = String(ms);
  return tx`
    select
      case when current_setting('idle_in_transaction_session_timeout') <> '0'
        then set_config('idle_in_transaction_session_timeout', ${value}, true) end,
      case when current_setting('lock_timeout') <> '0' then set_config('lock_timeout', ${value}, true) end`;
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
 * The parts of a serialized id that name a person or chat (`…@lid`, `…@c.us`), blanked to compare forms of
 * one message: here and, as the same pattern, in the clean-up's SQL (otherIdFormDeletes).
 */
const PERSON_PARTS = /[^_@]+@(lid|c[.]us)/g;

/**
 * `messages` (in the order they were read) without those that another form of the same message read
 * after them replaces, by the rule of dropOtherIdForms: the same session and waId, equal once every
 * `…@lid`/`…@c.us` part is blanked, one with `@lid` and the other without, and, when sent by you, in the
 * same stored chat. Broadcast copies stay apart. Both forms written in one batch would both be stored:
 * the clean-up looks only at rows stored before it.
 */
function withoutEarlierForms(messages: readonly MessageRecord[]): MessageRecord[] {
  const keys = messages.map((m) => `${m.session.length}:${m.session}${m.waId}`);
  const byWaId = new Map<string, number>();
  for (const key of keys) byWaId.set(key, (byWaId.get(key) ?? 0) + 1);
  if (byWaId.size === keys.length) return messages as MessageRecord[];
  // From the last read back: the first form met of each message is the one WAHA serves now.
  const current = new Map<string, boolean>();
  const dropped = new Set<number>();
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (byWaId.get(keys[i]!)! < 2) continue;
    const key = `${keys[i]!}\u0000${m.id.replace(PERSON_PARTS, '*')}${m.fromMe ? `\u0000${m.chatId}` : ''}`;
    const hidden = m.id.includes('@lid');
    const kept = current.get(key);
    if (kept === undefined) current.set(key, hidden);
    else if (kept !== hidden) dropped.add(i);
  }
  return dropped.size === 0 ? (messages as MessageRecord[]) : messages.filter((_, i) => !dropped.has(i));
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

/**
 * One mark per key (the widest span given), in key order like every other row: per stored chat for
 * `chat_sync`, per stored chat and listed id for `chat_sync_forms` (marks without a listed id left out).
 */
function uniqueSyncMarks(marks: SyncMark[], perListedId = false): SyncMark[] {
  const byKey = new Map<string, SyncMark>();
  for (const mark of marks) {
    if (perListedId && mark.listedId === undefined) continue;
    const key = JSON.stringify([mark.session, mark.chatId, perListedId ? mark.listedId : '']);
    const seen = byKey.get(key);
    byKey.set(
      key,
      seen ? { ...mark, fromS: Math.min(seen.fromS, mark.fromS), toS: Math.max(seen.toS, mark.toS) } : mark,
    );
  }
  const listed = (mark: SyncMark): string => (perListedId ? mark.listedId! : '');
  return [...byKey.values()].sort(
    (a, b) =>
      compareKeys({ session: a.session, id: a.chatId }, { session: b.session, id: b.chatId }) ||
      (listed(a) < listed(b) ? -1 : listed(a) > listed(b) ? 1 : 0),
  );
}

/**
 * Widens a chat's known-complete span (per listed id too, in `chat_sync_forms`) when the new one touches or
 * overlaps it. A span disjoint from the stored one is not recorded: the gap between them was never
 * fetched, and keeping the older `synced_to_s` makes the next incremental run fetch across it.
 */
async function upsertSyncMarks(
  tx: TransactionSql,
  schema: string,
  table: 'chat_sync' | 'chat_sync_forms',
  marks: SyncMark[],
): Promise<void> {
  const key = table === 'chat_sync' ? tx`session, chat_id` : tx`session, chat_id, listed_id`;
  const t = tx(table);
  // A span ends no later than this transaction's start, on the database's clock: every page of the batch
  // was read before it, so nothing later was read, whatever the window said (a window's end comes from
  // the clock of the machine that planned it, which may run ahead). A span that would start after that
  // claims nothing and is not written.
  await tx`
    insert into ${tx(schema)}.${t} (${key}, synced_from_s, synced_to_s)
    select ${key}, from_s, least(to_s, floor(extract(epoch from now()))::bigint)
    from unnest(
      ${marks.map((m) => cleanText(m.session))}::text[],
      ${marks.map((m) => cleanText(m.chatId))}::text[],
      ${marks.map((m) => cleanText(m.listedId ?? ''))}::text[],
      ${marks.map((m) => m.fromS)}::bigint[],
      ${marks.map((m) => m.toS)}::bigint[]
    ) as v(session, chat_id, listed_id, from_s, to_s)
    where from_s <= floor(extract(epoch from now()))
    on conflict (${key}) do update set
      synced_from_s = least(${t}.synced_from_s, excluded.synced_from_s),
      synced_to_s = greatest(${t}.synced_to_s, excluded.synced_to_s),
      updated_at = now()
    where excluded.synced_from_s <= ${t}.synced_to_s + 1
      and excluded.synced_to_s >= ${t}.synced_from_s - 1
      and (excluded.synced_from_s < ${t}.synced_from_s or excluded.synced_to_s > ${t}.synced_to_s)`;
}

/**
 * The session-local table a batch's messages are copied into before one INSERT ... SELECT moves them into
 * `messages`. Created on first use on each connection and kept for its life (creating one per batch
 * costs catalog writes every time); emptied at every commit, and a rolled-back batch's rows were never
 * visible. No constraint and `raw` as text, so the COPY refuses no row for what it holds: a refusal by
 * the INSERT (a constraint, JSON PostgreSQL cannot hold) is an ordinary statement error naming its
 * cause, while postgres.js may not report a COPY's. The COPY can still end in the server's own error
 * (cancelled, past statement_timeout, a disk full): copyIn makes that an error of the batch, not a hang.
 */
const STAGE = 'pg_temp.waha_import_stage';
export const STAGE_TABLE_DDL = `
  create temp table if not exists waha_import_stage (
    session text, id text, chat_id text, wa_id text, from_me boolean, sender text, recipient text,
    participant text, body text, type text, has_media boolean, ack smallint, timestamp_s bigint,
    reply_to_id text, raw text, text_cleaned boolean
  ) on commit delete rows`;
const COPY_STAGE = `copy ${STAGE} (${MESSAGE_COLUMNS.join(', ')}) from stdin (format binary)`;

/** Bytes of COPY data built ahead of the socket: the next chunk is built while the server reads this one. */
const COPY_CHUNK_BYTES = 256 * 1024;

/** What building and sending a batch's rows found. */
interface Staged {
  /** Messages whose text had to be cleaned. */
  cleaned: number;
  /** Some staged id has an `@lid` part; some has none. */
  lidForms: boolean;
  plainForms: boolean;
  /** The first row that could not be built; the rows after it were not sent. */
  error?: unknown;
}

/**
 * Sends the messages (one per key, in key order) to the staging table with one binary COPY. Each row is
 * cleaned, checked and encoded a chunk at a time as the connection takes the bytes, so the work in Node
 * overlaps sending and the server's parsing. A row that cannot be built does not abort the COPY (a
 * failed COPY-in leaves postgres.js stuck): the data is ended cleanly and the error is returned.
 */
async function stageMessages(tx: TransactionSql, messages: KeyedMessage[]): Promise<Staged> {
  // Sent with the COPY, not awaited first: the COPY runs after it, and fails if it did.
  const ddl = tx.unsafe(STAGE_TABLE_DDL).execute();
  ddl.catch(() => {});
  const staged: Staged = { cleaned: 0, lidForms: false, plainForms: false };
  const rows = Readable.from(binaryCopyChunks(messages, staged), { objectMode: false });
  await copyIn(tx, COPY_STAGE, rows, `a batch of ${messages.length} messages`);
  await ddl;
  return staged;
}

function* binaryCopyChunks(messages: KeyedMessage[], staged: Staged): Generator<Buffer> {
  const out = new BinaryCopyWriter(COPY_CHUNK_BYTES);
  out.header();
  for (const keyed of messages) {
    let row: MessageRow;
    try {
      row = messageRow(keyed);
    } catch (error) {
      staged.error = error;
      break;
    }
    if (row.text_cleaned) staged.cleaned++;
    if (row.id.includes('@lid')) staged.lidForms = true;
    else staged.plainForms = true;
    out.row(MESSAGE_COLUMNS.length);
    out.text(row.session);
    out.text(row.id);
    out.text(row.chat_id);
    out.text(row.wa_id);
    out.boolean(row.from_me);
    out.text(row.sender);
    out.text(row.recipient);
    out.text(row.participant);
    out.text(row.body);
    out.text(row.type);
    out.boolean(row.has_media);
    out.int2(row.ack);
    out.int8(row.timestamp_s);
    out.text(row.reply_to_id);
    if (row.raw === null || typeof row.raw === 'string') out.text(row.raw);
    else out.bytes(row.raw);
    out.boolean(row.text_cleaned);
    if (out.full) yield out.take();
  }
  out.trailer();
  yield out.take();
}

/**
 * WhatsApp moves a person between a phone-number id (`@c.us`) and a hidden one (`@lid`), and WAHA then
 * serves the same messages under new serialized ids: the waId stays, the chat or participant part
 * changes. Before the new rows go in, the stored copies under the other form are removed, so the table
 * keeps one row per message, as WAHA serves it now. Two ids are forms of one message when they share the
 * session and waId, one has `@lid` where the other has `@c.us`, and they are equal once every
 * `…@lid`/`…@c.us` part is blanked, and, for a message you sent, they are in the same stored chat (the
 * chat part canonical: an `@lid` WAHA maps to a phone number is stored under that number). Copies of one
 * broadcast share your waId, one per recipient, and blanked they are equal whatever form each recipient
 * has: without the chat, the copy to a person under `@lid` deleted every copy to a person under `@c.us`.
 * A message received has one sender, so its forms match in any chat. The cost: a message you sent to a
 * person whose `@lid` WAHA does not map, stored before under the phone number, is kept in both forms (a
 * copy too many, never one too few). Returns how many of the staged messages replaced such a copy.
 *
 * Index probes only (see otherIdFormDeletes): a few per staged message, whatever the table holds; the
 * regular expressions run only on the rows a probe finds, which are none in the common case. Sent without
 * preparing them, so PostgreSQL plans them anew each time with the table as it is (prepared, a plan made
 * once while the table was nearly empty, a hash join that runs the expressions over every stored row,
 * stayed in use: 471 ms a batch at 200,000 rows instead of 8 ms), and with hash and merge joins off for
 * them (PLAN_PROBES): left free, PostgreSQL joined the staged messages without `@lid` to every stored
 * `@lid` row by a merge join, sorting them all by the expressions, a cost that grew with the table
 * (25 ms a batch at 200,000 messages, 9% of the writer's connection time, against 7 ms for the probes).
 */
async function dropOtherIdForms(tx: TransactionSql, schema: string, staged: Staged): Promise<number> {
  const ids = new Set<string>();
  for (const deleted of await runOtherIdForms(tx, schema, staged, '')) {
    for (const row of deleted) ids.add((row as { id: string }).id);
  }
  return ids.size;
}

/**
 * The lock a batch of `session` holds from its clean-up to its commit (released by the commit), one per
 * schema and session across every process writing into the database: taken alone by a batch holding
 * `@lid` ids, shared among batches holding none (no two of those hold two forms of one message, since
 * one form has `@lid`), so only batches that could race for a message wait for each other.
 */
function lockOtherIdForms(
  tx: TransactionSql,
  schema: string,
  session: string,
  lidForms: boolean,
): Promise<unknown> {
  const key = `${schema}/${session}`;
  return (
    lidForms
      ? tx`select pg_advisory_xact_lock(hashtext('waha-import:forms'), hashtext(${key}))`
      : tx`select pg_advisory_xact_lock_shared(hashtext('waha-import:forms'), hashtext(${key}))`
  ).execute();
}

/** Joins that probe an index per row of the staged batch, never a pass over every stored row. */
const PLAN_PROBES = 'set local enable_hashjoin = off; set local enable_mergejoin = off';
/** Back to the session's own settings (RESET, not SET: what the connection or its role chose stays). */
const PLAN_FREELY = 'reset enable_hashjoin; reset enable_mergejoin';

/**
 * Runs the clean-up's statements as the writer does, each prefixed with `prefix` (the test of their
 * plans runs them with `explain `): the rows each returned.
 */
export async function runOtherIdForms(
  tx: TransactionSql,
  schema: string,
  staged: Pick<Staged, 'lidForms' | 'plainForms'>,
  prefix: string,
): Promise<Array<Array<Record<string, unknown>>>> {
  const statements = otherIdFormDeletes(schema, staged);
  if (statements.length === 0) return [];
  // Sent one after another without waiting (PostgreSQL runs them in order); awaited together, so a
  // failure of any is handled, and the first in order is what a failed transaction reports anyway.
  const answers = await Promise.all([
    tx.unsafe(PLAN_PROBES).simple().execute(),
    ...statements.map((statement) =>
      tx.unsafe<Array<Record<string, unknown>>>(prefix + statement, [], { prepare: false }).execute(),
    ),
    tx.unsafe(PLAN_FREELY).simple().execute(),
  ]);
  return answers.slice(1, -1) as Array<Array<Record<string, unknown>>>;
}

/**
 * The statements dropOtherIdForms runs for what was staged (exported for the test of their plans): for
 * staged `@lid` ids, a probe of the (session, wa_id) index for stored ids without `@lid`; for the others,
 * a probe of the small index of stored `@lid` rows (migration 5), and not even that when the table holds
 * none (checked once, on that index).
 */
export function otherIdFormDeletes(
  schema: string,
  staged: Pick<Staged, 'lidForms' | 'plainForms'>,
): string[] {
  const messages = `"${validateSchemaName(schema)}".messages`;
  const sameMessage = `
      m.session = v.session
      and m.wa_id = v.wa_id
      and (not v.from_me or m.chat_id = v.chat_id)
      and regexp_replace(m.id, '${PERSON_PARTS.source}', '*', 'g') = regexp_replace(v.id, '${PERSON_PARTS.source}', '*', 'g')`;
  const statements: string[] = [];
  if (staged.lidForms) {
    statements.push(`
      delete from ${messages} m using ${STAGE} v
      where v.id like '%@lid%' and m.id not like '%@lid%' and ${sameMessage}
      returning v.id`);
  }
  if (staged.plainForms) {
    statements.push(`
      delete from ${messages} m using ${STAGE} v
      where (select exists (select 1 from ${messages} l where l.id like '%@lid%'))
        and v.id not like '%@lid%' and m.id like '%@lid%' and ${sameMessage}
      returning v.id`);
  }
  return statements;
}

/**
 * Moves the staged rows into `messages`: new ones inserted, changed ones updated (new `updated_at`),
 * identical ones left alone (no new row version). The staging table holds one row per key, copied in
 * key order, and a freshly emptied table is scanned in the order it was filled: rows are locked in key
 * order, so concurrent batches cannot deadlock each other.
 */
async function upsertStagedMessages(
  tx: TransactionSql,
  schema: string,
): Promise<{ inserted: number; updated: number }> {
  const columns = MESSAGE_COLUMNS.map((c) => (c === 'raw' ? 'raw::jsonb' : c)).join(', ');
  const [counts] = await tx.unsafe<Array<{ inserted: number; updated: number }>>(`
    with written as (
      insert into "${schema}".messages (${MESSAGE_COLUMNS.join(', ')})
      select ${columns} from ${STAGE}
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
      returning (xmax = 0) as inserted
    )
    select (count(*) filter (where inserted))::int as inserted, (count(*) filter (where not inserted))::int as updated
    from written`);
  return counts!;
}

/**
 * A value PostgreSQL cannot hold, found before sending it. Carries SQLSTATE 54001 (what PostgreSQL says
 * of JSON nested past its stack), so callers treat it like the server's own refusal of that record.
 */
export class RecordTooDeepError extends Error {
  readonly code = '54001';
}

/** `raw` cleaned for storage; JSON nested thousands of levels deep is refused here, by name, not by a crash. */
function cleanRaw(record: string, raw: unknown): { value: unknown; changed: boolean } {
  try {
    return cleanJson(raw ?? null);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw new RecordTooDeepError(`${record} is JSON nested too deeply to store (${error.message})`);
  }
}

/**
 * Text in `raw` PostgreSQL will not take shows in its JSON text as an escape: a NUL as backslash-u0000,
 * a lone surrogate as backslash-ud800 to -udfff (JSON.stringify writes whole pairs as characters). Only
 * such a text is cleaned value by value; an escaped backslash before "u0000" also matches, which only
 * costs that walk.
 */
const SUSPECT_ESCAPE = /\\u(?:0000|d[89a-f])/i;
const ESCAPE_START = Buffer.from('\\u');

/**
 * `raw` as the JSON text to store, cleaned: the text WAHA sent when the record carries it, else the value
 * stringified once; parsed and walked only when the text looks dirty.
 *
 * WAHA's text goes to PostgreSQL as it came (jsonb drops its formatting). It is what JSON.stringify of
 * the parsed value would give, give or take whitespace and escapes of characters PostgreSQL stores
 * alike: WAHA writes it with JSON.stringify, so its numbers are doubles (no exponent PostgreSQL's
 * numeric refuses, none beyond what JSON.parse keeps exactly) and its strings well-formed except for
 * the escapes SUSPECT_ESCAPE finds.
 */
function rawJson(
  record: string,
  sent: Buffer | undefined,
  value: unknown,
): { text: string | Buffer | null; changed: boolean } {
  if (sent !== undefined) {
    // Most records hold no escape of the kind at all; a native search says so without decoding them.
    if (sent.indexOf(ESCAPE_START) < 0) return { text: sent, changed: false };
    const sentText = sent.toString('utf8');
    if (!SUSPECT_ESCAPE.test(sentText)) return { text: sent, changed: false };
    const cleaned = cleanRaw(record, JSON.parse(sentText));
    return { text: cleaned.changed ? JSON.stringify(cleaned.value) : sent, changed: cleaned.changed };
  }
  if (value === undefined || value === null) return { text: null, changed: false };
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw new RecordTooDeepError(`${record} is JSON nested too deeply to store (${error.message})`);
  }
  if (text === undefined) return { text: null, changed: false };
  if (!SUSPECT_ESCAPE.test(text)) return { text, changed: false };
  const cleaned = cleanRaw(record, value);
  return { text: cleaned.changed ? JSON.stringify(cleaned.value) : text, changed: cleaned.changed };
}

/** A number PostgreSQL would refuse for its column, refused here by name (binary COPY cannot say which). */
export class ValueOutOfRangeError extends Error {
  readonly code = '22003';
}

function checkedInteger(
  message: MessageRecord,
  what: string,
  value: number | null,
  type: 'smallint' | 'bigint',
  bound: number,
): number | null {
  if (value === null || (Number.isInteger(value) && value >= -bound && value < bound)) return value;
  throw new ValueOutOfRangeError(
    `message ${message.id} has ${what} ${value}, not a ${type} PostgreSQL can store`,
  );
}

/** A message with its key cleaned: enough to drop duplicates and order the batch. */
interface KeyedMessage {
  session: string;
  id: string;
  message: MessageRecord;
  /** Whether the key needed cleaning. */
  keyCleaned: boolean;
}

function messageKey(message: MessageRecord): KeyedMessage {
  const session = cleanText(message.session);
  const id = cleanText(message.id);
  return { session, id, message, keyCleaned: session !== message.session || id !== message.id };
}

function messageRow({ session, id, message, keyCleaned }: KeyedMessage): MessageRow {
  let cleaned = keyCleaned;
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
  const raw = rawJson(`message ${message.id}`, message.rawJson, message.raw);
  if (raw.changed) cleaned = true;
  return {
    session,
    id,
    chat_id: text(message.chatId),
    wa_id: text(message.waId),
    from_me: message.fromMe,
    sender: nullableText(message.sender),
    recipient: nullableText(message.recipient),
    participant: nullableText(message.participant),
    body: nullableText(message.body),
    type: text(message.type),
    has_media: message.hasMedia,
    ack: checkedInteger(message, 'ack', message.ack, 'smallint', 2 ** 15),
    timestamp_s: checkedInteger(message, 'timestamp', message.timestampS, 'bigint', 2 ** 63),
    reply_to_id: nullableText(message.replyToId),
    raw: raw.text,
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
    // JSON text: PostgreSQL reads it as the column's jsonb (postgres.js sends a string untyped).
    raw: chatRawText(chat),
  };
}

/** A chat's `raw` as JSON text to store, cleaned like a message's: the bytes WAHA sent when it kept them. */
function chatRawText(chat: ChatRecord): string | null {
  const { text } = rawJson(`chat ${chat.id}`, chat.rawJson, chat.raw);
  return typeof text === 'string' || text === null ? text : text.toString('utf8');
}

/**
 * The chats, one array per column. `raw` goes as text cast by PostgreSQL: a string bound to the jsonb
 * column itself would be stringified again by postgres.js and stored as one JSON string.
 */
async function upsertChats(tx: TransactionSql, schema: string, rows: ChatRow[]): Promise<void> {
  await tx`
    insert into ${tx(schema)}.chats (session, id, name, kind, last_activity_at, raw)
    select c.session, c.id, c.name, c.kind, c.last_activity_at, c.raw::jsonb
    from unnest(
      ${rows.map((r) => r.session)}::text[],
      ${rows.map((r) => r.id)}::text[],
      ${rows.map((r) => r.name)}::text[],
      ${rows.map((r) => r.kind)}::text[],
      ${rows.map((r) => r.last_activity_at?.toISOString() ?? null)}::timestamptz[],
      ${rows.map((r) => r.raw)}::text[]
    ) as c(session, id, name, kind, last_activity_at, raw)
    on conflict (session, id) do update set
      name = excluded.name,
      kind = excluded.kind,
      last_activity_at = excluded.last_activity_at,
      raw = excluded.raw,
      updated_at = now()
    where (chats.name, chats.kind, chats.last_activity_at, chats.raw)
      is distinct from (excluded.name, excluded.kind, excluded.last_activity_at, excluded.raw)`;
}
