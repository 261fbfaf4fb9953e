// The shop as its users expect it (issue 13): honest totals per billing period, equal to the API's;
// a phone layout that shows every amount without sideways scrolling; outages explained, with an
// order that was not placed said so until one goes through, and an offline shell on reload;
// navigation that keeps its search, page and scroll position; titles per view; keyboard use.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { startShop, devToken, api, launchBrowser, watch, screenshot, requireDist, sleep } = require("../lib/shop");

const T = 20_000;
const sel = (testid) => `[data-testid="${testid}"]`;
const PHONE = { width: 390, height: 844 };

describe("The shop as its users expect it", () => {
  let shop, browser, desk, phone;
  const run = crypto.randomBytes(3).toString("hex");
  const dana = `dana-${run}`;
  /** One active product per billing period, from the API. */
  const byPeriod = {};

  before(async () => {
    requireDist();
    shop = await startShop();
    browser = await launchBrowser();
    desk = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    desk.problems = watch(desk, "desktop");
    phone = await (await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true })).newPage();
    phone.problems = watch(phone, "phone");
    const page = await (await fetch(`${shop.url}/api/products?size=100`)).json();
    for (const p of page.items) byPeriod[p.billingPeriod] ??= p;
    for (const period of ["monthly", "yearly", "one-time"]) assert.ok(byPeriod[period], `a ${period} product`);
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await shop?.stop();
    const all = [desk, phone].flatMap((p) => p?.problems ?? []);
    if (all.length && process.env.BROWSER_LOG) console.log(`browser console errors:\n${all.join("\n")}`);
  });

  async function signIn(page, user) {
    await page.goto(`${shop.url}/#/signin?next=%23%2Fproducts`);
    await page.locator(sel("user-name")).fill(user);
    await page.locator(sel("signin-submit")).click();
    await page.locator(sel("signed-in-user")).filter({ hasText: user }).waitFor({ state: "attached", timeout: T });
  }

  async function add(page, product, quantity) {
    await page.goto(`${shop.url}/#/product/${product.productId}`);
    await page.locator(`${sel("product-detail")}[data-product-id="${product.productId}"]`).waitFor({ timeout: T });
    await page.locator(sel("product-quantity")).fill(String(quantity));
    await page.locator(`${sel("product-detail")} ${sel("add-to-cart")}`).click();
  }

  async function cents(page, testid) {
    return Number(await page.locator(sel(testid)).first().getAttribute("data-cents"));
  }

  async function placeOrder(page) {
    await page.goto(`${shop.url}/#/cart`);
    await page.locator(sel("place-order")).click();
    await page.waitForFunction(() => /^#\/orders\/[0-9a-f-]{36}$/.test(location.hash), null, { timeout: T });
    return page.locator(sel("correlation-id")).textContent();
  }

  it("shows what is due today and what recurs per period, in the cart and the order, equal to the API's", async () => {
    await signIn(desk, dana);
    const lines = [
      [byPeriod.monthly, 2],
      [byPeriod.yearly, 1],
      [byPeriod["one-time"], 3],
    ];
    for (const [p, q] of lines) await add(desk, p, q);
    await desk.goto(`${shop.url}/#/cart`);
    await desk.locator(sel("cart-line")).nth(2).waitFor({ timeout: T });
    const expected = {
      dueToday: lines.reduce((sum, [p, q]) => sum + p.finalPriceCents * q, 0),
      monthly: byPeriod.monthly.finalPriceCents * 2,
      yearly: byPeriod.yearly.finalPriceCents,
    };
    assert.equal(await cents(desk, "due-today"), expected.dueToday);
    assert.equal(await cents(desk, "recurring-monthly"), expected.monthly);
    assert.equal(await cents(desk, "recurring-yearly"), expected.yearly);
    assert.equal(await desk.locator(sel("recurring-one-time")).count(), 0, "one-time never recurs");
    assert.equal(await desk.getByText(/^Total/).count(), 0, "no single total across periods");
    await screenshot(desk, "cart-charges");

    const cid = await placeOrder(desk);
    await desk.locator(`${sel("order-status")}[data-status="COMPLETED"]`).waitFor({ timeout: T });
    await desk.locator(sel("order-item")).nth(2).waitFor({ timeout: T });
    const order = (await api(shop.url, await devToken(shop.url, dana), "GET", `/api/orders/${cid}`)).body;
    assert.equal(order.dueTodayCents, expected.dueToday, "the API's due today");
    assert.equal(order.dueToday, (expected.dueToday / 100).toFixed(2), "as an exact decimal string");
    assert.deepEqual(
      order.recurring.map((r) => [r.billingPeriod, r.amountCents, r.amount]),
      [
        ["monthly", expected.monthly, (expected.monthly / 100).toFixed(2)],
        ["yearly", expected.yearly, (expected.yearly / 100).toFixed(2)],
      ],
    );
    await desk.locator(sel("recurring-yearly")).waitFor({ timeout: T });
    assert.equal(await cents(desk, "due-today"), order.dueTodayCents, "the order page shows the API's figures");
    assert.equal(await cents(desk, "recurring-monthly"), expected.monthly);
    assert.equal(await cents(desk, "recurring-yearly"), expected.yearly);
  });

  it("at 390 px shows every line total and the order's charges without sideways scrolling", async () => {
    await signIn(phone, dana);
    for (const [p, q] of [[byPeriod.monthly, 1], [byPeriod.yearly, 2], [byPeriod["one-time"], 1000]]) {
      await add(phone, p, q);
    }
    // the toast lives in the sticky header: it covers none of the page's buttons
    const toast = await phone.locator(".toast").boundingBox();
    const header = await phone.locator("header.top").boundingBox();
    assert.ok(toast && header && toast.y >= header.y && toast.y + toast.height <= header.y + header.height + 0.5);
    await phone.locator(sel("toast-action")).click();
    await phone.locator(sel("cart-line")).nth(2).waitFor({ timeout: T });
    assert.equal(await phone.locator(".toast").count(), 0, "toasts are cleared on navigation");

    const cid = await placeOrder(phone);
    // Items and charges from the moment it is accepted (what was submitted, then the API's).
    await phone.locator(sel("order-item")).nth(2).waitFor({ timeout: T });
    await phone.locator(sel("due-today")).waitFor({ timeout: T });
    const stored = await phone.evaluate((user) => JSON.parse(localStorage.getItem(`contoso.orders.${user}`)), dana);
    assert.equal(stored[cid].items.length, 3, "the tracker keeps what was submitted");
    await phone.locator(`${sel("order-status")}[data-status="COMPLETED"]`).waitFor({ timeout: T });
    await phone.locator(sel("recurring-yearly")).waitFor({ timeout: T });

    const boxes = await phone.evaluate(() => {
      const rect = (el) => {
        const r = el.getBoundingClientRect();
        return { left: r.left, right: r.right, width: r.width, text: el.textContent.trim() };
      };
      return {
        viewport: document.documentElement.clientWidth,
        scrollWidth: document.documentElement.scrollWidth,
        lines: [...document.querySelectorAll('[data-testid="order-line-total"]')].map(rect),
        charges: [...document.querySelectorAll('[data-testid="due-today"], [data-testid^="recurring-"]')].map(rect),
      };
    });
    assert.ok(boxes.scrollWidth <= boxes.viewport, `no sideways scrolling: ${boxes.scrollWidth} > ${boxes.viewport}`);
    assert.equal(boxes.lines.length, 3);
    for (const b of [...boxes.lines, ...boxes.charges]) {
      assert.ok(b.width > 0 && b.left >= 0 && b.right <= boxes.viewport, `${b.text} fits: ${JSON.stringify(b)}`);
      assert.match(b.text, /\$[\d,]+\.\d\d/, "a whole amount, not cut off");
    }
    await screenshot(phone, "order-phone");
  });

  it("keeps the header to one row and folds the catalog's filters on a phone", async () => {
    await phone.goto(`${shop.url}/#/products`);
    await phone.locator(sel("product-card")).nth(23).waitFor({ timeout: T });
    const header = await phone.locator("header.top").boundingBox();
    assert.ok(header.height < 70, `one header row (${header.height} px)`);
    assert.equal(await phone.locator(sel("vendor-filter")).isVisible(), false, "filters folded");
    await phone.locator(sel("filters-toggle")).click();
    assert.equal(await phone.locator(sel("vendor-filter")).isVisible(), true);
    const card = await phone.locator(sel("product-card")).first().boundingBox();
    assert.ok(card.height < 200, `compact cards (${card.height} px)`);
    await screenshot(phone, "catalog-phone");
  });

  it("says an order was not placed while the server is down, keeps saying it across pages, and clears it once it goes through", async () => {
    await add(desk, byPeriod.monthly, 1);
    await desk.goto(`${shop.url}/#/cart`);
    await desk.locator(sel("place-order")).waitFor({ timeout: T });
    let back;
    await shop.restart(async () => {
      await desk.locator(sel("place-order")).click();
      const notPlaced = desk.locator(sel("order-not-placed"));
      await notPlaced.waitFor({ timeout: 30_000 });
      assert.match(await notPlaced.textContent(), /not placed/);
      assert.equal(await desk.locator(sel("outage")).getAttribute("data-state"), "down", "server down, not offline");
      await desk.locator(sel("nav-catalog")).click();
      await desk.locator(sel("catalog-total")).waitFor({ state: "attached", timeout: T });
      await notPlaced.waitFor({ timeout: T });
      back = Date.now();
    });
    // the API answers again: the notice of the outage goes, the live updates reconnect at once
    await desk.locator(`${sel("outage")}[data-state="ok"]`).waitFor({ timeout: T });
    await desk.locator(`${sel("hub-status")}[data-state="connected"]`).waitFor({ timeout: T });
    console.log(`live updates reconnected ${Date.now() - back} ms after the host was started again`);
    assert.equal(await desk.locator(sel("order-not-placed")).count(), 1, "kept until the order goes through");
    await placeOrder(desk);
    await desk.locator(`${sel("order-status")}[data-status="COMPLETED"]`).waitFor({ timeout: T });
    assert.equal(await desk.locator(sel("order-not-placed")).count(), 0, "cleared once placed");
  });

  it("shows the shop's offline shell on a reload while the server is down", async () => {
    await desk.goto(`${shop.url}/#/products`);
    await desk.waitForFunction(() => navigator.serviceWorker?.controller != null, null, { timeout: T });
    await shop.restart(async () => {
      await desk.reload();
      await desk.locator(`${sel("outage")}[data-state="down"]`).waitFor({ timeout: T });
      assert.match(await desk.locator(sel("outage-reach")).textContent(), /server is not answering/);
      await desk.locator(sel("nav-cart")).waitFor({ timeout: T });
      await screenshot(desk, "offline-shell");
    });
    await desk.locator(`${sel("outage")}[data-state="ok"]`).waitFor({ state: "attached", timeout: T }).catch(() => {});
    await desk.locator(sel("product-card")).first().waitFor({ timeout: T });
  });

  it("returns Back from a product to the same search, page and scroll position", async () => {
    await desk.goto(`${shop.url}/#/products?vendor=Microsoft`);
    await desk.locator(sel("product-card")).nth(23).waitFor({ timeout: T });
    await desk.locator(sel("next-page")).click();
    await desk.waitForFunction(() => location.hash.includes("page=2"), null, { timeout: T });
    await desk.locator(sel("page-info")).filter({ hasText: "Page 2" }).waitFor({ timeout: T });
    assert.ok((await desk.evaluate(() => window.scrollY)) < 5, "a new page starts at the top");
    const card = desk.locator(sel("product-card")).nth(14);
    await card.scrollIntoViewIfNeeded();
    await sleep(300); // the position is saved on the next animation frame
    const y = await desk.evaluate(() => window.scrollY);
    assert.ok(y > 300, `scrolled down (${y})`);
    const id = await card.getAttribute("data-product-id");

    for (const how of ["browser back", "back link"]) {
      await card.locator(sel("product-link")).click();
      await desk.locator(`${sel("product-detail")}[data-product-id="${id}"]`).waitFor({ timeout: T });
      assert.match(await desk.title(), / · Contoso Shop$/);
      if (how === "browser back") await desk.goBack();
      else await desk.locator(sel("back-to-catalog")).click();
      await desk.locator(sel("page-info")).filter({ hasText: "Page 2" }).waitFor({ timeout: T });
      assert.match(await desk.evaluate(() => location.hash), /vendor=Microsoft.*page=2|page=2.*vendor=Microsoft/);
      await desk.waitForFunction((want) => Math.abs(window.scrollY - want) < 30, y, { timeout: T });
    }
    await desk.goBack();
    await desk.locator(sel("page-info")).filter({ hasText: "Page 1" }).waitFor({ timeout: T });
    assert.equal(await desk.title(), "Catalog · Contoso Shop");
  });

  it("applies a filter list only on an explicit choice, not on each arrow key", async () => {
    await desk.goto(`${shop.url}/#/products`);
    await desk.locator(sel("product-card")).first().waitFor({ timeout: T });
    // The vendors arrive with the facets, a request of their own after the cards: browse them
    // once they are there, or the arrow keys have nothing to move to.
    await desk.locator(`${sel("vendor-filter")} option`).nth(2).waitFor({ state: "attached", timeout: T });
    await desk.locator(sel("vendor-filter")).focus();
    await desk.keyboard.press("ArrowDown");
    await desk.keyboard.press("ArrowDown");
    await sleep(500);
    assert.doesNotMatch(await desk.evaluate(() => location.hash), /vendor=/, "browsing applies nothing");
    await desk.keyboard.press("Enter");
    await desk.waitForFunction(() => /vendor=/.test(location.hash), null, { timeout: T });
  });

  it("reaches the header first with Tab after a load, and cancels a delete with Escape", async () => {
    // A browser of its own: a first page load, signed out until signed in below.
    const desk = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    await desk.goto(`${shop.url}/#/products`);
    await desk.locator(sel("product-card")).first().waitFor({ timeout: T });
    const reached = [];
    for (let i = 0; i < 6; i++) {
      await desk.keyboard.press("Tab");
      reached.push(await desk.evaluate(() => document.activeElement?.dataset.testid || document.activeElement?.className));
    }
    assert.equal(reached[0], "skip", "the skip link comes first");
    assert.ok(reached.includes("nav-cart"), `Cart is reached with Tab: ${reached.join(", ")}`);

    const token = await devToken(shop.url, dana);
    const placed = await fetch(`${shop.url}/api/orders`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ items: [{ productId: byPeriod.monthly.productId, quantity: 1 }] }),
    });
    assert.equal(placed.status, 202);
    const cid = (await placed.json()).correlationId;
    await signIn(desk, dana);
    await desk.goto(`${shop.url}/#/orders/${cid}`);
    await desk.locator(`${sel("order-status")}[data-status="COMPLETED"]`).waitFor({ timeout: T });
    await desk.locator(sel("delete-order")).click();
    const focused = (testid) =>
      desk.waitForFunction((t) => document.activeElement?.dataset.testid === t, testid, { timeout: T });
    await focused("cancel-delete");
    await desk.keyboard.press("Escape");
    await desk.locator(sel("delete-confirm")).waitFor({ state: "detached", timeout: T });
    await focused("delete-order");
    assert.equal((await api(shop.url, token, "GET", `/api/orders/${cid}`)).status, 200, "nothing deleted");
    await desk.context().close();
  });
});
