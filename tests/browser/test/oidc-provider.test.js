// The OIDC path end to end against a real, certified provider: panva's oidc-provider (npm),
// started by this test with an RS256 key. The SPA signs in with code + PKCE through the
// provider's own login and consent pages; the host runs with AUTH_MODE=oidc, so the API and the
// hub validate the provider's JWT access tokens through discovery and its JWKS. An order goes to
// Completed live. Then the provider rotates its signing key (a new kid, the old key kept for a
// while, as providers do): a fresh sign-in's token is signed with the new key, and the API and
// the hub follow it.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const http = require("node:http");
const { freePort, startShop, launchBrowser, requireDist, oidcPage } = require("../lib/shop");

const T = 20_000;
const AUDIENCE = "contoso-orders-api";
const CLIENT_ID = "contoso-shop-spa";
const sel = (testid) => `[data-testid="${testid}"]`;

function rsaJwk(kid) {
  const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { ...privateKey.export({ format: "jwk" }), kid, use: "sig", alg: "RS256" };
}

/** oidc-provider on `port` for the SPA at `shopUrl`, signing with the first of `keys`. */
async function startProvider(port, shopUrl, keys) {
  const { default: Provider } = await import("oidc-provider");
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code"],
      response_types: ["code"],
      redirect_uris: [`${shopUrl}/`],
      post_logout_redirect_uris: [`${shopUrl}/`],
    }],
    jwks: { keys },
    pkce: { required: () => true },
    clientBasedCORS: () => true,
    scopes: ["openid", "profile", "orders"],
    claims: { openid: ["sub"], profile: ["preferred_username"] },
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub, preferred_username: `${sub}@contoso.example` }) }),
    features: {
      devInteractions: { enabled: true },
      // JWT access tokens for the API (RFC 9068), its audience whatever the SPA asks for.
      resourceIndicators: {
        enabled: true,
        defaultResource: () => `urn:${AUDIENCE}`,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: "orders",
          audience: AUDIENCE,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
  });
  provider.on("server_error", (_ctx, e) => console.error("provider error:", e));
  const server = http.createServer(provider.callback());
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return { issuer, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

describe("OIDC end to end against a real provider (panva oidc-provider)", () => {
  let shop, browser, provider, providerPort;
  const oldKey = rsaJwk("key-1");
  const newKey = rsaJwk("key-2");

  before(async () => {
    requireDist();
    providerPort = await freePort();
    shop = await startShop({
      AUTH_MODE: "oidc",
      JWT_ISSUER: `http://127.0.0.1:${providerPort}`,
      JWT_AUDIENCE: AUDIENCE,
      JWKS_MIN_REFRESH_SECS: "1",
    });
    provider = await startProvider(providerPort, shop.url, [oldKey]);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await provider?.close();
    await shop?.stop();
  });

  /** A fresh browser signed in through the provider's login and consent pages. */
  async function signIn(user) {
    const { ctx, page } = await oidcPage(browser, provider.issuer);
    await page.goto(`${shop.url}/#/signin`);
    await page.locator(sel("oidc-signin")).click();
    await page.locator('input[name="login"]').fill(user);
    await page.locator('input[name="password"]').fill("any");
    await page.locator('button[type="submit"]').click();
    await page.locator('button[type="submit"]').filter({ hasText: /continue/i }).click(); // consent
    await page.locator(sel("signed-in-user")).filter({ hasText: `${user}@contoso.example` }).waitFor({ timeout: T });
    const session = await page.evaluate(() => JSON.parse(localStorage.getItem("contoso.session")));
    return { ctx, page, token: session.accessToken };
  }

  function kidOf(token) {
    return JSON.parse(Buffer.from(token.split(".")[0], "base64url").toString()).kid;
  }

  async function orderCompletesLive(page) {
    await page.locator(`${sel("hub-status")}[data-state="connected"]`).waitFor({ timeout: T });
    await page.goto(`${shop.url}/#/product/AZ-104`);
    await page.locator(`${sel("product-detail")} ${sel("add-to-cart")}`).click();
    await page.goto(`${shop.url}/#/cart`);
    await page.locator(sel("place-order")).click();
    await page.locator(sel("order-status")).filter({ hasText: "Completed" }).waitFor({ timeout: T });
    const notified = Number(await page.locator(sel("hub-status")).getAttribute("data-notifications"));
    assert.ok(notified >= 1, "the hub, validating the provider's token, pushed the status");
  }

  it("signs in with code + PKCE; the API and the hub accept the RS256 token; an order completes live", async () => {
    const { ctx, page, token } = await signIn("olivia");
    assert.equal(kidOf(token), "key-1");
    const payload = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    assert.equal(payload.aud, AUDIENCE);
    assert.equal(payload.iss, provider.issuer);
    await orderCompletesLive(page);
    // The API checks the signature: the same claims under another key are refused.
    const forged = `${token.split(".").slice(0, 2).join(".")}.${Buffer.from("x").toString("base64url")}`;
    const res = await fetch(`${shop.url}/api/orders`, { headers: { authorization: `Bearer ${forged}` } });
    assert.equal(res.status, 401);
    await ctx.close();
  });

  it("follows a key rotation at the provider", async () => {
    await provider.close();
    provider = await startProvider(providerPort, shop.url, [newKey, oldKey]);
    const { ctx, page, token } = await signIn("peter");
    assert.equal(kidOf(token), "key-2", "the provider signs with its new key");
    await orderCompletesLive(page);
    await ctx.close();
  });
});
