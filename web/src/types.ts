// The API's shapes (functions/openapi.json). Money: decimal strings plus integer cents.

export type OrderStatus = "ACCEPTED" | "PROCESSING" | "COMPLETED" | "FAILED";

export interface Product {
  productId: string;
  name: string;
  category: string;
  vendor: string;
  imageUrl: string;
  price: string;
  priceCents: number;
  discount: number;
  finalPrice: string;
  finalPriceCents: number;
  currency: string;
  billingPeriod: "monthly" | "quarterly" | "yearly" | "one-time" | string;
  isSubscription: boolean;
}

export interface Page<T> {
  offset: number;
  size: number;
  total: number;
  items: T[];
}

export interface OrderItem {
  productId: string;
  productName: string;
  unitPrice: string;
  unitPriceCents: number;
  quantity: number;
  billingPeriod: string;
}

/** An order line as the SPA shows it: what the API returns, or what a checkout submitted. */
export type ItemLine = Omit<OrderItem, "unitPrice">;

export interface Recurring {
  billingPeriod: string;
  amount: string;
  amountCents: number;
}

export interface Order {
  orderId: number | null;
  correlationId: string;
  status: OrderStatus;
  createdAt: string | null;
  completedAt: string | null;
  /** Equal to dueToday (kept under its first name). */
  total: string | null;
  totalCents: number | null;
  /** Every line's first charge; null until the order is persisted. */
  dueToday: string | null;
  dueTodayCents: number | null;
  /** What recurs after today, per billing period. */
  recurring: Recurring[];
  currency: string;
  items: OrderItem[];
  /** Why the order FAILED (its message was dead-lettered); null otherwise. */
  failure: { reason: string; failedAt: string } | null;
}

export interface Accepted {
  correlationId: string;
  status: "ACCEPTED";
  statusUrl: string;
}

export interface Notification {
  correlationId: string;
  status: OrderStatus;
  orderId: number | null;
  /** Its position in the hub's backplane: reconnecting with `?after=` replays what followed. */
  cursor?: string;
}

export interface DevToken {
  accessToken: string;
  tokenType: string;
  expiresIn: number;
}

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  field?: string;
  productIds?: string[];
}
