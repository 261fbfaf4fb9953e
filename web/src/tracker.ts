// What this browser knows about the user's orders' progress: status (forward-only), orderId and
// when each step happened. Fed by the POST answer, the hub's Notifications and API reads; kept in
// localStorage per user so a reload still shows the timeline.
import type { ItemLine, Notification, Order, OrderStatus } from "./types";
import { Store, readJson, writeJson } from "./store";
import { session } from "./auth/session";

export interface Tracked {
  correlationId: string;
  status: OrderStatus;
  orderId: number | null;
  /** ISO times each status was reached (server times where the API gave them). */
  times: Partial<Record<OrderStatus, string>>;
  /** Where the latest status came from. */
  source: "checkout" | "hub" | "api";
  /** What was submitted, shown until the API has the persisted order. */
  items?: ItemLine[];
}

// As the server ranks them: a FAILED order that support retries may still complete.
const RANK: Record<OrderStatus, number> = { ACCEPTED: 0, PROCESSING: 1, FAILED: 2, COMPLETED: 3 };
const MAX_TRACKED = 50;

export function isFinal(status: OrderStatus): boolean {
  return status === "COMPLETED" || status === "FAILED";
}

export function rank(status: string): number {
  return RANK[status as OrderStatus] ?? -1;
}

function keyFor(userId: string): string {
  return `contoso.orders.${userId}`;
}

function load(): Record<string, Tracked> {
  const s = session.get();
  return s ? readJson<Record<string, Tracked>>(localStorage, keyFor(s.userId), {}) : {};
}

export const tracked = new Store<Record<string, Tracked>>(load());

function save(next: Record<string, Tracked>): void {
  const s = session.get();
  const entries = Object.values(next);
  if (entries.length > MAX_TRACKED) {
    entries.sort((a, b) => (a.times.ACCEPTED ?? "").localeCompare(b.times.ACCEPTED ?? ""));
    for (const old of entries.slice(0, entries.length - MAX_TRACKED)) delete next[old.correlationId];
  }
  if (s) writeJson(localStorage, keyFor(s.userId), next);
  tracked.set(next);
}

session.subscribe(() => tracked.set(load()));

window.addEventListener("storage", (e) => {
  const s = session.get();
  if (!s || (e.key !== keyFor(s.userId) && e.key !== null)) return;
  // Another tab learned something: merge forward-only.
  const theirs = load();
  let next = tracked.get();
  for (const t of Object.values(theirs)) next = merged(next, t.correlationId, t.status, t.orderId, t.times, t.source);
  if (next !== tracked.get()) tracked.set(next);
});

function merged(
  all: Record<string, Tracked>,
  cid: string,
  status: OrderStatus,
  orderId: number | null,
  times: Partial<Record<OrderStatus, string>>,
  source: Tracked["source"],
): Record<string, Tracked> {
  const cur = all[cid];
  if (!cur) return { ...all, [cid]: { correlationId: cid, status, orderId, times: { ...times }, source } };
  const forward = rank(status) > rank(cur.status);
  const newTimes = { ...cur.times };
  let changed = forward;
  for (const [k, v] of Object.entries(times) as [OrderStatus, string][]) {
    // Keep the first time seen; a server time (source api) replaces an observed one.
    if (v && (newTimes[k] === undefined || (source === "api" && newTimes[k] !== v && k !== "PROCESSING"))) {
      newTimes[k] = v;
      changed = true;
    }
  }
  const newOrderId = cur.orderId ?? orderId;
  if (newOrderId !== cur.orderId) changed = true;
  if (!changed) return all;
  return {
    ...all,
    [cid]: {
      ...cur,
      status: forward ? status : cur.status,
      orderId: newOrderId,
      times: newTimes,
      source: forward ? source : cur.source,
    },
  };
}

/** Applies a status; a lower one than already known is ignored (statuses only move forward). */
export function applyStatus(n: Notification, source: Tracked["source"], at = new Date().toISOString()): void {
  if (rank(n.status) < 0) return;
  const cur = tracked.get()[n.correlationId];
  if (cur && rank(n.status) < rank(cur.status)) return;
  const times: Partial<Record<OrderStatus, string>> = {};
  if (!cur || rank(n.status) > rank(cur.status)) times[n.status] = at;
  const next = merged(tracked.get(), n.correlationId, n.status, n.orderId ?? null, times, source);
  if (next !== tracked.get()) save(next);
}

/** Remembers what an accepted checkout submitted, so its order shows items from the start. */
export function applySubmitted(cid: string, items: ItemLine[]): void {
  const cur = tracked.get()[cid];
  if (cur) save({ ...tracked.get(), [cid]: { ...cur, items } });
}

/** Applies what GET /api/orders/{ref} (or the list) says, with the server's times. */
export function applyOrder(o: Order): void {
  const cur = tracked.get()[o.correlationId];
  const times: Partial<Record<OrderStatus, string>> = {};
  if (o.createdAt) times.ACCEPTED = o.createdAt;
  if (o.completedAt && o.status === "COMPLETED") times.COMPLETED = o.completedAt;
  if (!cur || rank(o.status) > rank(cur.status)) {
    if (!times[o.status]) times[o.status] = new Date().toISOString();
  }
  const next = merged(tracked.get(), o.correlationId, o.status, o.orderId, times, "api");
  if (next !== tracked.get()) save(next);
}

export function forget(cid: string): void {
  if (!tracked.get()[cid]) return;
  const next = { ...tracked.get() };
  delete next[cid];
  save(next);
}

export function pendingCorrelationIds(): string[] {
  return Object.values(tracked.get())
    .filter((t) => !isFinal(t.status))
    .map((t) => t.correlationId);
}
