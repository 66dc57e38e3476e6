import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import type { Sql } from '../../src/db/connect.js';

/** The database the tests use: TEST_DATABASE_URL, set by the caller or by global setup. */
export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url)
    throw new Error('TEST_DATABASE_URL is not set: run the tests through Jest, whose global setup sets it.');
  return url;
}

export interface TestDatabase {
  /** A pool on TEST_DATABASE_URL, open for the whole test file. */
  readonly sql: Sql;
  /** This test's own schema name: unique, not yet created, dropped after the test. */
  readonly schema: string;
  /** Another unique schema name, also dropped after the test. */
  newSchema(): string;
}

/**
 * Call once at the top of a test file (it registers the hooks). Every test gets a uniquely named schema,
 * so test files can run in parallel on one database and never see each other's rows.
 */
export function useTestDatabase(options: { maxConnections?: number } = {}): TestDatabase {
  let sql: Sql | undefined;
  let schema: string | undefined;
  let toDrop: string[] = [];

  const newSchema = (): string => {
    const name = `test_${process.pid}_${randomBytes(5).toString('hex')}`;
    toDrop.push(name);
    return name;
  };

  beforeAll(() => {
    sql = postgres(testDatabaseUrl(), { max: options.maxConnections ?? 4, onnotice: () => {} });
  });
  beforeEach(() => {
    schema = newSchema();
  });
  afterEach(async () => {
    const names = toDrop;
    toDrop = [];
    schema = undefined;
    for (const name of names) await sql!`drop schema if exists ${sql!(name)} cascade`;
  });
  afterAll(async () => {
    await sql?.end({ timeout: 5 });
  });

  return {
    get sql() {
      if (!sql) throw new Error('useTestDatabase(): the connection opens in beforeAll');
      return sql;
    },
    get schema() {
      if (!schema) throw new Error('useTestDatabase(): the schema is assigned in beforeEach');
      return schema;
    },
    newSchema,
  };
}
