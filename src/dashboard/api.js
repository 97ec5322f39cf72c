/**
 * The dashboard's access to the API: the key (asked once, kept in localStorage, or taken from a
 * `#token=` fragment, which is then removed from the address bar), JSON requests with that key,
 * and the live event streams, read with fetch() so the key travels in a header, never in a URL.
 */
const KEY_STORAGE = 'gq.apiKey';

/** A `#token=` fragment wins over the stored key, and is stored in its place. */
export function adoptTokenFromFragment() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) return;
  localStorage.setItem(KEY_STORAGE, decodeURIComponent(match[1]));
  history.replaceState(null, '', location.pathname + location.search);
}

export function apiKey() {
  return localStorage.getItem(KEY_STORAGE) ?? '';
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

/** An API refusal, carrying the problem+json body (title, detail, errors[]). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Called when a request gets 401, so the page can ask for a key. */
let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: {
      authorization: `Bearer ${apiKey()}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) {
    if (res.status === 401) onUnauthorized();
    throw new ApiError(res.status, json);
  }
  return json;
}

/**
 * Follows an event stream of the API (Server-Sent Events): `/v1/runs/:id/events` or
 * `/v1/events`. Reconnects after a drop (a second later), and after STREAM_SILENCE_MS without a
 * byte (the server sends a keepalive every 15 s, so that is a dead link that never closed), and
 * calls `onState(true)` on every connection, so the page can read again what it may have missed
 * meanwhile. Returns a function that stops it.
 */
const STREAM_SILENCE_MS = 45_000;

export function followEvents(path, onEvent, onState = () => {}) {
  let stopped = false;
  let abort = new AbortController();
  (async () => {
    while (!stopped) {
      let silence;
      try {
        const res = await fetch(path, {
          headers: { authorization: `Bearer ${apiKey()}` },
          signal: abort.signal,
        });
        if (res.status === 401 || res.status === 403) {
          // A wrong key stays wrong: ask for another instead of knocking every second (which
          // would count against this address's failed-key limit). The page follows again once
          // a key is saved.
          stopped = true;
          onUnauthorized();
          break;
        }
        if (res.status === 429) {
          const seconds = Number(res.headers.get('retry-after')) || 10;
          await new Promise((r) => setTimeout(r, seconds * 1000));
          continue;
        }
        if (!res.ok) throw new Error(`events: HTTP ${res.status}`);
        onState(true);
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const current = abort;
          clearTimeout(silence);
          silence = setTimeout(() => current.abort(), STREAM_SILENCE_MS);
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const type = /^event: (.*)$/m.exec(frame)?.[1];
            const data = /^data: (.*)$/m.exec(frame)?.[1];
            if (type && data) onEvent(type, JSON.parse(data));
          }
        }
      } catch {
        // dropped, silent or stopped
      }
      clearTimeout(silence);
      if (stopped) break; // the view is gone: its elements may belong to the next one
      onState(false);
      await new Promise((r) => setTimeout(r, 1000));
      abort = new AbortController();
    }
  })();
  return () => {
    stopped = true;
    abort.abort();
  };
}
