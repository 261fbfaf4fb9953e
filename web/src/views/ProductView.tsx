import { useEffect, useState } from "preact/hooks";
import { getProduct } from "../api";
import { ErrorBox, PageTitle, Price, ProductImage, Spinner } from "../components";
import { describeError, type ErrorMessage } from "../errors";
import { MAX_QUANTITY } from "../cart";
import { backTo, href, lastCatalogHref } from "../router";
import type { Product } from "../types";
import { addWithToast } from "./Catalog";

const PERIOD_TEXT: Record<string, string> = {
  monthly: "Billed monthly",
  quarterly: "Billed every quarter",
  yearly: "Billed yearly",
  "one-time": "One-time purchase",
};

export function ProductView({ productId }: { productId: string }) {
  const [product, setProduct] = useState<Product | null>(null);
  const [error, setError] = useState<ErrorMessage | null>(null);
  const [quantity, setQuantity] = useState("1");
  const [reload, setReload] = useState(0);

  useEffect(() => {
    const ctrl = new AbortController();
    setProduct(null);
    setError(null);
    getProduct(productId, ctrl.signal).then(setProduct, (e) => {
      if ((e as Error).name !== "AbortError") setError(describeError(e, "product"));
    });
    return () => ctrl.abort();
  }, [productId, reload]);

  const quantityError = checkQuantity(quantity);

  return (
    <section class="product" data-testid="product-detail" data-product-id={product?.productId ?? ""}>
      <p class="crumbs">
        <a {...backTo(lastCatalogHref())} data-testid="back-to-catalog">
          ← Back to the catalog
        </a>
      </p>
      {error && (
        <>
          <PageTitle focusKey={`product-${productId}`}>{productId}</PageTitle>
          <ErrorBox error={error} onRetry={() => setReload((n) => n + 1)} />
        </>
      )}
      {!error && !product && <Spinner label="Loading the product…" />}
      {product && (
        <div class="product-layout">
          <ProductImage product={product} size="lg" eager />
          <div class="product-info">
            <PageTitle focusKey={`product-${productId}`}>{product.name}</PageTitle>
            <dl class="facts">
              <dt>Product</dt>
              <dd data-testid="product-id">{product.productId}</dd>
              <dt>Vendor</dt>
              <dd>
                <a href={href("/products", { vendor: product.vendor })}>{product.vendor}</a>
              </dd>
              <dt>Category</dt>
              <dd>
                <a href={href("/products", { category: product.category })}>{product.category}</a>
              </dd>
              <dt>Billing</dt>
              <dd>
                {PERIOD_TEXT[product.billingPeriod] ?? product.billingPeriod}
                {product.isSubscription ? " (subscription)" : ""}
              </dd>
            </dl>
            <Price product={product} large />
            <form
              class="add-form"
              onSubmit={(e) => {
                e.preventDefault();
                if (quantityError === null) addWithToast(product, Number(quantity));
              }}
            >
              <div class="field">
                <label for="qty">Quantity</label>
                <input
                  id="qty"
                  type="number"
                  min={1}
                  max={MAX_QUANTITY}
                  inputMode="numeric"
                  value={quantity}
                  data-testid="product-quantity"
                  aria-invalid={quantityError !== null}
                  aria-describedby={quantityError ? "qty-note" : undefined}
                  onInput={(e) => setQuantity((e.target as HTMLInputElement).value)}
                />
              </div>
              <button type="submit" class="button" data-testid="add-to-cart" disabled={quantityError !== null}>
                Add to cart
              </button>
              <a class="button secondary" href={href("/cart")}>
                Go to cart
              </a>
            </form>
            {quantityError && (
              <p class="field-note" id="qty-note" role="status" data-testid="quantity-note">
                {quantityError}
              </p>
            )}
          </div>
        </div>
      )}
    </section>
  );
}

function checkQuantity(raw: string): string | null {
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isInteger(n) || n < 1) return "Enter a whole number from 1.";
  return n > MAX_QUANTITY ? `At most ${MAX_QUANTITY} per product.` : null;
}
