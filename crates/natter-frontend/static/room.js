// A room's conversation in the app shell: live messages over the tab's one socket
// (docs/protocol.md), history paged in both directions and windowed, day separators, a
// "new messages" divider at the reader's marker, inline edit, delete with undo,
// replies, threads, reactions, mentions, pins, typing and presence, read receipts.
// Everything user-supplied goes into the page as text (textContent), never as HTML —
// except a message's `html`, which the server renders from its Markdown subset and cleans
// with an allow-list (docs/protocol.md, "Message text"); the CSP forbids inline script.
"use strict";

import { t } from "./i18n.js";
import { createMessages, dayLabel, formatTimes, make } from "./message.js";
import { startComposer } from "./composer.js";
import { fill, forget, learn, nameOf, onName, watch } from "./people.js";

// The list is windowed: at most MAX_LOADED messages in the page; at the bottom it is
// trimmed to KEEP once it holds more than TRIM_AT.
const KEEP = 300;
const TRIM_AT = 400;
const MAX_LOADED = 800;
const PAGE = 100;
// Online names are listed up to this many; past it, a count.
const NAMES_SHOWN = 12;
// How long a deleted message can be taken back before the delete is sent.
const UNDO_MS = 5000;

export function startRoom(el, { socket, outbox, stream }) {
  const $ = (id) => el.querySelector("#" + id);
  const room = el.dataset.room;
  const me = el.dataset.me;
  const joined = el.dataset.joined === "true";
  const canPin = el.dataset.canPin === "true";
  const roomNames = JSON.parse(el.dataset.names || "{}");
  learn(roomNames);
  watch(el);
  outbox.forUser(me);
  const list = $("messages");
  const composer = $("composer");
  const input = $("body");
  const suggestEl = $("mention-suggest");
  const threadPanel = $("thread-panel");
  const threadList = $("thread-messages");
  const threadInput = $("thread-body");
  const jump = $("jump-latest");
  const pinList = $("pin-list");

  let lastSeq = Number(el.dataset.lastSeq || 0); // the room's newest seq known
  // Every message up to this seq has reached this view (rendered with the page, live,
  // replayed or filled in); `data-contiguous` shows it, so a hole cannot go unnoticed.
  let contiguous = lastSeq;
  const above = new Set();
  // The reader's marker at opening: the stream's when it knows the room (pages fetched
  // by the shell's navigation come without the server's).
  let readSeq = stream.room(room)?.read_seq ?? Number(el.dataset.readSeq || lastSeq);
  let tailGap = false; // newer messages than the list's last were trimmed off
  let exhausted = false; // the list reaches back to the room's first message
  let loading = false;
  let visible = false;
  let stopped = false;
  let newCount = 0; // arrived while scrolled up
  let savedScroll = null;
  let openRoot = null;
  let replyTo = null;
  let lastTyping = 0;
  let onlineCount = 0;
  const online = new Set();
  const pending = new Map(); // client_id -> li
  const typingTimers = new Map();
  const receipts = new Map();
  const deleting = new Map(); // seq -> timer

  const { messageItem, showBody, markMentions, addTools, markEdited, markDeleted, setThread, markThreadReply, setPinned, setReaction } = createMessages({ me, joined, canPin, fillQuote: (a) => fillQuote(a) });
  const shown = () => list.querySelectorAll("li.message[data-seq]");
  const firstMessage = () => list.querySelector("li.message[data-seq]");
  const firstSeq = () => Number(firstMessage()?.dataset.seq || lastSeq + 1);
  const lastShown = () => {
    const all = shown();
    return Number(all[all.length - 1]?.dataset.seq || 0);
  };

  function setState(state, text) {
    const stateEl = $("state");
    stateEl.className = "state " + state;
    stateEl.textContent = text;
    el.dataset.state = state;
  }
  // What a stopped view must let go of (so an evicted room's page can be freed).
  const stopping = [];
  stopping.push(socket.on("state", (s) => {
    if (!stopped && visible && s !== "live") setState(s, t(`room-state-${s}`));
  }));

  // --- placing messages: in seq order, with day separators ---

  function dayOf(li) {
    const ms = Number(li.dataset.ms || li.querySelector("time")?.dataset.ms || 0);
    return new Date(ms).toDateString();
  }

  // Separators before the first message of each day (recomputed for the whole window,
  // at most MAX_LOADED messages).
  function markDays() {
    for (const old of list.querySelectorAll("li.day")) old.remove();
    let previous = null;
    for (const li of shown()) {
      const day = dayOf(li);
      if (day !== previous) {
        const ms = Number(li.querySelector("time").dataset.ms);
        li.before(make("li", { className: "divider day" }, make("span", { textContent: dayLabel(ms) })));
      }
      previous = day;
    }
  }

  // Inserts `li` where its seq belongs: after the last message with a lower seq (live
  // messages land last, before any pending sends; a filled gap may land earlier).
  function place(target, li) {
    const seq = Number(li.dataset.seq);
    let after = target.lastElementChild;
    while (after && !(after.dataset.seq && Number(after.dataset.seq) < seq)) after = after.previousElementSibling;
    const wasLast = !!after && after === [...target.querySelectorAll("li.message[data-seq]")].pop();
    if (after) after.after(li);
    else target.prepend(li);
    if (target === list && !(wasLast && dayOf(after) === dayOf(li))) markDays();
  }

  // The divider above the first message the reader had not read when opening.
  function markNew() {
    for (const old of list.querySelectorAll("li.new")) old.remove();
    const first = [...shown()].find((li) => Number(li.dataset.seq) > readSeq && li.dataset.sender !== me);
    if (!first) return null;
    const divider = make("li", { className: "divider new" }, make("span", { textContent: t("room-new-messages") }));
    first.before(divider);
    return divider;
  }

  // --- tools: reply, react, thread, pin, edit, delete ---

  function startEdit(li) {
    if (li.querySelector("form.edit")) return;
    const body = li.querySelector(".body");
    const text = make("textarea", { value: li.dataset.body, rows: 2, maxLength: 4000 });
    text.setAttribute("aria-label", t("edit-label"));
    const form = make("form", { className: "edit" }, text, make("button", { type: "submit", textContent: t("edit-save") }), make("button", { type: "button", className: "cancel", textContent: t("edit-cancel") }));
    const close = () => {
      form.remove();
      body.hidden = false;
      li.querySelector("button.edit")?.focus();
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const next = text.value.trim();
      if (next && next !== li.dataset.body) socket.send({ type: "edit", room_id: room, seq: Number(li.dataset.seq), body: next });
      close();
    });
    form.querySelector(".cancel").addEventListener("click", close);
    text.addEventListener("keydown", (event) => {
      if (event.key === "Escape") close();
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    body.hidden = true;
    body.after(form);
    text.focus();
  }

  // A delete waits UNDO_MS for an undo, then is sent (at once when the room is left).
  function startDelete(li) {
    const seq = Number(li.dataset.seq);
    if (deleting.has(seq)) return;
    const undo = make("button", { type: "button", className: "undo", textContent: t("delete-undo") });
    const note = make("span", { className: "deleting-note", textContent: t("delete-done") + " " }, undo);
    note.setAttribute("role", "status");
    li.classList.add("deleting");
    li.append(note);
    undo.focus();
    const done = () => {
      deleting.delete(seq);
      note.remove();
      li.classList.remove("deleting");
    };
    const timer = setTimeout(() => {
      done();
      socket.send({ type: "delete", room_id: room, seq });
    }, UNDO_MS);
    deleting.set(seq, { timer, send: () => (clearTimeout(timer), done(), socket.send({ type: "delete", room_id: room, seq })) });
    undo.addEventListener("click", () => {
      clearTimeout(timer);
      done();
    });
  }

  function flushDeletes() {
    for (const d of [...deleting.values()]) d.send();
  }

  async function toggleEdits(li, button) {
    const opened = li.querySelector("ol.edits");
    if (opened) {
      opened.remove();
      button.setAttribute("aria-expanded", "false");
      return;
    }
    const reply = await api(`messages/${li.dataset.seq}/edits`);
    if (!reply.ok) return;
    const edits = make("ol", { className: "edits" });
    edits.setAttribute("aria-label", t("message-earlier-list"));
    for (const e of await reply.json()) {
      const time = make("time");
      time.dataset.ms = e.written_at;
      const text = make("div", { className: "body" });
      showBody(text, e);
      edits.append(make("li", {}, time, text));
    }
    formatTimes(edits);
    button.setAttribute("aria-expanded", "true");
    li.querySelector(".reactions").before(edits);
  }

  // --- threads ---

  async function openThread(seq) {
    const root = original(seq);
    openRoot = seq;
    threadPanel.hidden = false;
    $("thread-root").textContent = root ? excerpt(root) : "";
    threadList.replaceChildren();
    const reply = await api(`messages?thread=${seq}&after=0&limit=100`);
    if (!reply.ok || openRoot !== seq) return;
    for (const m of await reply.json()) {
      if (!threadList.querySelector(`li[data-seq="${m.seq}"]`)) threadList.append(messageItem(m));
    }
    threadList.scrollTop = threadList.scrollHeight;
    const last = threadList.lastElementChild;
    if (last) readThread(Number(last.dataset.seq));
    if (threadInput) threadInput.focus();
  }

  function closeThread() {
    openRoot = null;
    threadPanel.hidden = true;
  }

  function readThread(seq) {
    if (openRoot) socket.send({ type: "read_thread", room_id: room, root: openRoot, seq });
  }

  // --- pins ---

  function showPin(m) {
    if (!pinList) return;
    const old = pinList.querySelector(`li[data-seq="${m.seq}"]`);
    if (!m.pinned_at || m.deleted) {
      if (old) old.remove();
    } else {
      const item = old || make("li");
      item.dataset.seq = m.seq;
      const text = `${nameOf(m.sender_id, t("message-someone"))}: ${m.body.length > 80 ? m.body.slice(0, 80) + "…" : m.body}`;
      item.replaceChildren(make("a", { href: "#", className: "pin-link", textContent: text }));
      if (!old) pinList.prepend(item);
    }
    $("pin-count").textContent = pinList.children.length;
  }

  async function loadPins() {
    const reply = await api("pins");
    if (!reply.ok) return;
    pinList.replaceChildren();
    for (const m of (await reply.json()).reverse()) showPin(m);
  }

  // --- reactions ---

  function react(li, emoji, add) {
    socket.send({ type: "react", room_id: room, seq: Number(li.dataset.seq), emoji, add });
  }

  // --- replies ---

  function original(seq) {
    return list.querySelector(`li[data-seq="${seq}"]`);
  }

  function excerpt(li) {
    const text = li.dataset.body || li.querySelector(".body").textContent;
    return `${li.querySelector(".sender").textContent}: ${text.length > 80 ? text.slice(0, 80) + "…" : text}`;
  }

  function fillQuote(quote) {
    const li = original(quote.dataset.replyTo);
    quote.classList.toggle("gone", !!li && li.classList.contains("deleted"));
    quote.textContent = "↩ " + (!li ? t("message-earlier-message") : li.classList.contains("deleted") ? t("message-deleted-message") : excerpt(li));
  }

  function refreshQuotes(seq) {
    for (const quote of list.querySelectorAll(`a.quote${seq ? `[data-reply-to="${seq}"]` : ""}`)) fillQuote(quote);
  }

  async function jumpTo(seq) {
    for (let tries = 0; !original(seq) && firstSeq() > seq && !exhausted && tries < 100; tries++) {
      if (loading) await new Promise((done) => setTimeout(done, 100));
      else await loadOlder();
    }
    const li = original(seq);
    if (!li) return;
    li.scrollIntoView({ block: "center" });
    li.classList.add("flash");
    setTimeout(() => li.classList.remove("flash"), 1500);
  }

  function startReply(li) {
    replyTo = Number(li.dataset.seq);
    $("replying-to").textContent = t("room-replying-to", { who: excerpt(li) });
    $("replying").hidden = false;
    input.focus();
  }

  function endReply() {
    replyTo = null;
    if ($("replying")) $("replying").hidden = true;
  }

  // --- clicks on messages ---

  function clicked(event, inThread) {
    const target = event.target;
    const quote = target.closest("a.quote");
    if (quote) {
      event.preventDefault();
      return jumpTo(Number(quote.dataset.replyTo));
    }
    const li = target.closest("li.message[data-seq]");
    if (!li) return;
    const on = (selector) => target.closest(selector);
    if (on("button.edited")) toggleEdits(li, on("button.edited"));
    else if (on("button.thread-summary") || on("button.thread")) openThread(Number(li.dataset.seq));
    else if (on("button.in-thread") && !inThread) openThread(Number(li.dataset.threadRoot));
    else if (on("button.reply")) startReply(li);
    else if (on("button.edit")) startEdit(li);
    else if (on("button.delete")) startDelete(li);
    else if (on("button.pin")) socket.send({ type: "pin", room_id: room, seq: Number(li.dataset.seq), pinned: !li.classList.contains("pinned") });
    else if (on("button.react")) {
      const palette = li.querySelector(".palette");
      palette.hidden = !palette.hidden;
      on("button.react").setAttribute("aria-expanded", String(!palette.hidden));
    } else if (on("button.reaction")) {
      react(li, on("button.reaction").dataset.emoji, on("button.reaction").getAttribute("aria-pressed") !== "true");
    } else if (on("button[data-pick]")) {
      const pick = on("button[data-pick]");
      // The palette's "❤️" and a chip of it are one reaction: the server answers with
      // the fully-qualified form, which is how the chip is found again.
      const chip = [...li.querySelectorAll("button.reaction")].find((c) => c.dataset.emoji === pick.dataset.pick);
      react(li, pick.dataset.pick, !chip || chip.getAttribute("aria-pressed") !== "true");
      pick.parentElement.hidden = true;
      li.querySelector("button.react").setAttribute("aria-expanded", "false");
    }
  }

  list.addEventListener("click", (event) => clicked(event, false));
  threadList.addEventListener("click", (event) => clicked(event, true));

  // --- live frames ---

  let askedSince = 0; // the `since` of the last subscribe
  const view = { since: () => (askedSince = lastSeq), receipts: true, receive };

  function receive(f) {
    if (stopped) return;
    switch (f.type) {
      case "subscribed":
        setState("live", t("room-state-live"));
        if (f.truncated) fillGap(askedSince, f.from_seq);
        markRead();
        break;
      case "message":
        append(f);
        break;
      case "ack":
        pending.get(f.client_id)?.classList.remove("pending");
        break;
      case "message_updated":
        for (const li of el.querySelectorAll(`li.message[data-seq="${f.seq}"]`)) updated(li, f);
        refreshQuotes(f.seq);
        break;
      case "reaction":
        for (const li of el.querySelectorAll(`li.message[data-seq="${f.seq}"]`)) setReaction(li, f.emoji, f.count, f.user_id === me ? f.added : undefined);
        break;
      case "presence_list":
        online.clear();
        f.user_ids.forEach((id) => online.add(id));
        // The room as at its last presence flush: a subscriber is online now, and
        // its own arrival would come only with the next flush. (A large room names
        // nobody; its count catches up then.)
        if (f.user_ids.length === f.count) online.add(me);
        onlineCount = f.count;
        showOnline();
        break;
      case "presence_changes":
        f.online.forEach((id) => online.add(id));
        f.offline.forEach((id) => online.delete(id));
        onlineCount = f.count;
        showOnline();
        f.typing.filter((id) => id !== me).forEach(showTyping);
        break;
      case "room_renamed":
        $("room-title").textContent = f.name;
        break;
      case "unsubscribed":
        if (f.reason !== "requested") setState("closed", t(f.reason === "room_deleted" ? "room-state-deleted" : "room-state-removed"));
        break;
      case "read_receipts":
        receipts.clear();
        f.receipts.forEach((r) => receipts.set(r.user_id, r.seq));
        showSeen();
        break;
      case "read_receipt":
        receipts.set(f.user_id, f.seq);
        showSeen();
        break;
      case "error": {
        const li = pending.get(f.about);
        if (!li) break;
        if (f.code === "unavailable" || f.code === "rate_limited") setTimeout(() => outbox.retry(f.about), 2000);
        else li.classList.add("failed");
        break;
      }
    }
  }

  // A message goes to the timeline unless it is thread-only, and to the open thread
  // when it is one of its messages.
  function received(seq) {
    if (seq <= contiguous) return;
    above.add(seq);
    while (above.delete(contiguous + 1)) contiguous += 1;
    el.dataset.contiguous = contiguous;
  }

  function append(m) {
    received(m.seq);
    lastSeq = Math.max(lastSeq, m.seq);
    const stick = nearBottom();
    const mine = m.sender_id === me ? pending.get(m.client_id) : null;
    if (mine) pending.delete(m.client_id);
    // The list shows one unbroken stretch of the timeline: a message older than its
    // first (a filled gap whose place was trimmed off) is left to scrolling back.
    const first = firstMessage();
    const beforeWindow = !!first && m.seq < Number(first.dataset.seq);
    if (beforeWindow) exhausted = false;
    const inTimeline = (!m.thread_root || m.also_to_room) && !beforeWindow;
    if (inTimeline && !tailGap && !original(m.seq)) {
      const li = messageItem(m);
      if (mine && mine.parentElement === list) {
        mine.replaceWith(li);
        markDays();
      } else place(list, li);
      if (!stick && !mine) newCount += 1;
    } else if (inTimeline && tailGap) newCount += 1;
    if (m.thread_root && m.thread_root === openRoot && !threadList.querySelector(`li[data-seq="${m.seq}"]`)) {
      const li = messageItem(m);
      if (mine && mine.parentElement === threadList) mine.replaceWith(li);
      else threadList.append(li);
      threadList.scrollTop = threadList.scrollHeight;
      readThread(m.seq);
    }
    if (mine && mine.isConnected) mine.remove();
    if (stick || mine) toBottom();
    showJump();
    if (m.sender_id === me) showSeen();
    markRead();
  }

  function updated(li, f) {
    showPin({ ...f, sender_id: li.dataset.sender });
    setThread(li, f.thread);
    if (f.deleted) return markDeleted(li);
    showBody(li.querySelector(".body"), f);
    li.dataset.body = f.body;
    if (f.edited_at) markEdited(li);
    li.querySelector("ol.edits")?.remove();
    setPinned(li, !!f.pinned_at);
    markMentions(li);
  }

  // What is on screen is read; a hidden tab or room reads nothing until shown again.
  function markRead() {
    const seq = tailGap ? lastShown() : lastSeq;
    if (visible && joined && !document.hidden && seq > 0) socket.send({ type: "read", room_id: room, seq });
  }
  document.addEventListener("visibilitychange", markRead);
  stopping.push(() => document.removeEventListener("visibilitychange", markRead));

  function showSeen() {
    for (const old of list.querySelectorAll(".seen")) old.remove();
    const mine = list.querySelectorAll("li.message.mine[data-seq]:not(.deleted)");
    const last = mine[mine.length - 1];
    if (!last) return;
    const seq = Number(last.dataset.seq);
    const readers = [...receipts].filter(([id, read]) => id !== me && read >= seq).map(([id]) => id);
    if (!readers.length) return;
    const seen = make("p", { className: "seen", textContent: t("room-seen-by") + " " });
    readers.forEach((id, i) => {
      const who = make("span", { textContent: nameOf(id, t("message-someone")) });
      who.dataset.nameOf = id;
      seen.append(i ? ", " : "", who);
    });
    last.append(seen);
  }

  function showOnline() {
    const count = Math.max(online.size, onlineCount);
    $("online").textContent = online.size && online.size <= NAMES_SHOWN
      ? [...online].map((id) => nameOf(id, t("message-someone"))).sort().join(", ")
      : t("room-online-count", { n: count });
  }

  function showTyping(id) {
    clearTimeout(typingTimers.get(id));
    typingTimers.set(id, setTimeout(() => {
      typingTimers.delete(id);
      renderTyping();
    }, 4000));
    renderTyping();
  }

  function renderTyping() {
    const who = [...typingTimers.keys()].map((id) => nameOf(id, t("message-someone")));
    $("typing").textContent = !who.length ? "" : who.length > 3 ? t("room-typing-many") : t("room-typing", { n: who.length, names: who.join(", ") });
  }

  stopping.push(onName(() => {
    if (stopped) return;
    showOnline();
    renderTyping();
    refreshQuotes();
  }));

  // --- history: gaps, older and newer pages, the window ---

  async function api(path) {
    return socket.api(`/api/v1/rooms/${encodeURIComponent(room)}/${path}`);
  }

  async function history(params) {
    const reply = await api(`messages?${params}`);
    if (!reply.ok) throw new Error("history " + reply.status);
    const data = await reply.json();
    return (data.messages || data).sort((a, b) => a.seq - b.seq);
  }

  // After a resume that could not replay everything: every message after `since` and
  // before `upTo`, a page at a time until the gap is closed.
  async function fillGap(since, upTo) {
    let after = since;
    while (after < upTo - 1 && !tailGap) {
      let page;
      try {
        page = await history(`after=${after}&limit=${PAGE}`);
      } catch (e) {
        await new Promise((done) => setTimeout(done, 2000));
        continue;
      }
      const end = page.length ? Math.min(page[page.length - 1].seq, upTo - 1) : upTo - 1;
      for (const m of page) if (m.seq < upTo) append(m);
      // The page covers every seq up to its last (thread-only messages are not in a
      // room's history, but they are not missing either).
      coveredUpTo(after, end);
      after = end;
      trimHead();
    }
  }

  function coveredUpTo(from, to) {
    if (contiguous < from || to <= contiguous) return;
    contiguous = to;
    while (above.delete(contiguous + 1)) contiguous += 1;
    for (const seq of above) if (seq <= contiguous) above.delete(seq);
    el.dataset.contiguous = contiguous;
  }

  async function loadOlder() {
    if (loading || exhausted) return;
    loading = true;
    try {
      const older = await history(`before=${firstSeq()}&limit=50`);
      exhausted = older.length < 50;
      const height = list.scrollHeight;
      const top = list.scrollTop;
      for (const m of older.reverse()) if (!original(m.seq)) list.prepend(messageItem(m));
      markDays();
      list.scrollTop = top + list.scrollHeight - height;
      refreshQuotes();
      trimTail();
    } catch (e) {
      // shown again on the next scroll
    } finally {
      loading = false;
    }
  }

  async function loadNewer() {
    if (loading || !tailGap) return;
    loading = true;
    try {
      const newer = await history(`after=${lastShown()}&limit=${PAGE}`);
      for (const m of newer) if (!original(m.seq)) place(list, messageItem(m));
      if (newer.length < PAGE || lastShown() >= lastSeq) tailGap = false;
      trimHead(true);
      showJump();
    } catch (e) {
      // as above
    } finally {
      loading = false;
    }
  }

  // Keeps the window bounded: oldest messages go when the reader is at the bottom (or
  // reading forward), newest when they are reading back.
  function trimHead(force) {
    const all = shown();
    if (all.length <= (force ? MAX_LOADED : TRIM_AT) || (!force && !nearBottom())) return;
    const height = list.scrollHeight;
    const top = list.scrollTop;
    for (const li of [...all].slice(0, all.length - (force ? MAX_LOADED : KEEP))) li.remove();
    exhausted = false;
    markDays();
    list.scrollTop = top - (height - list.scrollHeight);
  }

  function trimTail() {
    const all = shown();
    if (all.length <= MAX_LOADED) return;
    for (const li of [...all].slice(MAX_LOADED)) li.remove();
    tailGap = true;
    markDays();
    showJump();
  }

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  function toBottom() {
    list.scrollTop = list.scrollHeight;
    trimHead();
  }

  function showJump() {
    const away = tailGap || !nearBottom();
    if (!away) newCount = 0;
    jump.hidden = !away;
    jump.textContent = newCount ? t("room-new-count", { n: newCount }) : t("room-latest");
  }

  // To the newest message (reloading the newest page when the window was moved back).
  async function jumpLatest() {
    if (tailGap) {
      const latest = await history(`before=${lastSeq + 1}&limit=50`);
      list.replaceChildren(...latest.map(messageItem));
      tailGap = false;
      exhausted = latest.length < 50 || latest[0]?.seq <= 1;
      markDays();
      refreshQuotes();
    }
    newCount = 0;
    toBottom();
    showJump();
    markRead();
    list.focus();
  }

  list.addEventListener("scroll", () => {
    if (list.scrollTop < 40) loadOlder();
    if (nearBottom()) {
      if (tailGap) loadNewer();
      else markRead();
    }
    showJump();
  });
  jump.addEventListener("click", jumpLatest);

  // --- sending ---

  function pendingItem(entry) {
    const li = messageItem({ sender_id: me, body: entry.body, client_id: entry.client_id, reply_to: entry.reply_to, thread_root: entry.thread_root, created_at: entry.at });
    li.classList.add("pending");
    pending.set(entry.client_id, li);
    return li;
  }

  function submit(entry, target) {
    outbox.add(entry);
    const li = pendingItem({ ...entry, at: Date.now() });
    target.append(li);
    target.scrollTop = target.scrollHeight;
  }

  if (composer) {
    startComposer({
      form: composer,
      input,
      suggestEl,
      names: () => Object.values(roomNames),
      canMentionRoom: el.dataset.canMentionRoom === "true",
      draft: outbox.draft(room),
      onDraft: (text) => outbox.keepDraft(room, text),
      onTyping() {
        const now = Date.now();
        if (now - lastTyping > 3000 && socket.send({ type: "typing", room_id: room })) lastTyping = now;
      },
      onSend(body) {
        if (tailGap) jumpLatest();
        submit({ room, client_id: crypto.randomUUID(), body, reply_to: replyTo || undefined }, list);
        endReply();
        toBottom();
      },
    });
    $("cancel-reply").addEventListener("click", endReply);
  }

  const threadComposer = $("thread-composer");
  if (threadComposer) {
    threadComposer.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = threadInput.value.trim();
      if (!body || !openRoot) return;
      const also = $("also-to-room").checked;
      submit({ room, client_id: crypto.randomUUID(), body, thread_root: openRoot, also_to_room: also || undefined }, threadList);
      threadInput.value = "";
    });
    threadInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        threadComposer.requestSubmit();
      }
    });
  }
  $("close-thread").addEventListener("click", closeThread);

  const levelSelect = $("notify-level");
  if (levelSelect) {
    levelSelect.addEventListener("change", () => socket.send({ type: "notify_level", room_id: room, level: levelSelect.value }));
    const known = stream.room(room);
    if (known) {
      levelSelect.disabled = false;
      levelSelect.value = known.level;
    }
  }

  // --- the page as rendered ---

  for (const li of shown()) {
    li.dataset.ms = li.querySelector("time").dataset.ms;
    if (!li.classList.contains("deleted")) addTools(li);
    markMentions(li);
    if (li.dataset.threadRoot) markThreadReply(li, li.dataset.threadRoot);
  }
  for (const e of el.querySelectorAll("[data-name-of]")) nameOf(e.dataset.nameOf);
  formatTimes(el);
  markDays();
  refreshQuotes();
  exhausted = firstSeq() <= 1;
  el.dataset.contiguous = contiguous;
  // Sends this browser has not had acknowledged yet, where they were written.
  for (const entry of outbox.pending(room)) {
    if (entry.thread_root && !entry.also_to_room) continue;
    list.append(pendingItem(entry));
  }
  if (pinList) {
    loadPins();
    pinList.addEventListener("click", (event) => {
      const item = event.target.closest("li[data-seq]");
      if (!item) return;
      event.preventDefault();
      jumpTo(Number(item.dataset.seq));
    });
  }

  // Shown: the divider (and the view) at the first unread message, else the bottom.
  function show(hash = location.hash) {
    visible = true;
    fill(el);
    socket.subscribe(room, view);
    if (socket.state !== "live") setState(socket.state, t(`room-state-${socket.state}`));
    stream.setCurrent(room);
    if (savedScroll !== null) {
      list.scrollTop = savedScroll === "bottom" ? list.scrollHeight : savedScroll;
    } else {
      const divider = markNew();
      if (divider) divider.scrollIntoView({ block: "center" });
      else list.scrollTop = list.scrollHeight;
    }
    showJump();
    markRead();
    const linked = /^#thread-(\d+)$/.exec(hash);
    if (linked) openThread(Number(linked[1]));
  }

  // Left for another view: unsubscribed (the stream counts its unread meanwhile), its
  // place kept for a return.
  function hide() {
    if (!visible) return;
    visible = false;
    flushDeletes();
    savedScroll = nearBottom() ? "bottom" : list.scrollTop;
    readSeq = lastSeq;
    for (const old of list.querySelectorAll("li.new")) old.remove();
    socket.unsubscribe(room);
  }

  return {
    room,
    el,
    show,
    hide,
    stop() {
      hide();
      stopped = true;
      forget(el);
      for (const release of stopping) release();
    },
    openThread,
    closeThread,
    jumpLatest,
    flushDeletes,
    focusComposer() {
      (input || list).focus();
    },
    closeTransient() {
      if (!threadPanel.hidden) closeThread();
      for (const form of el.querySelectorAll("form.edit")) form.querySelector(".cancel").click();
    },
  };
}
