// Hash routing (#/products, #/product/AZ-104, #/cart, #/orders, #/orders/{cid}, #/signin), so any
// static host serves the SPA without rewrite rules. Each history entry keeps its scroll position:
// a new page starts at the top, Back and Forward return to where the user was.
import { Store, readJson, writeJson } from "./store";

export interface Route {
  /** Path segments, decoded: "#/orders/abc" -> ["orders", "abc"]. */
  path: string[];
  query: URLSearchParams;
  /** The raw hash, for "return here after sign-in". */
  hash: string;
}

function parse(hash: string): Route {
  const raw = hash.replace(/^#/, "") || "/products";
  const [p, q = ""] = raw.split("?", 2);
  const path = p
    .split("/")
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  return { path: path.length ? path : ["products"], query: new URLSearchParams(q), hash: hash || "#/products" };
}

export const route = new Store<Route>(parse(location.hash));

export function href(path: string, query?: Record<string, string | number | undefined | null>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== "") qs.set(k, String(v));
  }
  const s = qs.toString();
  return `#${path}${s ? `?${s}` : ""}`;
}

/** Goes to `hash`: a new history entry, or (replace) the current one rewritten in place. */
export function navigate(hash: string, { replace = false } = {}): void {
  if (hash === location.hash) return;
  if (replace) {
    history.replaceState(history.state, "", hash);
    route.set(parse(hash));
  } else {
    location.hash = hash;
  }
}

// ---- scroll positions per history entry ------------------------------------------------------

const SCROLL_KEY = "contoso.scroll";
/** How long a restore waits for the page's content to grow tall enough. */
const RESTORE_WAIT_MS = 3000;

interface EntryState {
  entry: string;
}

let positions = readJson<Record<string, number>>(sessionStorage, SCROLL_KEY, {});
let restoring = false;

function currentEntry(): string | null {
  return (history.state as EntryState | null)?.entry ?? null;
}

/** Gives the current history entry an id; returns true when it already had one (Back/Forward, reload). */
function stampEntry(): boolean {
  if (currentEntry()) return true;
  history.replaceState({ entry: Math.random().toString(36).slice(2) } satisfies EntryState, "");
  return false;
}

function savePosition(): void {
  const entry = currentEntry();
  if (!entry || restoring) return;
  positions[entry] = Math.round(window.scrollY);
  const keys = Object.keys(positions);
  if (keys.length > 100) positions = Object.fromEntries(keys.slice(-50).map((k) => [k, positions[k]]));
  writeJson(sessionStorage, SCROLL_KEY, positions);
}

/** Scrolls to `y` once the page is tall enough (views render their data asynchronously). */
function restorePosition(y: number): void {
  restoring = true;
  const deadline = performance.now() + RESTORE_WAIT_MS;
  const attempt = () => {
    const reachable = document.documentElement.scrollHeight - window.innerHeight >= y;
    if (reachable || performance.now() > deadline) {
      window.scrollTo(0, y);
      restoring = false;
      return;
    }
    requestAnimationFrame(attempt);
  };
  requestAnimationFrame(attempt);
}

function arrive(): void {
  const known = stampEntry();
  const saved = positions[currentEntry()!];
  if (known && saved) restorePosition(saved);
  else window.scrollTo(0, 0);
}

if ("scrollRestoration" in history) history.scrollRestoration = "manual";
let scrollQueued = false;
window.addEventListener(
  "scroll",
  () => {
    if (scrollQueued) return;
    scrollQueued = true;
    requestAnimationFrame(() => {
      scrollQueued = false;
      savePosition();
    });
  },
  { passive: true },
);
let previousHash: string | null = null;
window.addEventListener("hashchange", (e) => {
  previousHash = new URL(e.oldURL).hash;
  route.set(parse(location.hash));
  arrive();
});
arrive();

// ---- the catalog view the user last saw, for "Back to the catalog" ----------------------------

const CATALOG_KEY = "contoso.catalog.last";

export function rememberCatalog(hash: string): void {
  writeJson(sessionStorage, CATALOG_KEY, hash);
}

/** The catalog with the search, filters and page the user last had. */
export function lastCatalogHref(): string {
  const hash = readJson<string | null>(sessionStorage, CATALOG_KEY, null);
  return hash && hash.startsWith("#/products") ? hash : href("/products");
}

/** A link back to `hash` that goes Back in history when that is where the user came from, so the
 *  page returns with its scroll position, and otherwise opens it as a new page. */
export function backTo(hash: string): { href: string; onClick: (e: MouseEvent) => void } {
  return {
    href: hash,
    onClick: (e) => {
      if (previousHash !== hash || e.ctrlKey || e.metaKey || e.shiftKey) return;
      e.preventDefault();
      history.back();
    },
  };
}
