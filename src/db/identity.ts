import type { Sql } from './connect.js';
import { validateSchemaName } from './schema.js';

/**
 * Which database a checkpoint's commits went to. `instance` is the random token the schema got when its
 * tables were created (migration 4): a schema dropped and created again, another schema or another
 * database has another one. `systemIdentifier` is the PostgreSQL cluster's own identifier
 * (`pg_control_system()`), null where the role may not read it; it tells another cluster apart even
 * from a copy of this schema's rows.
 */
export interface DatabaseIdentity {
  instance: string;
  systemIdentifier: string | null;
}

/** What the database holds of one checkpoint's commits: counted inside every batch transaction. */
export interface CheckpointProgress {
  transactions: number;
  messages: number;
}

export async function databaseIdentity(sql: Sql, schema: string): Promise<DatabaseIdentity> {
  validateSchemaName(schema);
  const [row] = await sql<Array<{ token: string }>>`
    select token from ${sql(schema)}.instance order by created_at, token limit 1`;
  if (!row)
    throw new Error(`the table ${schema}.instance is empty: the schema was not created by waha-import`);
  let systemIdentifier: string | null = null;
  try {
    const [control] = await sql<Array<{ id: string | null }>>`
      select system_identifier::text as id from pg_control_system()`;
    systemIdentifier = control?.id ?? null;
  } catch {
    // Not permitted to this role (or not PostgreSQL itself): the schema's token still identifies it.
  }
  return { instance: row.token, systemIdentifier };
}

export async function loadCheckpointProgress(
  sql: Sql,
  schema: string,
  checkpointId: string,
): Promise<CheckpointProgress | undefined> {
  validateSchemaName(schema);
  // The sum of the checkpoint's slots (one per connection that wrote under it, see migration 7).
  const [row] = await sql<Array<{ transactions: string | null; messages: string | null }>>`
    select sum(transactions)::text as transactions, sum(messages)::text as messages
    from ${sql(schema)}.checkpoint_progress where checkpoint_id = ${checkpointId}`;
  return row && row.transactions !== null
    ? { transactions: Number(row.transactions), messages: Number(row.messages) }
    : undefined;
}
