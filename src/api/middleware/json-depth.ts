/**
 * The nesting depth of a JSON body, measured on its raw bytes before JSON.parse sees them. A
 * body nested 20,000 deep parses, but every recursive walk after it (schemas, serialisers, the
 * database driver) can overflow the stack: such a body is refused before anything parses it.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/** True when `body` (UTF-8 JSON, valid or not) nests arrays and objects deeper than `max`. */
export function jsonNestingExceeds(body: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/** The error body-parser's `verify` throws for a body nested too deep (see errors.ts). */
export class JsonTooDeepError extends Error {
  readonly type = 'entity.too.deep';
  readonly status = 400;
  constructor(readonly limit: number) {
    super(`JSON nested deeper than ${limit}`);
  }
}
