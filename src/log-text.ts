/**
 * Text from the wire (node ids, cluster names, close reasons, paths) ends up in log lines. A log
 * line must stay one line whatever a peer or client sent, or a newline in a HELLO forges a
 * second, trusted-looking line. `logText` is the one escape every log sink applies.
 */

/** C0 and C1 controls, DEL, and the Unicode line and paragraph separators. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

const SHORT: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `text` with every control character as a visible escape (`\n`, `\u001b`); a backslash stays. */
export function logText(text: string): string {
  return text.replace(UNSAFE, (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
