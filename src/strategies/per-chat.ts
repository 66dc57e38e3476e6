import type { ChatRecord, MessageRecord } from '../domain.js';
import type { ResumePoint } from '../import/resume-point.js';
import { forEachConcurrently } from './concurrency.js';
import type { Strategy, StrategyContext } from './types.js';

/**
 * Messages fetched and not yet committed, across the chats a per-chat strategy reads at once. A chat
 * commits a part of its own once it holds --batch-size messages, and also, so that what the run holds
 * does not grow with --concurrency times the length of the chats, once the run holds --batch-size and
 * this chat holds at least its share (the run's held messages over the chats being read). A chat holding
 * less than its share then waits, without fetching, until the run holds less or its share is reached: at
 * least one chat always holds its share (it is at or above the average), so someone commits. A chat
 * holding a single page neither commits early nor waits: it fetches on, since most chats end at their
 * next request (a page, then the short or empty one that ends the chat), and cutting those in two
 * would double the transactions of a run of short chats for nothing. The run thus holds at most
 * --batch-size messages and two pages per chat, whatever the concurrency.
 */
class HeldMessages {
  private held = 0;
  private reading = 0;
  private readonly waiting = new Set<() => void>();

  constructor(private readonly limit: number) {}

  chatStarted(): void {
    this.reading++;
  }

  /** A chat's reading ended, dropping the messages it still held (a failed chat's, not committed). */
  chatEnded(dropped: number): void {
    this.reading--;
    this.release(dropped);
  }

  add(count: number): void {
    this.held += count;
  }

  /** Messages committed (or dropped): chats waiting for the run to hold less look again. */
  release(count: number): void {
    this.held -= count;
    for (const wake of [...this.waiting]) wake();
  }

  /**
   * Whether a chat holding `own` messages in `pages` pages (none of them in a commit) commits a part
   * now; may wait first.
   */
  async commitNow(own: number, pages: number, signal: AbortSignal): Promise<boolean> {
    for (;;) {
      if (own >= this.limit) return true;
      if (this.held < this.limit || pages <= 1) return false;
      if (own * this.reading >= this.held) return true;
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.waiting.delete(wake);
          signal.removeEventListener('abort', wake);
          resolve();
        };
        this.waiting.add(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }
}

/**
 * One chat, one transaction: the seed's V1 shape. A chat is not held whole in memory: it is committed in
 * parts (see HeldMessages: at --batch-size messages, a page more at most, or earlier when the run holds
 * that many across its chats), its own chat alone in each, in order; each part but the last records
 * where the chat continues (in progress), and only the last, holding its last page, completes it.
 * Memory stays at --batch-size messages and two pages per chat read at once, whatever the size of the
 * longest chat and the concurrency.
 */
async function importChat(
  context: StrategyContext,
  held: HeldMessages,
  chat: ChatRecord,
  resumeAt: ResumePoint | undefined,
  signal: AbortSignal,
): Promise<void> {
  let messages: MessageRecord[] = [];
  let pages = 0;
  held.chatStarted();
  try {
    for await (const page of context.source.pages(chat, signal, resumeAt)) {
      for (const message of page.messages) messages.push(message);
      pages++;
      held.add(page.messages.length);
      if (!page.last && !(await held.commitNow(messages.length, pages, signal))) continue;
      signal.throwIfAborted();
      await context.sink.commit({
        batch: { chats: [chat], messages },
        chatsCompleted: page.last ? [chat.id] : [],
        chatsInProgress: page.last ? [] : [{ chatId: chat.id, resumeAt: page.resumeAt }],
      });
      const committed = messages.length;
      messages = [];
      pages = 0;
      held.release(committed);
      if (page.last) return;
    }
    // The pages ended without a last one: the chat failed (the source recorded why). Parts already
    // committed stay, with the cursor they recorded; the rest is not committed.
  } finally {
    held.chatEnded(messages.length);
  }
}

export const sequential: Strategy = {
  name: 'sequential',
  fits: 'one chat at a time, one transaction per chat: for a fragile WAHA; the slowest',
  async run(context) {
    const held = new HeldMessages(context.options.batchSize);
    await forEachConcurrently(context.chats, 1, context.signal, ({ chat, resumeAt }, signal) =>
      importChat(context, held, chat, resumeAt, signal),
    );
  },
};

export const parallel: Strategy = {
  name: 'parallel',
  fits: '--concurrency chats at once, one transaction per chat (the study V1 at 20, option A at 100)',
  async run(context) {
    const held = new HeldMessages(context.options.batchSize);
    await forEachConcurrently(
      context.chats,
      context.options.concurrency,
      context.signal,
      ({ chat, resumeAt }, signal) => importChat(context, held, chat, resumeAt, signal),
    );
  },
};
