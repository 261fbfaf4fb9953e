import { render } from "preact";
import "./styles.css";
import { loadConfig } from "./config";
import { setApiBase } from "./api";
import { configureHub, startHubForSession } from "./hub";
import { completeOidcSignIn } from "./auth/oidc";
import { navigate } from "./router";
import { toast } from "./toast";
import { App } from "./app";

async function boot(): Promise<void> {
  const config = await loadConfig();
  setApiBase(config.apiBaseUrl);
  configureHub(config.hubUrl);
  if (config.auth.mode === "oidc") {
    try {
      const next = await completeOidcSignIn(config.auth);
      if (next) navigate(next, { replace: true });
    } catch (e) {
      navigate("#/signin", { replace: true });
      setTimeout(() => toast((e as Error).message, undefined, 8000));
    }
  }
  const root = document.getElementById("app")!;
  root.textContent = "";
  render(<App config={config} />, root);
  startHubForSession();
  registerOfflineShell();
}

/** The service worker (public/sw.js) keeps the shop's shell, so a reload during an outage still
 *  shows the shop and says what is wrong. Production builds only: it would cache the dev server. */
function registerOfflineShell(): void {
  if (!import.meta.env.PROD || !("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register("sw.js").catch((e) => console.warn("offline shell unavailable", e));
}

void boot();
