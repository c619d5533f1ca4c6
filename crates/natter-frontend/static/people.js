// Names of the people a page shows, by user id: seeded from what pages render, anyone
// else (a late joiner, someone who left) looked up once through the JSON API; every
// element marked `data-name-of` / `data-initials-of` is filled in when a name is known.
"use strict";

const names = new Map();
const asked = new Set();
let api = null;
const roots = new Set([document]);

export function usePeople(socketApi) {
  api = socketApi;
}

// Names a view knows already (from its page).
export function learn(known) {
  for (const [id, name] of Object.entries(known)) names.set(id, name);
}

// Elements outside the document (a cached room's) are filled in too.
export function watch(root) {
  roots.add(root);
}

export function forget(root) {
  roots.delete(root);
}

export function knownNames() {
  return [...names.values()];
}

// Up to two letters standing for a name where a picture would be.
export function initials(name) {
  const words = name.split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  return words.slice(0, 2).map((w) => w[0].toUpperCase()).join("");
}

// `id`'s name, or a placeholder until it is known (then every place showing it updates).
export function nameOf(id, fallback = "…") {
  if (!id) return fallback;
  if (!names.has(id) && !asked.has(id) && api) lookUp(id);
  return names.get(id) || fallback;
}

// `id`'s name once known (looked up when it is not yet).
export async function named(id, fallback = "someone") {
  if (!id) return fallback;
  if (!names.has(id)) await (pendingLookups.get(id) || lookUp(id));
  return names.get(id) || fallback;
}

const pendingLookups = new Map();

function lookUp(id) {
  asked.add(id);
  const asking = ask(id).finally(() => pendingLookups.delete(id));
  pendingLookups.set(id, asking);
  return asking;
}

async function ask(id) {
  try {
    const reply = await api(`/api/v1/users/${encodeURIComponent(id)}`);
    if (!reply.ok) return;
    names.set(id, (await reply.json()).username);
  } catch (e) {
    asked.delete(id); // asked again the next time it is shown
    return;
  }
  for (const root of roots) fill(root, id);
  for (const fn of listeners) fn(id);
}

const listeners = [];
// Calls `fn` with each id whose name becomes known; returns what stops it.
export function onName(fn) {
  listeners.push(fn);
  return () => listeners.splice(listeners.indexOf(fn) >>> 0, 1);
}

// Fills in `id`'s (or every known) name inside `root`.
export function fill(root, id) {
  const which = id ? `[data-name-of="${CSS.escape(id)}"]` : "[data-name-of]";
  for (const el of root.querySelectorAll(which)) {
    const name = names.get(el.dataset.nameOf);
    if (name) el.textContent = name;
  }
  const avatars = id ? `[data-initials-of="${CSS.escape(id)}"]` : "[data-initials-of]";
  for (const el of root.querySelectorAll(avatars)) {
    const name = names.get(el.dataset.initialsOf);
    if (name) el.textContent = initials(name);
  }
}
