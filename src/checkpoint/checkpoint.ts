import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { TimeWindow } from '../domain.js';
import { CheckpointError } from '../errors.js';
import { isResumePoint, type ResumePoint } from '../import/resume-point.js';
import { writeFileAtomic } from '../util/private-file.js';

/**
 * The resume cursor: a JSON file saying which chats of a run are committed. Rules:
 * - it is written only after the transaction it describes has committed, so it never claims more than
 *   the database holds; writes are idempotent, so a crash between commit and save only replays a batch;
 * - it is written atomically (temp file, fsync, rename, fsync of the directory) with mode 0600;
 * - saves are throttled (at most one every `minIntervalMs`, so per-chat strategies do not fsync a thousand
 *   times): a checkpoint that lags behind the database is harmless, and `flush()` brings it up to date
 *   before the process leaves;
 * - it is a hint, the database is the truth: it names the database its commits went to (the schema's
 *   instance token, the cluster's system identifier) and the WAHA they came from, and every batch counts
 *   itself in `checkpoint_progress` under the checkpoint's `id`. A run resumes it only when the database
 *   it writes to confirms all of that (`disbelief`); otherwise it warns and starts the window over.
 */

export const CHECKPOINT_FORMAT = 'waha-import-checkpoint';
/**
 * 4: `inProgress` may hold, for a chat read in time slices, the spans left (`[[fromS, toS], ...]`)
 * instead of one cursor. A file of version 3 is read as it is (its cursors mean what they meant).
 * 3: `id`, `database` and `waha`: the checkpoint is bound to the database its commits went to and the WAHA
 * they came from. Versions 1 and 2 name neither, so no database can confirm them: they are read (`status`
 * shows them) but a run starts their window over, with a warning.
 * 2: `inProgress` holds time cursors (unix seconds, the `lte` a chat continues from), not offsets.
 */
export const CHECKPOINT_VERSION = 4;

/** The WAHA a checkpoint's messages came from: its base URL without secrets, and the session. */
export interface WahaIdentity {
  url: string;
  session: string;
}

/** The database a checkpoint's commits went to (see src/db/identity.ts). */
export interface DatabaseIdentity {
  instance: string;
  systemIdentifier: string | null;
}

/** What the database says of a checkpoint, for `disbelief`. */
export interface DatabaseEvidence {
  schema: string;
  identity: DatabaseIdentity;
  /** The checkpoint's row in `checkpoint_progress`; undefined when the database has none. */
  progress: { transactions: number; messages: number } | undefined;
}

/** 9999-12-31T23:59:59Z: no window of a real run reaches further. */
const MAX_TIME_S = 253_402_300_799;

/** What the user asked for, as opposed to the window it resolved to: `--days 30` moves with time. */
export interface WindowRequest {
  days?: number;
  sinceS?: number;
  untilS?: number;
  /** Set for incremental runs: each chat starts where its last import ended, minus this overlap. */
  incrementalOverlapS?: number;
}

/** The incremental setting a window request asks for (undefined: a full window). */
export function incrementalOf(request: WindowRequest): { overlapS: number } | undefined {
  return request.incrementalOverlapS === undefined ? undefined : { overlapS: request.incrementalOverlapS };
}

export interface CheckpointData {
  format: typeof CHECKPOINT_FORMAT;
  version: typeof CHECKPOINT_VERSION;
  /** Random; the key of this checkpoint's counters in `checkpoint_progress`. */
  id: string;
  session: string;
  schema: string;
  windowRequest: WindowRequest;
  window: TimeWindow & { from: string; to: string };
  pageSize: number;
  status: 'running' | 'complete';
  startedAt: string;
  updatedAt: string;
  /** Chats whose every message in the window is committed. */
  completedChats: string[];
  /**
   * Chats committed part-way: the time cursor (unix seconds) each continues from (every message of the
   * chat in the window newer than it is committed), or for a chat read in time slices the spans still
   * to fetch, `[fromS, toS]` inclusive, newest first (every message outside them is committed).
   */
  inProgress: Record<string, ResumePoint>;
  transactions: number;
  messagesCommitted: number;
  /** Where the messages came from. Null only in a file of version 1 or 2. */
  waha: WahaIdentity | null;
  /** Where the commits went; bound before the first commit. Null only in a file of version 1 or 2. */
  database: DatabaseIdentity | null;
  /**
   * The run read every chat, and some failed (status `partial`): what is left is those chats, which
   * every later run reads anyway, so a run asking for another window starts over instead of being
   * refused. Absent (or false) while a run is under way, and in files written before 2026-12-03.
   */
  endedPartial?: boolean;
}

