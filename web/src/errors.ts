// One place that turns every error the API can return into words a shopper understands.
import { ApiError } from "./api";

export interface ErrorMessage {
  title: string;
  detail: string;
  /** The offending input, from problem+json `field`. */
  field?: string;
  /** Seconds to wait, from Retry-After. */
  retryAfter?: number | null;
  /** Support reference (x-request-id). */
  reference?: string | null;
  signIn?: boolean;
  /** Products the API refused (404 on checkout). */
  productIds?: string[];
  /** False when trying the same thing again cannot help (not found, invalid input). */
  retriable?: boolean;
  /** No answer came back: trying again helps as soon as the shop is reachable. */
  unreachable?: boolean;
}

export type ErrorContext = "catalog" | "product" | "checkout" | "order" | "orders" | "delete" | "signin";

function waitText(secs: number | null | undefined): string {
  if (secs === null || secs === undefined) return "Please try again in a moment.";
  return secs <= 1 ? "Please try again in a second." : `Please try again in ${secs} seconds.`;
}

export function describeError(e: unknown, ctx: ErrorContext): ErrorMessage {
  if (!(e instanceof ApiError)) {
    return { title: "Something went wrong", detail: e instanceof Error ? e.message : String(e) };
  }
  const p = e.problem;
  const base = { field: p.field, retryAfter: e.retryAfter, reference: e.requestId };
  switch (e.status) {
    case 0:
      return navigator.onLine
        ? { ...base, unreachable: true, title: "The shop is not answering", detail: "Our server could not be reached. It is not your connection; we keep trying." }
        : { ...base, unreachable: true, title: "You are offline", detail: "Your device has no network connection. The shop reconnects when it is back." };
    case 400:
      return { ...base, retriable: false, title: "Please check your input", detail: p.detail || "The request was not valid." };
    case 401:
      return { ...base, title: "Please sign in again", detail: "Your session has expired or is no longer valid.", signIn: true };
    case 403:
      return { ...base, title: "Not allowed", detail: p.detail || "Your account is not allowed to do this.", signIn: true };
    case 404:
      if (ctx === "checkout" && e.productIds.length) {
        return { ...base, productIds: e.productIds, title: "Some products are no longer available", detail: `Not available: ${e.productIds.join(", ")}. Remove them from your cart and try again.` };
      }
      if (ctx === "product") return { ...base, retriable: false, title: "Product not found", detail: "This product does not exist or is no longer sold." };
      if (ctx === "order" || ctx === "delete") return { ...base, retriable: false, title: "Order not found", detail: "This order does not exist, was deleted, or belongs to someone else." };
      return { ...base, retriable: false, title: "Not found", detail: p.detail || "Nothing here." };
    case 409:
      return { ...base, title: "Your order is still being submitted", detail: "The same checkout is already in progress. " + waitText(e.retryAfter ?? 1) };
    case 413:
      return { ...base, title: "Your cart is too large", detail: "Remove some lines and place the order again." };
    case 415:
      return { ...base, title: "The shop could not read the request", detail: p.detail || "Unsupported content type. Please reload the page." };
    case 422:
      return { ...base, title: "This checkout changed", detail: "Your cart changed since you first placed this order. Review it and place the order again." };
    case 429:
      return { ...base, title: "Too many requests", detail: waitText(e.retryAfter) };
    case 503:
      return { ...base, title: "The shop is busy", detail: `A service is temporarily unavailable. ${waitText(e.retryAfter)}` };
    default:
      if (e.status >= 500) return { ...base, title: "Something went wrong on our side", detail: p.detail || "Please try again." };
      return { ...base, title: p.title || `Error ${e.status}`, detail: p.detail || "" };
  }
}
