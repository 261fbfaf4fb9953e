import { useEffect, useRef, useState } from "preact/hooks";
import { listProducts } from "../api";
import { addToCart, cart } from "../cart";
import { ErrorBox, PageTitle, Price, ProductImage, Spinner } from "../components";
import { describeError, type ErrorMessage } from "../errors";
import { href, navigate, rememberCatalog, type Route } from "../router";
import { toast } from "../toast";
import type { Page, Product } from "../types";

const PAGE_SIZE = 24;
/** Cards whose images load eagerly: a desktop first row, or a phone first screen. */
const FIRST_SCREENFUL = 4;

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
    const before = cart.get().find((l) => l.productId === p.productId)?.quantity ?? 0;
    const now = addToCart(p, quantity);
    const text =
      now - before === quantity
        ? `Added ${quantity} × ${p.productId} to your cart.`
        : `Your cart has ${now} × ${p.productId}, the most one order takes.`;
    toast(text, { label: "View cart", href: href("/cart") });
  } catch (e) {
    toast((e as Error).message);
  }
}

export function ProductCard({ product, eager = false }: { product: Product; eager?: boolean }) {
  const link = href(`/product/${product.productId}`);
  return (
    <article class="card" data-testid="product-card" data-product-id={product.productId}>
      <a href={link} class="card-art" tabIndex={-1} aria-hidden="true">
        <ProductImage product={product} eager={eager} />
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
        aria-label={`Add to cart: ${product.name}`}
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
  const [filtersOpen, setFiltersOpen] = useState(Boolean(vendor || category));
  const debounce = useRef<ReturnType<typeof setTimeout>>();

  useEffect(() => setSearch(q), [q]);
  useEffect(() => rememberCatalog(route.hash), [route.hash]);

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

  // A page or a filter is a new history entry (Back returns to it); each keystroke of a search
  // only rewrites the current one.
  const go = (next: { q?: string; vendor?: string; category?: string; page?: number }, replace = false) => {
    const merged = { q, vendor, category, page: 1, ...next };
    navigate(href("/products", { ...merged, page: merged.page > 1 ? merged.page : undefined }), { replace });
  };

  const onSearchInput = (value: string) => {
    setSearch(value);
    clearTimeout(debounce.current);
    debounce.current = setTimeout(() => go({ q: value }, true), 300);
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
        <button
          type="button"
          class="button secondary filters-toggle"
          aria-expanded={filtersOpen}
          aria-controls="filter-fields"
          data-testid="filters-toggle"
          onClick={() => setFiltersOpen((o) => !o)}
        >
          Filters{vendor || category ? ` (${[vendor, category].filter(Boolean).length})` : ""}
        </button>
        <div id="filter-fields" class={`filter-fields${filtersOpen ? " open" : ""}`}>
          <FilterSelect
            id="vendor"
            label="Vendor"
            all="All vendors"
            value={vendor}
            options={facets?.vendors ?? (vendor ? [vendor] : [])}
            onApply={(v) => go({ vendor: v })}
          />
          <FilterSelect
            id="category"
            label="Category"
            all="All categories"
            value={category}
            options={facets?.categories ?? (category ? [category] : [])}
            onApply={(c) => go({ category: c })}
          />
        </div>
        <div class="field actions">
          <button type="submit" class="button">
            Search
          </button>
          {filtered && (
            <button type="button" class="button secondary" onClick={() => go({ q: "", vendor: "", category: "" })} data-testid="clear-filters">
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
          {page.items.map((p, i) => (
            <ProductCard key={p.productId} product={p} eager={i < FIRST_SCREENFUL} />
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

/**
 * A filter list that applies only an explicit choice: a click in the open list, or Enter (or
 * leaving the list) after browsing it with the arrow keys. Chromium fires `change` on every arrow
 * key press on a closed select; applying each would reload the catalog once per press.
 */
function FilterSelect(props: {
  id: string;
  label: string;
  all: string;
  value: string;
  options: string[];
  onApply: (value: string) => void;
}) {
  const { id, label, all, value, options, onApply } = props;
  const browsing = useRef(false);
  const commit = (el: HTMLSelectElement) => {
    browsing.current = false;
    if (el.value !== value) onApply(el.value);
  };
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <select
        id={id}
        data-testid={`${id}-filter`}
        value={value}
        onKeyDown={(e) => {
          // Space and Alt+Down open the list, where a choice is explicit; the rest browse in place.
          const opens = e.key === " " || e.altKey;
          if (!opens && (e.key.startsWith("Arrow") || e.key === "Home" || e.key === "End" || e.key.length === 1)) {
            browsing.current = true;
          }
          if (e.key === "Enter") {
            e.preventDefault();
            commit(e.currentTarget);
          }
        }}
        onChange={(e) => {
          if (!browsing.current) commit(e.currentTarget);
        }}
        onBlur={(e) => {
          if (browsing.current) commit(e.currentTarget);
        }}
      >
        <option value="">{all}</option>
        {options.map((o) => (
          <option value={o}>{o}</option>
        ))}
      </select>
    </div>
  );
}
