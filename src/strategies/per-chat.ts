import type { ChatRecord, MessageRecord } from '../domain.js';
import type { ResumePoint } from '../import/resume-point.js';
import { forEachConcurrently } from './concurrency.js';
import type { Strategy, StrategyContext } from './types.js';

/**
 * One chat, one transaction: the seed's V1 shape. A chat holding more than --batch-size messages is not
 * held whole in memory: it is committed in parts of --batch-size messages (a page more at most), its
 * own chat alone in each, in order; each part but the last records where the chat continues (in
 * progress), and only the last, holding its last page, completes it. Memory stays at --concurrency x
 * (--batch-size + a page) messages, whatever the size of the longest chat.
 */
async function importChat(
  context: StrategyContext,
  chat: ChatRecord,
  resumeAt: ResumePoint | undefined,
  signal: AbortSignal,
): Promise<void> {
  let messages: MessageRecord[] = [];
  for await (const page of context.source.pages(chat, signal, resumeAt)) {
    for (const message of page.messages) messages.push(message);
    if (!page.last && messages.length < context.options.batchSize) continue;
    signal.throwIfAborted();
    await context.sink.commit({
      batch: { chats: [chat], messages },
      chatsCompleted: page.last ? [chat.id] : [],
      chatsInProgress: page.last ? [] : [{ chatId: chat.id, resumeAt: page.resumeAt }],
    });
    if (page.last) return;
    messages = [];
  }
  // The pages ended without a last one: the chat failed (the source recorded why). Parts already
  // committed stay, with the cursor they recorded; the rest is not committed.
}

export const sequential: Strategy = {
  name: 'sequential',
  fits: 'one chat at a time, one transaction per chat: for a fragile WAHA; the slowest',
  async run(context) {
    await forEachConcurrently(context.chats, 1, context.signal, ({ chat, resumeAt }, signal) =>
      importChat(context, chat, resumeAt, signal),
    );
  },
};

export const parallel: Strategy = {
  name: 'parallel',
  fits: '--concurrency chats at once, one transaction per chat (the study V1 at 20, option A at 100)',
  async run(context) {
    await forEachConcurrently(
      context.chats,
      context.options.concurrency,
      context.signal,
      ({ chat, resumeAt }, signal) => importChat(context, chat, resumeAt, signal),
    );
  },
};
