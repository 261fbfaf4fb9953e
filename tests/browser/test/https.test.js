// The shop over HTTPS and WSS (LOCAL_HTTPS=true): the host serves the SPA, the API and the hub
// with the development certificate it made under DATA_DIR/tls. Chromium signs in, places an
// order and sees it go Completed live over a wss:// socket. The certificate is self-signed, so
// the browser context accepts it; Node checks it for real against the kept cert.pem.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { startShop, launchBrowser, requireDist, httpsStatus } = require("../lib/shop");

const T = 20_000;
const sel = (testid) => `[data-testid="${testid}"]`;

describe("The shop over HTTPS and WSS", () => {
  let shop, browser;

  before(async () => {
    requireDist();
    shop = await startShop({ LOCAL_HTTPS: "true" });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await shop?.stop();
  });

  it("serves with a certificate for localhost that verifies against the kept cert.pem", async () => {
    assert.match(shop.url, /^https:\/\/localhost:\d+$/);
    const cert = path.join(shop.dataDir, "tls", "cert.pem");
    assert.equal(await httpsStatus(`${shop.url}/api/health/live`, cert), 200);
    const plain = await fetch(shop.url.replace("https:", "http:") + "/api/health/live").then(
      (r) => r.status,
      () => "refused",
    );
    assert.notEqual(plain, 200, "no plain HTTP on the same port");
  });

  it("places an order and sees it go Completed live over wss://", async () => {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    const sockets = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    await page.goto(`${shop.url}/#/signin?next=%23%2Fproducts`);
    await page.locator(sel("user-name")).fill("tess");
    await page.locator(sel("signin-submit")).click();
    await page.locator(`${sel("hub-status")}[data-state="connected"]`).waitFor({ timeout: T });
    await page.goto(`${shop.url}/#/product/AZ-104`);
    await page.locator(`${sel("product-detail")} ${sel("add-to-cart")}`).click();
    await page.goto(`${shop.url}/#/cart`);
    await page.locator(sel("place-order")).click();
    await page.locator(`${sel("order-status")}[data-status="COMPLETED"]`).waitFor({ timeout: T });
    assert.ok(sockets.length > 0 && sockets.every((u) => u.startsWith("wss://localhost:")), `sockets: ${sockets}`);
    const pushed = Number(await page.locator(sel("hub-status")).getAttribute("data-notifications"));
    assert.ok(pushed >= 1, `the hub pushed the order's progress (${pushed} notifications)`);
    await ctx.close();
  });
});
