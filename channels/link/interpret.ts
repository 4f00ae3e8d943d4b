import type { Db } from "../../db/index";
import type { Interpretation, ReceiptInterpreter, ReceiptRow } from "../../jobs/consent-apply.handler";
import { linkById } from "./issue";
import type { LinkReceiptPayload } from "./routes";

/**
 * A click on a rejection link: RET for `EPOSTA` from `HS_EPOSTA`, for the brand, address and
 * recipient type of the link row, dated to the second the click reached us. The confirmation
 * e-mail's outbox row is written in the same transaction, unless the rules rejected the action;
 * a repeated refusal (H174) is confirmed like a new one.
 */
export function linkInterpreter(db: Db): ReceiptInterpreter {
  return function interpretLink(receipt: ReceiptRow): Interpretation {
    const payload = JSON.parse(receipt.payload || "{}") as Partial<LinkReceiptPayload>;
    const link = typeof payload.link === "number" ? linkById(db, payload.link) : null;
    if (!link) return { actions: [], status: "invalid", result: { reason: "unknown link" } };
    return {
      actions: [
        {
          brandId: link.brandId,
          recipient: link.recipient,
          recipientKind: "email",
          recipientType: link.recipientType,
          type: "EPOSTA",
          status: "RET",
          source: "HS_EPOSTA",
          consentDate: Math.floor(receipt.receivedAt / 1000) * 1000,
          origin: "link",
          datedOnReceipt: true,
          receiptId: receipt.id,
          idempotencyKey: `link:${receipt.id}`,
        },
      ],
      status: "applied",
      result: { link: link.id, via: payload.via ?? null },
      outbox: (outcomes) =>
        outcomes.every((o) => o.kind === "rejected") ? [] : [{ kind: "email_confirmation", receiptId: receipt.id }],
    };
  };
}
