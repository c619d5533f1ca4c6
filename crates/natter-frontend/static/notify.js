// Natter's live counts on every signed-in page: the user's event stream (subscribing to
// `me`, docs/protocol.md) keeps each room's unread and mention badges, the tab title's
// count and the notification level selector current, and shows the notifications the
// server says are due — in the page, and as a browser notification while the tab is
// hidden. The room page's own socket carries the stream (room.js hands its frames here);
// other pages open one for it.
"use strict";

const natter = (() => {
  const csrf = document.querySelector('meta[name="natter-csrf"]')?.content;
  const openRoom = document.getElementById("room")?.dataset.room || null;
  const baseTitle = document.title;
  const rooms = new Map(); // room id -> room state of the stream
  const names = new Map(); // user id -> username, looked up once
  let token = null;

  // A WebSocket token for the signed-in session (the cookie stays HTTP-only).
  async function fetchToken() {
    const reply = await fetch("/session/socket-token", { headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" });
    if (reply.status === 401 || reply.redirected) {
      window.location.href = "/login";
      throw new Error("signed out");
    }
    if (!reply.ok) throw new Error("token " + reply.status);
    token = (await reply.json()).token;
    return token;
  }

  async function nameOf(id) {
    if (!id) return "someone";
    if (!names.has(id)) {
      const reply = await fetch(`/api/v1/users/${encodeURIComponent(id)}`, {
        headers: { Authorization: "Bearer " + (token || (await fetchToken())) },
      });
      names.set(id, reply.ok ? (await reply.json()).username : "someone");
    }
    return names.get(id);
  }

  // Frames of the stream; false for any other frame.
  function receive(f) {
    switch (f.type) {
      case "my_rooms":
        rooms.clear();
        f.rooms.forEach(apply);
        break;
      case "room_added":
        apply(f.room);
        break;
      case "unread": {
        const room = rooms.get(f.room_id);
        if (room) apply({ ...room, ...f });
        break;
      }
      case "notify_level": {
        const room = rooms.get(f.room_id);
        if (room) apply({ ...room, level: f.level });
        break;
      }
      case "room_renamed": {
        const room = rooms.get(f.room_id);
        if (room) apply({ ...room, name: f.name });
        break;
      }
      case "room_removed":
        rooms.delete(f.room_id);
        show(f.room_id, null);
        showTitle();
        break;
      case "notify":
        notify(f);
        break;
      case "my_threads":
        f.threads.forEach(showThread);
        break;
      case "thread_unread":
        showThread(f);
        break;
      default:
        return false;
    }
    return true;
  }

  function apply(room) {
    rooms.set(room.room_id, room);
    show(room.room_id, room);
    showTitle();
  }

  // What a room's badge counts: every unread message where every message notifies,
  // mentions elsewhere, nothing in a muted room.
  function due(room) {
    if (room.level === "nothing") return 0;
    return room.level === "all" ? room.unread : room.mentions;
  }

  // Every badge and selector of `id` on the page (`room` null: the room is gone).
  function show(id, room) {
    for (const el of document.querySelectorAll(`[data-counts-of="${id}"]`)) {
      const unread = el.querySelector(".unread");
      const mentions = el.querySelector(".mentions");
      unread.textContent = room ? room.unread : 0;
      unread.hidden = !room || room.unread === 0;
      mentions.textContent = "@" + (room ? room.mentions : 0);
      mentions.hidden = !room || room.mentions === 0 || room.kind === "direct";
      el.classList.toggle("muted-room", !!room && room.level === "nothing");
    }
    const select = document.getElementById("notify-level");
    if (select && id === openRoom) {
      select.disabled = !room;
      if (room) select.value = room.level;
    }
  }

  // A followed thread's unread replies, on the home page's thread list.
  function showThread(thread) {
    const key = `${thread.room_id}:${thread.root}`;
    for (const el of document.querySelectorAll(`[data-thread-of="${key}"] .unread`)) {
      el.textContent = thread.unread;
      el.hidden = thread.unread === 0;
    }
  }

  function showTitle() {
    let total = 0;
    for (const room of rooms.values()) total += due(room);
    document.title = total ? `(${total}) ${baseTitle}` : baseTitle;
    document.documentElement.dataset.due = total;
  }

  // In the page unless it is the room in view; as a browser notification while hidden.
  async function notify(f) {
    if (f.room_id === openRoom && !document.hidden) return;
    const room = rooms.get(f.room_id);
    const sender = await nameOf(f.sender_id);
    const where = room && room.name ? `${sender} in ${room.name}` : sender;
    const title = f.reason === "mention" ? `${where} mentioned you` : where;
    toast(f.room_id, title, f.excerpt);
    if (document.hidden && "Notification" in window && Notification.permission === "granted") {
      const shown = new Notification(title, { body: f.excerpt, tag: `${f.room_id}:${f.seq}` });
      shown.onclick = () => {
        window.focus();
        window.location.href = `/rooms/${f.room_id}#m-${f.seq}`;
      };
    }
  }

  function toast(roomId, title, text) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const item = document.createElement("a");
    item.className = "toast";
    item.href = `/rooms/${roomId}`;
    const strong = document.createElement("strong");
    strong.textContent = title;
    const body = document.createElement("span");
    body.textContent = text;
    item.append(strong, body);
    box.append(item);
    setTimeout(() => item.remove(), 8000);
    while (box.children.length > 3) box.firstChild.remove();
  }

  // Browser notifications are asked for by a click, never on load; once allowed, this
  // browser also subscribes to Web Push for when no page is open.
  function offerNotifications() {
    const button = document.getElementById("enable-notifications");
    if (!("Notification" in window)) return;
    if (Notification.permission === "granted") subscribePush();
    if (!button || Notification.permission !== "default") return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      await Notification.requestPermission();
      button.hidden = Notification.permission === "default";
      subscribePush();
    });
  }

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + (token || (await fetchToken())) };
    if (body) headers["Content-Type"] = "application/json";
    return fetch(path, { method, headers, body: body && JSON.stringify(body) });
  }

  // Subscribes this browser with the server's key (again when the key was replaced).
  async function subscribePush() {
    if (Notification.permission !== "granted" || !("serviceWorker" in navigator) || !("PushManager" in window)) return;
    try {
      const reply = await api("GET", "/api/v1/push/key");
      if (!reply.ok) return; // this server sends no pushes
      const key = (await reply.json()).public_key;
      const registration = await navigator.serviceWorker.register("/sw.js");
      let subscription = await registration.pushManager.getSubscription();
      if (subscription && localStorage.getItem("natter-push-key") !== key) {
        await subscription.unsubscribe();
        subscription = null;
      }
      if (!subscription) {
        const raw = atob(key.replace(/-/g, "+").replace(/_/g, "/"));
        const applicationServerKey = Uint8Array.from(raw, (c) => c.charCodeAt(0));
        subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey });
      }
      localStorage.setItem("natter-push-key", key);
      await api("PUT", "/api/v1/push/subscriptions", subscription.toJSON());
    } catch (e) {
      console.warn("Web Push unavailable", e);
    }
  }

  // Logging out stops this browser's pushes first (another user may sign in on it).
  function forgetPushOnLogout() {
    const form = document.getElementById("logout")?.form;
    if (!form || !("serviceWorker" in navigator)) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const registration = await navigator.serviceWorker.getRegistration("/");
        const subscription = registration && (await registration.pushManager.getSubscription());
        if (subscription) {
          await api("DELETE", "/api/v1/push/subscriptions", { endpoint: subscription.endpoint });
          await subscription.unsubscribe();
        }
      } finally {
        form.submit(); // no submit event: this handler does not run again
      }
    });
  }

  // A socket of this page's own, for pages without a room's.
  function connect(attempt = 0) {
    const retry = () => setTimeout(() => connect(attempt + 1), Math.min(30000, 500 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2));
    fetchToken().then(() => {
      const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws", "natter.v1");
      ws.onmessage = (event) => {
        const f = JSON.parse(event.data);
        if (f.type === "hello") ws.send(JSON.stringify({ type: "auth", token }));
        else if (f.type === "authenticated") {
          attempt = 0;
          ws.send(JSON.stringify({ type: "subscribe", room_id: "me" }));
        } else receive(f);
      };
      ws.onclose = retry;
    }, retry);
  }

  if (csrf) {
    offerNotifications();
    forgetPushOnLogout();
    if (!openRoom) connect();
  }
  return { receive, fetchToken };
})();
