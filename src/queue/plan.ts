import { createHash, randomUUID } from 'node:crypto';
import type PgBoss from 'pg-boss';
import { incrementalOf, type WindowRequest } from '../checkpoint/checkpoint.js';
import type { Sql } from '../db/connect.js';
import type { ChatKind, ChatRecord, TimeWindow } from '../domain.js';
import { WahaRefusedError } from '../errors.js';
import { createFailedChatStore } from '../db/failed-chats.js';
import {
  checkSession,
  CONTINUE_OVERLAP_S,
  lidsAndChats,
  otherFormsNote,
  unlistedFailedNote,
  unlistedFailedWarning,
} from '../import/runner.js';
import { formatCount, formatWindow } from '../import/summary.js';
import type { Reporter } from '../report/reporter.js';
import type { StrategyName } from '../strategies/types.js';
import { redactUrl } from '../util/redact.js';
import type { WahaClient } from '../waha/client.js';
import { bossTxDb, bossSchema, UNIT_QUEUE } from './boss.js';

/** The priority of a plan's first job; each later job one less (pg-boss takes higher priorities first). */
const PRIORITY_TOP = 100_000;

/** What `enqueue` (and a schedule's firing) is asked to plan; never a secret in it (it is stored). */
export interface PlanRequest {
  wahaUrls: string[];
  /** Session names, or every session WAHA lists as WORKING. */
  sessions: string[] | 'all';
  windowRequest: WindowRequest;
  strategy: StrategyName;
  chunk: number;
  batchSize: number;
  flushMs: number;
  pageSize: number;
  pageEnd: 'auto' | 'empty' | 'short';
  emptyPages: number;
  /** Time slices per chat (src/import/slices.ts); jobs queued before slicing existed carry none: 1. */
  maxSlices: number;
  chatPageSize: number;
  /** The most chats one job holds. */
  chatsPerJob: number;
  /** Seconds a job may stay active before pg-boss expires it and another worker takes it over. */
  jobTimeoutS: number;
  /** Attempts after the first that pg-boss makes of a failed or expired job. */
  jobRetries: number;
}

/** A chat as a job carries it (JSON: the date as text). */
export interface QueuedChat {
  id: string;
  chatId: string;
  name: string | null;
  kind: ChatKind;
  lastActivityAt: string | null;
  raw: unknown;
  /** ChatRecord.unlisted; absent in jobs queued before it existed. */
  unlisted?: true;
}

/** The data of one unit's job: everything a worker needs but the API key, which each worker has itself. */
export interface UnitJobData extends Pick<
  PlanRequest,
  'strategy' | 'chunk' | 'batchSize' | 'flushMs' | 'pageSize' | 'pageEnd' | 'emptyPages'
> {
  maxSlices?: number;
  planId: number;
  unit: number;
  wahaUrl: string;
  session: string;
  window: TimeWindow;
  incremental: { overlapS: number } | null;
  chats: QueuedChat[];
}

export interface PlannedSession {
  wahaUrl: string;
  session: string;
  /** The plan added now, or the one still waiting or running that made this enqueue a no-op. */
  planId: number;
  added: boolean;
  units: number;
  chats: number;
  window: TimeWindow;
}

/** Resolves a window request at the moment of planning: `--days` counts back from now. */
export function resolveWindow(request: WindowRequest, nowMs: number): TimeWindow {
  const toS = request.untilS ?? Math.floor(nowMs / 1000);
  // WAHA refuses a negative filter.timestamp.gte (HTTP 400), and nothing is older than 1970 anyway.
  const fromS = Math.max(0, request.sinceS ?? toS - (request.days ?? 30) * 86_400);
  return { fromS, toS };
}

/**
 * What makes two enqueues "the same plan": the server, the session, the window as asked (`--days 30`,
 * not the seconds it resolves to), and every setting that shapes the import. While such a plan still
 * has a job waiting or running, enqueueing it again adds nothing.
 */
export function planKey(request: PlanRequest, wahaUrl: string, session: string): string {
  const canonical = JSON.stringify({
    wahaUrl: redactUrl(wahaUrl),
    session,
    ...sortKeys(planOptions(request)),
  });
  return createHash('sha256').update(canonical).digest('hex');
}

function sortKeys(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => {
        const inner = value[key];
        return [
          key,
          inner && typeof inner === 'object' && !Array.isArray(inner)
            ? sortKeys(inner as Record<string, unknown>)
            : inner,
        ];
      }),
  );
}

