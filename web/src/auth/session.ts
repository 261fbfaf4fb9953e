// The signed-in user's token, kept in localStorage with its expiry (so every tab of the browser
// shares one sign-in and sign-out), whichever way it was obtained (dev token or OIDC).
import { Store, readJson, writeJson } from "../store";

export interface Session {
  mode: "dev" | "oidc";
  userId: string;
  accessToken: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  idToken?: string;
}

const KEY = "contoso.session";
/** Treat a token as expired this long before it really is, so requests never race the expiry. */
const SKEW_MS = 30_000;

export type SignOutReason = "user" | "expired";

function load(): Session | null {
  const s = readJson<Session | null>(localStorage, KEY, null);
  if (!s || typeof s.accessToken !== "string" || typeof s.expiresAt !== "number") return null;
  return s.expiresAt - SKEW_MS > Date.now() ? s : null;
}

export const session = new Store<Session | null>(load());
/** Why the last session ended, for the sign-in page's message. */
export const signOutReason = new Store<SignOutReason | null>(
  !session.get() && readJson<Session | null>(localStorage, KEY, null) ? "expired" : null,
);
if (signOutReason.get()) writeJson(localStorage, KEY, null); // drop the expired token

export function setSession(s: Session): void {
  writeJson(localStorage, KEY, s);
  signOutReason.set(null);
  session.set(s);
}

export function signOut(reason: SignOutReason = "user"): void {
  writeJson(localStorage, KEY, null);
  if (session.get() !== null) signOutReason.set(reason);
  session.set(null);
}

/** The bearer token, or null (and signed out) when it has expired. */
export function currentToken(): string | null {
  const s = session.get();
  if (!s) return null;
  if (s.expiresAt - SKEW_MS <= Date.now()) {
    signOut("expired");
    return null;
  }
  return s.accessToken;
}

// Another tab signed in or out.
window.addEventListener("storage", (e) => {
  if (e.key !== KEY && e.key !== null) return;
  const next = load();
  const cur = session.get();
  if (next?.accessToken !== cur?.accessToken) session.set(next);
});
