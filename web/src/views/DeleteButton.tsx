import { useLayoutEffect, useRef, useState } from "preact/hooks";
import { deleteOrder } from "../api";
import { describeError, type ErrorMessage } from "../errors";
import { ErrorBox } from "../components";
import { forget } from "../tracker";
import { toast } from "../toast";

/** Soft delete with an inline confirmation. Focus moves to Cancel, so Enter twice deletes nothing,
 *  and Escape cancels. */
export function DeleteButton({
  orderId,
  correlationId,
  onDeleted,
}: {
  orderId: number;
  correlationId: string;
  onDeleted: () => void;
}) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorMessage | null>(null);
  const cancelRef = useRef<HTMLButtonElement>(null);
  const askRef = useRef<HTMLButtonElement>(null);
  const wasConfirming = useRef(false);

  useLayoutEffect(() => {
    if (confirming) cancelRef.current?.focus();
    else if (wasConfirming.current) askRef.current?.focus();
    wasConfirming.current = confirming;
  }, [confirming]);

  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await deleteOrder(orderId);
      forget(correlationId);
      onDeleted();
      toast(`Order #${orderId} deleted.`);
    } catch (e) {
      setError(describeError(e, "delete"));
      setBusy(false);
      setConfirming(false);
    }
  };

  return (
    <div class="delete">
      {confirming ? (
        <div
          class="confirm"
          role="group"
          aria-label={`Confirm deleting order ${orderId}`}
          data-testid="delete-confirm"
          onKeyDown={(e) => {
            if (e.key === "Escape" && !busy) {
              e.stopPropagation();
              setConfirming(false);
            }
          }}
        >
          <span>Delete order #{orderId}?</span>
          <button
            type="button"
            class="button danger"
            disabled={busy}
            data-testid="confirm-delete"
            onClick={confirm}
          >
            {busy ? "Deleting…" : "Yes, delete"}
          </button>
          <button
            type="button"
            class="button secondary"
            disabled={busy}
            data-testid="cancel-delete"
            ref={cancelRef}
            onClick={() => setConfirming(false)}
          >
            Cancel
          </button>
        </div>
      ) : (
        <button
          type="button"
          class="link-button danger"
          ref={askRef}
          data-testid="delete-order"
          aria-label={`Delete order ${orderId}`}
          onClick={() => setConfirming(true)}
        >
          Delete
        </button>
      )}
      {error && <ErrorBox error={error} />}
    </div>
  );
}
