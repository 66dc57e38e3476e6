import { UsageError } from '../errors.js';

/**
 * Schema names are interpolated as identifiers (`sql(schema)`), never as text, and are kept to plain
 * lower-case names so they never need quoting in the user's own queries either.
 */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export const DEFAULT_SCHEMA = 'waha';

/** Returns the name when it is a usable schema name; otherwise throws a UsageError naming `--schema`. */
export function validateSchemaName(name: string): string {
  // PostgreSQL reserves the pg_ prefix for its own schemas; CREATE SCHEMA would refuse it later.
  if (SCHEMA_NAME.test(name) && !name.startsWith('pg_') && name !== 'information_schema') return name;
  throw new UsageError(
    `--schema ${JSON.stringify(name)} is not a valid schema name.`,
    'Use 1 to 63 characters: lower-case letters, digits and underscores, not starting with a digit or pg_, and not information_schema (e.g. --schema waha).',
  );
}
