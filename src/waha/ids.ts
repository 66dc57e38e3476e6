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
