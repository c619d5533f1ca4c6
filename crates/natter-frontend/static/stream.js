// The user's event stream (subscribing to `me`, docs/protocol.md) on every signed-in
// page: keeps the sidebar's rooms, direct chats and followed threads, their unread and
// mention badges, the tab title's count and the open room's level selector current, and
// shows the notifications the server says are due — in the page, and as a browser
// notification while the tab is hidden.
"use strict";

import { t } from "./i18n.js";
import { initials, named } from "./people.js";

export function createStream(socket) {
  const baseTitle = () => document.title.replace(/^\(\d+\) /, "");
  const rooms = new Map(); // room id -> room state of the stream
  let current = null; // the room in view

  socket.on("stream", receive);

  function receive(f) {
    switch (f.type) {
      case "my_rooms":
        rooms.clear();
        f.rooms.forEach(apply);
        for (const li of document.querySelectorAll("#sidebar [data-counts-of]")) {
          if (!rooms.has(li.dataset.countsOf)) li.remove();
        }
        break;
      case "room_added":
        apply(f.room);
        break;
      case "unread":
      case "notify_level":
      case "room_renamed": {
        const room = rooms.get(f.room_id);
        if (!room) break;
        const change = f.type === "notify_level" ? { level: f.level } : f.type === "room_renamed" ? { name: f.name } : f;
        apply({ ...room, ...change });
        break;
      }
      case "room_removed":
        rooms.delete(f.room_id);
        for (const li of document.querySelectorAll(`#sidebar [data-counts-of="${f.room_id}"]`)) li.remove();
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
    }
  }

  function apply(room) {
    rooms.set(room.room_id, room);
    const entry = sidebarEntry(room);
    if (entry) show(entry, room);
    showTitle();
  }

  // What a room's badge counts: every unread message where every message notifies,
  // mentions elsewhere, nothing in a muted room.
  function due(room) {
    if (room.level === "nothing" || room.room_id === current) return 0;
    return room.level === "all" ? room.unread : room.mentions;
  }

  // The room's entry in the sidebar, made when the stream knows a room the page did not.
  function sidebarEntry(room) {
    const found = document.querySelector(`#sidebar [data-counts-of="${room.room_id}"]`);
    const list = document.getElementById(room.kind === "direct" ? "my-directs" : "my-rooms");
    if (found || !list) {
      if (found && room.kind !== "direct" && room.name) found.querySelector(".label").textContent = room.name;
      return found;
    }
    const li = document.createElement("li");
    li.dataset.countsOf = room.room_id;
    li.dataset.kind = room.kind;
    const link = Object.assign(document.createElement("a"), { href: `/rooms/${room.room_id}` });
    const avatar = Object.assign(document.createElement("span"), { className: "avatar" });
    avatar.setAttribute("aria-hidden", "true");
    const label = Object.assign(document.createElement("span"), { className: "label", textContent: room.name || "…" });
    const unread = Object.assign(document.createElement("span"), { className: "unread", title: t("badge-unread"), hidden: true });
    const mentions = Object.assign(document.createElement("span"), { className: "mentions", title: t("badge-mentions"), hidden: true });
    link.append(avatar, label, unread, mentions);
    li.append(link);
    list.append(li);
    if (room.kind === "direct") nameDirect(room.room_id, label, avatar);
    else avatar.textContent = initials(room.name || "");
    return li;
  }

  // A direct chat is called after the other person.
  async function nameDirect(id, label, avatar) {
    const reply = await socket.api(`/api/v1/rooms/${id}/members`);
    if (!reply.ok) return;
    const body = await reply.json();
    const other = (body.items || body).find((m) => m.user_id !== socket.userId);
    if (!other) return;
    label.textContent = other.username;
    avatar.textContent = initials(other.username);
  }

  function show(entry, room) {
    const unread = entry.querySelector(".unread");
    const mentions = entry.querySelector(".mentions");
    const viewing = room.room_id === current;
    unread.textContent = room.unread;
    unread.hidden = viewing || room.unread === 0;
    mentions.textContent = "@" + room.mentions;
    mentions.hidden = viewing || room.mentions === 0 || room.kind === "direct";
    entry.classList.toggle("muted-room", room.level === "nothing");
    entry.classList.toggle("has-unread", !viewing && due(room) > 0);
    const select = document.getElementById("notify-level");
    if (select && viewing) {
      select.disabled = false;
      select.value = room.level;
    }
  }

  // A followed thread's unread replies; one the sidebar does not list yet brings the
  // list up to date.
  function showThread(thread) {
    const key = `${thread.room_id}:${thread.root}`;
    const entries = document.querySelectorAll(`[data-thread-of="${key}"] .unread`);
    if (!entries.length) return refreshThreads();
    for (const el of entries) {
      el.textContent = thread.unread;
      el.hidden = thread.unread === 0;
    }
  }

  let refreshing = null;
  function refreshThreads() {
    refreshing = refreshing || setTimeout(async () => {
      refreshing = null;
      const reply = await socket.api("/api/v1/threads?limit=20");
      const list = document.getElementById("my-threads");
      if (!reply.ok || !list) return;
      const body = await reply.json();
      list.replaceChildren(...(body.items || body.threads || body).map(threadEntry));
    }, 300);
  }

  function threadEntry(thread) {
    const li = document.createElement("li");
    li.dataset.threadOf = `${thread.room_id}:${thread.root_seq ?? thread.root}`;
    const link = Object.assign(document.createElement("a"), { href: `/rooms/${thread.room_id}#thread-${thread.root_seq ?? thread.root}` });
    const text = thread.root_body || "";
    const label = Object.assign(document.createElement("span"), { className: "label", textContent: text.length > 80 ? text.slice(0, 80) + "…" : text });
    const room = rooms.get(thread.room_id);
    const sub = Object.assign(document.createElement("span"), { className: "sub", textContent: `${room?.name || ""} · ${t("replies", { n: thread.replies })}` });
    const unread = Object.assign(document.createElement("span"), { className: "unread", textContent: thread.unread, hidden: !thread.unread });
    link.append(label, sub, unread);
    li.append(link);
    return li;
  }

  function showTitle() {
    let total = 0;
    for (const room of rooms.values()) total += due(room);
    const base = baseTitle();
    document.title = total ? `(${total}) ${base}` : base;
    document.documentElement.dataset.due = total;
  }

  // In the page unless it is the room in view; as a browser notification while hidden.
  async function notify(f) {
    if (f.room_id === current && !document.hidden) return;
    const room = rooms.get(f.room_id);
    const sender = await named(f.sender_id);
    const where = room && room.name ? t("notify-in", { sender, room: room.name }) : sender;
    const title = f.reason === "mention" ? t("notify-mentioned", { where }) : where;
    toast(f.room_id, title, f.excerpt);
    if (document.hidden && "Notification" in window && Notification.permission === "granted") {
      const shown = new Notification(title, { body: f.excerpt, tag: `${f.room_id}:${f.seq}` });
      shown.onclick = () => {
        window.focus();
        window.location.href = `/rooms/${f.room_id}`;
      };
    }
  }

  function toast(roomId, title, text) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const item = Object.assign(document.createElement("a"), { className: "toast", href: `/rooms/${roomId}` });
    const strong = Object.assign(document.createElement("strong"), { textContent: title });
    const body = Object.assign(document.createElement("span"), { textContent: text });
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

  // Subscribes this browser with the server's key (again when the key was replaced).
  async function subscribePush() {
    if (Notification.permission !== "granted" || !("serviceWorker" in navigator) || !("PushManager" in window)) return;
    try {
      const reply = await socket.api("/api/v1/push/key");
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
      await socket.api("/api/v1/push/subscriptions", { method: "PUT", body: subscription.toJSON() });
    } catch (e) {
      console.warn("Web Push unavailable", e);
    }
  }

  // Before signing out: this browser's pushes stop (another user may sign in on it).
  async function forgetPush() {
    if (!("serviceWorker" in navigator)) return;
    const registration = await navigator.serviceWorker.getRegistration("/");
    const subscription = registration && (await registration.pushManager.getSubscription());
    if (subscription) {
      await socket.api("/api/v1/push/subscriptions", { method: "DELETE", body: { endpoint: subscription.endpoint } });
      await subscription.unsubscribe();
    }
  }

  offerNotifications();

  return {
    rooms,
    forgetPush,
    // The room now in view (null: none); its badges hide while it is.
    setCurrent(id) {
      current = id;
      for (const room of rooms.values()) apply(room);
      showTitle();
    },
    unreadRooms() {
      return [...rooms.values()].filter((r) => r.room_id !== current && due(r) > 0).map((r) => r.room_id);
    },
    room(id) {
      return rooms.get(id);
    },
  };
}