export interface CheckpointKey {
  session: string;
  schema: string;
  windowRequest: WindowRequest;
  window: TimeWindow;
  pageSize: number;
  waha: WahaIdentity;
}

/**
 * `.waha-import/checkpoint-<session>-<schema>.json`; for `--simulate` runs
 * `checkpoint-simulate-<session>-<schema>.json`, so a try-out never continues (or spoils) a real run.
 */
export function defaultCheckpointPath(
  cwd: string,
  session: string,
  schema: string,
  options: { simulate?: boolean } = {},
): string {
  const prefix = options.simulate ? 'checkpoint-simulate' : 'checkpoint';
  return path.join(cwd, '.waha-import', `${prefix}-${session}-${schema}.json`);
}

const iso = (s: number): string => new Date(s * 1000).toISOString();

function describeRequest(request: WindowRequest): string {
  const parts: string[] = [];
  if (request.sinceS !== undefined) parts.push(`--since ${iso(request.sinceS)}`);
  else if (request.days !== undefined) parts.push(`--days ${request.days}`);
  if (request.untilS !== undefined) parts.push(`--until ${iso(request.untilS)}`);
  if (request.incrementalOverlapS !== undefined)
    parts.push(`--incremental --overlap ${request.incrementalOverlapS}`);
  return parts.join(' ') || 'the default window';
}

function sameRequest(a: WindowRequest, b: WindowRequest): boolean {
  return (
    a.days === b.days &&
    a.sinceS === b.sinceS &&
    a.untilS === b.untilS &&
    a.incrementalOverlapS === b.incrementalOverlapS
  );
}

export function readCheckpoint(file: string): CheckpointData | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CheckpointError(
      `cannot read the checkpoint ${file}: ${(error as Error).message}`,
      'Check its permissions.',
    );
  }
  const hint = `Run with --fresh to discard it and start over (idempotent: nothing is duplicated), or move it away.`;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new CheckpointError(`the checkpoint ${file} is not valid JSON (${(error as Error).message})`, hint);
  }
  const record = data as Partial<CheckpointData> | null;
  if (!record || typeof record !== 'object' || record.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(`${file} is not a waha-import checkpoint`, hint);
  }
  const version = record.version as number;
  // Version 3 differs only in what inProgress may hold.
  if (version === 3) record.version = CHECKPOINT_VERSION;
  if (version === 1 || version === 2) {
    // Bound to no database: shown by `status`, never resumed (`disbelief` says why).
    record.version = CHECKPOINT_VERSION;
    record.id = '';
    record.waha = null;
    record.database = null;
    // Offsets of version 1 mean nothing to time paging.
    if (version === 1) record.inProgress = {};
  }
  if (record.version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(
      `the checkpoint ${file} has version ${String(record.version)}; this waha-import reads version ${CHECKPOINT_VERSION}`,
      hint,
    );
  }
  const valid =
    typeof record.session === 'string' &&
    typeof record.schema === 'string' &&
    typeof record.window?.fromS === 'number' &&
    typeof record.window.toS === 'number' &&
    record.windowRequest !== null &&
    typeof record.windowRequest === 'object' &&
    typeof record.pageSize === 'number' &&
    (record.status === 'running' || record.status === 'complete') &&
    Array.isArray(record.completedChats) &&
    record.completedChats.every((id) => typeof id === 'string') &&
    record.inProgress !== null &&
    typeof record.inProgress === 'object' &&
    Object.values(record.inProgress).every((cursor) => isResumePoint(cursor)) &&
    typeof record.transactions === 'number' &&
    typeof record.messagesCommitted === 'number' &&
    typeof record.id === 'string' &&
    (record.waha === null ||
      (typeof record.waha === 'object' &&
        typeof record.waha.url === 'string' &&
        typeof record.waha.session === 'string')) &&
    (record.endedPartial === undefined || typeof record.endedPartial === 'boolean') &&
    (record.database === null ||
      (typeof record.database === 'object' &&
        typeof record.database.instance === 'string' &&
        (record.database.systemIdentifier === null || typeof record.database.systemIdentifier === 'string')));
  if (!valid)
    throw new CheckpointError(
      `the checkpoint ${file} is damaged: a required field is missing or wrong`,
      hint,
    );
  return record as CheckpointData;
}

