import { useEffect, useRef, useState } from "preact/hooks";
import { listProducts } from "../api";
import { addToCart } from "../cart";
import { ErrorBox, PageTitle, Price, ProductImage, Spinner } from "../components";
import { describeError, type ErrorMessage } from "../errors";
import { href, navigate, type Route } from "../router";
import { toast } from "../toast";
import type { Page, Product } from "../types";

const PAGE_SIZE = 24;

interface Facets {
  vendors: string[];
  categories: string[];
}

let facetsPromise: Promise<Facets> | null = null;

/** Vendors and categories, from one pass over the whole catalog (2 requests of 100). */
function loadFacets(): Promise<Facets> {
  if (!facetsPromise) {
    facetsPromise = (async () => {
      const vendors = new Set<string>();
      const categories = new Set<string>();
      let offset = 0;
      for (;;) {
        const page = await listProducts({ offset, size: 100 });
        for (const p of page.items) {
          vendors.add(p.vendor);
          categories.add(p.category);
        }
        offset += page.items.length;
        if (!page.items.length || offset >= page.total) break;
      }
      const sort = (s: Set<string>) => [...s].sort((a, b) => a.localeCompare(b));
      return { vendors: sort(vendors), categories: sort(categories) };
    })();
    facetsPromise.catch(() => (facetsPromise = null));
  }
  return facetsPromise;
}

export function addWithToast(p: Product, quantity = 1): void {
  try {
    addToCart(p, quantity);
    toast(`Added ${p.productId} to your cart.`);
  } catch (e) {
    toast((e as Error).message);
  }
}

export function ProductCard({ product }: { product: Product }) {
  const link = href(`/product/${product.productId}`);
  return (
    <article class="card" data-testid="product-card" data-product-id={product.productId}>
      <a href={link} class="card-art" tabIndex={-1} aria-hidden="true">
        <ProductImage product={product} />
      </a>
      <div class="card-body">
        <h2 class="card-title">
          <a href={link} data-testid="product-link">
            {product.name}
          </a>
        </h2>
        <p class="meta">
          {product.vendor} · {product.category}
        </p>
        <Price product={product} />
      </div>
      <button
        type="button"
        class="button"
        data-testid="add-to-cart"
        aria-label={`Add ${product.name} to cart`}
        onClick={() => addWithToast(product)}
      >
        Add to cart
      </button>
    </article>
  );
}

export function Catalog({ route }: { route: Route }) {
  const q = route.query.get("q") ?? "";
  const vendor = route.query.get("vendor") ?? "";
  const category = route.query.get("category") ?? "";
  const pageNo = Math.max(1, Number(route.query.get("page")) || 1);

  const [page, setPage] = useState<Page<Product> | null>(null);
  const [error, setError] = useState<ErrorMessage | null>(null);
  const [loading, setLoading] = useState(true);
  const [facets, setFacets] = useState<Facets | null>(null);
  const [search, setSearch] = useState(q);
  const [reload, setReload] = useState(0);
  const debounce = useRef<ReturnType<typeof setTimeout>>();

  useEffect(() => setSearch(q), [q]);

  useEffect(() => {
    loadFacets().then(setFacets, () => setFacets({ vendors: [], categories: [] }));
  }, []);

  useEffect(() => {
    const ctrl = new AbortController();
    setLoading(true);
    setError(null);
    listProducts({ offset: (pageNo - 1) * PAGE_SIZE, size: PAGE_SIZE, q: q.trim(), vendor, category }, ctrl.signal)
      .then((p) => {
        setPage(p);
        setLoading(false);
      })
      .catch((e) => {
        if ((e as Error).name === "AbortError") return;
        setError(describeError(e, "catalog"));
        setLoading(false);
      });
    return () => ctrl.abort();
  }, [q, vendor, category, pageNo, reload]);

  const go = (next: { q?: string; vendor?: string; category?: string; page?: number }) => {
    const merged = { q, vendor, category, page: 1, ...next };
    navigate(href("/products", { ...merged, page: merged.page > 1 ? merged.page : undefined }), { replace: true });
  };

  const onSearchInput = (value: string) => {
    setSearch(value);
    clearTimeout(debounce.current);
    debounce.current = setTimeout(() => go({ q: value }), 300);
  };

  const pages = page ? Math.max(1, Math.ceil(page.total / PAGE_SIZE)) : 1;
  const filtered = Boolean(q || vendor || category);

  return (
    <section class="catalog">
      <PageTitle focusKey="products">Catalog</PageTitle>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          clearTimeout(debounce.current);
          go({ q: search });
        }}
      >
        <div class="field grow">
          <label for="search">Search</label>
          <input
            id="search"
            type="search"
            data-testid="search"
            placeholder="e.g. azure administrator, AZ-104, security"
            value={search}
            onInput={(e) => onSearchInput((e.target as HTMLInputElement).value)}
            autoComplete="off"
          />
        </div>
        <div class="field">
          <label for="vendor">Vendor</label>
          <select
            id="vendor"
            data-testid="vendor-filter"
            value={vendor}
            onChange={(e) => go({ vendor: (e.target as HTMLSelectElement).value })}
          >
            <option value="">All vendors</option>
            {(facets?.vendors ?? (vendor ? [vendor] : [])).map((v) => (
              <option value={v}>{v}</option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="category">Category</label>
          <select
            id="category"
            data-testid="category-filter"
            value={category}
            onChange={(e) => go({ category: (e.target as HTMLSelectElement).value })}
          >
            <option value="">All categories</option>
            {(facets?.categories ?? (category ? [category] : [])).map((c) => (
              <option value={c}>{c}</option>
            ))}
          </select>
        </div>
        <div class="field actions">
          <button type="submit" class="button">
            Search
          </button>
          {filtered && (
            <button type="button" class="button secondary" onClick={() => go({ q: "", vendor: "", category: "" })}>
              Clear
            </button>
          )}
        </div>
      </form>

      <p class="result-count" aria-live="polite" data-testid="catalog-total" data-total={page?.total ?? ""}>
        {page ? `${page.total} ${page.total === 1 ? "product" : "products"}${filtered ? " found" : ""}` : "\u00a0"}
      </p>

      {error && <ErrorBox error={error} onRetry={() => setReload((n) => n + 1)} />}
      {loading && !page && <Spinner label="Loading the catalog…" />}
      {page && page.items.length === 0 && !loading && (
        <p class="empty" data-testid="catalog-empty">
          No products match. Try fewer words or clear the filters.
        </p>
      )}
      {page && (
        <div class={`grid${loading ? " stale" : ""}`} data-testid="product-grid" aria-busy={loading}>
          {page.items.map((p) => (
            <ProductCard key={p.productId} product={p} />
          ))}
        </div>
      )}
      {page && pages > 1 && (
        <nav class="pager" aria-label="Catalog pages">
          <button
            type="button"
            class="button secondary"
            data-testid="prev-page"
            disabled={pageNo <= 1}
            onClick={() => go({ page: pageNo - 1 })}
          >
            ← Previous
          </button>
          <span data-testid="page-info">
            Page {Math.min(pageNo, pages)} of {pages}
          </span>
          <button
            type="button"
            class="button secondary"
            data-testid="next-page"
            disabled={pageNo >= pages}
            onClick={() => go({ page: pageNo + 1 })}
          >
            Next →
          </button>
        </nav>
      )}
    </section>
  );
}
