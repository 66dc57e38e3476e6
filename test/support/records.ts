import type { ChatRecord } from '../../src/domain.js';

/** A person's chat of session `default` as a listing gives it, active last at `lastActivityS` (or never). */
export function listedChat(id: string, lastActivityS: number | null): ChatRecord {
  return {
    session: 'default',
    id,
    chatId: id,
    name: null,
    kind: 'person',
    lastActivityAt: lastActivityS === null ? null : new Date(lastActivityS * 1000),
    raw: {},
  };
}