const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/**
 * Why a checkpoint cannot be believed without asking the database: written by an older version (bound
 * to no database), for another WAHA, or inconsistent in itself (a forged or damaged file). Undefined when
 * nothing is wrong with it as such; the database must still confirm it (`Checkpoint.disbelief`).
 */
export function distrust(data: CheckpointData, key: CheckpointKey): string | undefined {
  if (data.database === null || data.waha === null || data.id === '') {
    return 'it was written by an older waha-import, which did not record the database it wrote to, so no database can confirm it';
  }
  if (data.waha.url !== key.waha.url || data.waha.session !== key.waha.session) {
    return `it belongs to another WAHA (${data.waha.url}, session "${data.waha.session}"; this run reads ${key.waha.url}, session "${key.waha.session}")`;
  }
  const { fromS, toS } = data.window;
  if (!isCount(fromS) || !isCount(toS) || fromS > toS || toS > MAX_TIME_S) {
    return `its window (${String(fromS)} .. ${String(toS)}) is not a window`;
  }
  const request = data.windowRequest;
  const numberOrAbsent = (n: unknown): boolean => n === undefined || isCount(n);
  if (
    !numberOrAbsent(request.days) ||
    !numberOrAbsent(request.sinceS) ||
    !numberOrAbsent(request.untilS) ||
    !numberOrAbsent(request.incrementalOverlapS) ||
    (request.days === undefined) === (request.sinceS === undefined)
  ) {
    return 'its window request is not one a run makes';
  }
  if (request.sinceS !== undefined && request.sinceS !== fromS) {
    return `its window starts at ${iso(fromS)}, not at the --since ${iso(request.sinceS)} it records`;
  }
  if (request.untilS !== undefined && request.untilS !== toS) {
    return `its window ends at ${iso(toS)}, not at the --until ${iso(request.untilS)} it records`;
  }
  if (request.days !== undefined && toS - fromS !== request.days * 86_400) {
    return `its window (${iso(fromS)} .. ${iso(toS)}) is not the --days ${request.days} it records`;
  }
  if (!isCount(data.transactions) || !isCount(data.messagesCommitted) || !isCount(data.pageSize)) {
    return 'its counts are not counts (negative, fractional or too large)';
  }
  if (new Set(data.completedChats).size !== data.completedChats.length) {
    return 'it lists a chat as completed twice';
  }
  if (Number.isNaN(Date.parse(data.startedAt))) return 'its start time is not a time';
  return undefined;
}

export interface OpenedCheckpoint {
  checkpoint: Checkpoint;
  /** The window to use: the stored one when resuming, else the requested one. */
  window: TimeWindow;
  /**
   * Set when an unfinished earlier run is being continued. `otherRequest`: that run asked for another
   * window (one of the two incremental): it is finished first, as it asked, then this run's own window.
   */
  resumed:
    | {
        completedChats: number;
        inProgressChats: number;
        startedAt: string;
        otherRequest?: { request: WindowRequest; description: string };
      }
    | undefined;
  /**
   * Set when an unfinished run's checkpoint was found but not believed (see `distrust`): why, and when
   * that run started. The window starts over; the caller warns.
   */
  restarted?: { reason: string; startedAt: string };
}

export class Checkpoint {
  /** Something was recorded that the file does not show yet. */
  private dirty = false;
  private lastSaveMs = 0;
  private readonly completed: Set<string>;

  private constructor(
    readonly file: string,
    private readonly data: CheckpointData,
    private readonly minIntervalMs: number,
  ) {
    this.completed = new Set(data.completedChats);
  }