/**
 * Chats into units of at most `chatsPerJob`, the most recently active first: the chats most likely to
 * hold many messages start early, and no job holds more than a bounded share of the work, so a job's
 * expiry (the takeover time after a worker dies) can stay short.
 */
export function groupChats(chats: readonly ChatRecord[], chatsPerJob: number): ChatRecord[][] {
  const ordered = [...chats].sort(
    (a, b) => (b.lastActivityAt?.getTime() ?? 0) - (a.lastActivityAt?.getTime() ?? 0) || cmp(a.id, b.id),
  );
  const units: ChatRecord[][] = [];
  for (let i = 0; i < ordered.length; i += chatsPerJob) units.push(ordered.slice(i, i + chatsPerJob));
  return units;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function queuedChat(chat: ChatRecord): QueuedChat {
  return {
    id: chat.id,
    chatId: chat.chatId,
    name: chat.name,
    kind: chat.kind,
    lastActivityAt: chat.lastActivityAt?.toISOString() ?? null,
    // A job's data is JSON: the chat goes as the value its bytes hold.
    raw:
      chat.rawJson === undefined
        ? (chat.raw ?? null)
        : (JSON.parse(chat.rawJson.toString('utf8')) as unknown),
    ...(chat.unlisted ? { unlisted: true as const } : {}),
  };
}

export function chatFromQueue(session: string, chat: QueuedChat): ChatRecord {
  return {
    session,
    id: chat.id,
    chatId: chat.chatId,
    name: chat.name,
    kind: chat.kind,
    lastActivityAt: chat.lastActivityAt === null ? null : new Date(chat.lastActivityAt),
    raw: chat.raw,
    ...(chat.unlisted ? { unlisted: true as const } : {}),
  };
}

export interface PlanContext {
  sql: Sql;
  schema: string;
  boss: PgBoss;
  /** A WAHA client per server (the caller gives each its API key). */
  wahaFor(url: string): WahaClient;
  reporter: Reporter;
  signal: AbortSignal;
  nowMs: number;
}

/**
 * Lists the chats of each session and stores the plan: its row, one row and one pg-boss job per unit,
 * all in one transaction, so a plan is either queued whole or not at all.
 */
export async function planImport(
  context: PlanContext,
  request: PlanRequest,
  trigger: string,
): Promise<PlannedSession[]> {
  const { reporter, signal } = context;
  const window = resolveWindow(request.windowRequest, context.nowMs);
  const planned: PlannedSession[] = [];
  for (const wahaUrl of request.wahaUrls) {
    const waha = context.wahaFor(wahaUrl);
    let sessions: string[];
    if (request.sessions === 'all') {
      reporter.step(`Listing the sessions of ${waha.displayUrl}`);
      const all = await waha.listSessions(signal);
      sessions = all
        .filter((s) => s.status === 'WORKING')
        .map((s) => s.name)
        .sort();
      reporter.stepDone(
        `${formatCount(all.length)} sessions listed, ${formatCount(sessions.length)} WORKING`,
      );
      if (sessions.length === 0) {
        throw new WahaRefusedError(
          `no session of ${waha.displayUrl} is WORKING: there is nothing to plan`,
          'Start a session in WAHA (and scan its QR code) first, or name one with --session.',
        );
      }
    } else {
      sessions = request.sessions;
    }
    for (const session of sessions) {
      const { version, session: info } = await checkSession(waha, session, reporter, signal);
      const engine = info.engine ?? version?.engine ?? null;
      reporter.step(`Listing the chats of "${session}"`);
      const {
        chats: listed,
        otherForms,
        unlistedFailed,
      } = await lidsAndChats(
        waha,
        session,
        { pageSize: request.chatPageSize, engine },
        signal,
        version,
        createFailedChatStore(context.sql, context.schema),
      );
      const chats = listed!;
      reporter.stepDone(
        `${formatCount(chats.length - unlistedFailed.length)} chats listed` +
          otherFormsNote(otherForms, version) +
          unlistedFailedNote(unlistedFailed),
      );
      if (unlistedFailed.length > 0) reporter.warn(unlistedFailedWarning(unlistedFailed));
      planned.push(await storePlan(context, request, { wahaUrl, session, window, chats, trigger }));
    }
  }
  return planned;
}

async function storePlan(
  context: PlanContext,
  request: PlanRequest,
  plan: { wahaUrl: string; session: string; window: TimeWindow; chats: ChatRecord[]; trigger: string },
): Promise<PlannedSession> {
  const { sql, schema, boss } = context;
  const key = planKey(request, plan.wahaUrl, plan.session);
  const units = groupChats(plan.chats, request.chatsPerJob);
  const result = await sql.begin(async (tx) => {
    // Two enqueues of one plan at once: the second waits here, then finds the first one's jobs.
    await tx`select pg_advisory_xact_lock(hashtext('waha-import:plan'), hashtext(${key}))`;
    const [pending] = await tx<Array<{ id: string; units: number; chats: number; to_s: string }>>`
      select p.id, p.units, p.chats, p.window_to_s::text as to_s from ${tx(schema)}.queue_plans p
      where p.plan_key = ${key} and exists (
        select 1 from ${tx(schema)}.queue_units u
        join ${tx(bossSchema(schema))}.job j on j.id = u.job_id
        where u.plan_id = p.id and j.state in ('created', 'retry', 'active'))
      order by p.id desc limit 1`;
    let window = plan.window;
    if (pending) {
      const pendingToS = Number(pending.to_s);
      // A full window that moves (--days, --since alone) and has moved on since that plan: the time since
      // is planned now, from a little before that plan's end, or no plan would ever read it (the next
      // firing's window may well start after it). An incremental plan's next one starts from the marks.
      if (request.windowRequest.incrementalOverlapS !== undefined || plan.window.toS <= pendingToS) {
        return {
          planId: Number(pending.id),
          added: false,
          units: pending.units,
          chats: pending.chats,
          window: plan.window,
        };
      }
      window = { fromS: Math.max(plan.window.fromS, pendingToS - CONTINUE_OVERLAP_S), toS: plan.window.toS };
    }
    const [row] = await tx<[{ id: string }]>`
      insert into ${tx(schema)}.queue_plans
        (plan_key, trigger, waha_url, session, window_from_s, window_to_s, options, units, chats)
      values (${key}, ${plan.trigger}, ${redactUrl(plan.wahaUrl)}, ${plan.session}, ${window.fromS},
        ${window.toS}, ${tx.json(planOptions(request) as never)}, ${units.length}, ${plan.chats.length})
      returning id`;
    const planId = Number(row.id);
    const jobs = units.map((chats, unit) => {
      const data: UnitJobData = {
        planId,
        unit,
        wahaUrl: plan.wahaUrl,
        session: plan.session,
        window,
        incremental: incrementalOf(request.windowRequest) ?? null,
        strategy: request.strategy,
        chunk: request.chunk,
        batchSize: request.batchSize,
        flushMs: request.flushMs,
        pageSize: request.pageSize,
        pageEnd: request.pageEnd,
        emptyPages: request.emptyPages,
        maxSlices: request.maxSlices,
        chats: chats.map(queuedChat),
      };
      return { id: randomUUID(), data, chats: chats.length, unit };
    });
    if (jobs.length > 0) {
      await tx`
        insert into ${tx(schema)}.queue_units ${tx(
          jobs.map((job, unit) => ({ plan_id: planId, unit, job_id: job.id, chats: job.chats })),
          'plan_id',
          'unit',
          'job_id',
          'chats',
        )}`;
      await boss.insert(
        jobs.map((job) => ({
          id: job.id,
          name: UNIT_QUEUE,
          data: job.data,
          expireInSeconds: request.jobTimeoutS,
          retryLimit: request.jobRetries,
          retryDelay: 5,
          retryBackoff: true,
          // Taken in order of their place in their plan: the first job of every plan (every session, every
          // WAHA server) before the second of any, so workers spread over the servers instead of draining
          // one server's plan while the others wait.
          priority: Math.max(0, PRIORITY_TOP - job.unit),
        })),
        { db: bossTxDb(tx as unknown as Sql, { jsonFirst: true }) },
      );
    }
    return { planId, added: true, units: units.length, chats: plan.chats.length, window };
  });
  context.reporter.info(
    result.added
      ? `Plan #${result.planId}: session "${plan.session}" of ${redactUrl(plan.wahaUrl)}, window ${formatWindow(result.window)}: ` +
          `${formatCount(result.chats)} chats in ${formatCount(result.units)} jobs queued`
      : `Plan #${result.planId} for session "${plan.session}" of ${redactUrl(plan.wahaUrl)} still has jobs waiting or running: nothing added`,
  );
  return { wahaUrl: redactUrl(plan.wahaUrl), session: plan.session, ...result };
}

/** What the plan row keeps of the request (shown by status). */
function planOptions(request: PlanRequest): Record<string, unknown> {
  const { wahaUrls: _urls, sessions: _sessions, ...rest } = request;
  return rest;
}
