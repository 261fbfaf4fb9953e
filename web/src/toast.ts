// Short confirmations ("Added 2 × AZ-104"), announced politely to screen readers. One at a time,
// shown in the header (so it never covers the page's buttons) and gone when the page changes.
import { Store } from "./store";
import { route } from "./router";

export interface Toast {
  id: number;
  text: string;
  /** An optional next step, e.g. "View cart". */
  action?: { label: string; href: string };
}

export const toasts = new Store<Toast | null>(null);
let nextId = 1;
let timer: ReturnType<typeof setTimeout> | undefined;

export function toast(text: string, action?: Toast["action"], ms = 4000): void {
  clearTimeout(timer);
  toasts.set({ id: nextId++, text, action });
  timer = setTimeout(() => toasts.set(null), ms);
}

route.subscribe(() => {
  clearTimeout(timer);
  toasts.set(null);
});
