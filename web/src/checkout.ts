// Checkout: one Idempotency-Key per checkout attempt. A double click joins the request already in
// flight; a retry (automatic after a network error, 409 or 503, or the user clicking again after
// an error, even after a reload) reuses the key as long as the cart is unchanged, so the API
// replays its first answer instead of making a second order.
import { ApiError, placeOrder } from "./api";
import type { Accepted } from "./types";
import type { CartLine } from "./cart";
import { randomId, readJson, writeJson } from "./store";
import { applyStatus } from "./tracker";

interface Attempt {
  key: string;
  body: string;
}

const KEY = "contoso.checkout.attempt";
const MAX_TRIES = 4;
const MAX_AUTO_WAIT_S = 10;

let inFlight: Promise<Accepted> | null = null;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function checkoutInFlight(): boolean {
  return inFlight !== null;
}

/** The key of the current attempt, for display/debugging. */
export function currentAttemptKey(): string | null {
  return readJson<Attempt | null>(sessionStorage, KEY, null)?.key ?? null;
}

export function checkout(lines: CartLine[], onRetry?: (message: string) => void): Promise<Accepted> {
  if (inFlight) return inFlight;
  const items = lines.map((l) => ({ productId: l.productId, quantity: l.quantity }));
  const body = JSON.stringify(items);
  let attempt = readJson<Attempt | null>(sessionStorage, KEY, null);
  if (!attempt || attempt.body !== body) {
    attempt = { key: randomId(), body };
    writeJson(sessionStorage, KEY, attempt);
  }
  const key = attempt.key;
  inFlight = (async () => {
    for (let tryNo = 1; ; tryNo++) {
      try {
        const res = await placeOrder(items, key);
        writeJson(sessionStorage, KEY, null);
        applyStatus({ correlationId: res.data.correlationId, status: "ACCEPTED", orderId: null }, "checkout");
        return res.data;
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        if (e.status === 422) writeJson(sessionStorage, KEY, null); // that key is spent
        const retriable =
          e.status === 0 || e.status === 409 || ((e.status === 503 || e.status === 429) && (e.retryAfter ?? 1) <= MAX_AUTO_WAIT_S);
        if (!retriable || tryNo >= MAX_TRIES) throw e;
        const waitS = e.status === 0 ? tryNo : Math.max(1, e.retryAfter ?? 1);
        onRetry?.(
          e.status === 0
            ? `Connection problem; retrying in ${waitS} s with the same order key…`
            : e.status === 409
              ? "Still submitting your order…"
              : `The shop is busy; retrying in ${waitS} s…`,
        );
        await sleep(waitS * 1000);
      }
    }
  })().finally(() => {
    inFlight = null;
  });
  return inFlight;
}
