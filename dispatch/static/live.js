// The page's live connection to the hub: Socket.IO namespace /live, signed in with the session
// cookie. The indicator #live shows data-state="online" (green, 实时/Live) or "offline"
// (red, 离线/Offline) and follows every connect, drop and reconnect. Page modules share the one
// socket: `import { socket, onLive } from "./live.js";`.

import { ApiError, request } from "./api.js";

const badge = document.getElementById("live");

const state = {
  online: false,
  transport: null, // "websocket" | "polling"
  since: null, // Date of the current connection
  rooms: [], // from the server's `hello`
  reconnects: 0,
  lastId: null, // id of the newest event seen, sent on reconnect to get what was missed
};
const listeners = new Set();

function render() {
  if (!badge) return;
  const key = state.online ? "Online" : "Offline";
  badge.dataset.state = state.online ? "online" : "offline";
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

socket.onAny((_name, payload) => {
  const id = payload && payload.id;
  if (typeof id === "string" && (!state.lastId || id > state.lastId)) state.lastId = id;
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
  update({ online: false, since: null, transport: null });
  // The client retries by itself except when the server closed the socket on purpose.
  if (reason === "io server disconnect") retryLater();
});

socket.on("connect_error", () => {
  update({ online: false, since: null, transport: null });
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
window.addEventListener("offline", () => update({ online: false, since: null, transport: null }));
window.addEventListener("online", () => {
  socket.disconnect();
  socket.connect();
});

render();
