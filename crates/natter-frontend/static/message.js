// One message as the page shows it: built from a `message` frame or a history item,
// and kept current by updates (edits, deletion, reactions, pins, thread summaries).
// Text goes in as text; only the server's cleaned `html` goes in as HTML.
"use strict";

import { locale, t } from "./i18n.js";
import { initials, nameOf } from "./people.js";

const PALETTE = ["👍", "❤️", "😂", "🎉", "😮", "🙏"];

// Times in the reader's locale and time zone (every <time data-ms> under `root`).
export function formatTimes(root) {
  for (const el of root.querySelectorAll("time[data-ms]")) {
    const when = new Date(Number(el.dataset.ms));
    el.dateTime = when.toISOString();
    el.textContent = "date" in el.dataset ? when.toLocaleDateString(locale) : when.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
    el.title = when.toLocaleString(locale);
  }
}

export function dayLabel(ms) {
  const day = new Date(ms);
  day.setHours(0, 0, 0, 0);
  const today = new Date();
  today.setHours(0, 0, 0, 0);
  const ago = Math.round((today - day) / 86400000);
  if (ago === 0) return t("day-today");
  if (ago === 1) return t("day-yesterday");
  return day.toLocaleDateString(locale, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

export function make(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

// The message elements of a room seen by `me`; `fillQuote(a)` fills in a reply's quote.
export function createMessages({ me, joined, canPin, fillQuote }) {
  function messageItem(m) {
    const li = make("li", { className: "message" + (m.sender_id === me ? " mine" : "") });
    if (m.seq) li.dataset.seq = m.seq;
    if (m.sender_id) li.dataset.sender = m.sender_id;
    li.dataset.body = m.body;
    if (m.created_at) li.dataset.ms = m.created_at;
    const name = nameOf(m.sender_id, t("message-someone"));
    const avatar = make("span", { className: "avatar", textContent: initials(name) });
    avatar.setAttribute("aria-hidden", "true");
    avatar.dataset.initialsOf = m.sender_id || "";
    const sender = make("span", { className: "sender", textContent: name });
    if (m.sender_id) sender.dataset.nameOf = m.sender_id;
    const time = make("time");
    time.dataset.ms = m.created_at || Date.now();
    const body = make("div", { className: "body" });
    showBody(body, m);
    li.append(avatar, sender, time, " ");
    if (m.reply_to) {
      const quote = make("a", { className: "quote", href: "#" });
      quote.dataset.replyTo = m.reply_to;
      li.append(quote);
      fillQuote(quote);
    }
    li.append(body, make("span", { className: "reactions" }));
    setThread(li, m.thread);
    if (m.thread_root) markThreadReply(li, m.thread_root);
    for (const r of m.reactions || []) setReaction(li, r.emoji, r.count, r.me);
    formatTimes(li);
    if (m.edited_at) markEdited(li);
    setPinned(li, !!m.pinned_at);
    markMentions(li);
    if (m.deleted) markDeleted(li);
    if (m.seq && !m.deleted) addTools(li);
    return li;
  }

  function showBody(body, m) {
    if (m.html) body.innerHTML = m.html;
    else body.textContent = m.body;
  }

  function markMentions(li) {
    const mine = [...li.querySelectorAll(".body .mention")].filter((s) => s.dataset.userId === me || s.dataset.userId === "room");
    for (const span of mine) span.classList.add("me");
    li.classList.toggle("mentions-me", mine.length > 0);
  }

  function addTools(li) {
    if (!joined || li.querySelector(".tools")) return;
    const tools = make("span", { className: "tools" });
    const button = (className, text, label) => {
      const b = make("button", { type: "button", className, textContent: text });
      if (label) b.setAttribute("aria-label", label);
      return b;
    };
    const palette = make("span", { className: "palette", hidden: true });
    for (const emoji of PALETTE) {
      const pick = button("", emoji, t("tool-react-with", { emoji }));
      pick.dataset.pick = emoji;
      palette.append(pick);
    }
    const react = button("react", "+😀", t("tool-react"));
    react.setAttribute("aria-expanded", "false");
    tools.append(button("reply", t("tool-reply")), react, palette);
    if (!li.dataset.threadRoot) tools.append(button("thread", t("tool-thread")));
    if (canPin) tools.append(button("pin", t(li.classList.contains("pinned") ? "tool-unpin" : "tool-pin")));
    if (li.dataset.sender === me) tools.append(button("edit", t("tool-edit")), button("delete", t("tool-delete")));
    li.prepend(tools);
  }

  function markEdited(li) {
    if (li.querySelector("button.edited")) return;
    const old = li.querySelector("span.edited");
    const button = make("button", { type: "button", className: "edited", textContent: t("message-edited") });
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-label", t("message-earlier"));
    if (old) old.replaceWith(button);
    else li.querySelector(".body").after(button);
  }

  function markDeleted(li) {
    li.classList.add("deleted");
    li.querySelector(".body").textContent = t("message-deleted");
    li.dataset.body = "";
    for (const gone of li.querySelectorAll(".edited, ol.edits, .tools, form.edit")) gone.remove();
    setPinned(li, false);
    li.querySelector(".reactions")?.replaceChildren();
  }

  function setThread(li, thread) {
    let summary = li.querySelector("button.thread-summary");
    if (!thread || !thread.replies) return;
    if (!summary) {
      summary = make("button", { type: "button", className: "thread-summary" });
      li.querySelector(".reactions").before(summary);
    }
    const when = new Date(thread.last_reply_at).toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
    const who = thread.participants.map((id) => nameOf(id, t("message-someone"))).join(", ");
    summary.textContent = t("thread-summary", { replies: t("replies", { n: thread.replies }), who, when });
  }

  function markThreadReply(li, root) {
    li.dataset.threadRoot = root;
    if (li.querySelector("button.in-thread")) return;
    li.querySelector(".body").before(make("button", { type: "button", className: "in-thread", textContent: t("thread-in") }));
  }

  function setPinned(li, pinned) {
    li.classList.toggle("pinned", pinned);
    const tool = li.querySelector("button.pin");
    if (tool) tool.textContent = t(pinned ? "tool-unpin" : "tool-pin");
  }

  function setReaction(li, emoji, count, mine) {
    const box = li.querySelector(".reactions");
    let chip = [...box.children].find((c) => c.dataset.emoji === emoji);
    if (count <= 0) {
      if (chip) chip.remove();
      return;
    }
    if (!chip) {
      chip = make("button", { type: "button", className: "reaction" }, emoji + " ", make("span", { className: "count" }));
      chip.dataset.emoji = emoji;
      chip.setAttribute("aria-pressed", "false");
      box.append(chip);
    }
    chip.querySelector(".count").textContent = count;
    if (mine !== undefined) chip.setAttribute("aria-pressed", String(mine));
    chip.setAttribute("aria-label", `${emoji} ${count}`);
  }

  return { messageItem, showBody, markMentions, addTools, markEdited, markDeleted, setThread, markThreadReply, setPinned, setReaction };
}
