import type { ChatRecord, MessageRecord } from '../domain.js';
import type { ResumePoint } from '../import/resume-point.js';
import { forEachConcurrently } from './concurrency.js';
import type { CommitUnit, Strategy, StrategyContext } from './types.js';

/**
 * The seed's options B and D: chats in chunks of --chunk; a chunk's chats are fetched in parallel and the
 * whole chunk is written in one transaction. Fetching stops while a chunk is written, which is what the
 * streaming strategy avoids.
 *
 * A chunk is not held whole in memory when it holds more than --batch-size messages: once the pages
 * fetched reach that many, they are committed as a part (chats whose last page is in it complete, the
 * others in progress at their last page's cursor) while the fetchers that filled it wait, and the chunk
 * goes on. Parts commit one after another, in order, so a chat's later part never commits before an
 * earlier one. A part holds at most one page past --batch-size; memory stays near --batch-size +
 * --concurrency pages of messages (the pages waiting for the next part).
 */

interface Fetched {
  chat: ChatRecord;
  messages: MessageRecord[];
  /** The last page taken: where the chat continues, or that it is complete. */
  resumeAt: ResumePoint | undefined;
  last: boolean;
}

class Chunk {
  private readonly fetched = new Map<string, Fetched>();
  private buffered = 0;
  /** The part being committed, if any: the next one waits for it. */
  private committing: Promise<void> = Promise.resolve();

  constructor(
    private readonly context: StrategyContext,
    private readonly chats: ReadonlyArray<{ chat: ChatRecord }>,
  ) {}

  add(chat: ChatRecord, page: { messages: MessageRecord[]; resumeAt: ResumePoint; last: boolean }): void {
    let entry = this.fetched.get(chat.id);
    if (!entry) {
      entry = { chat, messages: [], resumeAt: undefined, last: false };
      this.fetched.set(chat.id, entry);
    }
    for (const message of page.messages) entry.messages.push(message);
    entry.resumeAt = page.resumeAt;
    entry.last = page.last;
    this.buffered += page.messages.length;
  }

  get full(): boolean {
    return this.buffered >= this.context.options.batchSize;
  }

  /**
   * Commits what has been fetched so far as one transaction, after the part before it. A part asked for
   * because the chunk was full is skipped when an earlier part already took what filled it; the chunk's
   * end (`last`) always commits what is left.
   */
  commitPart(signal: AbortSignal, last = false): Promise<void> {
    const previous = this.committing;
    const next = previous.then(async () => {
      signal.throwIfAborted();
      if (!last && !this.full) return;
      const unit = this.takeUnit(last);
      if (unit) await this.context.sink.commit(unit);
    });
    // A failed part fails every later one too; the caller sees the first error.
    this.committing = next;
    return next;
  }

  /**
   * What is fetched, in chunk order (not arrival order, so a chunk that fits in one part is written the
   * same way every run), emptied from the buffer. `onlyComplete`: the chunk's end, where chats that
   * did not finish (they failed) are left out whole.
   */
  private takeUnit(onlyComplete: boolean): CommitUnit | undefined {
    const taken: Fetched[] = [];
    for (const { chat } of this.chats) {
      const entry = this.fetched.get(chat.id);
      if (!entry || (onlyComplete && !entry.last)) continue;
      if (entry.messages.length === 0 && !entry.last) continue;
      taken.push({ ...entry });
      if (entry.last) this.fetched.delete(chat.id);
      else entry.messages = [];
    }
    this.buffered = 0;
    for (const entry of this.fetched.values()) this.buffered += entry.messages.length;
    if (taken.length === 0) return undefined;
    return {
      batch: { chats: taken.map((e) => e.chat), messages: taken.flatMap((e) => e.messages) },
      chatsCompleted: taken.filter((e) => e.last).map((e) => e.chat.id),
      chatsInProgress: taken
        .filter((e) => !e.last && e.resumeAt !== undefined)
        .map((e) => ({ chatId: e.chat.id, resumeAt: e.resumeAt! })),
    };
  }
}

export const chunked: Strategy = {
  name: 'chunked',
  fits: '--chunk chats fetched in parallel, then one transaction: few transactions, but each chunk waits for its slowest chat',
  async run(context) {
    const { chats, options, signal } = context;
    for (let start = 0; start < chats.length; start += options.chunkSize) {
      signal.throwIfAborted();
      const members = chats.slice(start, start + options.chunkSize);
      const chunk = new Chunk(context, members);
      await forEachConcurrently(
        members,
        options.concurrency,
        signal,
        async ({ chat, resumeAt }, chatSignal) => {
          for await (const page of context.source.pages(chat, chatSignal, resumeAt)) {
            // A page that arrives while a full part waits to be committed joins the next part: no part
            // holds more than one page past --batch-size, however many fetchers run.
            while (chunk.full) await chunk.commitPart(chatSignal);
            chunk.add(chat, page);
            // A chunk past --batch-size messages commits what it holds before this fetcher goes on.
            if (chunk.full) await chunk.commitPart(chatSignal);
          }
        },
      );
      signal.throwIfAborted();
      // A chat that failed (its pages ended without a last one) is left out of the final part; parts
      // already committed stay, with the cursor they recorded.
      await chunk.commitPart(signal, true);
    }
  },
};
