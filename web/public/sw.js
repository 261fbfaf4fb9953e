// The shop's offline shell. A reload while the server is down or the device is offline still
// shows the shop (from this cache) with a notice saying which it is; the API is never cached, so
// an outage shows as one and no stale order status is ever shown as current.
//
// - Pages and config.json: network first, the cached copy when the network fails.
// - assets/ and images/: cache first (Vite names assets by content hash, so they never change).
// - api/, hubs/, dev/: not handled here at all.
"use strict";

const CACHE = "contoso-shell-v1";
const scope = new URL(self.registration.scope);
const SHELL = new URL("./", scope).href;

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      const index = await fetch(SHELL, { cache: "no-cache" });
      if (!index.ok) throw new Error(`the shell answered ${index.status}`);
      const html = await index.clone().text();
      // The entry script and stylesheet index.html links to.
      const assets = [...html.matchAll(/(?:src|href)="\.?\/?(assets\/[^"]+)"/g)].map((m) => new URL(m[1], scope).href);
      await cache.put(SHELL, index);
      await cache.addAll([new URL("config.json", scope).href, ...assets]);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
      await self.clients.claim();
    })(),
  );
});

async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(key, response.clone());
    return response;
  } catch (e) {
    const cached = await cache.match(key);
    if (cached) return cached;
    throw e;
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return;
  const path = url.pathname.slice(scope.pathname.length);
  if (/^(api|hubs|dev)(\/|$)/.test(path)) return;
  if (request.mode === "navigate") event.respondWith(networkFirst(request, SHELL));
  else if (/^(assets|images)\//.test(path)) event.respondWith(cacheFirst(request));
  else event.respondWith(networkFirst(request, url.href));
});
