/**
 * A WAHA simulator: a real `node:http` server with a seeded history, latency, limited capacity and faults.
 * Tests and the benchmark talk to it over real sockets, exactly as the importer talks to WAHA.
 */

import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  appendMessages,
  appendRevokeRow,
  deleteMessage,
  DEFAULT_DATASET_OPTIONS,
  findMessage,
  generateDataset,
  relinkChat,
  toCus,
  type Dataset,
  type DatasetOptions,
  type WaMessage,
} from './dataset.js';
import { LidBook, resolveProfile, versionInfo, type EngineProfile, type LidMapping } from './engines.js';
import {
  FaultPlan,
  isContentFault,
  spoilFirstItem,
  type BodyFailure,
  type FaultRoute,
  type ScriptedFailure,
} from './faults.js';
import { Gate } from './gate.js';
import { substream } from './random.js';
import {
  allChatsJson,
  canonicalChatId,
  coreTierOnlyDefault,
  ENGINES,
  lidsRoute,
  listChats,
  listMessages,
  messagesQueryFacts,
  notWorking,
  resolveChat,
  servedInWindow,
  SESSION_STATUSES,
  sessionDoesNotExist,
  sessionJson,
  sessionNotFound,
  sessionNotRunning,
  type Engine,
  type MeInfo,
  type Reply,
  type SessionStatus,
  type SimSession,
} from './routes.js';
import { engineMessage, meId, messageChatId, servedPersonId } from './shapes.js';

export type { Engine, MeInfo, SessionStatus } from './routes.js';
export type { ChatOrder, EngineProfile, HiddenRows, LidMapping, RevokeEffect, TieOrder } from './engines.js';
export { ENGINE_PROFILES, SIM_WAHA_VERSION } from './engines.js';
export type { EngineMessage } from './shapes.js';
export type { BodyFailure, BodyFaultKind, FaultRoute, ScriptedFailure, StatusFailure } from './faults.js';
export { BODY_FAULT_KINDS, YEAR_3000_S } from './faults.js';

export interface SimSessionOptions {
  name: string;
  /** Default 'WORKING'. */
  status?: SessionStatus;
  /** The history to serve; copied (unless `copyDataset` is false), so the caller's object never changes. */
  dataset?: Dataset;
  /**
   * Default true. false: the simulator takes `dataset` as its own instead of copying it, and changes it
   * as the history changes; the caller must not use it afterwards. A million-message copy takes a minute.
   */
  copyDataset?: boolean;
  /** Used to generate the history when `dataset` is absent. Default: DEFAULT_DATASET_OPTIONS. */
  datasetOptions?: Partial<DatasetOptions>;
  /** Who the session is logged in as. Default: the dataset's `me`. */
  me?: MeInfo | null;
  /** This session's engine (WAHA Plus can run sessions on different engines). Default: the server's. */
  engine?: Engine;
  /** Knobs over the session engine's profile, on top of the server's `profile` overrides. */
  profile?: Partial<EngineProfile>;
}

