import type { TimeWindow } from '../domain.js';
import type { Sql } from './connect.js';
import { validateSchemaName } from './schema.js';

/**
 * Per stored chat, the span of time for which every message is stored (`chat_sync`); `forms`, per stored
 * chat and id WAHA listed it under, the span that id was read for (`chat_sync_forms`, see formKey).
 */
export type SyncMarks = ReadonlyMap<string, TimeWindow> & {
  readonly forms?: ReadonlyMap<string, TimeWindow>;
};

/** The key of a listed id's span in `SyncMarks.forms`. */
export function formKey(chatId: string, listedId: string): string {
  return `${chatId}\n${listedId}`;
}

/**
 * Reads what `chat_sync` and `chat_sync_forms` know of a session. Incremental runs fetch each chat from
 * the end of its span (minus an overlap); a chat listed under two ids, from the end of each id's own.
 */
export async function loadSyncMarks(sql: Sql, schema: string, session: string): Promise<SyncMarks> {
  validateSchemaName(schema);
  const rows = await sql<Array<{ chat_id: string; from_s: number; to_s: number }>>`
    select chat_id, synced_from_s::float8 as from_s, synced_to_s::float8 as to_s
    from ${sql(schema)}.chat_sync
    where session = ${session}`;
  const forms = await sql<Array<{ chat_id: string; listed_id: string; from_s: number; to_s: number }>>`
    select chat_id, listed_id, synced_from_s::float8 as from_s, synced_to_s::float8 as to_s
    from ${sql(schema)}.chat_sync_forms
    where session = ${session}`;
  return Object.assign(new Map(rows.map((row) => [row.chat_id, { fromS: row.from_s, toS: row.to_s }])), {
    forms: new Map(
      forms.map((row) => [formKey(row.chat_id, row.listed_id), { fromS: row.from_s, toS: row.to_s }]),
    ),
  });
}
