// The one WebSocket of a signed-in tab (docs/protocol.md): it authenticates with a token
// fetched from the session (never in a URL), re-authenticates before that token expires,
// reconnects with backoff, and after every (re)connection subscribes again to the event
// stream and to each room a view has asked for, from the last seq that view has shown.
// Frames go to the view of their room, the event stream's to the stream; acks and
// errors about a client id also go to the outbox.
"use strict";

// Frames of the user's event stream (`subscribe` to "me").
const STREAM = new Set(["my_rooms", "room_added", "unread", "notify_level", "room_renamed", "room_removed", "notify", "my_threads", "thread_unread", "threads"]);

export function createSocket() {
  const csrf = document.querySelector('meta[name="natter-csrf"]')?.content;
  const rooms = new Map(); // room id -> { since(), receipts, receive(frame) }
  const listeners = { stream: [], ready: [], state: [], sent: [] };
  let ws = null;
  let token = null;
  let expiresAt = 0;
  let attempt = 0;
  let ready = false;
  let state = "connecting";
  let reauthTimer = null;
  let userId = null;

  // Calls `fn` on each `kind` event; returns what stops it.
  function on(kind, fn) {
    listeners[kind].push(fn);
    return () => listeners[kind].splice(listeners[kind].indexOf(fn) >>> 0, 1);
  }

  function emit(kind, value) {
    for (const fn of listeners[kind]) fn(value);
  }

  function setState(next) {
    state = next;
    emit("state", next);
  }

  // A WebSocket token for the signed-in session (the session cookie stays HTTP-only).
  async function fetchToken() {
    const reply = await fetch("/session/socket-token", { headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" });
    if (reply.status === 401 || reply.redirected) {
      window.location.href = "/login";
      throw new Error("signed out");
    }
    if (!reply.ok) throw new Error("token " + reply.status);
    const body = await reply.json();
    token = body.token;
    expiresAt = body.expires_at || 0;
    return token;
  }

  // A token good for a minute more (fetching a new one when it is about to expire).
  async function currentToken() {
    if (token && expiresAt * 1000 - Date.now() > 60000) return token;
    return fetchToken();
  }

  // The same user's fresh token on the open socket, a minute before the old one expires.
  function scheduleReauth() {
    clearTimeout(reauthTimer);
    if (!expiresAt) return;
    const due = Math.max(5000, expiresAt * 1000 - Date.now() - 60000);
    reauthTimer = setTimeout(async () => {
      try {
        await fetchToken();
        if (ws && ready) ws.send(JSON.stringify({ type: "auth", token, presence_changes: true }));
      } catch (e) {
        // the socket closes 4004 when it expires, and reconnects with a fresh one
      }
      scheduleReauth();
    }, due);
  }

  let connecting = false;
  async function connect() {
    if (connecting || ws) return; // one socket at a time
    connecting = true;
    setState(attempt === 0 ? "connecting" : "reconnecting");
    try {
      await currentToken();
    } catch (e) {
      connecting = false;
      return retry();
    }
    connecting = false;
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    ws = new WebSocket(url, "natter.v1");
    // How many sockets this tab has opened (one per connection, not per view).
    document.documentElement.dataset.sockets = Number(document.documentElement.dataset.sockets || 0) + 1;
    ws.onmessage = (event) => receive(JSON.parse(event.data));
    ws.onclose = (event) => {
      ws = null;
      ready = false;
      if (event.code === 4003 || event.code === 4004) token = null;
      retry();
    };
  }

  // After a drop: again with jittered exponential backoff, or at the longest backoff
  // while the browser says it is offline (its `online` event reconnects at once).
  let retryTimer = null;
  let offline = false;
  function retry() {
    attempt += 1;
    setState("reconnecting");
    const base = offline ? 30000 : Math.min(30000, 500 * 2 ** Math.min(attempt, 6));
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, base / 2 + (Math.random() * base) / 2);
  }

  window.addEventListener("offline", () => {
    offline = true;
    ws?.close(); // the server cannot be reached: say so now, not at the next timeout
  });
  window.addEventListener("online", () => {
    offline = false;
    if (ws) return;
    clearTimeout(retryTimer);
    attempt = 0;
    connect();
  });

  function subscribeFrame(id, view) {
    return { type: "subscribe", room_id: id, since: view.since(), receipts: view.receipts || undefined };
  }

  function receive(f) {
    switch (f.type) {
      case "hello":
        ws.send(JSON.stringify({ type: "auth", token, presence_changes: true }));
        return;
      case "authenticated":
        if (ready) return; // a re-authentication on the open socket
        ready = true;
        userId = f.user_id;
        attempt = 0;
        scheduleReauth();
        send({ type: "subscribe", room_id: "me" });
        for (const [id, view] of rooms) send(subscribeFrame(id, view));
        setState("live");
        emit("ready", f.user_id);
        return;
    }
    if (f.type === "error") {
      // About a room (its view's), or a client id (any view may be showing that send).
      const view = rooms.get(f.about);
      if (view) view.receive(f);
      else for (const v of rooms.values()) v.receive(f);
      if (f.about) emit("sent", f);
      return;
    }
    if (STREAM.has(f.type)) emit("stream", f);
    const view = f.room_id && rooms.get(f.room_id);
    if (view && f.type !== "unread") view.receive(f);
    if (f.type === "ack") emit("sent", f);
  }

  // Sends `frame` when the socket is ready; false when it is not (the caller keeps it).
  function send(frame) {
    if (!ws || ws.readyState !== WebSocket.OPEN || !ready) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  // Delivers room `id`'s frames to `view` from now on (from `view.since()` on, again
  // after every reconnection).
  function subscribe(id, view) {
    rooms.set(id, view);
    send(subscribeFrame(id, view));
  }

  function unsubscribe(id) {
    if (!rooms.delete(id)) return;
    send({ type: "unsubscribe", room_id: id });
  }

  // A fetch of the JSON API with the session's token.
  async function api(path, { method = "GET", body } = {}) {
    const headers = { Authorization: "Bearer " + (await currentToken()) };
    if (body) headers["Content-Type"] = "application/json";
    return fetch(path, { method, headers, body: body && JSON.stringify(body) });
  }

  return {
    on,
    send,
    subscribe,
    unsubscribe,
    api,
    start: connect,
    get state() {
      return state;
    },
    get ready() {
      return ready;
    },
    get userId() {
      return userId;
    },
  };
}