  /**
   * Opens the checkpoint for a run: continues an unfinished one for the same session, schema and window
   * request, starts a new one otherwise (or with `fresh`). An unfinished one of another request is
   * continued as that request (`resumed.otherRequest`) when one of the two is incremental, replaced when
   * it ended partial, and refused otherwise.
   */
  static open(
    file: string,
    key: CheckpointKey,
    options: { fresh: boolean; minIntervalMs?: number },
  ): OpenedCheckpoint {
    const existing = options.fresh ? undefined : readCheckpoint(file);
    const minIntervalMs = options.minIntervalMs ?? 200;
    // An unfinished run that committed nothing has nothing to protect: start over without a word.
    if (existing && existing.status === 'running' && existing.transactions !== 0) {
      if (existing.session !== key.session || existing.schema !== key.schema) {
        throw new CheckpointError(
          `the checkpoint ${file} belongs to session "${existing.session}" and schema "${existing.schema}", not "${key.session}" and "${key.schema}"`,
          'Give each session and schema its own --checkpoint file, or run with --fresh to discard it.',
        );
      }
      const reason = distrust(existing, key);
      if (reason !== undefined) {
        return {
          ...Checkpoint.open(file, key, { ...options, fresh: true }),
          restarted: { reason, startedAt: existing.startedAt },
        };
      }
      const sameWindow =
        sameRequest(existing.windowRequest, key.windowRequest) && existing.pageSize === key.pageSize;
      if (!sameWindow && existing.endedPartial === true) {
        // Only failed chats are left, and this run reads them (an incremental one from their last import).
        return {
          ...Checkpoint.open(file, key, { ...options, fresh: true }),
          restarted: {
            reason:
              `it ended with chats that could not be imported, and this run asks for another window ` +
              `(${describeRequest(key.windowRequest)}, page size ${key.pageSize}), which reads them`,
            startedAt: existing.startedAt,
          },
        };
      }
      // The README's cron alternates --incremental with a full re-read on one file: a run of one kind killed
      // would otherwise hold every run of the other kind (exit 1) until it came round again. Such a run is
      // finished first, then this one runs (the caller does both). Two full windows stay refused: finishing
      // a year's back-fill before a quick --days 7 would be a surprise of hours.
      const eitherIncremental =
        existing.windowRequest.incrementalOverlapS !== undefined ||
        key.windowRequest.incrementalOverlapS !== undefined;
      const otherRequest = !sameWindow && existing.pageSize === key.pageSize && eitherIncremental;
      if (!sameWindow && !otherRequest) {
        throw new CheckpointError(
          `the checkpoint ${file} belongs to an unfinished run of another window or page size ` +
            `(${describeRequest(existing.windowRequest)}, page size ${existing.pageSize}; ` +
            `this run asks for ${describeRequest(key.windowRequest)}, page size ${key.pageSize})`,
          'Run again with the same window to finish it, or with --fresh to discard it (re-importing is idempotent).',
        );
      }
      // Under way again: until it ends, what is left is no longer only failed chats.
      delete existing.endedPartial;
      const checkpoint = new Checkpoint(file, existing, minIntervalMs);
      return {
        checkpoint,
        window: { fromS: existing.window.fromS, toS: existing.window.toS },
        resumed: {
          completedChats: existing.completedChats.length,
          inProgressChats: Object.keys(existing.inProgress).length,
          startedAt: existing.startedAt,
          ...(otherRequest
            ? {
                otherRequest: {
                  request: existing.windowRequest,
                  description: describeRequest(existing.windowRequest),
                },
              }
            : {}),
        },
      };
    }
    const now = new Date().toISOString();
    const data: CheckpointData = {
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      id: randomUUID(),
      session: key.session,
      schema: key.schema,
      windowRequest: key.windowRequest,
      window: { ...key.window, from: iso(key.window.fromS), to: iso(key.window.toS) },
      pageSize: key.pageSize,
      status: 'running',
      startedAt: now,
      updatedAt: now,
      completedChats: [],
      inProgress: {},
      transactions: 0,
      messagesCommitted: 0,
      waha: key.waha,
      database: null,
    };
    // Written at the first commit: a run that fails before committing anything leaves no file behind.
    return { checkpoint: new Checkpoint(file, data, minIntervalMs), window: key.window, resumed: undefined };
  }

  /** The key of this checkpoint's counters in `checkpoint_progress`. */
  get id(): string {
    return this.data.id;
  }

  get startedAt(): string {
    return this.data.startedAt;
  }

