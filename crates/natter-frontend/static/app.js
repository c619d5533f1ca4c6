// Natter's app shell on every signed-in page: one socket for the tab, the event stream
// behind the sidebar, and navigation without page loads — a click on a link of the app
// (or a search) fetches that page's server-rendered HTML and swaps the content beside
// the sidebar; rooms already opened are kept (their place and state) and come back at
// once. The URL follows: back, forward, reload and links all work, and every view also
// renders on the server. Plus the drawer (phone width) and keyboard shortcuts; prefs.js
// has the colour scheme and language choosers.
"use strict";

import { t } from "./i18n.js";
import { createOutbox } from "./outbox.js";
import { usePeople } from "./people.js";
import { formatTimes } from "./message.js";
import { startRoom } from "./room.js";
import { createSocket } from "./socket.js";
import { createStream } from "./stream.js";
import "./prefs.js";

// Rooms kept after being left, most recently shown last.
const CACHED = 8;
// Pages of the app (the rest — logout, unsubscribe links, the API — load as usual).
const IN_APP = /^\/($|rooms(\/[^/]+(\/members)?|\/new)?$|users(\/[^/]+)?$|profile$)/;
const ROOM = /^\/rooms\/([0-9a-zA-Z_-]+)$/;

const socket = createSocket();
usePeople(socket.api);
const outbox = createOutbox(socket);
const stream = createStream(socket);
const main = document.getElementById("main");
const rooms = new Map(); // room id -> view
let current = null; // the room view shown
let navigations = 0;

// --- connection state, always visible ---

const conn = document.getElementById("conn");
socket.on("state", (state) => {
  conn.dataset.state = state;
  conn.textContent = t(`conn-${state}`);
});

// --- views ---

function roomOf(url) {
  if (new URL(url, location.href).pathname === "/rooms/new") return null;
  return ROOM.exec(new URL(url, location.href).pathname)?.[1] || null;
}

function enterRoom(section, title) {
  const view = startRoom(section, { socket, outbox, stream });
  view.title = title;
  rooms.set(view.room, view);
  while (rooms.size > CACHED) {
    const [oldest, old] = rooms.entries().next().value;
    rooms.delete(oldest);
    old.stop();
  }
  return view;
}

function leave() {
  if (current) current.hide();
  current = null;
}

// Shows `url`: a kept room at once, anything else fetched from the server.
async function navigate(url, { push = true } = {}) {
  const started = performance.now();
  const ticket = ++navigations;
  const id = roomOf(url);
  const kept = id && rooms.get(id);
  if (kept) {
    leave();
    rooms.delete(id);
    rooms.set(id, kept); // most recently shown last
    main.replaceChildren(kept.el);
    document.title = kept.title;
    current = kept;
    kept.show(new URL(url, location.href).hash);
    return arrived(url, push, started, true);
  }
  if (!document.getElementById("sidebar")) {
    window.location.href = url; // a page without the shell (an error page): load it whole
    return;
  }
  let reply;
  try {
    reply = await fetch(url, { credentials: "same-origin", headers: { "X-Natter-Nav": "1" } });
  } catch (e) {
    window.location.href = url; // the browser says what went wrong
    return;
  }
  if (ticket !== navigations) return; // another click came first
  const doc = new DOMParser().parseFromString(await reply.text(), "text/html");
  const next = doc.getElementById("main");
  if (!next || !doc.getElementById("sidebar")) {
    window.location.href = reply.url || url; // signed out, or a page outside the shell
    return;
  }
  leave();
  main.replaceChildren(...next.childNodes);
  document.title = doc.title;
  const section = main.querySelector("#room");
  if (section) {
    current = enterRoom(section, doc.title);
    current.show(new URL(url, location.href).hash);
  } else {
    stream.setCurrent(null);
    formatTimes(main);
  }
  const landed = reply.redirected ? reply.url : url;
  arrived(landed, push, started, false);
}

// After a view is on screen: the URL, the sidebar's current entry, focus, timing.
function arrived(url, push, started, kept) {
  if (push) history.pushState({}, "", url);
  markCurrent();
  closeDrawer();
  main.focus({ preventScroll: true });
  const ms = Math.round((performance.now() - started) * 10) / 10;
  const root = document.documentElement;
  root.dataset.lastSwitchMs = ms;
  root.dataset.lastSwitchKept = kept;
}

function markCurrent() {
  for (const link of document.querySelectorAll("#sidebar a[aria-current]")) link.removeAttribute("aria-current");
  const here = document.querySelector(`#sidebar a[href="${CSS.escape(location.pathname + location.hash)}"], #sidebar a[href="${CSS.escape(location.pathname)}"]`);
  if (here) here.setAttribute("aria-current", "page");
}

function inApp(url) {
  return url.origin === location.origin && IN_APP.test(url.pathname);
}

document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest("a[href]");
  if (!link || link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href, location.href);
  if (!inApp(url)) return;
  event.preventDefault();
  const thread = /^#thread-(\d+)$/.exec(url.hash);
  if (url.pathname === location.pathname && current && thread) {
    history.pushState({}, "", url.href);
    current.openThread(Number(thread[1]));
    return;
  }
  navigate(url.href);
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.method !== "get" || event.defaultPrevented) return;
  const url = new URL(form.action, location.href);
  if (!inApp(url)) return;
  event.preventDefault();
  url.search = new URLSearchParams(new FormData(form)).toString();
  navigate(url.href);
});

window.addEventListener("popstate", () => navigate(location.href, { push: false }));

// --- the drawer (the sidebar at phone width) ---

const toggle = document.getElementById("drawer-toggle");
function closeDrawer() {
  document.body.classList.remove("drawer-open");
  toggle?.setAttribute("aria-expanded", "false");
}
toggle?.addEventListener("click", () => {
  const open = document.body.classList.toggle("drawer-open");
  toggle.setAttribute("aria-expanded", String(open));
  if (open) document.querySelector("#sidebar a, #sidebar input")?.focus();
});

// --- keyboard ---

function nextUnread(step) {
  const unread = new Set(stream.unreadRooms());
  const entries = [...document.querySelectorAll("#sidebar [data-counts-of]")].map((li) => li.dataset.countsOf);
  const here = entries.indexOf(current?.room);
  for (let i = 1; i <= entries.length; i++) {
    const id = entries[(here + step * i + entries.length * 2) % entries.length];
    if (unread.has(id)) return navigate(`/rooms/${id}`);
  }
}

document.addEventListener("keydown", (event) => {
  if (event.altKey && event.shiftKey && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
    event.preventDefault();
    nextUnread(event.key === "ArrowDown" ? 1 : -1);
  } else if (event.altKey && event.shiftKey && event.code === "KeyL") {
    event.preventDefault();
    current?.jumpLatest();
  } else if (event.key === "Escape") {
    if (document.body.classList.contains("drawer-open")) {
      closeDrawer();
      toggle?.focus();
    } else current?.closeTransient();
  }
});

// --- signing out: this browser's pushes stop, drafts and unsent messages are forgotten ---

const logout = document.getElementById("logout")?.form;
logout?.addEventListener("submit", async (event) => {
  event.preventDefault();
  current?.flushDeletes();
  try {
    await stream.forgetPush();
  } finally {
    outbox.forget();
    logout.submit(); // no submit event: this handler does not run again
  }
});
window.addEventListener("pagehide", () => current?.flushDeletes());

// --- the page as loaded ---

const section = document.getElementById("room");
if (section) {
  current = enterRoom(section, document.title);
  current.show();
} else {
  stream.setCurrent(null);
}
formatTimes(document);
markCurrent();
history.replaceState({}, "", location.href);
socket.start();
