// Talking to the hub's JSON API from a page: the one fetch every page uses.
//
// - Accept JSON, never from the HTTP cache (what the office sees must be current).
// - POST, PATCH, PUT and DELETE carry the session's CSRF token (body[data-csrf], base.html);
//   a plain object is sent as JSON, FormData as it is (file imports).
// - 401: the session ended; the page goes to sign-in (body[data-login]) and comes back after.
//
//   const { ok, status, body } = await request("PATCH", url, { body: { name } });
//   const layer = await getJson(url, { signal });   // throws ApiError unless 2xx
//
// A network failure or time-out throws Unreachable; an abort by the caller's signal throws the
// browser's AbortError, as fetch does.

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** The hub could not be reached (network down, hub stopped, time-out). */
export class Unreachable extends Error {}

/** The hub answered with an error status; `message` is its own (translated) message, and
 * `field` the JSON member it is about (`bad_field` answers), else null. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.field = typeof this.body.field === "string" ? this.body.field : null;
  }
}

/**
 * The error's message for a person: a `bad_field` message names the API's member ("lon: must be
 * a number", "lon：必须是数字"); given the form's label for it, the label takes that place
 * ("Longitude: must be a number"). Any other message comes back as it is.
 *
 *   errorBox.textContent = fieldMessage(error, labels[error.field]);
 */
export function fieldMessage(error, label) {
  const message = String((error && error.message) || "");
  const field = error && error.field;
  if (!field || !label) return message;
  for (const colon of [": ", "：", ":"]) {
    if (message.startsWith(field + colon)) {
      return label + colon + message.slice(field.length + colon.length);
    }
  }
  return `${label}${colon(message)}${message}`;
}

// A message that does not start with the field's name still gets the label in front of it.
function colon(message) {
  return /[\u3000-\u9fff\uff00-\uffef]/.test(message) ? "：" : ": ";
}

/** Sends the page to sign-in, to come back here afterwards. */
export function signIn() {
  const here = window.location.pathname + window.location.search;
  const login = document.body.dataset.login || "/login";
  window.location.assign(`${login}?next=${encodeURIComponent(here)}`);
}

/** fetch → {ok, status, body} for any answer; body is {} when it was not JSON. */
export async function request(method, url, { body, signal, timeout } = {}) {
  const headers = { Accept: "application/json" };
  const options = { method, headers, cache: "no-store" };
  if (UNSAFE.has(method)) headers["X-CSRF-Token"] = document.body.dataset.csrf || "";
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  options.signal = signal || (timeout ? AbortSignal.timeout(timeout) : undefined);
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new Unreachable(error && error.message);
  }
  if (response.status === 401) {
    signIn();
    throw new ApiError(401, {});
  }
  let answer = {};
  try {
    answer = await response.json();
  } catch {
    // An answer that is not JSON (a proxy's error page): the status says enough.
  }
  return { ok: response.ok, status: response.status, body: answer };
}

/** GET a JSON document; throws ApiError for an error status. */
export async function getJson(url, options = {}) {
  const answer = await request("GET", url, options);
  if (!answer.ok) throw new ApiError(answer.status, answer.body);
  return answer.body;
}
