// Natter's service worker: shows the Web Push notifications the server sends for messages
// still unread a short while after they came (docs/website.md, "Web Push"). A page of
// Natter in view shows its own, so a push is not shown twice; a hidden page's
// notification and the push share a tag, so the browser keeps one.
"use strict";

self.addEventListener("push", (event) => {
  const push = event.data ? event.data.json() : null;
  if (!push) return;
  event.waitUntil((async () => {
    const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    if (pages.some((page) => page.visibilityState === "visible")) return;
    await self.registration.showNotification(push.title, {
      body: push.body,
      tag: push.tag,
      data: { url: push.url },
    });
  })());
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url));
});
