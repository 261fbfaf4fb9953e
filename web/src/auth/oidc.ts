// OIDC sign-in for a real identity provider: authorization code flow with PKCE (S256), in plain
// TypeScript. Switched on by config.json {"auth": {"mode": "oidc", "authority", "clientId",
// "scope"}}. The flow:
//   1. discovery: GET {authority}/.well-known/openid-configuration
//   2. redirect to authorization_endpoint with state + code_challenge (verifier kept in
//      sessionStorage for this tab only)
//   3. back on the SPA with ?code=&state= (or ?error=): check the state, exchange the code and the
//      verifier at token_endpoint (public client, no secret), keep the access token
//   4. the access token goes to the API and the hub exactly like a dev token.
// The API validates it (AUTH_MODE=oidc, JWT_ISSUER = authority, JWT_AUDIENCE = the API's
// audience, which the scope must request).
import type { OidcAuthConfig } from "../config";
import { setSession, type Session } from "./session";

interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  end_session_endpoint?: string;
}

interface PendingLogin {
  state: string;
  verifier: string;
  nonce: string;
  redirectUri: string;
  returnTo: string;
  createdAt: number;
}

const PENDING_KEY = "contoso.oidc.pending";
const MAX_PENDING_MS = 10 * 60 * 1000;

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(bytes = 32): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function challengeFor(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

const discoveryCache = new Map<string, Promise<Discovery>>();

export function discover(authority: string): Promise<Discovery> {
  let p = discoveryCache.get(authority);
  if (!p) {
    p = (async () => {
      const res = await fetch(`${authority}/.well-known/openid-configuration`);
      if (!res.ok) throw new Error(`OIDC discovery failed: HTTP ${res.status}`);
      const d = (await res.json()) as Discovery;
      if (!d.authorization_endpoint || !d.token_endpoint) throw new Error("OIDC discovery document is incomplete");
      return d;
    })();
    p.catch(() => discoveryCache.delete(authority));
    discoveryCache.set(authority, p);
  }
  return p;
}

function defaultRedirectUri(): string {
  return `${location.origin}${location.pathname}`;
}

/** Step 2: leaves the page for the identity provider. */
export async function beginOidcSignIn(cfg: OidcAuthConfig, returnTo: string): Promise<void> {
  const d = await discover(cfg.authority);
  const pending: PendingLogin = {
    state: randomString(),
    verifier: randomString(48),
    nonce: randomString(16),
    redirectUri: cfg.redirectUri || defaultRedirectUri(),
    returnTo,
    createdAt: Date.now(),
  };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(d.authorization_endpoint);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", cfg.clientId);
  url.searchParams.set("redirect_uri", pending.redirectUri);
  url.searchParams.set("scope", cfg.scope);
  url.searchParams.set("state", pending.state);
  url.searchParams.set("nonce", pending.nonce);
  url.searchParams.set("code_challenge", await challengeFor(pending.verifier));
  url.searchParams.set("code_challenge_method", "S256");
  location.assign(url.toString());
}

function decodeJwtPayload(jwt: string | undefined): Record<string, unknown> {
  if (!jwt) return {};
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      [...atob(part)].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`).join(""),
    );
    return JSON.parse(json) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/**
 * Step 3: when the page was opened by the provider's redirect (?code=&state= or ?error=),
 * finishes the sign-in. Returns the hash to show next, or null when this is not a callback.
 * Throws with a readable message when the callback is invalid.
 */
export async function completeOidcSignIn(cfg: OidcAuthConfig): Promise<string | null> {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  const error = params.get("error");
  if (!code && !error) return null;
  const pending = (() => {
    try {
      return JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null") as PendingLogin | null;
    } catch {
      return null;
    }
  })();
  sessionStorage.removeItem(PENDING_KEY);
  // Drop ?code=&state= from the address bar (and history) whatever happens next.
  history.replaceState(null, "", `${location.pathname}${location.hash}`);
  if (error) throw new Error(`Sign-in was not completed: ${params.get("error_description") || error}`);
  if (!pending || pending.state !== params.get("state") || Date.now() - pending.createdAt > MAX_PENDING_MS) {
    throw new Error("Sign-in could not be verified (state mismatch or expired). Please sign in again.");
  }
  const d = await discover(cfg.authority);
  const res = await fetch(d.token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: code!,
      redirect_uri: pending.redirectUri,
      client_id: cfg.clientId,
      code_verifier: pending.verifier,
    }),
  });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok || typeof body.access_token !== "string") {
    throw new Error(`Sign-in failed at the token endpoint: ${String(body.error_description || body.error || res.status)}`);
  }
  const idToken = typeof body.id_token === "string" ? body.id_token : undefined;
  const claims = decodeJwtPayload(idToken);
  if (idToken && claims.nonce !== undefined && claims.nonce !== pending.nonce) {
    throw new Error("Sign-in could not be verified (nonce mismatch). Please sign in again.");
  }
  const access = decodeJwtPayload(body.access_token);
  const userId = String(claims.preferred_username || claims.name || claims.email || access.sub || claims.sub || "user");
  const expiresIn = typeof body.expires_in === "number" ? body.expires_in : Number(body.expires_in) || 3600;
  const s: Session = {
    mode: "oidc",
    userId,
    accessToken: body.access_token,
    expiresAt: Date.now() + expiresIn * 1000,
    idToken,
  };
  setSession(s);
  return pending.returnTo || "#/products";
}

/** Ends the provider's session too, when it offers an end_session_endpoint. */
export async function oidcSignOutUrl(cfg: OidcAuthConfig, idToken?: string): Promise<string | null> {
  try {
    const d = await discover(cfg.authority);
    if (!d.end_session_endpoint) return null;
    const url = new URL(d.end_session_endpoint);
    url.searchParams.set("client_id", cfg.clientId);
    url.searchParams.set("post_logout_redirect_uri", cfg.redirectUri || defaultRedirectUri());
    if (idToken) url.searchParams.set("id_token_hint", idToken);
    return url.toString();
  } catch {
    return null;
  }
}
