import type { Sql } from './connect.js';
import { validateSchemaName } from './schema.js';

export interface DatabaseChecksum {
  messages: number;
  chats: number;
  /** md5 over every stored column of every row, in primary-key order. */
  checksum: string;
}

/**
 * A fingerprint of what an import stored, to compare two runs or two strategies. It covers every column
 * the data decides and none that only record when we wrote (imported_at, first_seen_at, updated_at, and
 * sent_at, which is derived from timestamp_s). Times enter as epoch seconds and rows are ordered by
 * byte-wise key, so neither the session time zone nor the database collation changes it.
 */
export async function databaseChecksum(
  sql: Sql,
  schema: string,
  session?: string,
): Promise<DatabaseChecksum> {
  validateSchemaName(schema);
  const onlySession = session === undefined ? sql`` : sql`where session = ${session}`;
  const [messages] = await sql<Array<{ count: number; digest: string }>>`
    select count(*)::int as count,
      md5(coalesce(string_agg(md5(row(
        session, id, chat_id, wa_id, from_me, sender, recipient, participant, body, type, has_media, ack,
        timestamp_s, reply_to_id, raw, text_cleaned
      )::text), '' order by session collate "C", id collate "C"), '')) as digest
    from ${sql(schema)}.messages ${onlySession}`;
  const [chats] = await sql<Array<{ count: number; digest: string }>>`
    select count(*)::int as count,
      md5(coalesce(string_agg(md5(row(
        session, id, name, kind, extract(epoch from last_activity_at), raw
      )::text), '' order by session collate "C", id collate "C"), '')) as digest
    from ${sql(schema)}.chats ${onlySession}`;
  const [combined] = await sql<Array<{ checksum: string }>>`
    select md5(${`messages:${messages!.digest};chats:${chats!.digest}`}) as checksum`;
  return { messages: messages!.count, chats: chats!.count, checksum: combined!.checksum };
}
