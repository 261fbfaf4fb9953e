// Whether the shop can be reached: "offline" when the browser has no network, "down" when it has
// one but the shop's server does not answer. Every API call reports what it saw; while the shop
// is unreachable a light probe asks the server's liveness endpoint every few seconds, so the app
// (and the live updates) come back as soon as the server does.
import { Store } from "./store";

export type Reach = "ok" | "offline" | "down";

export const reach = new Store<Reach>(navigator.onLine ? "ok" : "offline");

const PROBE_EVERY_MS = 2000;
let probeUrl = "/api/health/live";
let probing: ReturnType<typeof setInterval> | undefined;

export function configureProbe(apiBase: string): void {
  probeUrl = `${apiBase}/api/health/live`;
}

/** An answer (any HTTP status) came back. */
export function reportAnswered(): void {
  reach.set("ok");
}

/** A request got no answer at all. */
export function reportUnanswered(): void {
  reach.set(navigator.onLine ? "down" : "offline");
}

async function probe(): Promise<void> {
  if (!navigator.onLine) return reach.set("offline");
  try {
    await fetch(probeUrl, { cache: "no-store" });
    reportAnswered();
  } catch {
    reach.set("down");
  }
}

reach.subscribe((r) => {
  clearInterval(probing);
  if (r !== "ok") probing = setInterval(() => void probe(), PROBE_EVERY_MS);
});

window.addEventListener("offline", () => reach.set("offline"));
window.addEventListener("online", () => void probe());
