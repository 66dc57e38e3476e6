import type { MessageRecord } from '../domain.js';
import { collectChat, forEachConcurrently } from './concurrency.js';
import type { Strategy } from './types.js';

/**
 * The seed's options B and D: chats in chunks of --chunk; a chunk's chats are fetched in parallel and the
 * whole chunk is written in one transaction. Fetching stops while a chunk is written, which is what the
 * streaming strategy avoids.
 */
export const chunked: Strategy = {
  name: 'chunked',
  fits: '--chunk chats fetched in parallel, then one transaction: few transactions, but each chunk waits for its slowest chat',
  async run(context) {
    const { chats, options, signal } = context;
    for (let start = 0; start < chats.length; start += options.chunkSize) {
      signal.throwIfAborted();
      const chunk = chats.slice(start, start + options.chunkSize);
      const fetched = new Map<string, MessageRecord[]>();
      await forEachConcurrently(
        chunk,
        options.concurrency,
        signal,
        async ({ chat, resumeAt }, chatSignal) => {
          const { messages, finished } = await collectChat(context.source.pages(chat, chatSignal, resumeAt));
          // A chat that failed is left out whole; the source has recorded why.
          if (finished) fetched.set(chat.id, messages);
        },
      );
      signal.throwIfAborted();
      // Chunk order, not arrival order, so every run writes the same batch contents.
      const done = chunk.filter((c) => fetched.has(c.chat.id));
      if (done.length === 0) continue;
      await context.sink.commit({
        batch: {
          chats: done.map((c) => c.chat),
          messages: done.flatMap((c) => fetched.get(c.chat.id) ?? []),
        },
        chatsCompleted: done.map((c) => c.chat.id),
        chatsInProgress: [],
      });
    }
  },
};
