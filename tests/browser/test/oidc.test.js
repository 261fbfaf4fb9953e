// The SPA's OIDC sign-in (authorization code + PKCE) against a small stand-in identity provider
// served by this test: discovery, the redirect with state/nonce/S256 challenge, the callback
// checks and the token exchange. The config.json the SPA reads is switched to oidc for the page.
// (A real provider is not reachable here; the API itself stays in dev mode.)
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const http = require("node:http");
const { startShop, launchBrowser, requireDist, oidcPage } = require("../lib/shop");

const T = 20_000;
const b64url = (buf) => Buffer.from(buf).toString("base64url");
const fakeJwt = (claims) => `${b64url(JSON.stringify({ alg: "none", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}.x`;

/** A minimal authorization server; `tamperState` makes /authorize answer with a wrong state. */
async function startIdp() {
  const codes = new Map();
  const idp = { exchanges: [], tamperState: false };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, idp.url);
    const cors = { "access-control-allow-origin": "*" };
    if (url.pathname === "/.well-known/openid-configuration") {
      res.writeHead(200, { "content-type": "application/json", ...cors });
      return res.end(JSON.stringify({
        issuer: idp.url,
        authorization_endpoint: `${idp.url}/authorize`,
        token_endpoint: `${idp.url}/token`,
        end_session_endpoint: `${idp.url}/logout`,
      }));
    }
    if (url.pathname === "/authorize") {
      const p = url.searchParams;
      const code = crypto.randomBytes(16).toString("hex");
      codes.set(code, {
        challenge: p.get("code_challenge"), method: p.get("code_challenge_method"), nonce: p.get("nonce"),
        redirectUri: p.get("redirect_uri"), clientId: p.get("client_id"), scope: p.get("scope"),
      });
      const back = new URL(p.get("redirect_uri"));
      back.searchParams.set("code", code);
      back.searchParams.set("state", idp.tamperState ? "forged-state" : p.get("state"));
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    if (url.pathname === "/token" && req.method === "POST") {
      let body = "";
      for await (const chunk of req) body += chunk;
      const f = new URLSearchParams(body);
      const grant = codes.get(f.get("code"));
      codes.delete(f.get("code"));
      const pkceOk = Boolean(grant) && grant.method === "S256" &&
        b64url(crypto.createHash("sha256").update(f.get("code_verifier") || "").digest()) === grant.challenge;
      const ok = pkceOk && f.get("grant_type") === "authorization_code" &&
        f.get("redirect_uri") === grant.redirectUri && f.get("client_id") === grant.clientId;
      idp.exchanges.push({ ok, pkceOk, scope: grant?.scope });
      if (!ok) {
        res.writeHead(400, { "content-type": "application/json", ...cors });
        return res.end(JSON.stringify({ error: "invalid_grant" }));
      }
      res.writeHead(200, { "content-type": "application/json", ...cors });
      return res.end(JSON.stringify({
        token_type: "Bearer",
        expires_in: 3600,
        access_token: fakeJwt({ sub: "user-olivia", aud: "contoso-orders-api" }),
        id_token: fakeJwt({ sub: "user-olivia", preferred_username: "olivia@contoso.example", nonce: grant.nonce }),
      }));
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  idp.url = `http://127.0.0.1:${server.address().port}`;
  idp.close = () => new Promise((r) => server.close(r));
  return idp;
}

describe("OIDC sign-in (authorization code + PKCE) against a stand-in provider", () => {
  let shop, browser, idp;

  before(async () => {
    requireDist();
    [shop, idp] = await Promise.all([startShop(), startIdp()]);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await idp?.close();
    await shop?.stop();
  });


  it("signs in through the provider and keeps the access token", async () => {
    const { ctx, page } = await oidcPage(browser, idp.url);
    // From the cart (a page that calls no bearer endpoint: the dev-mode API would reject this
    // provider's token with a 401, which signs the user out again).
    await page.goto(`${shop.url}/#/cart`);
    await page.locator('[data-testid="nav-signin"]').click();
    await page.locator('[data-testid="oidc-signin"]').click();
    await page.locator('[data-testid="signed-in-user"]').filter({ hasText: "olivia@contoso.example" }).waitFor({ timeout: T });
    assert.deepEqual(idp.exchanges.at(-1), { ok: true, pkceOk: true, scope: "openid profile orders" });
    const url = new URL(page.url());
    assert.equal(url.search, "", "code and state are gone from the address bar");
    assert.equal(url.hash, "#/cart", "back where the sign-in started");
    const session = await page.evaluate(() => JSON.parse(localStorage.getItem("contoso.session")));
    assert.equal(session.mode, "oidc");
    assert.match(session.accessToken, /^[\w-]+\.[\w-]+\.x$/);
    assert.ok(session.expiresAt > Date.now() + 3000_000);
    await ctx.close();
  });

  it("refuses a callback whose state does not match", async () => {
    idp.tamperState = true;
    const { ctx, page } = await oidcPage(browser, idp.url);
    await page.goto(`${shop.url}/#/signin`);
    const exchangesBefore = idp.exchanges.length;
    await page.locator('[data-testid="oidc-signin"]').click();
    await page.locator(".toast").filter({ hasText: "could not be verified" }).waitFor({ timeout: T });
    assert.equal(await page.locator('[data-testid="signed-in-user"]').count(), 0);
    assert.equal(idp.exchanges.length, exchangesBefore, "no code was exchanged");
    assert.equal(await page.evaluate(() => localStorage.getItem("contoso.session")), null);
    idp.tamperState = false;
    await ctx.close();
  });
});
