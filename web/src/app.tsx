import type { AppConfig } from "./config";
import { session, signOut, signOutReason } from "./auth/session";
import { oidcSignOutUrl } from "./auth/oidc";
import { cart, cartCount } from "./cart";
import { hubState, notificationCount } from "./hub";
import { href, navigate, route as routeStore, type Route } from "./router";
import { useStore } from "./store";
import { toasts } from "./toast";
import { checkoutProblem } from "./checkout";
import { reach } from "./connectivity";
import { PageTitle } from "./components";
import { Catalog } from "./views/Catalog";
import { ProductView } from "./views/ProductView";
import { CartView } from "./views/CartView";
import { OrdersView } from "./views/OrdersView";
import { OrderView } from "./views/OrderView";
import { SignIn } from "./views/SignIn";

const HUB_TEXT = {
  connected: "Live",
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  offline: "Offline",
} as const;

function ConnectionIndicator() {
  const state = useStore(hubState);
  const count = useStore(notificationCount);
  const user = useStore(session);
  if (!user) return null;
  const label = state === "connected" ? "connected" : state === "offline" ? "offline" : "reconnecting";
  return (
    <span
      class={`hub hub-${label}`}
      data-testid="hub-status"
      data-state={label}
      data-notifications={count}
      role="status"
      title={`Live order updates: ${HUB_TEXT[state]}`}
    >
      <span class="hub-dot" aria-hidden="true" />
      <span class="hub-text">{HUB_TEXT[state]}</span>
    </span>
  );
}

function Header({ config, current }: { config: AppConfig; current: string }) {
  const user = useStore(session);
  const lines = useStore(cart);
  const count = cartCount(lines);
  const doSignOut = async () => {
    const s = session.get();
    signOut("user");
    navigate(href("/products"));
    if (config.auth.mode === "oidc") {
      const url = await oidcSignOutUrl(config.auth, s?.idToken);
      if (url) location.assign(url);
    }
  };
  const link = (path: string, label: string, testid: string, extra?: preact.ComponentChildren) => (
    <a href={href(path)} data-testid={testid} aria-current={current === path.slice(1) ? "page" : undefined}>
      {label}
      {extra}
    </a>
  );
  return (
    <header class="top">
      <div class="top-inner">
        <a class="brand" href={href("/products")}>
          <span class="brand-mark" aria-hidden="true">
            C
          </span>
          <span class="brand-name">Contoso Shop</span>
        </a>
        <nav class="main-nav" aria-label="Main">
          {link("/products", "Catalog", "nav-catalog")}
          {link(
            "/cart",
            "Cart",
            "nav-cart",
            <>
              <span class="count" data-testid="cart-count">
                {count}
              </span>
              <span class="visually-hidden">{count === 1 ? "item" : "items"}</span>
            </>,
          )}
          {link("/orders", "Orders", "nav-orders")}
        </nav>
        <div class="account">
          <ConnectionIndicator />
          {user ? (
            <>
              <span class="user" data-testid="signed-in-user" title={`Signed in as ${user.userId}`}>
                {user.userId}
              </span>
              <button type="button" class="link-button" data-testid="signout" onClick={doSignOut}>
                Sign out
              </button>
            </>
          ) : (
            <a class="button small" href={href("/signin", { next: routeStore.get().hash })} data-testid="nav-signin">
              Sign in
            </a>
          )}
        </div>
      </div>
      <Toast />
    </header>
  );
}

function NeedsSignIn({ route, what }: { route: Route; what: string }) {
  const reason = useStore(signOutReason);
  return (
    <section>
      <PageTitle focusKey="needs-signin">Sign in to see {what}</PageTitle>
      {reason === "expired" && (
        <div class="error" role="alert" data-testid="error">
          <strong class="error-title">Please sign in again</strong>
          <p>Your session has expired or is no longer valid.</p>
        </div>
      )}
      <p>
        <a class="button primary" href={href("/signin", { next: route.hash })} data-testid="goto-signin">
          Sign in
        </a>
      </p>
    </section>
  );
}

function Page({ config, route }: { config: AppConfig; route: Route }) {
  const user = useStore(session);
  const [head, arg] = route.path;
  switch (head) {
    case "products":
      return <Catalog route={route} />;
    case "product":
      return arg ? <ProductView productId={arg} /> : <Catalog route={route} />;
    case "cart":
      return <CartView />;
    case "orders":
      if (!user) return <NeedsSignIn route={route} what="your orders" />;
      return arg ? <OrderView key={arg} correlationId={arg} /> : <OrdersView route={route} />;
    case "signin":
      return <SignIn config={config} route={route} />;
    default:
      return (
        <section>
          <PageTitle focusKey="404">Page not found</PageTitle>
          <p>
            <a href={href("/products")}>Go to the catalog</a>
          </p>
        </section>
      );
  }
}

/** One short confirmation, as a strip of the sticky header: it never covers the page. */
function Toast() {
  const t = useStore(toasts);
  return (
    <div class="toast-slot" role="status" aria-live="polite" data-testid="toasts">
      {t && (
        <p class="toast" key={t.id}>
          {t.text}
          {t.action && (
            <a class="toast-action" href={t.action.href} data-testid="toast-action">
              {t.action.label}
            </a>
          )}
        </p>
      )}
    </div>
  );
}

const REACH_TEXT = {
  offline: "You are offline. The shop shows what it has and reconnects when your connection is back.",
  down: "The shop's server is not answering. It is not your connection; we keep trying and reconnect by ourselves.",
} as const;

/** Outages, said plainly: offline or server down, and a checkout that did not go through. */
function OutageBanner({ current }: { current: string }) {
  const r = useStore(reach);
  const problem = useStore(checkoutProblem);
  if (r === "ok" && !problem) return null;
  return (
    <div class="outage" data-testid="outage" data-state={r}>
      {r !== "ok" && (
        <p class="outage-reach" role="status" data-testid="outage-reach">
          {REACH_TEXT[r]}
        </p>
      )}
      {problem && (
        <div class="outage-order" role="alert" data-testid="order-not-placed">
          <strong>{problem.title}.</strong> {problem.detail}
          {current !== "cart" && (
            <>
              {" "}
              <a href={href("/cart")}>Go to your cart</a>
            </>
          )}
        </div>
      )}
    </div>
  );
}

export function App({ config }: { config: AppConfig }) {
  const route = useStore(routeStore);
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => {
        e.preventDefault();
        document.getElementById("main")?.focus();
      }}>
        Skip to content
      </a>
      <Header config={config} current={route.path[0]} />
      <main id="main" tabIndex={-1}>
        <OutageBanner current={route.path[0]} />
        <Page config={config} route={route} />
      </main>
      <footer class="foot">
        <p>Contoso Shop · certification prep for every cloud · demo</p>
      </footer>
    </>
  );
}
