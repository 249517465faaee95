// The API client: the bearer token on every call. The token lives here, in memory and in
// sessionStorage (this tab only, never localStorage). What a 401 means for the page is the
// session's business: it registers a handler, so this module needs no view.

const TOKEN_KEY = 'sinch-webhooks.api-token';

let token = sessionStorage.getItem(TOKEN_KEY);
let unauthorized = () => {};

export const currentToken = () => token;

/** Used for calls from now on, but not kept across a reload until `keepToken`. */
export function useToken(value) {
  token = value;
}

export function keepToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function forgetToken() {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Called with the server's reason when the token in use is refused. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The server's explanation from an error body (`message`, or `reason`). */
export function reasonOf(data, status) {
  if (data && typeof data === 'object') {
    const text = data.message || data.reason;
    if (data.error && text) return `${text} (${data.error})`;
    if (text) return String(text);
    if (data.error) return String(data.error);
  }
  return `HTTP ${status}`;
}

export async function api(path, { method = 'GET', body, signal } = {}) {
  const sent = token;
  const headers = { Accept: 'application/json', Authorization: `Bearer ${sent}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network', `the receiver did not answer (${error.message})`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.status === 401) {
    const reason = reasonOf(data, 401);
    // Only the token in use decides; an answer to an older one is stale.
    if (token === sent) unauthorized(reason);
    throw new ApiError(401, data?.error || 'unauthorized', reason);
  }
  if (!response.ok) {
    throw new ApiError(response.status, data?.error || `http_${response.status}`, reasonOf(data, response.status));
  }
  return data;
}

export function showError(target, error) {
  if (error && error.name === 'AbortError') return;
  if (error instanceof ApiError && error.status === 401) return; // the login form says it
  target.textContent = error instanceof ApiError ? error.message : `Unexpected error: ${error}`;
}
