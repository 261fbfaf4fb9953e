import { useRef, useState } from "preact/hooks";
import { cart, cartCharges, type CartLine, clearCart, MAX_QUANTITY, removeFromCart, setQuantity } from "../cart";
import { checkout, recordCheckoutFailure } from "../checkout";
import { ChargesSummary, ErrorBox, PageTitle } from "../components";
import { describeError, type ErrorMessage } from "../errors";
import { formatCents, lineCents, periodLabel, perPeriod } from "../money";
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
  const charges = cartCharges(lines);

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
      navigate(href(`/orders/${accepted.correlationId}`));
      toast("Order placed. Follow it live here.");
    } catch (e) {
      setNotice(null);
      // An outage is shown on every page until an order goes through; other errors, here.
      if (!recordCheckoutFailure(e)) setError(describeError(e, "checkout"));
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
            <QuantityField line={l} busy={busy} />
            <strong class="line-total" data-testid="line-total" data-cents={lineCents(l.unitCents, l.quantity)}>
              {formatCents(lineCents(l.unitCents, l.quantity), l.currency)}
              {l.billingPeriod !== "one-time" && <span class="price-period">/{perPeriod(l.billingPeriod)}</span>}
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
        <ChargesSummary charges={charges} currency={currency} />
        <p class="hint">Subscriptions renew each period at the price shown until you cancel.</p>
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

/** The quantity of a cart line: totals follow as the user types; an out-of-range value says why. */
function QuantityField({ line, busy }: { line: CartLine; busy: boolean }) {
  const [draft, setDraft] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const id = `qty-${line.productId}`;
  const apply = (raw: string, final: boolean) => {
    const n = Number(raw);
    if (raw.trim() === "" || !Number.isInteger(n) || n < 1) {
      setNote(final ? null : "Enter a whole number from 1.");
      if (final) setDraft(null);
      return;
    }
    setNote(n > MAX_QUANTITY ? `At most ${MAX_QUANTITY} per product: set to ${MAX_QUANTITY}.` : null);
    setQuantity(line.productId, n);
    if (final || n > MAX_QUANTITY) setDraft(null);
  };
  const step = (q: number) => {
    setNote(null);
    setDraft(null);
    setQuantity(line.productId, q);
  };
  return (
    <div class="qty">
      <button
        type="button"
        class="icon-button"
        aria-label={`One fewer ${line.productId}`}
        disabled={line.quantity <= 1 || busy}
        onClick={() => step(line.quantity - 1)}
      >
        −
      </button>
      <label class="visually-hidden" for={id}>
        Quantity of {line.name}
      </label>
      <input
        id={id}
        type="number"
        inputMode="numeric"
        min={1}
        max={MAX_QUANTITY}
        value={draft ?? line.quantity}
        disabled={busy}
        data-testid="cart-quantity"
        aria-describedby={note ? `${id}-note` : undefined}
        onInput={(e) => {
          const raw = (e.target as HTMLInputElement).value;
          setDraft(raw);
          apply(raw, false);
        }}
        onBlur={(e) => apply((e.target as HTMLInputElement).value, true)}
      />
      <button
        type="button"
        class="icon-button"
        aria-label={`One more ${line.productId}`}
        disabled={line.quantity >= MAX_QUANTITY || busy}
        onClick={() => step(line.quantity + 1)}
      >
        +
      </button>
      {note && (
        <p class="field-note" id={`${id}-note`} role="status" data-testid="quantity-note">
          {note}
        </p>
      )}
    </div>
  );
}
