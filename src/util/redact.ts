/** Secrets never reach output: URLs lose their password, and known secret values are masked wherever they occur. */

/**
 * A URL fit for output: its password masked, its user name too (kept only for PostgreSQL URLs, where it
 * names the database role and holds no secret), and the value of every query parameter masked (`?token=`,
 * `?apikey=`, `?sslpassword=` ... there is no list of safe names).
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    if (parsed.username && !/^postgres(ql)?:$/i.test(parsed.protocol)) parsed.username = '***';
    for (const key of new Set(parsed.searchParams.keys())) parsed.searchParams.set(key, '***');
    return parsed.toString().replace(/%2A/g, '*');
  } catch {
    // Not a URL we can parse (a multi-host PostgreSQL URL): mask user:password@ and every query value.
    return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@').replace(/([?&][^=&#]*)=[^&#]*/g, '$1=***');
  }
}

/** What must never be printed of a URL: its password and its query values (see `redactUrl`). */
export function urlSecrets(url: string | undefined): string[] {
  if (!url) return [];
  try {
    const parsed = new URL(url);
    const secrets = [...parsed.searchParams.values()];
    if (parsed.password) secrets.push(decodeURIComponent(parsed.password));
    return secrets;
  } catch {
    return [];
  }
}

/** Builds a function that masks every given secret (and its URL-encoded form) in a text. */
export function secretMasker(secrets: Array<string | undefined>): (text: string) => string {
  const needles = new Set<string>();
  for (const secret of secrets) {
    if (!secret || secret.length < 3) continue;
    needles.add(secret);
    needles.add(encodeURIComponent(secret));
  }
  const sorted = [...needles].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const needle of sorted) out = out.split(needle).join('***');
    return out;
  };
}

/** The password part of a connection URL, so it can be masked even where it appears on its own. */
export function urlPassword(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const password = new URL(url).password;
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    return undefined;
  }
}
