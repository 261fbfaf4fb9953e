import { useState } from "preact/hooks";
import type { AppConfig } from "../config";
import { devSignIn } from "../auth/dev";
import { beginOidcSignIn } from "../auth/oidc";
import { session, signOutReason } from "../auth/session";
import { ErrorBox, PageTitle } from "../components";
import { describeError, type ErrorMessage } from "../errors";
import { navigate, type Route } from "../router";
import { useStore } from "../store";

function safeNext(route: Route): string {
  const next = route.query.get("next") ?? "";
  return next.startsWith("#/") && !next.startsWith("#/signin") ? next : "#/products";
}

export function SignIn({ config, route }: { config: AppConfig; route: Route }) {
  const user = useStore(session);
  const reason = useStore(signOutReason);
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorMessage | null>(null);
  const next = safeNext(route);

  if (user) {
    return (
      <section class="signin">
        <PageTitle focusKey="signin">Signed in</PageTitle>
        <p>
          You are signed in as <strong>{user.userId}</strong>. <a href={next}>Continue</a>
        </p>
      </section>
    );
  }

  const submitDev = async (e: Event) => {
    e.preventDefault();
    const userId = name.trim();
    if (!userId) {
      setError({ title: "Enter a user name", detail: "Any name works in the development sign-in.", field: "userId" });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await devSignIn(userId);
      navigate(next, { replace: true });
    } catch (err) {
      setError(describeError(err, "signin"));
    } finally {
      setBusy(false);
    }
  };

  const startOidc = async () => {
    if (config.auth.mode !== "oidc") return;
    setBusy(true);
    setError(null);
    try {
      await beginOidcSignIn(config.auth, next);
    } catch (err) {
      setError({ title: "Sign-in is unavailable", detail: (err as Error).message });
      setBusy(false);
    }
  };

  return (
    <section class="signin">
      <PageTitle focusKey="signin">Sign in</PageTitle>
      {reason === "expired" && (
        <p class="notice" role="status" data-testid="session-expired">
          Your session has expired. Please sign in again.
        </p>
      )}
      {config.auth.mode === "oidc" ? (
        <div class="panel">
          <p>Sign in with your organization's account to place and follow orders.</p>
          <button type="button" class="button primary" data-testid="oidc-signin" disabled={busy} onClick={startOidc}>
            {busy ? "Redirecting…" : "Sign in"}
          </button>
        </div>
      ) : (
        <form class="panel" onSubmit={submitDev} data-testid="signin-form">
          <p>
            This shop runs in development mode: sign in with any user name, no password. Each name has
            its own cart and orders.
          </p>
          <div class="field">
            <label for="user-name">User name</label>
            <input
              id="user-name"
              data-testid="user-name"
              autoComplete="username"
              maxLength={128}
              value={name}
              onInput={(e) => setName((e.target as HTMLInputElement).value)}
              required
            />
          </div>
          <button type="submit" class="button primary" data-testid="signin-submit" disabled={busy}>
            {busy ? "Signing in…" : "Sign in"}
          </button>
        </form>
      )}
      {error && <ErrorBox error={error} />}
    </section>
  );
}
