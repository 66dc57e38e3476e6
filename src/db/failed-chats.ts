import type { TimeWindow } from '../domain.js';
import type { Sql } from './connect.js';
import { validateSchemaName } from './schema.js';
import { cleanText } from './text.js';

/** Why a chat could not be imported: the classes the summary, `status` and the README name. */
export type ChatFailureReason = 'waha-failing' | 'waha-cannot-route' | 'unstable-paging' | 'database-refused';

export interface ChatFailure {
  session: string;
  /** The chat id as WAHA lists it (the id its URLs take). */
  chatId: string;
  reason: ChatFailureReason;
  error: string;
  /**
   * The window the chat was to be read over when it failed; over repeated failures, the union of them.
   * Null for a row recorded before migration 10 whose run's window is unknown.
   */
  window: TimeWindow | null;
}

export interface FailedChatRecord extends ChatFailure {
  runId: number | null;
  attempts: number;
  firstFailedAt: Date;
  lastFailedAt: Date;
}

/** A chat as the `chats` table holds it. */
export interface StoredChat {
  id: string;
  name: string | null;
  kind: string;
  lastActivityAt: Date | null;
  raw: unknown;
}

export interface FailedChatStore {
  /** Records (or counts again) a chat that failed in run `runId`. */
  record(failure: ChatFailure, runId: number | null): Promise<void>;
  /** The chats still failed, oldest failure first; one session's when given. */
  list(session?: string): Promise<FailedChatRecord[]>;
  /**
   * The `chats` rows of a session under these stored ids (a failed chat WAHA no longer lists is read
   * with what was stored of it).
   */
  storedChats(session: string, ids: readonly string[]): Promise<StoredChat[]>;
}

/**
 * `<schema>.failed_chats`: one row per chat that a run could not import, until a run completes it (the
 * writer deletes the row in the transaction that commits the chat's last page).
 */
export function createFailedChatStore(sql: Sql, schema: string): FailedChatStore {
  validateSchemaName(schema);
  return {
    async record(failure, runId) {
      await sql`
        insert into ${sql(schema)}.failed_chats
          (session, chat_id, run_id, reason, error, window_from_s, window_to_s)
        values (${failure.session}, ${cleanText(failure.chatId)}, ${runId}, ${failure.reason},
          ${cleanText(failure.error)}, ${failure.window?.fromS ?? null}, ${failure.window?.toS ?? null})
        on conflict (session, chat_id) do update set
          run_id = excluded.run_id,
          reason = excluded.reason,
          error = excluded.error,
          -- The union: the chat is still owed every window it failed in (least/greatest skip nulls).
          window_from_s = least(failed_chats.window_from_s, excluded.window_from_s),
          window_to_s = greatest(failed_chats.window_to_s, excluded.window_to_s),
          attempts = failed_chats.attempts + 1,
          last_failed_at = now()`;
    },
    async list(session) {
      const rows = await sql<
        Array<{
          session: string;
          chat_id: string;
          run_id: string | null;
          reason: ChatFailureReason;
          error: string;
          attempts: number;
          first_failed_at: Date;
          last_failed_at: Date;
          window_from_s: string | null;
          window_to_s: string | null;
        }>
      >`
        select session, chat_id, run_id, reason, error, attempts, first_failed_at, last_failed_at,
          window_from_s, window_to_s
        from ${sql(schema)}.failed_chats
        ${session === undefined ? sql`` : sql`where session = ${session}`}
        order by first_failed_at, chat_id`;
      return rows.map((row) => ({
        session: row.session,
        chatId: row.chat_id,
        runId: row.run_id === null ? null : Number(row.run_id),
        reason: row.reason,
        error: row.error,
        attempts: row.attempts,
        firstFailedAt: row.first_failed_at,
        lastFailedAt: row.last_failed_at,
        window:
          row.window_from_s === null || row.window_to_s === null
            ? null
            : { fromS: Number(row.window_from_s), toS: Number(row.window_to_s) },
      }));
    },
    async storedChats(session, ids) {
      if (ids.length === 0) return [];
      const rows = await sql<
        Array<{ id: string; name: string | null; kind: string; last_activity_at: Date | null; raw: unknown }>
      >`
        select id, name, kind, last_activity_at, raw
        from ${sql(schema)}.chats
        where session = ${session} and id = any(${ids as string[]}::text[])`;
      return rows.map((row) => ({
        id: row.id,
        name: row.name,
        kind: row.kind,
        lastActivityAt: row.last_activity_at,
        raw: row.raw,
      }));
    },
  };
}
