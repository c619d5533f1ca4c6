// The UI's messages in the page's language (<html lang>), from the same Fluent catalog
// the server renders with (served as /static/i18n/{lang}.js: each message a string, or
// parts with variables and selections); plural forms by the browser's Intl rules.
"use strict";

export const locale = document.documentElement.lang || "en";
const { default: catalog } = await import(`/static/i18n/${locale}.js`);
const plurals = new Intl.PluralRules(locale);

function format(pattern, args) {
  if (typeof pattern === "string") return pattern;
  return pattern.map((part) => {
    if (typeof part === "string") return part;
    if (part.v) return String(args[part.v] ?? "");
    const value = args[part.s];
    const key = part.o[`=${value}`] ? `=${value}` : typeof value === "number" ? plurals.select(value) : String(value);
    return format(part.o[key] ?? part.o[part.d], args);
  }).join("");
}

// Message `id` with `args` (the id itself if the catalog lacks it).
export function t(id, args = {}) {
  const pattern = catalog.messages[id];
  return pattern === undefined ? id : format(pattern, args);
}
