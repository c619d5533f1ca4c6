// The reader's choices on every page: the colour scheme (the system's, dark or light)
// and the language (over the browser's). Both are cookies, so the server renders the
// next page in them and nothing flashes; a new language reloads the page.
"use strict";

const YEAR = 31536000;

function remember(name, value) {
  document.cookie = value ? `${name}=${value}; path=/; max-age=${YEAR}; samesite=lax` : `${name}=; path=/; max-age=0; samesite=lax`;
}

const theme = document.getElementById("theme-toggle");
theme?.addEventListener("click", () => {
  const root = document.documentElement;
  const order = ["", "dark", "light"];
  const next = order[(order.indexOf(root.dataset.theme || "") + 1) % order.length];
  if (next) root.dataset.theme = next;
  else delete root.dataset.theme;
  remember("natter_theme", next);
  theme.setAttribute("aria-label", theme.dataset[`label${next ? next[0].toUpperCase() + next.slice(1) : "System"}`]);
});

const lang = document.getElementById("lang-select");
lang?.addEventListener("change", () => {
  remember("natter_lang", lang.value);
  window.location.reload();
});
