// Hash routing (#/products, #/product/AZ-104, #/cart, #/orders, #/orders/{cid}, #/signin), so any
// static host serves the SPA without rewrite rules.
import { Store } from "./store";

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

window.addEventListener("hashchange", () => route.set(parse(location.hash)));

export function href(path: string, query?: Record<string, string | number | undefined | null>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== "") qs.set(k, String(v));
  }
  const s = qs.toString();
  return `#${path}${s ? `?${s}` : ""}`;
}

export function navigate(hash: string, { replace = false } = {}): void {
  if (hash === location.hash) return;
  if (replace) {
    history.replaceState(null, "", hash);
    route.set(parse(hash));
  } else {
    location.hash = hash;
  }
}
