// The admin API client: same-origin fetches with the session cookie, the CSRF token (kept in
// memory only) on every non-GET request, JSON in and out, `{"error": …}` answers as ApiError.
// A 401 from any call except signing in sends the console back to the sign-in page.

let csrfToken = null;
let unauthorizedHandler = () => {};

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

export function setCsrfToken(token) {
  csrfToken = token ?? null;
}

/** Called (once per failing call) when the API answers 401: the session is gone. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/** `/api/v1/…` with query parameters; empty values are left out. */
export function apiPath(path, query = {}) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/**
 * One API call. Resolves to the parsed JSON body (null for 204), rejects with ApiError carrying
 * the API's own error message. `opts.signIn`: a 401 is the caller's (wrong password), not a
 * lost session.
 */
export async function api(method, path, body, opts = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['x-csrf-token'] = csrfToken;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, `The server cannot be reached (${e.message}).`, null);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.ok) return data;
  const message = (data && typeof data.error === 'string' && data.error) || `${res.status} ${res.statusText}`.trim();
  const err = new ApiError(res.status, message, data);
  if (res.status === 429) err.retryAfter = Number(res.headers.get('retry-after')) || null;
  if (res.status === 401 && !opts.signIn) unauthorizedHandler(err);
  throw err;
}

export const get = (path, query) => api('GET', apiPath(path, query));
export const post = (path, body) => api('POST', path, body ?? {});
export const put = (path, body) => api('PUT', path, body);
export const patch = (path, body) => api('PATCH', path, body);
export const del = (path) => api('DELETE', path);

/** A path segment, percent-encoded. */
export const seg = (s) => encodeURIComponent(s);
