import { useEffect, useRef, useState } from "preact/hooks";
import { getOrder } from "../api";
import { ChargesSummary, ErrorBox, formatTime, PageTitle, Spinner, StatusBadge, statusLabel } from "../components";
import { describeError, type ErrorMessage } from "../errors";
import { charges as chargesOf, formatCents, lineCents, perPeriod } from "../money";
import { href, navigate } from "../router";
import { useStore } from "../store";
import { applyOrder, isFinal, rank, tracked } from "../tracker";
import { resyncTick } from "../hub";
import type { ItemLine, Order, OrderStatus } from "../types";
import { DeleteButton } from "./DeleteButton";

export function OrderView({ correlationId }: { correlationId: string }) {
  const all = useStore(tracked);
  const resync = useStore(resyncTick);
  const [order, setOrder] = useState<Order | null>(null);
  const [error, setError] = useState<ErrorMessage | null>(null);
  const [reload, setReload] = useState(0);
  const t = all[correlationId];

  // Re-read from the API on open, after every hub (re)connect, and when a notification moved this
  // order beyond what we have (to get the persisted items and times): also when that is an
  // answer that arrived after the notification, read before it. Once per status, so an API
  // still behind is not asked in a loop.
  const known = t?.status;
  const reread = useRef<OrderStatus | null>(null);
  useEffect(() => {
    const behind = order && known && (rank(known) > rank(order.status) || (isFinal(known) && order.items.length === 0));
    if (behind && reread.current !== known) {
      reread.current = known;
      setReload((n) => n + 1);
    }
  }, [known, order]);
  useEffect(() => {
    const ctrl = new AbortController();
    setError(null);
    getOrder(correlationId, ctrl.signal).then(
      (o) => {
        applyOrder(o);
        setOrder(o);
      },
      (e) => {
        if ((e as Error).name !== "AbortError") setError(describeError(e, "order"));
      },
    );
    return () => ctrl.abort();
  }, [correlationId, resync, reload]);

  const status: OrderStatus | null =
    t && order ? (rank(t.status) >= rank(order.status) ? t.status : order.status) : (t?.status ?? order?.status ?? null);
  const times = t?.times ?? {};
  const orderId = order?.orderId ?? t?.orderId ?? null;

  // The persisted lines once the API has them; until then what this browser submitted.
  const persisted = Boolean(order && order.items.length > 0);
  const items: ItemLine[] = persisted ? order!.items : (t?.items ?? []);
  const currency = order?.currency ?? "USD";
  const charges =
    persisted && order!.dueTodayCents !== null
      ? {
          dueTodayCents: order!.dueTodayCents,
          recurring: order!.recurring.map((r) => ({ billingPeriod: r.billingPeriod, cents: r.amountCents })),
        }
      : chargesOf(items.map((i) => ({ billingPeriod: i.billingPeriod, cents: lineCents(i.unitPriceCents, i.quantity) })));

  const steps: OrderStatus[] = status === "FAILED" ? ["ACCEPTED", "PROCESSING", "FAILED"] : ["ACCEPTED", "PROCESSING", "COMPLETED"];

  return (
    <section class="order" data-testid="order-view" data-correlation-id={correlationId}>
      <p class="crumbs">
        <a href={href("/orders")}>← All orders</a>
      </p>
      <PageTitle focusKey={`order-${correlationId}`}>{orderId ? `Order #${orderId}` : "Your order"}</PageTitle>
      <p class="cid">
        Correlation ID <code data-testid="correlation-id">{correlationId}</code>
      </p>
      {error && !status && <ErrorBox error={error} onRetry={() => setReload((n) => n + 1)} />}
      {!error && !status && <Spinner label="Loading the order…" />}
      {status && (
        <>
          <div class="status-line" aria-live="polite" aria-atomic="true">
            Status: <StatusBadge status={status} testid="order-status" />
          </div>
          <ol class="timeline" data-testid="timeline">
            {steps.map((s) => {
              const reached = rank(status) >= rank(s) && (s !== "COMPLETED" || status === "COMPLETED");
              const current = s === status;
              return (
                <li
                  class={`step${reached ? " done" : ""}${current ? " current" : ""}${s === "FAILED" ? " failed" : ""}`}
                  data-testid={`step-${s.toLowerCase()}`}
                  data-reached={reached ? "true" : "false"}
                  aria-current={current ? "step" : undefined}
                >
                  <span class="dot" aria-hidden="true" />
                  <span class="step-name">{statusLabel(s)}</span>
                  <span class="step-time">{reached ? (times[s] ? formatTime(times[s]) : "Done") : "Pending"}</span>
                </li>
              );
            })}
          </ol>
          {status === "FAILED" && (
            <div class="error" role="alert" data-testid="order-failure">
              <p>
                <strong>We could not complete this order.</strong> Nothing more happens to it until our
                support team retries it; this page updates by itself when they do.
              </p>
              <p>
                Support reference: <code data-testid="support-reference">{correlationId}</code>
              </p>
              {order?.failure && <p class="meta" data-testid="failure-reason">Reason: {order.failure.reason}</p>}
            </div>
          )}
          {error && <ErrorBox error={error} onRetry={() => setReload((n) => n + 1)} />}
        </>
      )}
      {items.length > 0 && (
        <div class="order-details">
          <h2>Items</h2>
          {!persisted && (
            <p class="meta" data-testid="items-as-submitted">
              As you submitted them; confirmed once the order is saved.
            </p>
          )}
          <table class="items" data-testid="order-items">
            <thead>
              <tr>
                <th scope="col">Product</th>
                <th scope="col" class="num">
                  Unit price
                </th>
                <th scope="col" class="num">
                  Qty
                </th>
                <th scope="col" class="num">
                  Line total
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((i) => (
                <tr data-testid="order-item" data-product-id={i.productId}>
                  <th scope="row" class="item-name">
                    <a href={href(`/product/${i.productId}`)}>{i.productName}</a>
                    <span class="meta"> {i.productId}</span>
                  </th>
                  <td class="num" data-label="Unit price">
                    {formatCents(i.unitPriceCents, currency)}
                    {i.billingPeriod !== "one-time" && <span class="price-period">/{perPeriod(i.billingPeriod)}</span>}
                  </td>
                  <td class="num" data-label="Qty">
                    {i.quantity}
                  </td>
                  <td class="num" data-label="Line total" data-testid="order-line-total">
                    {formatCents(lineCents(i.unitPriceCents, i.quantity), currency)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <div class="order-charges" data-testid="order-total">
            <ChargesSummary charges={charges} currency={currency} />
          </div>
          {order && (
          <dl class="facts">
            <dt>Placed</dt>
            <dd>{formatTime(order.createdAt)}</dd>
            {order.failure && status === "FAILED" ? (
              <>
                <dt>Failed</dt>
                <dd>{formatTime(order.failure.failedAt)}</dd>
              </>
            ) : (
              <>
                <dt>Completed</dt>
                <dd>{formatTime(order.completedAt)}</dd>
              </>
            )}
          </dl>
          )}
          {order && order.orderId !== null && (
            <DeleteButton
              orderId={order.orderId}
              correlationId={order.correlationId}
              onDeleted={() => navigate(href("/orders"))}
            />
          )}
        </div>
      )}
    </section>
  );
}
