/**
 * Text from outside (WAHA's chat, session and push names, the error messages and bodies it sends back,
 * rows of the runs table) must not drive the terminal it is printed on: an ESC starts a sequence that can
 * clear the screen, retitle the window (OSC) or forge output. Every control character is shown instead as
 * a visible escape (`\x1b`): C0 except tab and newline (a newline also when `singleLine`), DEL, and C1
 * (U+0080..U+009F, which some terminals read as 8-bit escape sequences). With the ESC shown, the rest of a
 * sequence is plain text.
 */

// Matching control characters is the point here.
// eslint-disable-next-line no-control-regex
const MULTI_LINE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
// eslint-disable-next-line no-control-regex
const SINGLE_LINE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;

const visible = (char: string): string => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`;

export function terminalText(text: string, options: { singleLine?: boolean } = {}): string {
  return text.replace(options.singleLine ? SINGLE_LINE : MULTI_LINE, visible);
}

/**
 * One JSON line for output. JSON.stringify escapes C0 already; DEL and C1 it leaves raw, so they are
 * escaped here as well (`\u009b`): the line stays valid JSON of the same value, and holds no byte a
 * terminal showing it would act on.
 */
export function jsonText(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(
    /[\u007f-\u009f]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
