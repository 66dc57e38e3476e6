import { formKey } from '../src/db/sync.js';
import { completeBeforeRetry } from '../src/queue/worker.js';

describe('completeBeforeRetry: what a job tried again may skip', () => {
  const window = { fromS: 1_000, toS: 9_000 };
  const person = '5511900000001@c.us';
  // One person read under two listed ids (a WAHA that does not merge them), and chats of their own.
  const chats = [
    { id: '111@lid', chatId: person },
    { id: person, chatId: person },
    { id: 'group@g.us', chatId: 'group@g.us' },
    { id: 'new@c.us', chatId: 'new@c.us' },
  ];
  // The lid was read and marked the stored chat; the number never was (its job died, or failed).
  const marks = Object.assign(
    new Map([
      [person, { fromS: 500, toS: 9_500 }],
      ['group@g.us', { fromS: 1_000, toS: 9_000 }],
      ['new@c.us', { fromS: 2_000, toS: 9_000 }],
    ]),
    {
      forms: new Map([
        [formKey(person, '111@lid'), { fromS: 500, toS: 9_500 }],
        [formKey('group@g.us', 'group@g.us'), { fromS: 1_000, toS: 9_000 }],
        [formKey('new@c.us', 'new@c.us'), { fromS: 2_000, toS: 9_000 }],
      ]),
    },
  );

  it('skips a listed id read for the whole window; not the other id of a person marked by the first', () => {
    const done = completeBeforeRetry(chats, marks, [], window);
    expect(chats.map((c) => [c.id, done(c.id)])).toEqual([
      ['111@lid', true],
      // The stored chat's mark covers the window; this id was never read.
      [person, false],
      ['group@g.us', true],
      // Read, but not over the whole window.
      ['new@c.us', false],
    ]);
  });

  it('never a listed id still failed, and nothing from a database without per-id spans', () => {
    expect(completeBeforeRetry(chats, marks, [{ chatId: 'group@g.us' }], window)('group@g.us')).toBe(false);
    const olderMarks = new Map(marks);
    expect(chats.map((c) => completeBeforeRetry(chats, olderMarks, [], window)(c.id))).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });
});
