import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";
import type { ErrorMessage } from "./errors";
import type { OrderStatus, Product } from "./types";
import { type Charges, formatCents, periodLabel, perPeriod } from "./money";
import { href, route } from "./router";
import { reach } from "./connectivity";

/** An error, with Try again when `onRetry` is given; a read that got no answer is retried by
 * itself as soon as the shop answers again. */
export function ErrorBox({ error, onRetry }: { error: ErrorMessage; onRetry?: () => void }) {
  useEffect(() => {
    if (!onRetry || !error.unreachable) return;
    return reach.subscribe((r) => r === "ok" && onRetry());
  }, [error, onRetry]);
  return (
    <div class="error" role="alert" data-testid="error">
      <strong class="error-title">{error.title}</strong>
      <p>{error.detail}</p>
      {error.field && (
        <p class="error-field">
          Field: <code data-testid="error-field">{error.field}</code>
        </p>
      )}
      <div class="error-actions">
        {error.signIn && (
          <a class="button" href={href("/signin", { next: route.get().hash })}>
            Sign in again
          </a>
        )}
        {onRetry && error.retriable !== false && (
          <button type="button" class="button secondary" onClick={onRetry}>
            Try again
          </button>
        )}
      </div>
      {error.reference && <p class="error-ref">Reference: {error.reference}</p>}
    </div>
  );
}

export function Price({ product, large = false }: { product: Product; large?: boolean }) {
  const discounted = product.discount > 0 && product.finalPriceCents < product.priceCents;
  return (
    <p class={`price${large ? " large" : ""}`} data-testid="price">
      {discounted && (
        <>
          <s class="price-list" aria-label={`was ${formatCents(product.priceCents, product.currency)}`}>
            {formatCents(product.priceCents, product.currency)}
          </s>{" "}
        </>
      )}
      <strong class="price-final" data-testid="final-price" data-cents={product.finalPriceCents}>
        {formatCents(product.finalPriceCents, product.currency)}
      </strong>{" "}
      <span class="price-period">{periodLabel(product.billingPeriod)}</span>
      {discounted && <span class="discount">−{product.discount}%</span>}
    </p>
  );
}

const STATUS_LABEL: Record<OrderStatus, string> = {
  ACCEPTED: "Accepted",
  PROCESSING: "Processing",
  COMPLETED: "Completed",
  FAILED: "Failed",
};

export function statusLabel(s: OrderStatus): string {
  return STATUS_LABEL[s] ?? s;
}

export function StatusBadge({ status, testid = "status-badge" }: { status: OrderStatus; testid?: string }) {
  return (
    <span class={`badge status-${status.toLowerCase()}`} data-testid={testid} data-status={status}>
      {statusLabel(status)}
    </span>
  );
}

// The catalog's imageUrl is root-relative (/images/products/{id}.svg) and the images ship with the
// SPA build (vite.config.ts), so it is resolved against the SPA's own folder: the app may be served
// from a sub-path, and the API's origin serves no images.
function imageSrc(url: string): string {
  return url.startsWith("/") && !url.startsWith("//") ? url.slice(1) : url;
}

/** `eager` for images in the first screenful: lazy loading would delay the page's largest paint. */
export function ProductImage({
  product,
  size = "md",
  eager = false,
}: {
  product: Product;
  size?: "md" | "lg";
  eager?: boolean;
}) {
  return (
    <img
      class={`product-img product-img-${size}`}
      src={imageSrc(product.imageUrl)}
      alt={`${product.productId}: ${product.vendor}, ${product.category}`}
      width={320}
      height={160}
      loading={eager ? "eager" : "lazy"}
      decoding="async"
      data-testid="product-image"
    />
  );
}

export function Spinner({ label = "Loading…" }: { label?: string }) {
  return (
    <p class="loading" role="status">
      <span class="spinner" aria-hidden="true" /> {label}
    </p>
  );
}

/** The text of a heading's children ("Sign in to see ", "your orders" -> one string). */
function textOf(children: ComponentChildren): string {
  if (typeof children === "string" || typeof children === "number") return String(children);
  return Array.isArray(children) ? children.map(textOf).join("") : "";
}

let firstPage = true;

/** The page heading and the tab's title. It takes focus when the user moves to another page, so
 *  keyboard and screen-reader users land on it; not on the first page, where Tab starts at the top. */
export function PageTitle({ children, focusKey }: { children: ComponentChildren; focusKey: string }) {
  const ref = useRef<HTMLHeadingElement>(null);
  const text = textOf(children);
  useEffect(() => {
    document.title = text ? `${text} · Contoso Shop` : "Contoso Shop";
  }, [text]);
  useEffect(() => {
    if (firstPage) {
      firstPage = false;
      return;
    }
    if (document.activeElement === document.body || document.activeElement?.closest("nav, header")) {
      ref.current?.focus({ preventScroll: true });
    }
  }, [focusKey]);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {children}
    </h1>
  );
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** "Due today", then what recurs per billing period: never one total across periods. */
export function ChargesSummary({ charges, currency }: { charges: Charges; currency: string }) {
  return (
    <div class="charges" data-testid="charges">
      <p class="total">
        Due today{" "}
        <strong data-testid="due-today" data-cents={charges.dueTodayCents}>
          {formatCents(charges.dueTodayCents, currency)}
        </strong>
      </p>
      {charges.recurring.length > 0 && (
        <p class="then" data-testid="recurring">
          then{" "}
          {charges.recurring.map((r, i) => (
            <>
              {i > 0 && ", "}
              <span data-testid={`recurring-${r.billingPeriod}`} data-cents={r.cents}>
                {formatCents(r.cents, currency)}/{perPeriod(r.billingPeriod)}
              </span>
            </>
          ))}
        </p>
      )}
    </div>
  );
}
