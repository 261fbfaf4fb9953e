import { useEffect, useRef, useState } from "preact/hooks";
import { listOrders } from "../api";
import { ErrorBox, formatTime, PageTitle, Spinner, StatusBadge } from "../components";
import { describeError, type ErrorMessage } from "../errors";
import { formatCents, perPeriod } from "../money";
import { href, navigate, type Route } from "../router";
import { useStore } from "../store";
import { applyOrder, rank, tracked } from "../tracker";
import { notificationTick, resyncTick } from "../hub";
import type { Order, Page } from "../types";
import { DeleteButton } from "./DeleteButton";

const PAGE_SIZE = 10;

export function OrdersView({ route }: { route: Route }) {
  const pageNo = Math.max(1, Number(route.query.get("page")) || 1);
  const all = useStore(tracked);
  const resync = useStore(resyncTick);
  const tick = useStore(notificationTick);
  const [page, setPage] = useState<Page<Order> | null>(null);
  const [error, setError] = useState<ErrorMessage | null>(null);
  const [reload, setReload] = useState(0);
  const [loading, setLoading] = useState(true);
  const debounce = useRef<ReturnType<typeof setTimeout>>();

  // A notification (from any of this user's tabs) refreshes the list, a little debounced.
  useEffect(() => {
    if (tick === 0) return;
    clearTimeout(debounce.current);
    debounce.current = setTimeout(() => setReload((n) => n + 1), 150);
    return () => clearTimeout(debounce.current);
  }, [tick]);

  useEffect(() => {
    const ctrl = new AbortController();
    setLoading(true);
    listOrders((pageNo - 1) * PAGE_SIZE, PAGE_SIZE, ctrl.signal).then(
      (p) => {
        for (const o of p.items) applyOrder(o);
        setPage(p);
        setError(null);
        setLoading(false);
      },
      (e) => {
        if ((e as Error).name === "AbortError") return;
        setError(describeError(e, "orders"));
        setLoading(false);
      },
    );
    return () => ctrl.abort();
  }, [pageNo, resync, reload]);

  const listed = new Set(page?.items.map((o) => o.correlationId) ?? []);
  // In progress, or FAILED (kept apart from the persisted orders, so the list cannot show it).
  const inFlight = Object.values(all).filter(
    (t) => t.status !== "COMPLETED" && !listed.has(t.correlationId) && pageNo === 1,
  );
  const pages = page ? Math.max(1, Math.ceil(page.total / PAGE_SIZE)) : 1;

  return (
    <section class="orders">
      <PageTitle focusKey="orders">Your orders</PageTitle>
      {error && <ErrorBox error={error} onRetry={() => setReload((n) => n + 1)} />}
      {loading && !page && !error && <Spinner label="Loading your orders…" />}
      {inFlight.length > 0 && (
        <ul class="order-list pending" aria-label="Orders in progress">
          {inFlight.map((t) => (
            <li class="order-row" data-testid="pending-order-row" data-correlation-id={t.correlationId}>
              <div class="order-main">
                <a href={href(`/orders/${t.correlationId}`)}>
                  {t.status === "FAILED" ? "Order not completed" : "Order in progress"}
                </a>
                <span class="meta">
                  {formatTime(t.times.ACCEPTED)} · <code>{t.correlationId.slice(0, 8)}</code>
                </span>
              </div>
              <StatusBadge status={t.status} />
            </li>
          ))}
        </ul>
      )}
      {page && page.items.length === 0 && inFlight.length === 0 && (
        <p class="empty" data-testid="orders-empty">
          No orders yet. <a href={href("/products")}>Find something in the catalog</a>.
        </p>
      )}
      {page && page.items.length > 0 && (
        <>
          <p class="result-count" data-testid="orders-total" data-total={page.total}>
            {page.total} {page.total === 1 ? "order" : "orders"}
          </p>
          <ul class="order-list" data-testid="order-list" aria-busy={loading}>
            {page.items.map((o) => {
              const t = all[o.correlationId];
              const status = t && rank(t.status) > rank(o.status) ? t.status : o.status;
              const count = o.items.reduce((n, i) => n + i.quantity, 0);
              return (
                <li
                  class="order-row"
                  key={o.correlationId}
                  data-testid="order-row"
                  data-correlation-id={o.correlationId}
                  data-order-id={o.orderId ?? ""}
                >
                  <div class="order-main">
                    <a href={href(`/orders/${o.correlationId}`)} data-testid="order-link">
                      Order #{o.orderId ?? "…"}
                    </a>
                    <span class="meta">
                      {formatTime(o.createdAt)} · {count} {count === 1 ? "item" : "items"}
                    </span>
                    <span class="meta items-summary">{o.items.map((i) => `${i.quantity}× ${i.productId}`).join(", ")}</span>
                  </div>
                  <span class="order-total">
                    <strong>{o.totalCents !== null ? formatCents(o.totalCents, o.currency) : "—"}</strong>
                    {(o.recurring ?? []).map((r) => (
                      <span class="meta" key={r.billingPeriod}>
                        {" "}
                        then {formatCents(r.amountCents, o.currency)}/{perPeriod(r.billingPeriod)}
                      </span>
                    ))}
                  </span>
                  <StatusBadge status={status} />
                  {o.orderId !== null && (
                    <DeleteButton
                      orderId={o.orderId}
                      correlationId={o.correlationId}
                      onDeleted={() => setReload((n) => n + 1)}
                    />
                  )}
                </li>
              );
            })}
          </ul>
        </>
      )}
      {page && pages > 1 && (
        <nav class="pager" aria-label="Order pages">
          <button
            type="button"
            class="button secondary"
            disabled={pageNo <= 1}
            onClick={() => navigate(href("/orders", { page: pageNo - 1 > 1 ? pageNo - 1 : undefined }))}
          >
            ← Newer
          </button>
          <span>
            Page {pageNo} of {pages}
          </span>
          <button
            type="button"
            class="button secondary"
            disabled={pageNo >= pages}
            onClick={() => navigate(href("/orders", { page: pageNo + 1 }))}
          >
            Older →
          </button>
        </nav>
      )}
    </section>
  );
}
