// The page's live connection to the hub: Socket.IO namespace /live, signed in with the session
// cookie. The indicator #live says what the page really gets:
//   data-state="online"  green, 实时/Live: connected, and events keep arriving;
//   data-state="quiet"   grey, 已连接，无消息/Connected, no events: the socket is up but nothing
//                        has arrived for QUIET_AFTER_MS (the worker's hub_status heartbeat comes
//                        every 10 s to every signed-in person's `township` room, so silence means
//                        the worker or the room is missing, and the page may be out of date);
//   data-state="offline" red, 离线/Offline: not connected.
// It follows every connect, drop and reconnect. Page modules share the one socket:
// `import { socket, onLive } from "./live.js";`.

import { ApiError, request } from "./api.js";

const badge = document.getElementById("live");

// dispatch/jobs.py sends `hub_status` every 10 s: two beats missed and a margin make "quiet".
export const QUIET_AFTER_MS = 25000;

const state = {
  online: false, // the socket is connected
  receiving: false, // ... and an event arrived within QUIET_AFTER_MS
  lastEventAt: null, // Date of the newest event of any kind (hello, hub_status, reading, …)
  transport: null, // "websocket" | "polling"
  since: null, // Date of the current connection
  rooms: [], // from the server's `hello`
  reconnects: 0,
  lastId: null, // id of the newest event seen, sent on reconnect to get what was missed
};
const listeners = new Set();

/** "online" (events arriving), "quiet" (connected, nothing arriving) or "offline". */
export function liveState(live) {
  if (!live.online) return "offline";
  return live.receiving ? "online" : "quiet";
}

function render() {
  if (!badge) return;
  const shown = liveState(state);
  const key = shown[0].toUpperCase() + shown.slice(1);
  badge.dataset.state = shown;
  badge.title = badge.dataset[`hint${key}`] || "";
  const text = badge.querySelector(".live-text") || badge;
  text.textContent = badge.dataset[`label${key}`];
}

function update(changes) {
  Object.assign(state, changes);
  render();
  for (const callback of listeners) callback({ ...state });
}

/** Call `callback(state)` now and on every change; returns a function that stops it. */
export function onLive(callback) {
  listeners.add(callback);
  callback({ ...state });
  return () => listeners.delete(callback);
}

export const socket = window.io("/live", {
  // A real websocket first; long-polling only where something in between blocks websockets.
  transports: ["websocket", "polling"],
  tryAllTransports: true,
  reconnectionDelayMax: 10000,
  // realtime.py replays the events after `since` to a client that reconnects.
  auth: (send) => send(state.lastId ? { since: state.lastId } : {}),
});

let quietTimer = null;

// Every event from the hub counts as a sign of life; silence for QUIET_AFTER_MS turns the badge
// grey. (Socket.IO's own pings do not count: they prove the socket, not that events reach us.)
function heard() {
  window.clearTimeout(quietTimer);
  quietTimer = window.setTimeout(() => update({ receiving: false }), QUIET_AFTER_MS);
  update({ receiving: true, lastEventAt: new Date() });
}

function notListening() {
  window.clearTimeout(quietTimer);
  update({ online: false, receiving: false, since: null, transport: null });
}

socket.onAny((_name, payload) => {
  const id = payload && payload.id;
  if (typeof id === "string" && (!state.lastId || id > state.lastId)) state.lastId = id;
  if (socket.connected) heard();
});

let connections = 0;

socket.on("connect", () => {
  const engine = socket.io.engine;
  connections += 1;
  update({
    online: true,
    since: new Date(),
    transport: engine.transport.name,
    reconnects: connections - 1,
  });
  engine.once("upgrade", (transport) => update({ transport: transport.name }));
});

socket.on("hello", (hello) => update({ rooms: Array.isArray(hello.rooms) ? hello.rooms : [] }));

socket.on("disconnect", (reason) => {
  notListening();
  // The client retries by itself except when the server closed the socket on purpose.
  if (reason === "io server disconnect") retryLater();
});

socket.on("connect_error", () => {
  notListening();
  // `active` is false when the server refused us (not a network error): maybe signed out.
  if (!socket.active) retryLater();
});

let retrying = false;

// After a refusal: back to the sign-in page if the session ended, else try again in 10 s.
async function retryLater() {
  if (retrying) return;
  retrying = true;
  try {
    await request("GET", "/api/v1/me");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return; // api.js went to sign-in
    // The hub is unreachable: keep trying below.
  }
  window.setTimeout(() => {
    retrying = false;
    if (!socket.connected) socket.connect();
  }, 10000);
}

// The browser knows about a lost network long before the socket's ping times out. When the
// network is back, start a fresh connection at once (not after the remaining back-off); it asks
// for what was missed meanwhile.
window.addEventListener("offline", notListening);
window.addEventListener("online", () => {
  socket.disconnect();
  socket.connect();
});

render();
