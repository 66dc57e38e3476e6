import fs from 'node:fs/promises';
import { register } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type {
  EmbeddedPostgres,
  startEmbeddedPostgres as StartEmbeddedPostgres,
} from '../../src/db/embedded.js';

/**
 * Gives the test run a PostgreSQL: the one named by TEST_DATABASE_URL, or else an embedded server in a
 * fresh temporary directory, whose URL is exported so that every worker (started after this) sees it.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.TEST_DATABASE_URL) return;
  const startEmbeddedPostgres = await loadStartEmbeddedPostgres();
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'waha-import-test-'));
  // As root the server runs as the postgres user, which must be able to enter the directory.
  await fs.chmod(root, 0o755);
  let server: EmbeddedPostgres;
  try {
    server = await startEmbeddedPostgres({ dataDir: path.join(root, 'postgres') });
  } catch (error) {
    await fs.rm(root, { recursive: true, force: true });
    throw error;
  }
  process.env.TEST_DATABASE_URL = server.url;
  globalThis.__wahaImportTestDatabase = { stop: server.stop, root };
}

/**
 * Node loads this file itself, outside Jest's module system, so the sources' `.js` imports of `.ts` files
 * need the small loader next to this file.
 */
async function loadStartEmbeddedPostgres(): Promise<typeof StartEmbeddedPostgres> {
  register('./typescript-loader.mjs', import.meta.url);
  return (await import('../../src/db/embedded.js')).startEmbeddedPostgres;
}

declare global {
  // Handed from global setup to global teardown, which Jest runs in the same process.
  var __wahaImportTestDatabase: { stop(): Promise<void>; root: string } | undefined;
}
