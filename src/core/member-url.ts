/**
 * The size limit of a member's URL, one for every layer. A URL enters through the admin route,
 * the CLI (`--url`, `--peer`, `--join`), a membership change or the mesh's peer list, and each of
 * them refuses what this module refuses; the wire codec carries any URL it accepts, because every
 * InstallSnapshot carries the configuration's URLs (SnapshotMeta.conf.urls). A URL accepted at one
 * layer and refused by another would break every snapshot sent to its member.
 */

/** Longest member URL, in UTF-8 bytes (the codec's unit; for an ASCII URL, its characters). */
export const MAX_URL_BYTES = 2048;

/** UTF-8 byte length of `s`, or -1 if it has a lone surrogate (which has no UTF-8 form). */
export function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c < 0xd800 || c > 0xdfff) bytes += 3;
    else if (c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else return -1;
  }
  return bytes;
}

export interface UrlProblem {
  code: "URL_TOO_LONG" | "URL_NOT_UNICODE";
  /** "the URL is 2100 bytes; ...", to follow the name of what was refused. */
  message: string;
}

/** Why `url` cannot be a member URL for its size or encoding, or null when it can. */
export function memberUrlProblem(url: string): UrlProblem | null {
  const bytes = utf8Length(url);
  if (bytes < 0) return { code: "URL_NOT_UNICODE", message: "the URL has a lone surrogate, which has no UTF-8 form" };
  if (bytes > MAX_URL_BYTES) {
    return { code: "URL_TOO_LONG", message: `the URL is ${bytes} bytes; member URLs are limited to ${MAX_URL_BYTES} bytes of UTF-8 (MAX_URL_BYTES)` };
  }
  return null;
}
