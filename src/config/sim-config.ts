import { UsageError } from '../errors.js';
import type { DatasetOptions, SimulatorOptions } from '../sim/index.js';
import { integer, oneOf, resolveOptions, text, type OptionSpec, type Parsed } from './options.js';

function rate(raw: unknown): Parsed<number> {
  const value = Number(String(raw).trim());
  if (String(raw).trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) {
    return {
      ok: false,
      problem: `must be a share from 0 to 1 (e.g. 0.05 for 5%), got ${JSON.stringify(raw)}`,
    };
  }
  return { ok: true, value };
}

function limit(raw: unknown): Parsed<number> {
  if (String(raw).trim().toLowerCase() === 'unlimited') return { ok: true, value: Infinity };
  return integer(1, 1_000_000)(raw);
}

/** The simulator's knobs as flags: `waha-import sim` takes them, and so does `bench`. */
export const SIM_OPTIONS: ReadonlyArray<OptionSpec<unknown>> = [
  {
    key: 'chats',
    flag: '--chats <n>',
    description: 'chats in the dataset',
    defaultValue: 1172,
    parse: integer(1, 1_000_000),
  },
  {
    key: 'messages',
    flag: '--messages <n>',
    description: 'visible messages in the dataset',
    defaultValue: 5683,
    parse: integer(1, 100_000_000),
  },
  {
    key: 'days',
    flag: '--days <n>',
    description: 'days the history spans',
    defaultValue: 30,
    parse: integer(2, 36_500),
  },
  {
    key: 'seed',
    flag: '--seed <n>',
    description: 'dataset seed',
    defaultValue: 1,
    parse: integer(0, 2 ** 31),
  },
  {
    key: 'engine',
    flag: '--engine <name>',
    description:
      'engine profile to imitate: NOWEB (full pages, shuffled within; JID chat ids), ' +
      'GOWS (@lid people, short pages, some null timestamps), WEBJS (object chat ids, newest first only, no lids)',
    defaultValue: 'NOWEB',
    parse: oneOf(['NOWEB', 'GOWS', 'WEBJS'] as const),
  },
  {
    key: 'apiKey',
    flag: '--api-key <key>',
    description: 'require this X-Api-Key (without it the simulator is open, unlike real WAHA)',
    secret: true,
    parse: text(),
  },
  {
    key: 'latencyMs',
    flag: '--latency-ms <ms>',
    description: 'median latency per request',
    defaultValue: 0,
    parse: integer(0, 600_000),
  },
  {
    key: 'jitterMs',
    flag: '--jitter-ms <ms>',
    description: 'latency spread (±)',
    defaultValue: 0,
    parse: integer(0, 600_000),
  },
  {
    key: 'capacity',
    flag: '--capacity <n>',
    description: 'requests served at once; the rest queue ("unlimited" for no limit)',
    defaultValue: Infinity,
    parse: limit,
  },
  {
    key: 'queueLimit',
    flag: '--queue-limit <n>',
    description: 'requests allowed to queue; past it, 503 ("unlimited" for no limit)',
    defaultValue: Infinity,
    parse: limit,
  },
  {
    key: 'errorRate',
    flag: '--error-rate <share>',
    description: 'share of requests answered 500',
    defaultValue: 0,
    parse: rate,
  },
  {
    key: 'rateLimitRate',
    flag: '--rate-limit-rate <share>',
    description: 'share of requests answered 429 with Retry-After',
    defaultValue: 0,
    parse: rate,
  },
  {
    key: 'retryAfterS',
    flag: '--retry-after <s>',
    description: 'Retry-After seconds on 429',
    defaultValue: 1,
    parse: integer(0, 3600),
  },
  {
    key: 'timeoutRate',
    flag: '--timeout-rate <share>',
    description: 'share of requests never answered',
    defaultValue: 0,
    parse: rate,
  },
];

export interface SimConfig {
  simulator: Partial<SimulatorOptions>;
  dataset: Partial<DatasetOptions>;
}

/** Only the knobs given by flag are set; the simulator's own defaults fill in the rest. */
export function resolveSimConfig(
  flags: Record<string, unknown>,
  base: SimConfig = { simulator: {}, dataset: {} },
): SimConfig {
  const { values, problems } = resolveOptions(SIM_OPTIONS, { flags, env: {} });
  if (problems.length)
    throw new UsageError(problems, 'Run `waha-import sim --help` for the simulator flags.');
  const given = (key: string): unknown =>
    values[key]!.source === 'default' ? undefined : values[key]!.value;
  const pick = (keys: string[]): Record<string, unknown> =>
    Object.fromEntries(keys.map((k) => [k, given(k)]).filter(([, v]) => v !== undefined));
  return {
    simulator: {
      ...base.simulator,
      ...pick([
        'engine',
        'apiKey',
        'latencyMs',
        'jitterMs',
        'capacity',
        'queueLimit',
        'errorRate',
        'rateLimitRate',
        'retryAfterS',
        'timeoutRate',
      ]),
    },
    dataset: { ...base.dataset, ...pick(['chats', 'messages', 'days', 'seed']) },
  };
}
