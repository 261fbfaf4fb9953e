import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";
import type { ErrorMessage } from "./errors";
import type { OrderStatus, Product } from "./types";
import { formatCents, periodLabel } from "./money";
import { href, route } from "./router";

export function ErrorBox({ error, onRetry }: { error: ErrorMessage; onRetry?: () => void }) {
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
        {onRetry && (
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

export function ProductImage({ product, size = "md" }: { product: Product; size?: "md" | "lg" }) {
  return (
    <img
      class={`product-img product-img-${size}`}
      src={imageSrc(product.imageUrl)}
      alt={`${product.productId}: ${product.vendor}, ${product.category}`}
      width={320}
      height={160}
      loading="lazy"
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

/** The page heading; takes focus when the page changes so keyboard and screen-reader users land on it. */
export function PageTitle({ children, focusKey }: { children: ComponentChildren; focusKey: string }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
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
