import type { ChatRecord } from '../domain.js';
import { collectChat, forEachConcurrently } from './concurrency.js';
import type { Strategy, StrategyContext } from './types.js';

/** One chat, one transaction: the seed's V1 shape. */
async function importChat(
  context: StrategyContext,
  chat: ChatRecord,
  startOffset: number,
  signal: AbortSignal,
): Promise<void> {
  const messages = await collectChat(context.source.pages(chat, signal, startOffset));
  signal.throwIfAborted();
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
    await forEachConcurrently(context.chats, 1, context.signal, ({ chat, startOffset }, signal) =>
      importChat(context, chat, startOffset, signal),
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
      ({ chat, startOffset }, signal) => importChat(context, chat, startOffset, signal),
    );
  },
};
