import type { ChatRecord } from '../domain.js';
import { collectChat, forEachConcurrently } from './concurrency.js';
import type { Strategy, StrategyContext } from './types.js';

/** One chat, one transaction: the seed's V1 shape. */
async function importChat(
  context: StrategyContext,
  chat: ChatRecord,
  resumeAt: number | undefined,
  signal: AbortSignal,
): Promise<void> {
  const { messages, finished } = await collectChat(context.source.pages(chat, signal, resumeAt));
  signal.throwIfAborted();
  if (!finished) return;
  await context.sink.commit({
    batch: { chats: [chat], messages },
    chatsCompleted: [chat.id],
    chatsInProgress: [],
  });
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
