// The built SPA in Debian's chromium against the real local Functions host (embedded mode: API,
// queue triggers and SignalR hub in one process): catalog, sign-in, search, cart, checkout with
// live status in two tabs (and nothing in a third user's tab), reload, idempotent double click,
// history, soft delete; plus the SPA's size and click-to-Completed latency figures.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const {
  startShop, devToken, api, ordersOf, launchBrowser, watch, screenshot, distSize, stats, requireDist, ROOT, WEB_DIST,
} = require("../lib/shop");

const T = 20_000; // per wait

describe("Contoso Shop SPA in a real browser", () => {
  let shop, browser, ctxA, ctxC, pageA, pageB, pageC;
  const run = crypto.randomBytes(3).toString("hex");
  const alice = `alice-${run}`;
  const carol = `carol-${run}`;
  let aliceToken;
  let firstOrder; // { cid, totalCents, productIds }

  const sel = (testid) => `[data-testid="${testid}"]`;

  async function signIn(page, user) {
    await page.goto(`${shop.url}/#/signin?next=%23%2Fproducts`);
    await page.locator(sel("user-name")).fill(user);
    await page.locator(sel("signin-submit")).click();
    await page.locator(sel("signed-in-user")).filter({ hasText: user }).waitFor({ timeout: T });
  }

  async function hubConnected(page) {
    await page.locator(`${sel("hub-status")}[data-state="connected"]`).waitFor({ timeout: T });
  }

  async function notifications(page) {
    return Number(await page.locator(sel("hub-status")).getAttribute("data-notifications"));
  }

  async function addProduct(page, productId) {
    await page.goto(`${shop.url}/#/product/${productId}`);
    await page.locator(`${sel("product-detail")}[data-product-id="${productId}"]`).waitFor({ timeout: T });
    await page.locator(`${sel("product-detail")} ${sel("add-to-cart")}`).click();
  }

  async function cartCount(page) {
    return Number(await page.locator(sel("cart-count")).textContent());
  }

  before(async () => {
    requireDist();
    shop = await startShop();
    browser = await launchBrowser();
    ctxA = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    ctxC = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    pageA = await ctxA.newPage();
    pageA.problems = watch(pageA, "alice tab 1");
    aliceToken = await devToken(shop.url, alice);
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await shop?.stop();
    const all = [pageA, pageB, pageC].flatMap((p) => p?.problems ?? []);
    if (all.length && process.env.BROWSER_LOG) console.log(`browser console errors:\n${all.join("\n")}`);
  });

  it("reports the SPA's built size (JS + CSS)", () => {
    const size = distSize();
    console.log(
      `SPA built size (web/dist/assets JS + CSS): ${size.raw} bytes raw, ${size.gzip} bytes gzip ` +
        `(${(size.raw / 1024).toFixed(1)} KiB / ${(size.gzip / 1024).toFixed(1)} KiB gzip)`,
    );
    for (const f of size.files) console.log(`  ${f.file}: ${f.raw} raw, ${f.gzip} gzip`);
    assert.ok(size.raw > 0);
  });

  it("serves the SPA and shows the whole catalog: 145 products", async () => {
    await pageA.goto(`${shop.url}/`);
    const total = pageA.locator(sel("catalog-total"));
    await pageA.locator(`${sel("catalog-total")}[data-total="145"]`).waitFor({ timeout: T });
    assert.match(await total.textContent(), /^145 products$/);
    assert.equal(await pageA.locator(sel("product-card")).count(), 24, "the first page shows 24 cards");
    // paging
    await pageA.locator(sel("next-page")).click();
    await pageA.waitForFunction(() => location.hash.includes("page=2"));
    await pageA.locator(sel("page-info")).filter({ hasText: "Page 2 of 7" }).waitFor({ timeout: T });
    // a discounted product shows its list price struck through and the final price
    const discounted = pageA.locator(`${sel("product-card")}:has(s.price-list)`).first();
    await discounted.waitFor({ timeout: T });
    await pageA.locator(sel("prev-page")).click();
    await pageA.locator(sel("page-info")).filter({ hasText: "Page 1 of 7" }).waitFor({ timeout: T });
    await screenshot(pageA, "catalog");
  });

  it("shows each product's image from the catalog's imageUrl; the build has one SVG per catalog entry", async () => {
    const catalog = JSON.parse(fs.readFileSync(path.join(ROOT, "data", "catalog.json"), "utf8"));
    const svgs = fs.readdirSync(path.join(WEB_DIST, "images", "products")).filter((f) => f.endsWith(".svg"));
    assert.equal(svgs.length, catalog.length, "one image per catalog entry (retired products included)");
    assert.deepEqual(svgs.sort(), catalog.map((p) => p.imageUrl.replace("/images/products/", "")).sort());
    for (const f of svgs) {
      assert.ok(fs.statSync(path.join(WEB_DIST, "images", "products", f)).size < 1024, `${f} is under 1 KiB`);
    }

    // The first card's image (in view, so the lazy image loads) is the product's real imageUrl.
    const card = pageA.locator(sel("product-card")).first();
    const productId = await card.getAttribute("data-product-id");
    const img = card.locator(sel("product-image"));
    await img.scrollIntoViewIfNeeded();
    await pageA.waitForFunction((el) => el.complete, await img.elementHandle(), { timeout: T });
    const info = await img.evaluate((el) => ({
      src: el.src, naturalWidth: el.naturalWidth, alt: el.alt, loading: el.loading,
      width: el.getAttribute("width"), height: el.getAttribute("height"),
    }));
    assert.equal(new URL(info.src).pathname, `/images/products/${productId.toLowerCase()}.svg`);
    assert.ok(info.naturalWidth > 0, `the image loaded (naturalWidth ${info.naturalWidth})`);
    assert.ok(info.alt.includes(productId), `alt text names the product: ${info.alt}`);
    // The first screenful loads at once (it holds the largest paint); cards further down lazily.
    assert.equal(info.loading, "eager");
    const loading = await pageA.locator(`${sel("product-card")} ${sel("product-image")}`).evaluateAll((els) => els.map((el) => el.loading));
    assert.deepEqual(loading.slice(0, 4), ["eager", "eager", "eager", "eager"]);
    assert.ok(loading.length > 4 && loading.slice(4).every((l) => l === "lazy"), `the rest are lazy: ${loading}`);
    assert.deepEqual([info.width, info.height], ["320", "160"], "width/height reserve the space");
    const res = await fetch(info.src);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^image\/svg\+xml/);
    // The host answers a missing file with 404, not the SPA's index.html (`vite` dev would not).
    if (!shop.external) assert.equal((await fetch(new URL("/images/products/no-such-product.svg", info.src))).status, 404);
  });

  it("signs in with a dev token and connects to the hub (WebSocket, no negotiate)", async () => {
    const negotiates = [];
    const sockets = [];
    pageA.on("request", (r) => r.url().includes("/negotiate") && negotiates.push(r.url()));
    pageA.on("websocket", (ws) => sockets.push(ws.url()));
    await pageA.locator(sel("nav-signin")).click();
    await pageA.locator(sel("user-name")).fill(alice);
    await pageA.locator(sel("signin-submit")).click();
    await pageA.locator(sel("signed-in-user")).filter({ hasText: alice }).waitFor({ timeout: T });
    await hubConnected(pageA);
    // skipNegotiation: no sticky sessions needed between hub replicas; the token is in the query.
    assert.deepEqual(negotiates, [], "no negotiate request");
    assert.equal(sockets.length, 1, sockets.join(" "));
    const socket = new URL(sockets[0]);
    assert.equal(socket.pathname, "/hubs/order-status");
    assert.ok(socket.searchParams.get("access_token"), "the token goes as access_token");
    assert.equal(socket.searchParams.get("id"), null, "no connection id from a negotiate");
    const stored = await pageA.evaluate(() => JSON.parse(localStorage.getItem("contoso.session")));
    assert.equal(stored.userId, alice);
    assert.ok(stored.expiresAt > Date.now(), "the token's expiry is kept with it");
  });

  it("searches and filters the catalog, shows a product, handles an unknown one", async () => {
    await pageA.goto(`${shop.url}/#/products`);
    await pageA.locator(sel("search")).fill("az-104");
    await pageA.locator(`${sel("catalog-total")}[data-total="1"]`).waitFor({ timeout: T });
    const card = pageA.locator(`${sel("product-card")}[data-product-id="AZ-104"]`);
    await card.waitFor({ timeout: T });
    assert.match(await card.locator(sel("final-price")).textContent(), /^\$\d+\.\d\d$/);
    await card.locator(sel("product-link")).click();
    await pageA.locator(`${sel("product-detail")}[data-product-id="AZ-104"]`).waitFor({ timeout: T });
    await screenshot(pageA, "product");

    // vendor filter: every card is that vendor's
    await pageA.goto(`${shop.url}/#/products`);
    await pageA.locator(`${sel("vendor-filter")} option[value="AWS"]`).waitFor({ state: "attached", timeout: T });
    await pageA.locator(sel("vendor-filter")).selectOption("AWS");
    await pageA.waitForFunction(() => location.hash.includes("vendor=AWS"));
    await pageA.locator(`${sel("catalog-total")}:not([data-total="145"]):not([data-total=""])`).waitFor({ timeout: T });
    const metas = await pageA.locator(`${sel("product-card")} .meta`).allTextContents();
    assert.ok(metas.length > 0 && metas.every((m) => m.startsWith("AWS ·")), metas.join("|"));

    await pageA.goto(`${shop.url}/#/product/NOPE-404`);
    await pageA.locator(sel("error")).filter({ hasText: "Product not found" }).waitFor({ timeout: T });
  });

  it("fills the cart with two products; totals in exact cents; survives a reload", async () => {
    await pageA.goto(`${shop.url}/#/products?q=az-104`);
    await pageA.locator(`${sel("product-card")}[data-product-id="AZ-104"] ${sel("add-to-cart")}`).click();
    await pageA.goto(`${shop.url}/#/products?q=security&vendor=AWS`);
    await pageA.locator(`${sel("product-card")}[data-product-id="SCS-C02"] ${sel("add-to-cart")}`).click();
    assert.equal(await cartCount(pageA), 2);

    await pageA.locator(sel("nav-cart")).click();
    await pageA.locator(sel("cart-line")).nth(1).waitFor({ timeout: T });
    assert.equal(await pageA.locator(sel("cart-line")).count(), 2);
    // one more AZ-104 (quantity 2)
    await pageA.locator(`${sel("cart-line")}[data-product-id="AZ-104"] button[aria-label="One more AZ-104"]`).click();
    await pageA.reload();
    await pageA.locator(sel("cart-line")).nth(1).waitFor({ timeout: T });
    assert.equal(await pageA.locator(`${sel("cart-line")}[data-product-id="AZ-104"] ${sel("cart-quantity")}`).inputValue(), "2");
    const lineCents = (await pageA.locator(sel("line-total")).evaluateAll((els) => els.map((e) => Number(e.dataset.cents))));
    const totalCents = Number(await pageA.locator(sel("due-today")).getAttribute("data-cents"));
    assert.equal(totalCents, lineCents.reduce((a, b) => a + b, 0));
    const [az104, scs] = await Promise.all(
      ["AZ-104", "SCS-C02"].map(async (id) => (await fetch(`${shop.url}/api/products/${id}`)).json()),
    );
    assert.equal(totalCents, 2 * az104.finalPriceCents + scs.finalPriceCents);
    firstOrder = { totalCents, productIds: ["AZ-104", "SCS-C02"] };
    await screenshot(pageA, "cart");
  });

  it("checks out; Completed is pushed live to both of the user's tabs and to no other user", async () => {
    // alice's second tab (same browser context = same sign-in) on her orders page
    pageB = await ctxA.newPage();
    pageB.problems = watch(pageB, "alice tab 2");
    await pageB.goto(`${shop.url}/#/orders`);
    await pageB.locator(sel("orders-empty")).waitFor({ timeout: T });
    await hubConnected(pageB);
    // carol, another browser context, on her orders page
    pageC = await ctxC.newPage();
    pageC.problems = watch(pageC, "carol");
    await signIn(pageC, carol);
    await pageC.goto(`${shop.url}/#/orders`);
    await pageC.locator(sel("orders-empty")).waitFor({ timeout: T });
    await hubConnected(pageC);
    await hubConnected(pageA);
    const before = { a: await notifications(pageA), b: await notifications(pageB), c: await notifications(pageC) };

    await pageA.bringToFront(); // background tabs get throttled animation frames
    await pageA.goto(`${shop.url}/#/cart`);
    await pageA.locator(sel("place-order")).click();
    await pageA.waitForFunction(() => /^#\/orders\/[0-9a-f-]{36}$/.test(location.hash), null, { timeout: T });
    const cid = await pageA.locator(sel("correlation-id")).textContent();
    assert.match(cid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    firstOrder.cid = cid;

    await pageA.locator(`${sel("order-status")}[data-status="COMPLETED"]`).waitFor({ timeout: T });
    assert.equal(await pageA.locator(`${sel("step-processing")}[data-reached="true"]`).count(), 1);
    assert.equal(await cartCount(pageA), 0, "the cart is cleared on success");
    // tab 2: the order shows up, Completed, without a reload, because the hub pushed it
    await pageB.locator(`${sel("order-row")}[data-correlation-id="${cid}"] ${sel("status-badge")}[data-status="COMPLETED"]`)
      .waitFor({ timeout: T });
    await pageA.waitForFunction((n) => Number(document.querySelector('[data-testid="hub-status"]').dataset.notifications) > n, before.a, { timeout: T });
    await pageB.waitForFunction((n) => Number(document.querySelector('[data-testid="hub-status"]').dataset.notifications) > n, before.b, { timeout: T });
    assert.equal(await pageB.evaluate(() => performance.getEntriesByType("navigation").length), 1, "tab 2 never reloaded");
    await screenshot(pageA, "order-timeline");
    // carol saw nothing of it
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await notifications(pageC), before.c, "carol's tab received no notification");
    assert.equal(await pageC.locator(sel("order-row")).count(), 0);
    assert.equal(await pageC.locator(sel("orders-empty")).count(), 1);
    const carolToken = await devToken(shop.url, carol);
    assert.equal((await api(shop.url, carolToken, "GET", `/api/orders/${cid}`)).status, 404);
  });

  it("still shows Completed (with the items and total) after a reload", async () => {
    await pageA.bringToFront();
    await pageA.reload();
    await pageA.locator(`${sel("order-status")}[data-status="COMPLETED"]`).waitFor({ timeout: T });
    await pageA.locator(sel("order-item")).nth(1).waitFor({ timeout: T });
    const items = await pageA.locator(sel("order-item")).evaluateAll((els) => els.map((e) => e.dataset.productId).sort());
    assert.deepEqual(items, firstOrder.productIds);
    const order = (await api(shop.url, aliceToken, "GET", `/api/orders/${firstOrder.cid}`)).body;
    assert.equal(order.status, "COMPLETED");
    assert.equal(order.totalCents, firstOrder.totalCents, "the API's total matches the cart's");
    await pageB.bringToFront();
    await pageB.reload();
    await pageB.locator(`${sel("order-row")}[data-correlation-id="${firstOrder.cid}"] ${sel("status-badge")}[data-status="COMPLETED"]`)
      .waitFor({ timeout: T });
  });

  it("a double click on Place order makes exactly one order", async () => {
    await pageA.bringToFront();
    const before = (await ordersOf(shop.url, aliceToken)).total;
    const posts = [];
    pageA.on("request", (r) => {
      if (r.method() === "POST" && r.url().endsWith("/api/orders")) posts.push(r.headers()["idempotency-key"]);
    });
    await addProduct(pageA, "AZ-900");
    await pageA.goto(`${shop.url}/#/cart`);
    await pageA.locator(sel("place-order")).dblclick();
    await pageA.locator(`${sel("order-status")}[data-status="COMPLETED"]`).waitFor({ timeout: T });
    await new Promise((r) => setTimeout(r, 500));
    const after = await ordersOf(shop.url, aliceToken);
    assert.equal(after.total, before + 1, "exactly one new order");
    assert.ok(posts.length >= 1 && new Set(posts).size === 1, `one idempotency key: ${posts}`);
  });

  it("a lost answer is retried with the same Idempotency-Key: still one order", async () => {
    const before = (await ordersOf(shop.url, aliceToken)).total;
    const keys = [];
    let first = true;
    await pageA.route("**/api/orders", async (route) => {
      const req = route.request();
      if (req.method() !== "POST") return route.continue();
      keys.push(req.headers()["idempotency-key"]);
      if (first) {
        first = false;
        await route.fetch(); // the server gets it and answers 202 ...
        return route.abort("connectionreset"); // ... but the browser never sees the answer
      }
      return route.continue();
    });
    await addProduct(pageA, "AZ-900");
    await pageA.goto(`${shop.url}/#/cart`);
    await pageA.locator(sel("place-order")).click();
    await pageA.locator(`${sel("order-status")}[data-status="COMPLETED"]`).waitFor({ timeout: T });
    await pageA.unroute("**/api/orders");
    const after = await ordersOf(shop.url, aliceToken);
    assert.equal(keys.length, 2, "one retry");
    assert.equal(keys[0], keys[1], "the retry reused the key");
    assert.equal(after.total, before + 1, "exactly one new order");
  });

  it("shows the order history, newest first, with details", async () => {
    await pageA.goto(`${shop.url}/#/orders`);
    await pageA.locator(sel("order-row")).nth(2).waitFor({ timeout: T });
    const rows = await pageA.locator(sel("order-row")).evaluateAll((els) => els.map((e) => Number(e.dataset.orderId)));
    assert.equal(rows.length, 3);
    assert.deepEqual(rows, [...rows].sort((a, b) => b - a), "newest first");
    const row = pageA.locator(`${sel("order-row")}[data-correlation-id="${firstOrder.cid}"]`);
    await row.locator(`${sel("status-badge")}[data-status="COMPLETED"]`).waitFor({ timeout: T });
    await screenshot(pageA, "orders");
    await row.locator(sel("order-link")).click();
    await pageA.locator(`${sel("order-view")}[data-correlation-id="${firstOrder.cid}"]`).waitFor({ timeout: T });
    await pageA.locator(sel("order-total")).waitFor({ timeout: T });
  });

  it("soft-deletes an order after a confirmation", async () => {
    await pageA.goto(`${shop.url}/#/orders`);
    const row = pageA.locator(`${sel("order-row")}[data-correlation-id="${firstOrder.cid}"]`);
    await row.waitFor({ timeout: T });
    await row.locator(sel("delete-order")).click();
    await row.locator(sel("cancel-delete")).click(); // changing one's mind keeps it
    await row.locator(sel("delete-order")).click();
    await row.locator(sel("confirm-delete")).click();
    await row.waitFor({ state: "detached", timeout: T });
    assert.equal(await pageA.locator(sel("order-row")).count(), 2);
    assert.equal((await api(shop.url, aliceToken, "GET", `/api/orders/${firstOrder.cid}`)).status, 404);
    assert.equal((await ordersOf(shop.url, aliceToken)).total, 2);
  });

  it("after the hub connection drops and comes back, re-reads what it missed (no reload)", async (t) => {
    if (shop.external) return t.skip("needs the spawned host (SHOP_URL is set)");
    // This tab may not reconnect until we say so. The SPA skips negotiate and opens a WebSocket
    // straight away, so its sockets are routed: passed to the real hub normally, closed before the
    // SignalR handshake while `blocked` (so each reconnect attempt fails). Playwright has no
    // unrouteWebSocket, hence the flag. The SignalR client takes the page's WebSocket constructor
    // when its connection is built, so the tab loads afresh once the route is in place.
    let blocked = false;
    let refused = 0;
    await pageB.routeWebSocket(/\/hubs\/order-status/, (ws) => {
      if (blocked) {
        refused++;
        ws.close({ code: 1011, reason: "blocked by the test" });
      } else {
        ws.connectToServer();
      }
    });
    await pageB.bringToFront();
    await pageB.goto(`${shop.url}/#/orders`);
    await pageB.reload();
    await pageB.locator(sel("order-row")).first().waitFor({ timeout: T });
    await hubConnected(pageB);
    const pushed = await notifications(pageB);
    blocked = true;
    await shop.restart();
    await pageB.locator(`${sel("hub-status")}:not([data-state="connected"])`).waitFor({ timeout: T });
    // An order placed elsewhere while this tab cannot hear about it.
    const res = await fetch(`${shop.url}/api/orders`, {
      method: "POST",
      headers: { authorization: `Bearer ${aliceToken}`, "content-type": "application/json" },
      body: JSON.stringify({ items: [{ productId: "AZ-900", quantity: 3 }] }),
    });
    assert.equal(res.status, 202);
    const { correlationId: cid } = await res.json();
    for (let i = 0; i < 200; i++) {
      if ((await api(shop.url, aliceToken, "GET", `/api/orders/${cid}`)).body.status === "COMPLETED") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const row = pageB.locator(`${sel("order-row")}[data-correlation-id="${cid}"]`);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await row.count(), 0, "not shown while disconnected");
    assert.ok(refused >= 1, "the tab tried to reconnect while blocked");
    blocked = false;
    await hubConnected(pageB);
    await row.locator(`${sel("status-badge")}[data-status="COMPLETED"]`).waitFor({ timeout: T });
    assert.equal(await notifications(pageB), pushed, "it came from the re-read after reconnecting, not from a push");
    assert.equal(await pageB.evaluate(() => performance.getEntriesByType("navigation").length), 1, "no reload");
    await pageA.bringToFront();
    await hubConnected(pageA);
  });

  it("asks to sign in again when the token is rejected (401)", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${shop.url}/`);
    await page.evaluate(() => localStorage.setItem("contoso.session", JSON.stringify({
      mode: "dev", userId: "mallory", accessToken: "not-a-jwt", expiresAt: Date.now() + 3600_000,
    })));
    await page.goto(`${shop.url}/#/orders`);
    await page.reload(); // a new document reads the planted session
    await page.locator(sel("error")).filter({ hasText: "Please sign in again" }).waitFor({ timeout: T });
    await page.locator(sel("nav-signin")).waitFor({ timeout: T });
    assert.equal(await page.evaluate(() => localStorage.getItem("contoso.session")), null);
    await ctx.close();
  });

  it("works from the keyboard: skip link, visible focus, Enter adds to the cart", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${shop.url}/#/products`);
    await page.locator(`${sel("catalog-total")}[data-total="145"]`).waitFor({ timeout: T });
    // After a load nothing has focus, so Tab starts at the skip link and the header (issue 13);
    // the page heading takes focus only on later page changes.
    assert.equal(await page.evaluate(() => document.activeElement?.tagName), "BODY");
    let found = false;
    for (let i = 0; i < 40 && !found; i++) {
      await page.keyboard.press("Tab");
      found = await page.evaluate(() => document.activeElement?.dataset.testid === "add-to-cart");
    }
    assert.ok(found, "an Add to cart button is reachable with Tab");
    const ring = await page.evaluate(() => getComputedStyle(document.activeElement).boxShadow);
    assert.notEqual(ring, "none", "the focused button shows a focus ring");
    await page.keyboard.press("Enter");
    await page.locator(sel("cart-count")).filter({ hasText: "1" }).waitFor({ timeout: T });
    // the skip link (first in the tab order) jumps past the header
    await page.locator("a.skip").focus();
    await page.keyboard.press("Enter");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "main");
    await ctx.close();
  });

  it("fits a phone-sized screen", async () => {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const page = await ctx.newPage();
    await page.goto(`${shop.url}/#/products`);
    await page.locator(`${sel("catalog-total")}[data-total="145"]`).waitFor({ timeout: T });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling (overflow ${overflow}px)`);
    await page.screenshot({ path: require("node:path").join(require("../lib/shop").SCREENSHOTS, "catalog-phone.png") });
    await ctx.close();
  });

  it("measures click on Place order -> Completed badge over 10 orders", async () => {
    await pageA.bringToFront();
    const completed = [];
    const accepted = [];
    for (let i = 0; i < 10; i++) {
      await addProduct(pageA, i % 2 ? "AZ-104" : "AZ-900");
      await pageA.goto(`${shop.url}/#/cart`);
      await pageA.locator(sel("place-order")).waitFor({ timeout: T });
      // Measured inside the page: performance.now() at the click, when the correlationId is on
      // screen (the 202 is in) and when the Completed badge appears.
      await pageA.evaluate(() => {
        window.__timings = new Promise((resolve) => {
          const button = document.querySelector('[data-testid="place-order"]');
          button.addEventListener("click", () => {
            const t0 = performance.now();
            let acceptedAt = null;
            const check = () => {
              if (acceptedAt === null && document.querySelector('[data-testid="correlation-id"]')) {
                acceptedAt = performance.now() - t0;
              }
              if (document.querySelector('[data-testid="order-status"][data-status="COMPLETED"]')) {
                resolve({ accepted: acceptedAt ?? performance.now() - t0, completed: performance.now() - t0 });
                return true;
              }
              return false;
            };
            if (check()) return;
            const mo = new MutationObserver(() => check() && mo.disconnect());
            mo.observe(document.body, { subtree: true, childList: true, attributes: true });
          }, { once: true, capture: true });
        });
      });
      await pageA.locator(sel("place-order")).click();
      const t = await pageA.evaluate(() => window.__timings);
      completed.push(t.completed);
      accepted.push(t.accepted);
    }
    const c = stats(completed);
    const a = stats(accepted);
    const ms = (v) => `${v.toFixed(1)} ms`;
    console.log(
      `click "Place order" -> Completed badge, ${c.n} orders: median ${ms(c.median)}, min ${ms(c.min)}, ` +
        `max ${ms(c.max)} (each: ${completed.map((v) => v.toFixed(0)).join(", ")})`,
    );
    console.log(
      `  of which click -> accepted (correlationId on screen): median ${ms(a.median)}, min ${ms(a.min)}, max ${ms(a.max)}`,
    );
    assert.equal((await ordersOf(shop.url, aliceToken)).total, shop.external ? 12 : 13);
  });

  it("had no uncaught script error in any tab", () => {
    const uncaught = [pageA, pageB, pageC].flatMap((p) => p?.problems ?? []).filter((m) => m.includes("page error"));
    assert.deepEqual(uncaught, []);
  });
});
