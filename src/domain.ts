/**
 * The importer's own vocabulary. `waha/` turns WAHA JSON into these records, `db/` writes them,
 * strategies move them around; none of those layers needs to know the others' formats.
 */

export type ChatKind = 'person' | 'group' | 'lid' | 'newsletter' | 'broadcast' | 'other';

export interface ChatRecord {
  session: string;
  /**
   * The chat id exactly as WAHA listed it (`5511999990000@s.whatsapp.net` on NOWEB, `123@lid` on GOWS):
   * what its URLs take, and the key of the checkpoint, the sync marks and the failed-chat records.
   */
  id: string;
  /**
   * The stored chat id, the same for one person on every engine and run: `@s.whatsapp.net` becomes `@c.us`,
   * and a `@lid` whose phone number WAHA knows becomes that number's `@c.us` id.
   */
  chatId: string;
  name: string | null;
  kind: ChatKind;
  /** Last activity WAHA reported for the chat; null when it reported none. */
  lastActivityAt: Date | null;
  /**
   * The chat object as WAHA sent it, in one of two forms, as for a message: `rawJson`, its JSON text as
   * the UTF-8 bytes cut out of the listing response (what parsing a listing gives), or `raw`, the value
   * itself (chats built in other ways). The writer stores `rawJson` when there is one, else `raw`.
   */
  raw?: unknown;
  rawJson?: Buffer | undefined;
  /**
   * A chat an earlier run failed that WAHA no longer lists under this id, read by the id all the same
   * (unlistedFailedChats): WAHA may refuse it, which is that chat's failure, never a sign of WAHA failing.
   */
  unlisted?: true;
}

export interface MessageRecord {
  session: string;
  /** WAHA's serialized id `{fromMe}_{chatId}_{waId}[_{participant}]`, the primary key with `session`. */
  id: string;
  chatId: string;
  /** The only stable part of the id: the same message can appear under `@lid` and `@c.us` chat ids. */
  waId: string;
  fromMe: boolean;
  /**
   * Who wrote it, in the stored chat-id form: the participant in a group, the session's own id when
   * `fromMe`, else the chat. Never WAHA's `from` as such: NOWEB and GOWS put the chat there.
   */
  sender: string | null;
  /** WAHA's `to`, as sent. */
  recipient: string | null;
  /** Sender inside a group chat, in the stored chat-id form (a known `@lid` becomes its `@c.us`). */
  participant: string | null;
  body: string | null;
  /** text, image, video, audio, ptt, document, sticker, location, vcard, media, ... */
  type: string;
  hasMedia: boolean;
  ack: number | null;
  /**
   * Unix seconds: WAHA's `timestamp`, or where an engine leaves it out, the engine's own field in `_data`
   * (see src/waha/parse.ts). Null only when neither says: such a message is stored, counted and reported.
   */
  timestampS: number | null;
  replyToId: string | null;
  /**
   * The message object as WAHA sent it, in one of two forms. `rawJson`: its JSON text, the UTF-8 bytes
   * cut out of the response it came in (what parsing a page of WAHA's gives: nothing is serialised or
   * encoded again, and no object tree is held until the batch commits). `raw`: the value itself (records
   * built in other ways). The writer stores `rawJson` when there is one, else `raw`.
   */
  raw?: unknown;
  rawJson?: Buffer | undefined;
}

/** One unit of writing: everything in it is committed in a single transaction, or nothing is. */
export interface Batch {
  chats: ChatRecord[];
  messages: MessageRecord[];
  /** Chats this batch finishes: once it commits, every message of theirs in the window is stored. */
  synced?: SyncMark[];
  /** Chats (ids as WAHA lists them) this batch finishes: no longer failed ones, cleared in the same commit. */
  completedListed?: Array<{ session: string; chatId: string; window?: TimeWindow }>;
  /**
   * The checkpoint this batch is recorded in: its counters in `checkpoint_progress` grow by one
   * transaction and `messages.length` messages in the same transaction, so the database can later
   * confirm (or not) what the checkpoint claims.
   */
  progress?: { checkpointId: string; session: string };
}

/** A chat known complete for a span of time (inclusive, unix seconds): what incremental runs build on. */
export interface SyncMark {
  session: string;
  /** The stored chat id, so a mark outlives a change of engine or of WAHA's id form. */
  chatId: string;
  /**
   * The id WAHA listed the chat under, when known: recorded beside the chat's mark (chat_sync_forms), for
   * a chat listed under two ids (a person as @lid and as a number, histories not merged) is complete only
   * for the ids that were read.
   */
  listedId?: string;
  fromS: number;
  toS: number;
}

export interface WriteResult {
  inserted: number;
  updated: number;
  unchanged: number;
  /** Messages whose text had to be cleaned before PostgreSQL would take it (NUL, lone surrogates). */
  cleaned: number;
}

/**
 * How a batch written on one connection keeps its place behind the batch before it, written on another
 * (see BatchWriter.writeBatch). A hook that throws rolls the batch back with that error.
 */
export interface BatchOrder {
  /** Awaited once the batch's rows are staged (its own connection's table), before its other statements. */
  statements?: () => Promise<void>;
  /** Called once the batch's statements have all run and only its commit is left. */
  ran?: () => void;
  /**
   * Awaited before the commit, and before the batch's last statement when it holds messages: the
   * @lid/@c.us clean-up, which must see what the batch before wrote (so `ran` comes after it).
   */
  commit?: () => Promise<void>;
}

export interface BatchWriter {
  /**
   * Writes the whole batch in exactly one transaction; idempotent. With `order`, the transaction opens
   * and the messages are staged at once, and the rest waits for its hooks: so a batch can be prepared
   * on a second connection while the one before it is written, and still commit after it.
   */
  writeBatch(batch: Batch, order?: BatchOrder): Promise<WriteResult>;
  /** Transactions committed so far by this writer. */
  readonly transactions: number;
}

/** The time window of a run, fixed at its start, inclusive at both ends, in unix seconds. */
export interface TimeWindow {
  fromS: number;
  toS: number;
}
