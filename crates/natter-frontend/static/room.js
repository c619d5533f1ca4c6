// Natter room page: live messages over the WebSocket protocol (docs/protocol.md).
// Everything user-supplied goes into the page as text (textContent), never as HTML —
// except a message's `html`, which the server renders from its Markdown subset and cleans
// with an allow-list (docs/protocol.md, "Message text"); the page's CSP forbids inline
// script besides.
"use strict";

// Times in the viewer's locale (every page with <time data-ms>).
function formatTimes(root) {
  for (const t of root.querySelectorAll("time[data-ms]")) {
    const when = new Date(Number(t.dataset.ms));
    t.dateTime = when.toISOString();
    t.textContent = "date" in t.dataset ? when.toLocaleDateString() : when.toLocaleTimeString();
  }
}
formatTimes(document);

const roomEl = document.getElementById("room");
if (roomEl) startRoom(roomEl);

function startRoom(el) {
  const room = el.dataset.room;
  const me = el.dataset.me;
  const csrf = el.dataset.csrf;
  const names = JSON.parse(el.dataset.names || "{}");
  const list = document.getElementById("messages");
  const stateEl = document.getElementById("state");
  const typingEl = document.getElementById("typing");
  const onlineEl = document.getElementById("online");
  const composer = document.getElementById("composer");
  const input = document.getElementById("body");
  const replyingEl = document.getElementById("replying");
  const canPin = el.dataset.canPin === "true";
  const pinList = document.getElementById("pin-list");
  const suggestEl = document.getElementById("mention-suggest");
  const threadPanel = document.getElementById("thread-panel");
  const threadList = document.getElementById("thread-messages");
  const threadInput = document.getElementById("thread-body");
  let openRoot = null; // the root of the thread open beside the room
  let replyTo = null; // seq the next send answers

  let lastSeq = Number(el.dataset.lastSeq || 0);
  let firstSeq = firstShownSeq();
  let ws = null;
  let token = null;
  let attempt = 0;
  let lastTyping = 0;
  let loadingOlder = false;
  const online = new Set();
  let onlineCount = 0;
  const pending = new Map(); // client_id -> { body, li }
  const typingTimers = new Map();
  const receipts = new Map(); // user id -> how far they have read (who shares it)

  function firstShownSeq() {
    const first = list.querySelector("li[data-seq]");
    return first ? Number(first.dataset.seq) : lastSeq + 1;
  }

  // Names come with the page for its members; anyone else (a late joiner, someone who
  // left) is looked up once, and every place showing them is filled in when known.
  const asked = new Set();

  function nameOf(id) {
    if (id && !names[id] && !asked.has(id)) {
      asked.add(id);
      lookUp(id);
    }
    return names[id] || "someone";
  }

  async function lookUp(id) {
    const reply = await fetch(`/api/v1/users/${encodeURIComponent(id)}`, {
      headers: { Authorization: "Bearer " + (token || (await fetchToken())) },
    });
    if (!reply.ok) return;
    names[id] = (await reply.json()).username;
    for (const el of document.querySelectorAll(`[data-name-of="${id}"]`)) el.textContent = names[id];
    showOnline();
    renderTyping();
  }

  function setState(state, text) {
    stateEl.className = "state " + state;
    stateEl.textContent = text;
    el.dataset.state = state;
  }

  function messageItem(m) {
    const li = document.createElement("li");
    li.className = "message" + (m.sender_id === me ? " mine" : "");
    if (m.seq) li.dataset.seq = m.seq;
    if (m.sender_id) li.dataset.sender = m.sender_id;
    li.dataset.body = m.body;
    const sender = document.createElement("span");
    sender.className = "sender";
    sender.textContent = nameOf(m.sender_id);
    if (m.sender_id) sender.dataset.nameOf = m.sender_id;
    const time = document.createElement("time");
    time.dataset.ms = m.created_at || Date.now();
    const body = document.createElement("div");
    body.className = "body";
    showBody(body, m);
    const reactions = document.createElement("span");
    reactions.className = "reactions";
    li.append(sender, time, " ");
    if (m.reply_to) {
      const quote = Object.assign(document.createElement("a"), { className: "quote", href: "#" });
      quote.dataset.replyTo = m.reply_to;
      li.append(quote);
      fillQuote(quote);
    }
    li.append(body, reactions);
    setThread(li, m.thread);
    if (m.thread_root) markThreadReply(li, m.thread_root);
    for (const r of m.reactions || []) setReaction(li, r.emoji, r.count, r.me);
    formatTimes(li);
    if (m.edited_at) markEdited(li);
    setPinned(li, !!m.pinned_at);
    markMentions(li);
    if (m.deleted) markDeleted(li);
    if (m.sender_id === me && m.seq && !m.deleted) addTools(li);
    if (m.seq && !m.deleted) addReactTool(li);
    return li;
  }

  // The text as the server rendered it; a pending send shows its source text until then.
  function showBody(body, m) {
    if (m.html) body.innerHTML = m.html;
    else body.textContent = m.body;
  }

  // Mentions of the reader (by name, or @room) are highlighted.
  function markMentions(li) {
    const mine = [...li.querySelectorAll(".body .mention")].filter((s) => s.dataset.userId === me || s.dataset.userId === "room");
    for (const span of mine) span.classList.add("me");
    li.classList.toggle("mentions-me", mine.length > 0);
  }

  // "(edited)" opens the earlier texts, oldest first, with the time each was written.
  function markEdited(li) {
    if (li.querySelector("button.edited")) return;
    const old = li.querySelector("span.edited");
    const button = Object.assign(document.createElement("button"), { type: "button", className: "edited", textContent: "(edited)" });
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-label", "show earlier versions");
    if (old) old.replaceWith(button);
    else li.querySelector(".body").after(button);
  }

  async function toggleEdits(li, button) {
    const shown = li.querySelector("ol.edits");
    if (shown) {
      shown.remove();
      button.setAttribute("aria-expanded", "false");
      return;
    }
    const reply = await api(`messages/${li.dataset.seq}/edits`);
    if (!reply.ok) return;
    const edits = Object.assign(document.createElement("ol"), { className: "edits" });
    edits.setAttribute("aria-label", "earlier versions");
    for (const e of await reply.json()) {
      const item = document.createElement("li");
      const time = document.createElement("time");
      time.dataset.ms = e.written_at;
      const text = Object.assign(document.createElement("div"), { className: "body" });
      showBody(text, e);
      item.append(time, text);
      edits.append(item);
    }
    formatTimes(edits);
    button.setAttribute("aria-expanded", "true");
    li.querySelector(".reactions").before(edits);
  }

  // Threads: a root shows its summary, which opens the thread in a panel beside the
  // room; the panel lists the thread's messages, live, and has its own composer.
  function setThread(li, thread) {
    let summary = li.querySelector("button.thread-summary");
    if (!thread || !thread.replies) return;
    if (!summary) {
      summary = Object.assign(document.createElement("button"), { type: "button", className: "thread-summary" });
      li.querySelector(".reactions").before(summary);
    }
    const when = new Date(thread.last_reply_at).toLocaleTimeString();
    summary.textContent = `💬 ${thread.replies} ${thread.replies === 1 ? "reply" : "replies"} · ${thread.participants.map(nameOf).join(", ")} · last ${when}`;
  }

  // A thread message shown in the timeline (sent also to the room) opens its thread.
  function markThreadReply(li, root) {
    li.dataset.threadRoot = root;
    if (li.querySelector("button.in-thread")) return;
    const open = Object.assign(document.createElement("button"), { type: "button", className: "in-thread", textContent: "↪ in a thread" });
    li.querySelector(".body").before(open);
  }

  async function openThread(seq) {
    const root = original(seq);
    openRoot = seq;
    threadPanel.hidden = false;
    document.getElementById("thread-root").textContent = root ? excerpt(root) : "";
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
    if (!openRoot || !token) return;
    fetch(`/api/v1/rooms/${encodeURIComponent(room)}/threads/${openRoot}/read`, {
      method: "PUT",
      headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
      body: JSON.stringify({ seq }),
    });
  }

  // Pins: a marker on the message, its pin/unpin tool (owners and admins), and the
  // room's list of pinned messages, kept live from message_updated frames.
  function setPinned(li, pinned) {
    li.classList.toggle("pinned", pinned);
    const tool = li.querySelector("button.pin");
    if (tool) tool.textContent = pinned ? "unpin" : "pin";
  }

  function showPin(m) {
    if (!pinList) return;
    const old = pinList.querySelector(`li[data-seq="${m.seq}"]`);
    if (!m.pinned_at || m.deleted) {
      if (old) old.remove();
    } else {
      const item = old || document.createElement("li");
      item.dataset.seq = m.seq;
      const link = Object.assign(document.createElement("a"), { href: "#", className: "pin-link" });
      link.textContent = `${nameOf(m.sender_id)}: ${m.body.length > 80 ? m.body.slice(0, 80) + "…" : m.body}`;
      item.replaceChildren(link);
      if (!old) pinList.prepend(item);
    }
    document.getElementById("pin-count").textContent = pinList.children.length;
  }

  async function loadPins() {
    const reply = await api("pins");
    if (!reply.ok) return;
    pinList.replaceChildren();
    for (const m of (await reply.json()).reverse()) showPin(m);
  }

  async function api(path) {
    return fetch(`/api/v1/rooms/${encodeURIComponent(room)}/${path}`, {
      headers: { Authorization: "Bearer " + (token || (await fetchToken())) },
    });
  }

  // Reactions: one chip per emoji (count, pressed when the reader reacted); a click on a
  // chip toggles the reader's own reaction, "+" offers a few common emoji.
  const PALETTE = ["👍", "❤️", "😂", "🎉", "😮", "🙏"];

  function setReaction(li, emoji, count, mine) {
    const box = li.querySelector(".reactions");
    let chip = [...box.children].find((c) => c.dataset.emoji === emoji);
    if (count <= 0) {
      if (chip) chip.remove();
      return;
    }
    if (!chip) {
      chip = document.createElement("button");
      chip.type = "button";
      chip.className = "reaction";
      chip.dataset.emoji = emoji;
      chip.setAttribute("aria-pressed", "false");
      chip.append(emoji + " ", Object.assign(document.createElement("span"), { className: "count" }));
      box.append(chip);
    }
    chip.querySelector(".count").textContent = count;
    if (mine !== undefined) chip.setAttribute("aria-pressed", String(mine));
    chip.setAttribute("aria-label", `${emoji} ${count}`);
  }

  // Replies: a quote of the message answered (its sender and first words), which jumps
  // to it — loading older history until it is on the page — or says it was deleted.
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
    quote.textContent = "↩ " + (!li ? "an earlier message" : li.classList.contains("deleted") ? "a deleted message" : excerpt(li));
  }

  function refreshQuotes(seq) {
    for (const quote of list.querySelectorAll(`a.quote[data-reply-to="${seq}"]`)) fillQuote(quote);
  }

  async function jumpTo(seq) {
    // Older pages until the original is on the page (a scroll may be loading one
    // already); once the page reaches back past it, it is not in the room's timeline (a
    // thread-only message), so stop there.
    for (let tries = 0; !original(seq) && firstSeq > seq && firstSeq > 1 && tries < 100; tries++) {
      if (loadingOlder) await new Promise((done) => setTimeout(done, 100));
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
    document.getElementById("replying-to").textContent = "Replying to " + excerpt(li);
    replyingEl.hidden = false;
    input.focus();
  }

  function endReply() {
    replyTo = null;
    if (replyingEl) replyingEl.hidden = true;
  }

  function addReactTool(li) {
    if (!composer || li.querySelector(".react")) return;
    let tools = li.querySelector(".tools");
    if (!tools) {
      tools = Object.assign(document.createElement("span"), { className: "tools" });
      li.prepend(tools);
    }
    const palette = Object.assign(document.createElement("span"), { className: "palette", hidden: true });
    for (const emoji of PALETTE) {
      const pick = Object.assign(document.createElement("button"), { type: "button", textContent: emoji });
      pick.dataset.pick = emoji;
      pick.setAttribute("aria-label", "react with " + emoji);
      palette.append(pick);
    }
    const open = Object.assign(document.createElement("button"), { type: "button", className: "react", textContent: "+😀" });
    open.setAttribute("aria-label", "add a reaction");
    open.setAttribute("aria-expanded", "false");
    open.addEventListener("click", () => {
      palette.hidden = !palette.hidden;
      open.setAttribute("aria-expanded", String(!palette.hidden));
    });
    const reply = Object.assign(document.createElement("button"), { type: "button", className: "reply", textContent: "reply" });
    reply.addEventListener("click", () => startReply(li));
    tools.append(reply, open, palette);
    if (!li.dataset.threadRoot) {
      const thread = Object.assign(document.createElement("button"), { type: "button", className: "thread", textContent: "thread" });
      thread.addEventListener("click", () => openThread(Number(li.dataset.seq)));
      tools.append(thread);
    }
    if (canPin) {
      const pin = Object.assign(document.createElement("button"), { type: "button", className: "pin" });
      pin.addEventListener("click", () => send({ type: "pin", room_id: room, seq: Number(li.dataset.seq), pinned: !li.classList.contains("pinned") }));
      tools.append(pin);
      setPinned(li, li.classList.contains("pinned"));
    }
  }

  function react(li, emoji, add) {
    send({ type: "react", room_id: room, seq: Number(li.dataset.seq), emoji, add });
  }

  list.addEventListener("click", (event) => {
    const quote = event.target.closest("a.quote");
    if (quote) {
      event.preventDefault();
      jumpTo(Number(quote.dataset.replyTo));
      return;
    }
    const li = event.target.closest("li.message[data-seq]");
    const edited = event.target.closest("button.edited");
    if (li && edited) toggleEdits(li, edited);
    if (li && event.target.closest("button.thread-summary")) openThread(Number(li.dataset.seq));
    if (li && event.target.closest("button.in-thread")) openThread(Number(li.dataset.threadRoot));
    if (!li || !composer) return;
    const chip = event.target.closest("button.reaction");
    if (chip) react(li, chip.dataset.emoji, chip.getAttribute("aria-pressed") !== "true");
    const pick = event.target.closest("button[data-pick]");
    if (pick) {
      // The palette's "❤️" and a chip of it are one reaction: the server answers with the
      // fully-qualified form, which is how the chip is found again.
      const chipOf = [...li.querySelectorAll("button.reaction")].find((c) => c.dataset.emoji === pick.dataset.pick);
      react(li, pick.dataset.pick, !chipOf || chipOf.getAttribute("aria-pressed") !== "true");
      pick.parentElement.hidden = true;
      li.querySelector("button.react").setAttribute("aria-expanded", "false");
    }
  });

  function addTools(li) {
    const tools = document.createElement("span");
    tools.className = "tools";
    const edit = document.createElement("button");
    edit.type = "button";
    edit.textContent = "edit";
    edit.addEventListener("click", () => {
      const current = li.dataset.body;
      const next = window.prompt("Edit message", current);
      if (next && next !== current) send({ type: "edit", room_id: room, seq: Number(li.dataset.seq), body: next });
    });
    const del = document.createElement("button");
    del.type = "button";
    del.textContent = "delete";
    del.addEventListener("click", () => {
      if (window.confirm("Delete this message?")) send({ type: "delete", room_id: room, seq: Number(li.dataset.seq) });
    });
    tools.append(edit, del);
    li.prepend(tools);
  }

  function markDeleted(li) {
    li.classList.add("deleted");
    li.querySelector(".body").textContent = "(deleted)";
    li.dataset.body = "";
    for (const gone of li.querySelectorAll(".edited, ol.edits")) gone.remove();
    setPinned(li, false);
    const tools = li.querySelector(".tools");
    if (tools) tools.remove();
    const reactions = li.querySelector(".reactions");
    if (reactions) reactions.replaceChildren();
  }

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  // A message goes to the room's timeline unless it is thread-only, and to the open
  // thread when it is one of its messages; every seq counts for resuming.
  function append(m) {
    const stick = nearBottom();
    const mine = m.sender_id === me && pending.get(m.client_id);
    if (mine) pending.delete(m.client_id);
    const place = (target, shown) => {
      if (!shown || !target || target.querySelector(`li[data-seq="${m.seq}"]`)) return;
      const li = messageItem(m);
      if (mine && mine.li.parentElement === target) mine.li.replaceWith(li);
      else target.append(li);
    };
    const inThread = !!m.thread_root && m.thread_root === openRoot;
    place(list, !m.thread_root || m.also_to_room);
    place(threadList, inThread);
    if (mine && mine.li.isConnected && mine.li.classList.contains("pending")) mine.li.remove();
    lastSeq = Math.max(lastSeq, m.seq);
    if (stick || mine) list.scrollTop = list.scrollHeight;
    if (inThread) {
      threadList.scrollTop = threadList.scrollHeight;
      readThread(m.seq);
    }
    if (m.sender_id === me) showSeen();
    markRead();
  }

  // What is on screen is read; a hidden tab reads nothing until it is shown again.
  function markRead() {
    if (!document.hidden) send({ type: "read", room_id: room, seq: lastSeq });
  }
  document.addEventListener("visibilitychange", markRead);

  function send(frame) {
    if (ws && ws.readyState === WebSocket.OPEN && ws.authenticated) {
      ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  // notify.js, on every signed-in page, fetches the page's WebSocket tokens.
  function fetchToken() {
    return natter.fetchToken();
  }

  async function connect() {
    setState(attempt === 0 ? "connecting" : "reconnecting", attempt === 0 ? "connecting…" : "reconnecting…");
    try {
      token = await fetchToken();
    } catch (e) {
      return retry();
    }
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    ws = new WebSocket(url, "natter.v1");
    ws.onmessage = (event) => receive(JSON.parse(event.data));
    ws.onclose = (event) => {
      ws = null;
      if (event.code === 4003 || event.code === 4004) token = null;
      retry();
    };
  }

  function retry() {
    attempt += 1;
    setState("reconnecting", "reconnecting…");
    const base = Math.min(30000, 500 * 2 ** Math.min(attempt, 6));
    setTimeout(connect, base / 2 + Math.random() * base / 2);
  }

  function receive(f) {
    switch (f.type) {
      case "hello":
        ws.send(JSON.stringify({ type: "auth", token, presence_changes: true }));
        break;
      case "authenticated":
        ws.authenticated = true;
        attempt = 0;
        send({ type: "subscribe", room_id: room, since: lastSeq, receipts: true });
        send({ type: "subscribe", room_id: "me" });
        break;
      case "subscribed":
        setState("live", "live");
        if (f.truncated) fillGap(lastSeq, f.from_seq);
        markRead(); // what the page showed when it loaded is read too
        for (const [clientId, p] of pending) send({ type: "send", room_id: room, client_id: clientId, body: p.body, reply_to: p.reply_to, thread_root: p.thread_root, also_to_room: p.also_to_room });
        break;
      case "message":
        append(f);
        break;
      case "ack": {
        const p = pending.get(f.client_id);
        if (p) p.li.classList.remove("pending");
        break;
      }
      case "message_updated":
        for (const li of shownAs(f.seq)) updated(li, f);
        refreshQuotes(f.seq);
        break;
      case "reaction":
        for (const li of shownAs(f.seq)) setReaction(li, f.emoji, f.count, f.user_id === me ? f.added : undefined);
        break;
      case "presence_list":
        online.clear();
        f.user_ids.forEach((id) => online.add(id));
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
      case "unsubscribed":
        setState("closed", f.reason === "room_deleted" ? "room deleted" : "no longer a member");
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
      case "error":
        if (f.about && pending.has(f.about) && f.code !== "unavailable" && f.code !== "rate_limited") {
          pending.get(f.about).li.classList.add("failed");
        }
        break;
      default:
        natter.receive(f);
    }
  }

  // "Seen by" under your latest message: who has read up to it (members who share read
  // receipts, in rooms small enough to show them).
  function showSeen() {
    for (const old of list.querySelectorAll(".seen")) old.remove();
    const mine = [...list.querySelectorAll("li.message.mine[data-seq]:not(.deleted)")];
    const last = mine[mine.length - 1];
    if (!last) return;
    const seq = Number(last.dataset.seq);
    const readers = [...receipts].filter(([id, read]) => id !== me && read >= seq).map(([id]) => id);
    if (!readers.length) return;
    const seen = Object.assign(document.createElement("p"), { className: "seen", textContent: "Seen by " });
    readers.forEach((id, i) => {
      const who = Object.assign(document.createElement("span"), { textContent: nameOf(id) });
      who.dataset.nameOf = id;
      seen.append(i ? ", " : "", who);
    });
    last.append(seen);
  }

  // A message may be on the page twice: in the timeline and in the open thread.
  function shownAs(seq) {
    return document.querySelectorAll(`li.message[data-seq="${seq}"]`);
  }

  function updated(li, f) {
    showPin({ ...f, sender_id: li.dataset.sender });
    setThread(li, f.thread);
    if (f.deleted) return markDeleted(li);
    showBody(li.querySelector(".body"), f);
    li.dataset.body = f.body;
    if (f.edited_at) markEdited(li);
    const versions = li.querySelector("ol.edits");
    if (versions) versions.remove();
    setPinned(li, !!f.pinned_at);
    markMentions(li);
  }

  function showOnline() {
    // A large room sends counts, not names.
    onlineEl.textContent = online.size || !onlineCount
      ? [...online].map(nameOf).sort().join(", ")
      : `${onlineCount} people`;
  }

  function showTyping(id) {
    clearTimeout(typingTimers.get(id));
    typingTimers.set(id, setTimeout(() => { typingTimers.delete(id); renderTyping(); }, 4000));
    renderTyping();
  }

  function renderTyping() {
    const who = [...typingTimers.keys()].map(nameOf);
    typingEl.textContent = who.length ? who.join(", ") + (who.length === 1 ? " is typing…" : " are typing…") : "";
  }

  async function history(params) {
    const reply = await api(`messages?${params}`);
    if (!reply.ok) return [];
    const data = await reply.json();
    return data.messages || data;
  }

  async function fillGap(since, upTo) {
    const missed = (await history(`after=${since}&limit=100`)).filter((m) => m.seq < upTo);
    for (const m of missed) append(m);
  }

  async function loadOlder() {
    if (loadingOlder || firstSeq <= 1) return;
    loadingOlder = true;
    const older = await history(`before=${firstSeq}&limit=50`);
    const height = list.scrollHeight;
    for (const m of older.sort((a, b) => b.seq - a.seq)) {
      if (list.querySelector(`li[data-seq="${m.seq}"]`)) continue;
      list.prepend(messageItem(m));
    }
    firstSeq = firstShownSeq();
    list.scrollTop = list.scrollHeight - height;
    for (const quote of list.querySelectorAll("a.quote")) fillQuote(quote);
    loadingOlder = older.length === 0 && firstSeq > 1 ? true : false;
  }

  list.addEventListener("scroll", () => { if (list.scrollTop < 40) loadOlder(); });

  for (const li of list.querySelectorAll("li.mine[data-seq]:not(.deleted)")) addTools(li);
  for (const li of list.querySelectorAll("li[data-seq]:not(.deleted)")) addReactTool(li);
  for (const quote of list.querySelectorAll("a.quote")) fillQuote(quote);
  for (const li of list.querySelectorAll("li[data-seq]")) markMentions(li);
  for (const el of list.querySelectorAll("[data-name-of]")) nameOf(el.dataset.nameOf);
  for (const li of list.querySelectorAll("li[data-thread-root]")) markThreadReply(li, li.dataset.threadRoot);
  if (pinList) {
    loadPins();
    pinList.addEventListener("click", (event) => {
      const item = event.target.closest("li[data-seq]");
      if (!item) return;
      event.preventDefault();
      jumpTo(Number(item.dataset.seq));
    });
  }
  // A link to a thread (from the home page's followed threads) opens it.
  const linked = /^#thread-(\d+)$/.exec(location.hash);
  if (linked && threadPanel) openThread(Number(linked[1]));
  const cancelReply = document.getElementById("cancel-reply");
  if (cancelReply) cancelReply.addEventListener("click", endReply);
  list.scrollTop = list.scrollHeight;

  if (threadPanel) {
    document.getElementById("close-thread").addEventListener("click", closeThread);
    threadList.addEventListener("click", (event) => {
      const li = event.target.closest("li.message[data-seq]");
      const chip = event.target.closest("button.reaction");
      if (li && chip) react(li, chip.dataset.emoji, chip.getAttribute("aria-pressed") !== "true");
    });
  }
  const threadComposer = document.getElementById("thread-composer");
  if (threadComposer) {
    threadComposer.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = threadInput.value.trim();
      if (!body || !openRoot) return;
      const clientId = crypto.randomUUID();
      const also_to_room = document.getElementById("also-to-room").checked;
      const p = { body, thread_root: openRoot, also_to_room };
      p.li = messageItem({ sender_id: me, body, client_id: clientId, thread_root: openRoot });
      p.li.classList.add("pending");
      threadList.append(p.li);
      threadList.scrollTop = threadList.scrollHeight;
      pending.set(clientId, p);
      send({ type: "send", room_id: room, client_id: clientId, body, thread_root: openRoot, also_to_room });
      threadInput.value = "";
    });
    threadInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        threadComposer.requestSubmit();
      }
    });
  }

  if (composer) {
    composer.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = input.value.trim();
      if (!body) return;
      const clientId = crypto.randomUUID();
      const reply_to = replyTo || undefined;
      const li = messageItem({ sender_id: me, body, client_id: clientId, reply_to });
      li.classList.add("pending");
      list.append(li);
      list.scrollTop = list.scrollHeight;
      pending.set(clientId, { body, li, reply_to });
      send({ type: "send", room_id: room, client_id: clientId, body, reply_to });
      input.value = "";
      endReply();
    });
    input.addEventListener("keydown", (event) => {
      const first = suggestEl.hidden ? null : suggestEl.querySelector("button[data-name]");
      if (first && (event.key === "Tab" || event.key === "Enter") && !event.shiftKey) {
        event.preventDefault();
        completeMention(first.dataset.name);
        return;
      }
      if (event.key === "Escape") suggestEl.hidden = true;
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        composer.requestSubmit();
      }
    });
    input.addEventListener("input", () => {
      const now = Date.now();
      if (now - lastTyping > 3000 && send({ type: "typing", room_id: room })) lastTyping = now;
      suggestMentions();
    });
    suggestEl.addEventListener("click", (event) => {
      const pick = event.target.closest("button[data-name]");
      if (pick) completeMention(pick.dataset.name);
    });
  }

  // "@" completes from the room's members (and @room for those who may use it).
  function mentionPrefix() {
    const before = input.value.slice(0, input.selectionStart);
    const found = /(^|[^\w])@([a-z0-9_.-]*)$/i.exec(before);
    return found ? found[2].toLowerCase() : null;
  }

  function suggestMentions() {
    const prefix = mentionPrefix();
    const everyone = el.dataset.canMentionRoom === "true" ? ["room"] : [];
    const matches = prefix === null ? [] : [...everyone, ...Object.values(names).sort()]
      .filter((name) => name.startsWith(prefix))
      .slice(0, 6);
    suggestEl.replaceChildren(...matches.map((name) => {
      const option = Object.assign(document.createElement("button"), { type: "button", textContent: "@" + name });
      option.dataset.name = name;
      option.setAttribute("role", "option");
      return option;
    }));
    suggestEl.hidden = matches.length === 0;
  }

  function completeMention(name) {
    const caret = input.selectionStart;
    const start = input.value.slice(0, caret).lastIndexOf("@");
    input.value = input.value.slice(0, start) + "@" + name + " " + input.value.slice(caret);
    const at = start + name.length + 2;
    input.setSelectionRange(at, at);
    suggestEl.hidden = true;
    input.focus();
  }

  const levelSelect = document.getElementById("notify-level");
  if (levelSelect) {
    levelSelect.addEventListener("change", () => send({ type: "notify_level", room_id: room, level: levelSelect.value }));
  }

  connect();
}
