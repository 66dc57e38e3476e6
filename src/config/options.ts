/**
 * Every setting the tool takes, in one table: its flag, environment variable, .importrc key, default and
 * parser. Commander declares the flags from this table without defaults; `resolveOptions` merges
 * defaults < .importrc < environment < flags in one place and reports every problem at once.
 */

export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

export interface OptionSpec<T> {
  /** camelCase: the .importrc key and commander's attribute name. */
  key: string;
  /** e.g. `--page-size <n>`; a flag without an argument is a switch. */
  flag: string;
  env?: string;
  description: string;
  defaultValue?: T;
  /** Never printed, logged or recorded. */
  secret?: boolean;
  parse(raw: unknown): Parsed<T>;
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(problem: string): Parsed<T> => ({ ok: false, problem });

export function integer(min: number, max: number): (raw: unknown) => Parsed<number> {
  return (raw) => {
    const text = String(raw).trim();
    if (!/^-?\d+$/.test(text))
      return bad(`must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    const value = Number(text);
    if (value < min || value > max) return bad(`must be from ${min} to ${max}, got ${value}`);
    return ok(value);
  };
}

export function oneOf<T extends string>(values: readonly T[]): (raw: unknown) => Parsed<T> {
  return (raw) =>
    values.includes(raw as T)
      ? ok(raw as T)
      : bad(`must be one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
}

export function text(pattern?: RegExp, patternHelp?: string): (raw: unknown) => Parsed<string> {
  return (raw) => {
    if (typeof raw !== 'string' || raw.trim() === '') return bad(`must be a non-empty string`);
    if (pattern && !pattern.test(raw))
      return bad(`${patternHelp ?? `must match ${pattern}`}, got ${JSON.stringify(raw)}`);
    return ok(raw);
  };
}

export function boolean(raw: unknown): Parsed<boolean> {
  if (typeof raw === 'boolean') return ok(raw);
  const value = String(raw).trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return ok(true);
  if (['0', 'false', 'no', 'off', ''].includes(value)) return ok(false);
  return bad(`must be true or false, got ${JSON.stringify(raw)}`);
}

export function httpUrl(raw: unknown): Parsed<string> {
  if (typeof raw !== 'string') return bad('must be a URL such as http://localhost:3000');
  try {
    const url = new URL(raw);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      return bad(`must start with http:// or https://`);
    // Credentials in the URL would end up in messages and logs: the key goes in --api-key instead.
    if (url.username || url.password) {
      return bad(
        'must not hold a user name or password (user:password@host); give the key with --api-key, WAHA_API_KEY or WAHA_API_KEY_FILE',
      );
    }
    return ok(raw);
  } catch {
    return bad(`is not a URL (expected something like http://localhost:3000)`);
  }
}

export function postgresUrl(raw: unknown): Parsed<string> {
  if (typeof raw !== 'string') return bad('must be a URL such as postgres://user:password@host:5432/db');
  try {
    const url = new URL(raw);
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
      return bad('must start with postgres:// or postgresql://');
    }
    return ok(raw);
  } catch {
    return bad('is not a URL (expected postgres://user:password@host:5432/db)');
  }
}

/** An instant as ISO 8601 (`2026-10-01`, `2026-10-01T12:00:00Z`) or unix seconds; returned as unix seconds. */
export function instant(raw: unknown): Parsed<number> {
  const value = String(raw).trim();
  if (/^\d{9,11}$/.test(value)) return ok(Number(value));
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)) {
    // A bare date or a time without offset is read as UTC, so cron on any server means the same window.
    const iso = /[T ]/.test(value) && !/(Z|[+-]\d{2}:?\d{2})$/.test(value) ? `${value}Z` : value;
    const ms = Date.parse(iso.replace(' ', 'T'));
    // Date.parse rolls 2026-02-30 over to March 2: a date that does not exist is refused instead.
    const [year, month, day] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
    const calendar = new Date(Date.UTC(year, month - 1, day));
    const real =
      calendar.getUTCFullYear() === year &&
      calendar.getUTCMonth() === month - 1 &&
      calendar.getUTCDate() === day;
    if (!real) return bad(`names a day that does not exist: ${JSON.stringify(raw)}`);
    if (!Number.isNaN(ms)) return ok(Math.floor(ms / 1000));
  }
  return bad(
    `must be a date like 2026-10-01, a time like 2026-10-01T12:00:00Z, or unix seconds; got ${JSON.stringify(raw)}`,
  );
}

export interface ResolvedOption<T> {
  value: T | undefined;
  /** Where the value came from, for messages: `--days`, `WAHA_URL`, `.importrc key "days"`, or `default`. */
  source: string;
}

export interface ResolveInput {
  flags: Record<string, unknown>;
  env: NodeJS.ProcessEnv;
  file?: { path: string; values: Record<string, unknown> } | undefined;
}

export function flagName(spec: OptionSpec<unknown>): string {
  return spec.flag.split(/[ ,]/)[0]!;
}

/** Merges one table of specs; returns values by key and every problem found, each naming its source. */
export function resolveOptions(
  specs: ReadonlyArray<OptionSpec<unknown>>,
  input: ResolveInput,
): { values: Record<string, ResolvedOption<unknown>>; problems: string[] } {
  const values: Record<string, ResolvedOption<unknown>> = {};
  const problems: string[] = [];
  for (const spec of specs) {
    let raw: unknown;
    let source = 'default';
    const fileValue = input.file?.values[spec.key];
    if (fileValue !== undefined) {
      raw = fileValue;
      source = `${input.file!.path} key "${spec.key}"`;
    }
    const envValue = spec.env ? input.env[spec.env] : undefined;
    if (envValue !== undefined && envValue !== '') {
      raw = envValue;
      source = spec.env!;
    }
    const flagValue = input.flags[spec.key];
    if (flagValue !== undefined) {
      raw = flagValue;
      source = flagName(spec);
    }
    if (raw === undefined) {
      values[spec.key] = { value: spec.defaultValue, source };
      continue;
    }
    const parsed = spec.parse(raw);
    if (parsed.ok) values[spec.key] = { value: parsed.value, source };
    else {
      problems.push(`${source} ${parsed.problem}`);
      values[spec.key] = { value: undefined, source };
    }
  }
  if (input.file) {
    const known = new Set(specs.map((s) => s.key));
    for (const key of Object.keys(input.file.values)) {
      if (!known.has(key) && !key.startsWith('$') && !key.startsWith('//')) {
        problems.push(
          `${input.file.path} has an unknown key "${key}" (known keys: ${[...known].join(', ')})`,
        );
      }
    }
  }
  return { values, problems };
}

/** The help line for a spec: description, default and environment variable. */
/** A default as help shows it: `unlimited` rather than Infinity, lists as a,b. */
function shownDefault(value: unknown): string {
  return value === Infinity ? 'unlimited' : String(value);
}

export function helpText(spec: OptionSpec<unknown>): string {
  const extras: string[] = [];
  if (spec.defaultValue !== undefined && !spec.secret)
    extras.push(`default: ${shownDefault(spec.defaultValue)}`);
  if (spec.env) extras.push(`env: ${spec.env}`);
  return extras.length ? `${spec.description} (${extras.join(', ')})` : spec.description;
}
