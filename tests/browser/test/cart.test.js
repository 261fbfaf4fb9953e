// The cart is kept per user: what Alice put in her cart is hidden when she signs out, Bob at the
// same browser starts with an empty cart, a guest's cart joins the user's at sign-in, and Alice
// finds hers again at her next sign-in.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { startShop, launchBrowser, requireDist } = require("../lib/shop");

const T = 20_000;
const sel = (testid) => `[data-testid="${testid}"]`;

describe("A cart per user", () => {
  let shop, browser, page;
  const run = crypto.randomBytes(3).toString("hex");
  const [alice, bob] = [`alice-${run}`, `bob-${run}`];

  before(async () => {
    requireDist();
    shop = await startShop();
    browser = await launchBrowser();
    page = await (await browser.newContext()).newPage();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await shop?.stop();
  });

  async function signIn(user) {
    await page.goto(`${shop.url}/#/signin?next=%23%2Fproducts`);
    await page.locator(sel("user-name")).fill(user);
    await page.locator(sel("signin-submit")).click();
    await page.locator(sel("signed-in-user")).filter({ hasText: user }).waitFor({ timeout: T });
  }

  async function signOut() {
    await page.locator(sel("signout")).click();
    await page.locator(sel("signed-in-user")).waitFor({ state: "detached", timeout: T });
  }

  async function add(productId) {
    await page.goto(`${shop.url}/#/product/${productId}`);
    await page.locator(`${sel("product-detail")} ${sel("add-to-cart")}`).click();
  }

  async function count() {
    return Number(await page.locator(sel("cart-count")).textContent());
  }

  it("hides Alice's cart from Bob and gives it back to Alice", async () => {
    await signIn(alice);
    await add("AZ-104");
    assert.equal(await count(), 1);
    await signOut();
    assert.equal(await count(), 0, "signed out, Alice's cart is hidden");

    await signIn(bob);
    assert.equal(await count(), 0, "Bob starts with an empty cart");
    await signOut();

    await add("SC-200"); // as a guest
    assert.equal(await count(), 1);
    await signIn(alice);
    assert.equal(await count(), 2, "the guest's line joined Alice's cart");
    await page.reload();
    await page.locator(sel("signed-in-user")).filter({ hasText: alice }).waitFor({ timeout: T });
    assert.equal(await count(), 2, "and it survives a reload");
    const keys = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("contoso.cart")));
    assert.deepEqual(keys.sort(), [`contoso.cart.${alice}`], "no guest cart left behind, none for Bob");
  });
});