export interface SimulatorOptions {
  /** Default '127.0.0.1'. */
  host: string;
  /** Default 0 (any free port; read it back from `Simulator.port`). */
  port: number;
  /**
   * The engine profile to imitate (see engines.ts): NOWEB (no hidden rows, shuffled pages, JID chat ids),
   * GOWS (@lid people, short pages, null timestamps) or WEBJS (object chat ids, newest first only, no
   * lids). Also the default engine `/api/server/version` reports. Default 'NOWEB'.
   */
  engine: Engine;
  /** Knobs over the engine's profile, to model a specific WAHA version. Default {}. */
  profile: Partial<EngineProfile>;
  /** Default: one WORKING session named 'default' with the default dataset. */
  sessions: SimSessionOptions[];
  /**
   * When set, requests without this exact `X-Api-Key` get 401. Default: unset, and then anything is
   * accepted: convenient for tests, but NOT what real WAHA does (started without a key it generates a
   * random one; only WAHA_NO_API_KEY turns auth off).
   */
  apiKey?: string;
  /** Median delay before each API request is answered. Default 0. */
  latencyMs: number;
  /** Delays spread uniformly over latencyMs ± jitterMs (never below 0). Default 0. */
  jitterMs: number;
  /** Requests served at once; the rest wait in a FIFO queue. Default Infinity. */
  capacity: number;
  /** Requests allowed to wait; past it, an immediate 503. Default Infinity. */
  queueLimit: number;
  /** Seeds jitter and random faults, so a run can be replayed. Default 1. */
  faultSeed: number;
  /** Share of chat-list/message requests answered with WAHA's 500. Default 0. */
  errorRate: number;
  /** Share of chat-list/message requests answered with a proxy's 429. Default 0. */
  rateLimitRate: number;
  /** `Retry-After` seconds sent with random 429s. Default 1. */
  retryAfterS: number;
  /** Share of chat-list/message requests accepted and never answered. Default 0. */
  timeoutRate: number;
  /** How long a never-answered request is held before its socket is destroyed. Default 60000. */
  hangMs: number;
  /**
   * Largest accepted messages `limit`; above it, 400. WAHA itself sets no maximum: this is the cap of the
   * proxy in front of the deployment this project targets (100). Infinity for no cap. Default 100.
   */
  maxPageSize: number;
  /**
   * How long chat routes hang before their 422 when the session is unknown, stopped or not WORKING (real
   * WAHA: ~5 s unknown/stopped, ~10 s not WORKING). Default 0.
   */
  notWorkingDelayMs: number;
  /** A hostile server: these routes answer every page as if `offset` were 0. Default []. */
  ignoreOffset: readonly FaultRoute[];
  /**
   * Seconds WAHA's host clock runs ahead of this machine's (negative: behind). Its `Date` header, and the
   * time it dates anything at (#2139's request time), read that clock. Default 0.
   */
  clockOffsetS: number;
}

export const DEFAULT_SIMULATOR_OPTIONS: Readonly<SimulatorOptions> = Object.freeze<SimulatorOptions>({
  host: '127.0.0.1',
  port: 0,
  engine: 'NOWEB',
  profile: Object.freeze({}),
  sessions: [{ name: 'default', status: 'WORKING' }],
  apiKey: undefined,
  latencyMs: 0,
  jitterMs: 0,
  capacity: Infinity,
  queueLimit: Infinity,
  faultSeed: 1,
  errorRate: 0,
  rateLimitRate: 0,
  retryAfterS: 1,
  timeoutRate: 0,
  hangMs: 60_000,
  maxPageSize: 100,
  notWorkingDelayMs: 0,
  ignoreOffset: Object.freeze([]) as readonly FaultRoute[],
  clockOffsetS: 0,
});

export type StatsRoute = 'version' | 'sessions' | 'chats' | 'messages' | 'lids' | 'other';

export interface SimStats {
  /** API requests received (the `/__sim/*` routes are not counted). */
  requests: number;
  byRoute: Record<StatsRoute, number>;
  /** Requests holding a capacity slot right now (being delayed, served or hung). */
  inFlight: number;
  peakInFlight: number;
  queued: number;
  peakQueued: number;
  /** Requests turned away because the queue was full. */
  rejected503: number;
  faults: { error: number; rateLimit: number; timeout: number };
  /** Message requests that would make WAHA download media (downloadMedia absent or not false). */
  downloadMediaNotFalse: number;
  /** Largest `limit` any message request asked for (absent counts as WAHA's default 10); 0 before any. */
  maxLimitSeen: number;
  /** Responses sent, by HTTP status. */
  byStatus: Record<string, number>;
  /** Scripted body faults applied (to 200 answers), by kind. */
  bodyFaults: Record<string, number>;
}

/** A chat-list or message request as the `onRequest` hooks see it. */
export interface SimRequest {
  route: FaultRoute;
  session: string;
  /**
   * Message requests only: the dataset's id of the chat asked for (`@c.us`, `@lid` or `@g.us`), whatever
   * form the request named it in (NOWEB's `@s.whatsapp.net`, GOWS's lid); the path's id when it names no
   * chat of the session.
   */
  chatId?: string;
  /** Message requests only: the chat id exactly as the request's path named it. */
  requestedChatId?: string;
  query: Record<string, string>;
}

/** Runs before the request is answered (after latency and before faults); the answer waits for it. */
export type RequestHook = (request: SimRequest) => void | Promise<void>;