  /**
   * Why the database a resumed run writes to does not confirm this checkpoint: another schema instance
   * or cluster, or fewer commits than it claims (a backup restored to a moment before some of them).
   * Undefined when it does.
   */
  disbelief(evidence: DatabaseEvidence): string | undefined {
    const claimed = this.data.database;
    if (!claimed) return 'it names no database';
    const { identity, progress } = evidence;
    if (claimed.instance !== identity.instance) {
      return (
        `the schema "${evidence.schema}" this run writes to is not the one its commits went to ` +
        '(another instance token: the schema was created anew, or it is another database)'
      );
    }
    if (
      claimed.systemIdentifier !== null &&
      identity.systemIdentifier !== null &&
      claimed.systemIdentifier !== identity.systemIdentifier
    ) {
      return `this is another PostgreSQL cluster (system identifier ${identity.systemIdentifier}, not ${claimed.systemIdentifier})`;
    }
    const transactions = progress?.transactions ?? 0;
    const messages = progress?.messages ?? 0;
    if (transactions < this.data.transactions || messages < this.data.messagesCommitted) {
      return (
        `the database holds only ${transactions} of the ${this.data.transactions} transactions ` +
        `(${messages} of ${this.data.messagesCommitted} messages) it records ` +
        '(restored from a backup taken before some of them?)'
      );
    }
    return undefined;
  }

  /** Records the database the commits go to; call before the first commit (a resumed run: after `disbelief`). */
  bind(identity: DatabaseIdentity): void {
    this.data.database = { instance: identity.instance, systemIdentifier: identity.systemIdentifier };
  }

  isCompleted(chatId: string): boolean {
    return this.completed.has(chatId);
  }

  /** The chats completed in this checkpoint's window (by its run and the runs that resumed it). */
  completedChats(): ReadonlySet<string> {
    return this.completed;
  }

  /**
   * Where a chat continues: its time cursor or spans, or undefined to start from the window's end. A
   * cursor or span outside the window (a forged or foreign file) is ignored: the chat starts over, which
   * is always safe.
   */
  resumeAt(chatId: string): ResumePoint | undefined {
    const cursor = this.data.inProgress[chatId];
    if (cursor === undefined) return undefined;
    const { fromS, toS } = this.data.window;
    const inWindow = (s: number): boolean => s >= fromS && s <= toS;
    if (typeof cursor === 'number') return inWindow(cursor) ? cursor : undefined;
    return cursor.every(([from, to]) => inWindow(from) && inWindow(to)) ? cursor : undefined;
  }

  /** Records a committed transaction. Call only after the commit. */
  async recordCommit(unit: {
    chatsCompleted: string[];
    chatsInProgress: Array<{ chatId: string; resumeAt: ResumePoint }>;
    messages: number;
  }): Promise<void> {
    for (const { chatId, resumeAt } of unit.chatsInProgress) {
      if (!this.completed.has(chatId)) this.data.inProgress[chatId] = resumeAt;
    }
    for (const chatId of unit.chatsCompleted) {
      if (this.completed.has(chatId)) continue;
      this.completed.add(chatId);
      this.data.completedChats.push(chatId);
      delete this.data.inProgress[chatId];
    }
    this.data.transactions += 1;
    this.data.messagesCommitted += unit.messages;
    await this.save(false);
  }

  /** The run finished: the next run starts a new window. */
  async complete(): Promise<void> {
    this.data.status = 'complete';
    this.data.inProgress = {};
    await this.save(true);
  }

  /** The run read every chat and some failed: they are what is left (see `endedPartial`). */
  async endPartial(): Promise<void> {
    this.data.endedPartial = true;
    // Like every other state, written once something was committed: otherwise there is nothing to keep.
    if (this.data.transactions > 0) this.dirty = true;
    await this.flush();
  }

  /** Brings the file up to date now (before exit, after a failure or Ctrl-C). */
  async flush(): Promise<void> {
    if (this.dirty) this.writeNow();
  }

  private async save(immediate: boolean): Promise<void> {
    this.dirty = true;
    if (immediate || Date.now() - this.lastSaveMs >= this.minIntervalMs) this.writeNow();
  }

  private writeNow(): void {
    this.data.updatedAt = new Date().toISOString();
    try {
      writeFileAtomic(this.file, JSON.stringify(this.data, null, 2) + '\n');
    } catch (error) {
      throw new CheckpointError(
        `cannot write the checkpoint ${this.file}: ${(error as Error).message}`,
        'Make its directory writable or choose another with --checkpoint; what is committed stays committed.',
      );
    }
    this.lastSaveMs = Date.now();
    this.dirty = false;
  }
}
