// Money is integer cents everywhere in the SPA; floats never touch an amount.

const SYMBOLS: Record<string, string> = { USD: "$", EUR: "€", GBP: "£" };

/** 123456 -> "$1,234.56" (exact: pure integer arithmetic). */
export function formatCents(cents: number, currency = "USD"): string {
  if (!Number.isSafeInteger(cents)) return "—";
  const negative = cents < 0;
  const abs = Math.abs(cents);
  const whole = Math.floor(abs / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const frac = (abs % 100).toString().padStart(2, "0");
  const symbol = SYMBOLS[currency];
  const amount = symbol ? `${symbol}${whole}.${frac}` : `${whole}.${frac} ${currency}`;
  return negative ? `-${amount}` : amount;
}

/** Sum of unit cents x quantity, exact. */
export function lineCents(unitCents: number, quantity: number): number {
  return unitCents * quantity;
}

export function sumCents(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

const PERIOD: Record<string, string> = {
  monthly: "/ month",
  quarterly: "/ quarter",
  yearly: "/ year",
  "one-time": "one-time",
};

export function periodLabel(billingPeriod: string): string {
  return PERIOD[billingPeriod] ?? billingPeriod;
}

/** The periods that recur, in the order the API lists them; one-time never recurs. */
const RECURRING = ["monthly", "quarterly", "yearly"] as const;
const PER: Record<string, string> = { monthly: "month", quarterly: "quarter", yearly: "year" };

export interface Charges {
  /** Every line's first charge: one-time lines and the first period of each subscription. */
  dueTodayCents: number;
  /** What recurs, per period, after today. */
  recurring: { billingPeriod: string; cents: number }[];
}

/** What a set of priced lines costs today and per period after, as the API's order says. */
export function charges(lines: { billingPeriod: string; cents: number }[]): Charges {
  const recurring = RECURRING.map((billingPeriod) => ({
    billingPeriod,
    cents: sumCents(lines.filter((l) => l.billingPeriod === billingPeriod).map((l) => l.cents)),
  })).filter((r) => lines.some((l) => l.billingPeriod === r.billingPeriod));
  return { dueTodayCents: sumCents(lines.map((l) => l.cents)), recurring };
}

/** "monthly" -> "month", for "$34.99/month". */
export function perPeriod(billingPeriod: string): string {
  return PER[billingPeriod] ?? billingPeriod;
}
