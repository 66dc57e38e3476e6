import { completeBeforeRetry } from '../src/queue/worker.js';

describe('completeBeforeRetry: what a job tried again may skip', () => {
  const window = { fromS: 1_000, toS: 9_000 };
  const person = '5511900000001@c.us';
  // One person read under two listed ids (a WAHA that does not merge them), and a chat of its own.
  const chats = [
    { id: '111@lid', chatId: person },
    { id: person, chatId: person },
    { id: 'group@g.us', chatId: 'group@g.us' },
    { id: 'new@c.us', chatId: 'new@c.us' },
  ];
  const marks = new Map([
    [person, { fromS: 500, toS: 9_500 }],
    ['group@g.us', { fromS: 1_000, toS: 9_000 }],
    ['new@c.us', { fromS: 2_000, toS: 9_000 }],
  ]);

  it('skips a chat whose stored chat is complete for the window, but never a listed id still failed', () => {
    const done = completeBeforeRetry(chats, marks, [{ chatId: person }], window);
    // The lid completed and marked the person; the number's part failed: read again.
    expect(chats.map((c) => [c.id, done(c.id)])).toEqual([
      ['111@lid', true],
      [person, false],
      ['group@g.us', true],
      // Marked, but not over the whole window.
      ['new@c.us', false],
    ]);
  });

  it('with nothing failed, both ids of the person are complete', () => {
    const done = completeBeforeRetry(chats, marks, [], window);
    expect(done('111@lid') && done(person)).toBe(true);
  });
});