/** One served message in engine-neutral terms, from the simulator's model (not from the served JSON). */
export interface ExpectedMessage {
  /** The serialized id as this engine serves it. */
  id: string;
  /** The short WhatsApp id: the same under every engine and every chat id of the person. */
  waId: string;
  /**
   * The canonical chat: `PHONE@c.us` for a person (whether served as `@c.us`, `@s.whatsapp.net` or a
   * `@lid` the lids endpoint maps), the `@lid` only when that endpoint cannot tell the phone (unknown
   * mapping, or an engine without it), `@g.us` for groups.
   */
  chatId: string;
  /** Who sent it, canonical like chatId: the participant in groups, `me.id` when fromMe, else the chat. */
  sender: string;
  fromMe: boolean;
  /** The true unix seconds (also when the engine serves null or leaves the field out). */
  timestampS: number;
  /** The group member who sent it, canonical; null outside groups and for my own messages. */
  participant: string | null;
}

export interface GroundTruth {
  /** Every chat as the chat list serves it without parameters (every chat, the engine's default order). */
  chats: unknown[];
  /**
   * Every visible message in the window (inclusive, true timestamps), in the engine's shape as served for
   * a request with `filter.timestamp.gte/lte` = window, merge=false and downloadMedia=false: by chat,
   * oldest first. Chats in the profile's `failingChats` are left out (no request can get them).
   * Typed as NOWEB's `WaMessage` for existing callers; on GOWS `timestamp` can be null and on WEBJS
   * absent (with a window), and `_data` is engine-specific: see `EngineMessage`.
   */
  messages: WaMessage[];
  /** One per entry of `messages`, same order. */
  expected: ExpectedMessage[];
  /** The lid mapping the session's lids endpoint knows (also the unknown ones, pn null). */
  lids: LidMapping[];
}

export interface Simulator {
  /** e.g. `http://127.0.0.1:41234` */
  readonly url: string;
  readonly port: number;
  stats(): SimStats;
  resetStats(): void;
  /** What a perfect import of `session` would hold; the window is inclusive, in unix seconds. */
  groundTruth(session: string, window?: { fromS: number; toS: number }): GroundTruth;
  /** Appends new visible messages to an existing chat at `atS`; returns them as they will be served. */
  addMessages(session: string, chatId: string, count: number, atS: number): WaMessage[];
  /**
   * Deletes a message row on every engine (shifts later offset pages); true when it existed. The id is the
   * serialized id in any engine's form, or the bare waId.
   */
  deleteMessage(session: string, messageId: string): boolean;
  /**
   * "Delete for everyone" as the session's engine stores it: NOWEB deletes the row (#1895), GOWS keeps it
   * and adds a hidden REVOKE row, WEBJS keeps it as `type: "revoked"` with body null. True when it existed.
   */
  revokeMessage(session: string, messageId: string): boolean;
  /** The session's lid mapping (what the lids endpoints know; pn null where they cannot tell). */
  lids(session: string): LidMapping[];
  setSessionStatus(name: string, status: SessionStatus): void;
  /**
   * The next `count` chat-list/message requests (or only `route`'s, or only `chatId`'s message requests,
   * `chatId` being the dataset's id or the id as requested)
   * fail as described: with a status, a timeout, or a body fault (`kind`).
   */
  failNext(count: number, failure: ScriptedFailure): void;
  /** Calls `hook` for every chat-list and message request; returns a function that removes it. */
  onRequest(hook: RequestHook): () => void;
  /**
   * Moves a person's chat to another id (e.g. `@c.us` to `@lid`); waIds stay, and the lids endpoint learns
   * that both ids are one person. With `fromS`, only messages at or after it move, to a new chat beside
   * the old one: the history is split (what `merge` joins). Returns the messages moved.
   */
  relinkChat(session: string, chatId: string, newChatId: string, options?: { fromS?: number }): number;
  /**
   * Stops listening and destroys open sockets, so nothing keeps the process alive. Rejects, once closed,
   * when serving a request threw (a request hook of a test, or a simulator bug): such a request was
   * answered 500, which a client that retries would otherwise hide.
   */
  close(): Promise<void>;
}

