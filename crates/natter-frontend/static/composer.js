// A room's message box: Enter sends (Shift+Enter for a new line), "@" completes the
// names of the room's members (and @room for those who may use it), the text is kept as
// a draft while typed, and typing is announced.
"use strict";

import { make } from "./message.js";

export function startComposer({ form, input, suggestEl, names, canMentionRoom, draft, onDraft, onTyping, onSend }) {
  input.value = draft;

  function mentionPrefix() {
    const before = input.value.slice(0, input.selectionStart);
    const found = /(^|[^\w])@([a-z0-9_.-]*)$/i.exec(before);
    return found ? found[2].toLowerCase() : null;
  }

  function suggestMentions() {
    const prefix = mentionPrefix();
    const everyone = canMentionRoom ? ["room"] : [];
    const matches = prefix === null ? [] : [...everyone, ...names().sort()].filter((name) => name.startsWith(prefix)).slice(0, 6);
    suggestEl.replaceChildren(...matches.map((name) => {
      const option = make("button", { type: "button", textContent: "@" + name });
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

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = input.value.trim();
    if (!body) return;
    onSend(body);
    input.value = "";
    onDraft("");
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
      form.requestSubmit();
    }
  });
  input.addEventListener("input", () => {
    onDraft(input.value);
    onTyping();
    suggestMentions();
  });
  suggestEl.addEventListener("click", (event) => {
    const pick = event.target.closest("button[data-name]");
    if (pick) completeMention(pick.dataset.name);
  });
}
