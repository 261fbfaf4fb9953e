import { useRef, useState } from "preact/hooks";
import { cart, cartTotalCents, clearCart, MAX_QUANTITY, removeFromCart, setQuantity } from "../cart";
import { checkout } from "../checkout";
import { ErrorBox, PageTitle } from "../components";
import { describeError, type ErrorMessage } from "../errors";
import { formatCents, lineCents, periodLabel } from "../money";
import { href, navigate } from "../router";
import { session } from "../auth/session";
import { useStore } from "../store";
import { toast } from "../toast";

export function CartView() {
  const lines = useStore(cart);
  const user = useStore(session);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorMessage | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const busyRef = useRef(false);
  const currency = lines[0]?.currency ?? "USD";
  const total = cartTotalCents(lines);

  const placeOrder = async () => {
    // Guard synchronously too: two clicks in one frame both see busy === false.
    if (busyRef.current || !lines.length) return;
    busyRef.current = true;
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      const accepted = await checkout(lines, setNotice);
      clearCart();
      toast("Order placed. Follow it live here.");
      navigate(href(`/orders/${accepted.correlationId}`));
    } catch (e) {
      setNotice(null);
      setError(describeError(e, "checkout"));
    } finally {
      busyRef.current = false;
      setBusy(false);
    }
  };

  if (!lines.length) {
    return (
      <section class="cart">
        <PageTitle focusKey="cart">Your cart</PageTitle>
        <p class="empty" data-testid="cart-empty">
          Your cart is empty. <a href={href("/products")}>Browse the catalog</a>.
        </p>
      </section>
    );
  }

  return (
    <section class="cart">
      <PageTitle focusKey="cart">Your cart</PageTitle>
      <ul class="cart-lines" data-testid="cart-lines">
        {lines.map((l) => (
          <li class="cart-line" key={l.productId} data-testid="cart-line" data-product-id={l.productId}>
            <div class="cart-line-info">
              <a href={href(`/product/${l.productId}`)} class="cart-line-name">
                {l.name}
              </a>
              <span class="meta">
                {l.productId} · {l.vendor} · {formatCents(l.unitCents, l.currency)} {periodLabel(l.billingPeriod)}
                {l.discount > 0 && (
                  <>
                    {" "}
                    <s>{formatCents(l.listCents, l.currency)}</s>
                  </>
                )}
              </span>
            </div>
            <div class="qty">
              <button
                type="button"
                class="icon-button"
                aria-label={`One fewer ${l.productId}`}
                disabled={l.quantity <= 1 || busy}
                onClick={() => setQuantity(l.productId, l.quantity - 1)}
              >
                −
              </button>
              <label class="visually-hidden" for={`qty-${l.productId}`}>
                Quantity of {l.name}
              </label>
              <input
                id={`qty-${l.productId}`}
                type="number"
                min={1}
                max={MAX_QUANTITY}
                value={l.quantity}
                disabled={busy}
                data-testid="cart-quantity"
                onChange={(e) => setQuantity(l.productId, Number((e.target as HTMLInputElement).value))}
              />
              <button
                type="button"
                class="icon-button"
                aria-label={`One more ${l.productId}`}
                disabled={l.quantity >= MAX_QUANTITY || busy}
                onClick={() => setQuantity(l.productId, l.quantity + 1)}
              >
                +
              </button>
            </div>
            <strong class="line-total" data-testid="line-total" data-cents={lineCents(l.unitCents, l.quantity)}>
              {formatCents(lineCents(l.unitCents, l.quantity), l.currency)}
            </strong>
            <button
              type="button"
              class="link-button"
              data-testid="remove-line"
              disabled={busy}
              aria-label={`Remove ${l.name}`}
              onClick={() => removeFromCart(l.productId)}
            >
              Remove
            </button>
          </li>
        ))}
      </ul>
      <div class="cart-summary">
        <p class="total">
          Total <strong data-testid="cart-total" data-cents={total}>{formatCents(total, currency)}</strong>
        </p>
        <p class="hint">Prices per billing period; the order is charged at today's prices.</p>
        {error && <ErrorBox error={error} />}
        {error?.productIds && error.productIds.length > 0 && (
          <button
            type="button"
            class="button secondary"
            data-testid="remove-unavailable"
            onClick={() => {
              for (const id of error.productIds ?? []) removeFromCart(id.toUpperCase());
              setError(null);
            }}
          >
            Remove unavailable products
          </button>
        )}
        {notice && (
          <p class="notice" role="status">
            {notice}
          </p>
        )}
        {user ? (
          <button
            type="button"
            class="button primary big"
            data-testid="place-order"
            disabled={busy}
            aria-disabled={busy}
            onClick={placeOrder}
          >
            {busy ? "Placing order…" : "Place order"}
          </button>
        ) : (
          <a class="button primary big" data-testid="signin-to-order" href={href("/signin", { next: "#/cart" })}>
            Sign in to place the order
          </a>
        )}
      </div>
    </section>
  );
}
