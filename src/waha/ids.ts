/**
 * One person, one stored chat id. WAHA names the same person in several ways: `NUMBER@c.us` (WEBJS, and
 * NOWEB messages), `NUMBER@s.whatsapp.net` (NOWEB's chat listing, the engine's own JID form, sometimes with
 * a `:device` suffix), and `ID@lid` (hidden-number ids; GOWS lists every person chat so since 2026.1.3).
 * Stored ids use `@c.us`, and a `@lid` becomes its phone number's `@c.us` id whenever WAHA's lid endpoints
 * know the number, so a chat keeps one `chat_id` across runs, engines and WAHA upgrades.
 */

/** `lid` (`123@lid`) to phone id (`5511...@c.us`), as WAHA's `/api/{session}/lids` endpoints report it. */
export type LidMap = ReadonlyMap<string, string>;

export const EMPTY_LID_MAP: LidMap = new Map();

const PHONE_SERVER = 'c.us';

/** Splits `user[:device]@server`; ids without `@` come back whole as the user. */
function splitJid(id: string): { user: string; server: string } {
  const at = id.lastIndexOf('@');
  if (at < 0) return { user: id, server: '' };
  return { user: id.slice(0, at), server: id.slice(at + 1) };
}

/** `@s.whatsapp.net` (with or without a `:device` part) becomes `@c.us`; every other id is returned as is. */
export function phoneFormId(id: string): string {
  const { user, server } = splitJid(id);
  if (server === 's.whatsapp.net' || server === PHONE_SERVER) {
    const colon = user.indexOf(':');
    return `${colon < 0 ? user : user.slice(0, colon)}@${PHONE_SERVER}`;
  }
  return id;
}

/** The stored form of a chat or person id: see the module comment. */
export function canonicalId(id: string, lids: LidMap = EMPTY_LID_MAP): string {
  const phoneForm = phoneFormId(id);
  if (splitJid(phoneForm).server !== 'lid') return phoneForm;
  const phone = lids.get(phoneForm) ?? lids.get(stripDevice(phoneForm));
  return phone === undefined ? stripDevice(phoneForm) : phoneFormId(phone);
}

function stripDevice(id: string): string {
  const { user, server } = splitJid(id);
  const colon = user.indexOf(':');
  return colon < 0 ? id : `${user.slice(0, colon)}@${server}`;
}

/** A phone number's digits from an id or a bare number, for `/lids/pn/{phone}`. */
export function phoneDigits(id: string): string {
  return splitJid(phoneFormId(id)).user.replace(/\D/g, '');
}

/**
 * Whether WAHA serves a person's `@lid` and phone-number histories as one (`merge`, 2026.3.1+). A
 * version it does not state, or in a form not read here, counts as not merging: reading both forms costs
 * requests, reading one can miss half a person's history.
 */
export function mergesPersonForms(version: string | null | undefined): boolean {
  const match = /^(\d{4})\.(\d{1,2})\.(\d{1,3})(?:\D|$)/.exec(version ?? '');
  if (!match) return false;
  const [year, month, patch] = match.slice(1).map(Number) as [number, number, number];
  return year * 10_000 + month * 100 + patch >= 2026_03_01;
}

/**
 * A server that does not merge a person's two histories (before 2026.3.1) serves each under its own id:
 * GOWS lists people by `@lid`, so the part stored under the phone number (history from before 2026.1.3)
 * is listed by no id of its own. For every person chat whose other form the lid endpoints know and the
 * listing does not hold, this returns that other form to read too (`chatId` the same, `id` the other
 * form); the writer keeps one row per message whichever form brought it.
 */
export function otherPersonForms<T extends { id: string; chatId: string }>(
  chats: readonly T[],
  lids: LidMap,
): T[] {
  const lidOfPhone = new Map<string, string>();
  for (const [lid, phone] of lids) lidOfPhone.set(phoneFormId(phone), lid);
  const listedForms = new Set<string>();
  const formKey = (chatId: string, id: string): string =>
    `${chatId}\0${splitJid(stripDevice(phoneFormId(id))).server}`;
  for (const chat of chats) listedForms.add(formKey(chat.chatId, chat.id));
  const others: T[] = [];
  for (const chat of chats) {
    const listed = stripDevice(phoneFormId(chat.id));
    const server = splitJid(listed).server;
    const other =
      server === 'lid' ? lids.get(listed) : server === PHONE_SERVER ? lidOfPhone.get(listed) : undefined;
    if (other === undefined) continue;
    const otherId = phoneFormId(other);
    const key = formKey(chat.chatId, otherId);
    if (listedForms.has(key)) continue;
    listedForms.add(key);
    others.push({ ...chat, id: otherId });
  }
  return others;
}
