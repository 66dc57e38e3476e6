import type { TimeWindow } from '../domain.js';
import type { Sql } from './connect.js';
import { validateSchemaName } from './schema.js';

/**
 * Reads what `chat_sync` knows of a session: per chat, the span of time for which every message is
 * stored. Incremental runs fetch each chat from the end of its span (minus an overlap).
 */
export async function loadSyncMarks(
  sql: Sql,
  schema: string,
  session: string,
): Promise<Map<string, TimeWindow>> {
  validateSchemaName(schema);
  const rows = await sql<Array<{ chat_id: string; from_s: number; to_s: number }>>`
    select chat_id, synced_from_s::float8 as from_s, synced_to_s::float8 as to_s
    from ${sql(schema)}.chat_sync
    where session = ${session}`;
  return new Map(rows.map((row) => [row.chat_id, { fromS: row.from_s, toS: row.to_s }]));
}
