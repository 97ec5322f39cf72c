/**
 * Text from the API made safe for a terminal. Run names, error messages and problem details are
 * written by other users: an escape sequence in them could retitle a terminal, move the cursor,
 * rewrite lines already printed or disguise one run as another. The API refuses control
 * characters in new run names, but older rows and free-text fields (an external run's error)
 * may hold them, so the CLI shows every one as a visible escape (`\x1b`, `\u202e`).
 */

/** C0 and C1 controls, DEL, and the bidirectional overrides and isolates. */
const UNSAFE = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu;
/** The same without the newline, for text whose lines we printed ourselves. */
const UNSAFE_BUT_NEWLINE = /[^\P{Cc}\n]|[\u202a-\u202e\u2066-\u2069]/gu;

function visible(char: string): string {
  const code = char.codePointAt(0)!;
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** One field (a name, a message): every control character escaped, newlines too. */
export function printable(text: string): string {
  return text.replace(UNSAFE, visible);
}

/** Lines the CLI composed: every control character escaped but the newlines between them. */
export function printableLines(text: string): string {
  return text.replace(UNSAFE_BUT_NEWLINE, visible);
}

/**
 * JSON for --json: JSON.stringify escapes C0 controls already but writes DEL, C1 controls and
 * bidi overrides raw; those can only stand inside strings, where a \u escape means the same.
 */
export function printableJson(json: string): string {
  return json.replace(
    /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
