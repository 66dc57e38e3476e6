import fs from 'node:fs/promises';

/** Stops the embedded server started by global setup, if it started one, and removes its directory. */
export default async function globalTeardown(): Promise<void> {
  const database = globalThis.__wahaImportTestDatabase;
  if (!database) return;
  globalThis.__wahaImportTestDatabase = undefined;
  try {
    await database.stop();
  } finally {
    await fs.rm(database.root, { recursive: true, force: true });
  }
}