export function resolveSimulatorOptions(options: Partial<SimulatorOptions> = {}): SimulatorOptions {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const o: SimulatorOptions = { ...DEFAULT_SIMULATOR_OPTIONS, ...defined };
  const problems: string[] = [];
  if (!ENGINES.includes(o.engine)) problems.push(`engine must be one of ${ENGINES.join(', ')}`);
  else {
    try {
      resolveProfile(o.engine, o.profile);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) problems.push('port must be 0..65535');
  for (const key of ['latencyMs', 'jitterMs', 'hangMs', 'notWorkingDelayMs', 'retryAfterS'] as const) {
    if (!(o[key] >= 0) || !Number.isFinite(o[key])) problems.push(`${key} must be a finite number >= 0`);
  }
  if (!(o.capacity >= 1)) problems.push('capacity must be >= 1');
  if (!(o.queueLimit >= 0)) problems.push('queueLimit must be >= 0');
  if (!(o.maxPageSize >= 1)) problems.push('maxPageSize must be >= 1');
  if (!Number.isInteger(o.faultSeed)) problems.push('faultSeed must be an integer');
  for (const key of ['errorRate', 'rateLimitRate', 'timeoutRate'] as const) {
    if (!(o[key] >= 0 && o[key] <= 1)) problems.push(`${key} must be between 0 and 1`);
  }
  if (o.errorRate + o.rateLimitRate + o.timeoutRate > 1) {
    problems.push('errorRate + rateLimitRate + timeoutRate must not exceed 1');
  }
  if (!Number.isInteger(o.clockOffsetS)) problems.push('clockOffsetS must be an integer');
  if (o.sessions.length === 0) problems.push('sessions must not be empty');
  if (!Array.isArray(o.ignoreOffset) || o.ignoreOffset.some((r) => r !== 'chats' && r !== 'messages')) {
    problems.push('ignoreOffset must list only "chats" and "messages"');
  }
  const names = new Set<string>();
  for (const s of o.sessions) {
    if (!s.name) problems.push('every session needs a name');
    if (names.has(s.name)) problems.push(`session "${s.name}" is listed twice`);
    names.add(s.name);
    if (s.engine !== undefined && !ENGINES.includes(s.engine)) {
      problems.push(`session "${s.name}": engine must be one of ${ENGINES.join(', ')}`);
    }
    if (s.status !== undefined && !SESSION_STATUSES.includes(s.status)) {
      problems.push(`session "${s.name}": status must be one of ${SESSION_STATUSES.join(', ')}`);
    }
    // Pages are cut from each chat by binary search on the time (lookup.ts), which needs this order.
    const unsorted = s.dataset?.chats.find((c) =>
      c.messages.some((m, i) => i > 0 && m.timestampS < c.messages[i - 1]!.timestampS),
    );
    if (unsorted !== undefined) {
      problems.push(
        `session "${s.name}": the messages of chat ${unsorted.id} are not in timestamp order (oldest first); ` +
          'sort them, or change the dataset only through appendMessages, deleteMessage and relinkChat',
      );
    }
  }
  if (problems.length > 0) throw new RangeError(`invalid simulator options: ${problems.join('; ')}`);
  return o;
}

interface RouteMatch {
  stat: StatsRoute;
  name: 'version' | 'legacy-version' | 'sessions' | 'session' | 'lids' | FaultRoute | 'other';
  session?: string;
  chatId?: string;
  /** Lids routes: the path after `/lids`. */
  rest?: string[];
}

function matchRoute(method: string, pathname: string): RouteMatch {
  let parts: string[];
  try {
    parts = pathname
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
  } catch {
    return { stat: 'other', name: 'other' };
  }
  if (method !== 'GET' || parts[0] !== 'api') return { stat: 'other', name: 'other' };
  const [, first, second, third, fourth] = parts;
  if (parts.length === 2 && first === 'version') return { stat: 'version', name: 'legacy-version' };
  if (parts.length === 3 && first === 'server' && second === 'version') {
    return { stat: 'version', name: 'version' };
  }
  if (parts.length === 2 && first === 'sessions') return { stat: 'sessions', name: 'sessions' };
  if (parts.length === 3 && first === 'sessions')
    return { stat: 'sessions', name: 'session', session: second };
  if (parts.length === 3 && second === 'chats') return { stat: 'chats', name: 'chats', session: first };
  if (parts.length >= 3 && parts.length <= 5 && second === 'lids' && (parts.length < 5 || third === 'pn')) {
    return { stat: 'lids', name: 'lids', session: first, rest: parts.slice(3) };
  }
  if (parts.length === 5 && second === 'chats' && fourth === 'messages') {
    return { stat: 'messages', name: 'messages', session: first, chatId: third };
  }
  return { stat: 'other', name: 'other' };
}

function emptyStats(): Omit<SimStats, 'inFlight' | 'peakInFlight' | 'queued' | 'peakQueued'> {
  return {
    requests: 0,
    byRoute: { version: 0, sessions: 0, chats: 0, messages: 0, lids: 0, other: 0 },
    rejected503: 0,
    faults: { error: 0, rateLimit: 0, timeout: 0 },
    downloadMediaNotFalse: 0,
    maxLimitSeen: 0,
    byStatus: {},
    bodyFaults: {},
  };
}

export async function startSimulator(options: Partial<SimulatorOptions> = {}): Promise<Simulator> {
  const o = resolveSimulatorOptions(options);
  const serverProfile = resolveProfile(o.engine, o.profile);
  const sessions = new Map<string, SimSession>();
  for (const s of o.sessions) {
    const dataset = s.dataset
      ? s.copyDataset === false
        ? s.dataset
        : structuredClone(s.dataset)
      : generateDataset(s.datasetOptions ?? DEFAULT_DATASET_OPTIONS);
    const profile = resolveProfile(s.engine ?? o.engine, { ...o.profile, ...s.profile });
    sessions.set(s.name, {
      name: s.name,
      status: s.status ?? 'WORKING',
      dataset,
      me: s.me === undefined ? dataset.me : s.me,
      profile,
      lids: lidBookFor(dataset, profile),
      activity: new Map(),
    });
  }

  const gate = new Gate(o.capacity, o.queueLimit);
  const faults = new FaultPlan(o, o.faultSeed, versionInfo(serverProfile));
  let activitySerial = 0;
  const jitter = substream(o.faultSeed, 1);
  let counters = emptyStats();
  let baseUrl = '';

  const stats = (): SimStats => ({
    ...structuredClone(counters),
    inFlight: gate.inFlight,
    peakInFlight: gate.peakInFlight,
    queued: gate.queued,
    peakQueued: gate.peakQueued,
  });

  const serverNowMs = (): number => Date.now() + o.clockOffsetS * 1000;
  /**
   * A server stamps `Date` as it writes the headers (Node does, and WAHA behind it): after its latency,
   * not when the request came in, or a slow answer would read as a clock running behind.
   */
  const stampDate = (res: ServerResponse): void => {
    res.setHeader('date', new Date(serverNowMs()).toUTCString());
  };
  const send = (res: ServerResponse, reply: Reply, counted = true): void => {
    if (res.headersSent || res.destroyed) return;
    stampDate(res);
    const isText = typeof reply.body === 'string';
    const payload = Buffer.from(isText ? (reply.body as string) : JSON.stringify(reply.body), 'utf8');
    if (counted) counters.byStatus[reply.status] = (counters.byStatus[reply.status] ?? 0) + 1;
    res.writeHead(reply.status, {
      'content-type': isText ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8',
      'content-length': payload.length,
      ...reply.headers,
    });
    res.end(payload);
  };

  const delayMs = (): number => {
    if (o.jitterMs === 0) return o.latencyMs;
    return Math.max(0, Math.round(o.latencyMs + (jitter() * 2 - 1) * o.jitterMs));
  };

  /** Sends a 200 answer the way a scripted body fault says; resolves when done or the client left. */
  const sendFaulty = async (
    res: ServerResponse,
    reply: Reply,
    failure: Required<Omit<BodyFailure, 'route' | 'chatId'>>,
    signal: AbortSignal,
  ): Promise<void> => {
    if (reply.status !== 200) return send(res, reply);
    counters.bodyFaults[failure.kind] = (counters.bodyFaults[failure.kind] ?? 0) + 1;
    if (isContentFault(failure.kind))
      return send(res, { ...reply, body: spoilFirstItem(reply.body, failure.kind) });
    counters.byStatus[200] = (counters.byStatus[200] ?? 0) + 1;
    stampDate(res);
    const json = 'application/json; charset=utf-8';
    const payload = Buffer.from(JSON.stringify(reply.body), 'utf8');
    const half = payload.subarray(0, Math.floor(payload.length / 2));
    switch (failure.kind) {
      case 'malformed-json':
        res.writeHead(200, { 'content-type': json, 'content-length': half.length });
        res.end(half);
        return;
      case 'drop-body':
        res.writeHead(200, { 'content-type': json, 'content-length': payload.length });
        res.flushHeaders();
        // Destroyed once the first half has left, so the client sees headers and part of the body.
        await new Promise<void>((resolve) => res.write(half, () => resolve()));
        res.socket?.destroy();
        return;
      case 'slow-loris':
        res.writeHead(200, { 'content-type': json, 'content-length': payload.length });
        res.flushHeaders();
        for (let i = 0; i < payload.length; i++) {
          await sleep(failure.byteIntervalMs, undefined, { signal });
          res.write(payload.subarray(i, i + 1));
        }
        res.end();
        return;
      case 'huge-body': {
        // No content-length: the client can only find out by counting what arrives.
        res.writeHead(200, { 'content-type': json });
        const head = Buffer.from('[{"id":"false_0@c.us_HUGE","padding":"');
        const tail = Buffer.from('"}]');
        const chunk = Buffer.alloc(64 * 1024, 'x');
        if (!res.write(head)) await once(res, 'drain', { signal });
        for (let left = failure.hugeBytes - head.length - tail.length; left > 0; left -= chunk.length) {
          if (!res.write(left >= chunk.length ? chunk : chunk.subarray(0, left))) {
            await once(res, 'drain', { signal });
          }
        }
        res.end(tail);
        return;
      }
    }
  };

  const hooks = new Set<RequestHook>();
  /** What threw while serving (answered 500 "Simulator bug"), for close() to report. */
  const internalErrors: unknown[] = [];

  const lookup = (name: string): SimSession => {
    const session = sessions.get(name);
    if (!session) throw new RangeError(`no session named "${name}"`);
    return session;
  };

  async function serve(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    path: string,
    route: RouteMatch,
    signal: AbortSignal,
  ) {
    if (o.apiKey !== undefined && req.headers['x-api-key'] !== o.apiKey) {
      return send(res, { status: 401, body: { message: 'Unauthorized', statusCode: 401 } });
    }
    const notFound = (): void =>
      send(res, {
        status: 404,
        body: { message: `Cannot ${req.method} ${path}`, error: 'Not Found', statusCode: 404 },
      });
    switch (route.name) {
      case 'legacy-version':
        // Deprecated; a profile can model a server that removed it.
        if (!serverProfile.legacyVersionRoute) return notFound();
        return send(res, { status: 200, body: versionInfo(serverProfile) });
      case 'version':
        return send(res, { status: 200, body: versionInfo(serverProfile) });
      case 'sessions':
        return send(res, { status: 200, body: [...sessions.values()].map((s) => sessionJson(s)) });
      case 'session': {
        const session = sessions.get(route.session ?? '');
        return send(
          res,
          session ? { status: 200, body: sessionJson(session) } : sessionNotFound(route.session ?? ''),
        );
      }
      case 'other':
        return notFound();
      case 'lids': {
        const refusal = await sessionRefusal(route.session ?? '', signal);
        if (refusal) return send(res, refusal);
        return send(res, lidsRoute(lookup(route.session ?? ''), route.rest ?? [], url.searchParams));
      }
    }

    if (route.name === 'messages') {
      const facts = messagesQueryFacts(url.searchParams);
      counters.maxLimitSeen = Math.max(counters.maxLimitSeen, facts.limit);
      if (facts.downloadMedia) counters.downloadMediaNotFalse++;
    }
    const query = Object.fromEntries(url.searchParams);
    // Tests name chats by the dataset's ids; each engine names them its own way on the wire.
    const known = sessions.get(route.session ?? '');
    const chatIds =
      route.chatId === undefined
        ? {}
        : {
            chatId: (known && resolveChat(known, route.chatId)?.id) ?? route.chatId,
            requestedChatId: route.chatId,
          };
    for (const hook of [...hooks]) {
      await hook({ route: route.name, session: route.session ?? '', ...chatIds, query: { ...query } });
    }
    const fault = faults.next({
      route: route.name,
      ...chatIds,
      method: req.method ?? 'GET',
      path,
      query,
    });
    if (fault?.kind === 'timeout') {
      counters.faults.timeout++;
      await sleep(o.hangMs, undefined, { signal });
      res.socket?.destroy();
      return;
    }
    if (fault?.kind === 'reply') {
      counters.faults[fault.counter]++;
      return send(res, fault.reply);
    }
    const deliver = (reply: Reply): void | Promise<void> =>
      fault?.kind === 'body' ? sendFaulty(res, reply, fault.failure, signal) : send(res, reply);

    const refusal = await sessionRefusal(route.session ?? '', signal);
    if (refusal) return deliver(refusal);
    const session = lookup(route.session ?? '');
    if (o.ignoreOffset.includes(route.name)) url.searchParams.delete('offset');
    if (route.name === 'chats') return deliver(listChats(session, url.searchParams));
    return deliver(
      listMessages(session, route.chatId ?? '', url.searchParams, {
        maxPageSize: o.maxPageSize,
        baseUrl,
        nowMs: serverNowMs,
        request: { path, method: req.method ?? 'GET', query },
      }),
    );
  }

  /**
   * Why a session-scoped route cannot be served, after WAHA's wait: 422 for an unknown, stopped or not
   * WORKING session (never 404 on these routes), or a Core-tier name other than `default`.
   */
  async function sessionRefusal(name: string, signal: AbortSignal): Promise<Reply | undefined> {
    const session = sessions.get(name);
    let refusal: Reply | undefined;
    if (serverProfile.coreTier && name !== 'default') refusal = coreTierOnlyDefault(name);
    else if (!session) refusal = sessionDoesNotExist(name);
    else if (session.status === 'STOPPED') refusal = sessionNotRunning(name);
    else if (session.status !== 'WORKING') refusal = notWorking(session);
    if (refusal && o.notWorkingDelayMs > 0) await sleep(o.notWorkingDelayMs, undefined, { signal });
    return refusal;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    // Routes match the path as sent, as WAHA's router does: the URL parser would drop a chat id `..`.
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/__sim/stats') return send(res, { status: 200, body: stats() }, false);

    const route = matchRoute(req.method ?? 'GET', path);
    counters.requests++;
    counters.byRoute[route.stat]++;

    const aborter = new AbortController();
    // 'close' fires when the response is done or the client went away; either way, stop waiting.
    res.on('close', () => {
      if (!res.writableFinished) aborter.abort();
    });
    const admitted = gate.enter(aborter.signal);
    if (admitted === null) {
      counters.rejected503++;
      return send(res, {
        status: 503,
        body: { statusCode: 503, message: 'Simulator queue is full', error: 'Service Unavailable' },
      });
    }
    try {
      await admitted;
    } catch {
      return; // the client left while queued; it never held a slot
    }
    try {
      const waitMs = delayMs();
      if (waitMs > 0) await sleep(waitMs, undefined, { signal: aborter.signal });
      await serve(req, res, url, path, route, aborter.signal);
    } catch (error) {
      if (!aborter.signal.aborted) {
        // A request hook of a test, or the simulator itself, threw: a client that retries 500s would
        // hide it, so close() reports it.
        internalErrors.push(error);
        send(res, { status: 500, body: { statusCode: 500, message: String(error), error: 'Simulator bug' } });
      }
    } finally {
      gate.leave();
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  baseUrl = `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`;

  return {
    url: baseUrl,
    port,
    stats,
    resetStats() {
      counters = emptyStats();
      gate.resetPeaks();
    },
    groundTruth(name, window) {
      const session = lookup(name);
      const served = servedInWindow(session, window);
      const canonical = (id: string): string => canonicalChatId(session, id);
      const expected = served.map(({ chat, message }): ExpectedMessage => {
        const chatId = canonical(messageChatId(session, chat));
        const participantJid = message.raw._data.key.participant;
        const participant =
          chat.kind === 'group' && participantJid !== undefined
            ? canonical(servedPersonId(session, participantJid))
            : null;
        return {
          id: engineMessage(session, chat, message, { gteGiven: false }).id,
          waId: message.waId,
          chatId,
          sender: message.fromMe ? canonical(meId(session)) : (participant ?? chatId),
          fromMe: message.fromMe,
          timestampS: message.timestampS,
          participant,
        };
      });
      return structuredClone({
        chats: allChatsJson(session),
        messages: served.map((s) => s.served as WaMessage),
        expected,
        lids: session.lids.all(),
      });
    },
    addMessages(name, chatId, count, atS) {
      const session = lookup(name);
      const added = appendMessages(session.dataset, chatId, count, atS);
      const chat = session.dataset.chats.find((c) => c.id === chatId)!;
      // WhatsApp Web moves a chat that receives a message to the top of its list.
      if (count > 0) session.activity.set(chat, ++activitySerial);
      return structuredClone(
        added.map((m) => engineMessage(session, chat, m, { gteGiven: false }) as WaMessage),
      );
    },
    deleteMessage(name, messageId) {
      return deleteMessage(lookup(name).dataset, messageId);
    },
    revokeMessage(name, messageId) {
      return revokeSessionMessage(lookup(name), messageId);
    },
    lids(name) {
      return lookup(name).lids.all();
    },
    setSessionStatus(name, status) {
      if (!SESSION_STATUSES.includes(status)) throw new RangeError(`unknown session status ${status}`);
      lookup(name).status = status;
    },
    failNext(count, failure) {
      faults.script(count, failure);
    },
    onRequest(hook) {
      hooks.add(hook);
      return () => void hooks.delete(hook);
    },
    relinkChat(name, chatId, newChatId, options) {
      return relinkSessionChat(lookup(name), chatId, newChatId, options?.fromS);
    },
    async close() {
      await new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive and hung connections would otherwise hold close() open until they time out.
        server.closeAllConnections();
      });
      if (internalErrors.length > 0) {
        throw new Error(
          `the simulator answered ${internalErrors.length} request(s) 500 because its own code or a request ` +
            `hook threw; the first: ${String(internalErrors[0])}`,
          { cause: internalErrors[0] },
        );
      }
    },
  };
}

/** `Simulator.revokeMessage` on one session: what the session's engine does to a revoked message. */
export function revokeSessionMessage(session: SimSession, messageId: string): boolean {
  const found = findMessage(session.dataset, messageId);
  if (!found) return false;
  switch (session.profile.revoke) {
    case 'delete-row':
      return deleteMessage(session.dataset, messageId);
    case 'protocol-row':
      appendRevokeRow(session.dataset, found.chat, found.message);
      return true;
    case 'revoked-placeholder':
      found.message.revoked = true;
      return true;
  }
}

/** `Simulator.relinkChat` on one session: the chat moves, and the lids endpoint learns both ids. */
export function relinkSessionChat(
  session: SimSession,
  chatId: string,
  newChatId: string,
  fromS?: number,
): number {
  // The person's phone, before the chat moves (a @lid chat may have none the server knows).
  const phone = chatId.endsWith('@lid') ? session.lids.phoneOf(chatId) : chatId;
  const moved = relinkChat(session.dataset, chatId, newChatId, fromS);
  const lid = [chatId, newChatId].find((id) => id.endsWith('@lid'));
  const pn = newChatId.endsWith('@c.us') ? newChatId : phone;
  if (lid !== undefined && pn !== null) session.lids.link(lid, pn);
  return moved;
}

/** Every person of the dataset gets a lid; dataset `@lid` ids are people whose phone the server cannot tell. */
export function lidBookFor(dataset: Dataset, profile: EngineProfile): LidBook {
  const book = new LidBook(dataset.options.seed, profile.unknownLidShare);
  const meet = (id: string): void => {
    const cus = toCus(id);
    if (cus.endsWith('@lid')) book.addUnknown(cus);
    else if (cus.endsWith('@c.us')) book.lidOf(cus);
  };
  for (const chat of dataset.chats) {
    if (chat.kind === 'group') chat.participants.forEach((p) => meet(p.jid));
    else meet(chat.id);
  }
  return book;
}
