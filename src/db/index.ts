/** The PostgreSQL layer: connection (URL or embedded server), migrations, batch writer, run history. */
export { isConnectionGone, openDatabase, toDatabaseError } from './connect.js';
export type { Database, ErrorContext, OpenDatabaseOptions, Sql } from './connect.js';
export { defaultDataDir, passwordFileFor, startEmbeddedPostgres } from './embedded.js';
export type { EmbeddedPostgres, EmbeddedPostgresOptions } from './embedded.js';
export { DEFAULT_SCHEMA, validateSchemaName } from './schema.js';
export { LATEST_SCHEMA_VERSION, migrate } from './migrate.js';
export { createBatchWriter, MAX_PARAMETERS_PER_STATEMENT } from './writer.js';
export type { BatchWriterOptions } from './writer.js';
export { createRunLog } from './runs.js';
export type { RunFinish, RunLogStore, RunRecord, RunStart, RunStatus } from './runs.js';
export { databaseChecksum } from './checksum.js';
export type { DatabaseChecksum } from './checksum.js';
export { cleanJson, cleanText, isStorableText, REPLACEMENT_CHARACTER } from './text.js';
export { acquireImportLock } from './lock.js';
export { loadSyncMarks } from './sync.js';
export type { AdvisoryLock } from './lock.js';
export { databaseIdentity, loadCheckpointProgress } from './identity.js';
export type { CheckpointProgress, DatabaseIdentity } from './identity.js';
