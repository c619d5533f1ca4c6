// Sends not yet acknowledged, kept in this browser's storage so that a reload, a crash or
// a lost connection loses none: each is sent again with its client id after every
// (re)connection (the server acknowledges a repeat as a duplicate, storing it once), and
// leaves the outbox on its ack or on an error that a retry cannot mend. Drafts (text
// typed but not sent) are kept per room the same way.
"use strict";

const KEY = "natter.outbox";
// Errors a later try can succeed after: the send stays in the outbox.
const TRANSIENT = new Set(["unavailable", "rate_limited"]);

function load() {
  try {
    return JSON.parse(localStorage.getItem(KEY) || "[]");
  } catch (e) {
    return [];
  }
}

function save(entries) {
  try {
    localStorage.setItem(KEY, JSON.stringify(entries));
  } catch (e) {
    // storage full or disabled: the send still goes out, it just would not survive a reload
  }
}

export function createOutbox(socket) {
  let user = null;

  // Every send of this user, oldest first (the order they were written in).
  function pending(room) {
    return load().filter((e) => e.user === user && (!room || e.room === room));
  }

  function add(entry) {
    const entries = load();
    entries.push({ ...entry, user, at: Date.now() });
    save(entries);
    socket.send(frameOf(entry));
  }

  function remove(clientId) {
    save(load().filter((e) => !(e.user === user && e.client_id === clientId)));
  }

  function frameOf(e) {
    return { type: "send", room_id: e.room, client_id: e.client_id, body: e.body, reply_to: e.reply_to, thread_root: e.thread_root, also_to_room: e.also_to_room || undefined };
  }

  socket.on("ready", (userId) => {
    user = userId;
    for (const e of pending()) socket.send(frameOf(e));
  });
  socket.on("sent", (f) => {
    if (f.type === "ack") remove(f.client_id);
    else if (!TRANSIENT.has(f.code)) remove(f.about);
  });

  // Sends `clientId` again (after an error a later try can mend).
  function retry(clientId) {
    const entry = pending().find((e) => e.client_id === clientId);
    if (entry) socket.send(frameOf(entry));
  }

  return {
    add,
    pending,
    retry,
    forUser(id) {
      user = user || id;
    },
    draft(room) {
      return localStorage.getItem(`natter.draft.${user}.${room}`) || "";
    },
    keepDraft(room, text) {
      const key = `natter.draft.${user}.${room}`;
      try {
        if (text) localStorage.setItem(key, text);
        else localStorage.removeItem(key);
      } catch (e) {
        // as above
      }
    },
    // Signing out forgets this user's drafts and unsent messages on this browser.
    forget() {
      save(load().filter((e) => e.user !== user));
      for (const key of Object.keys(localStorage)) if (key.startsWith(`natter.draft.${user}.`)) localStorage.removeItem(key);
    },
  };
}
