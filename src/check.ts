import { stmt, type Db } from "../db/index";
import { normalizeRecipient } from "./domain/address";
import type { ConsentType, RecipientType } from "./domain/consent";

export type DenyReason = "no_consent" | "refused" | "invalid_address";

export interface CheckResult {
  allowed: string[];
  denied: { recipient: string; reason: DenyReason; code?: string }[];
}

/**
 * May `recipients` be sent `type` messages for the brand now? From the current state projection:
 * ONAY is allowed; RET (a movement or a bare suppression) is refused; no record is `no_consent`,
 * except for TACIR recipients, who may be messaged until they refuse. Addresses are normalised as
 * everywhere else and given back as sent.
 */
export function checkRecipients(db: Db, brandId: number, type: ConsentType, recipientType: RecipientType, recipients: string[]): CheckResult {
  const lookup = stmt<[number, string, string, string], { status: string }>(
    db,
    `SELECT status FROM consent_state WHERE brand_id = ? AND recipient = ? AND recipient_type = ? AND type = ?`,
  );
  const result: CheckResult = { allowed: [], denied: [] };
  // One read transaction: every answer comes from the same snapshot.
  db.$client.transaction(() => {
    for (const raw of recipients) {
      const addr = normalizeRecipient(raw);
      const fits = addr.ok && (type === "EPOSTA" ? addr.kind === "email" : addr.kind === "phone" && (type === "ARAMA" || addr.phoneKind !== "fixed"));
      if (!addr.ok || !fits) {
        result.denied.push({ recipient: raw, reason: "invalid_address", code: addr.ok ? (type === "EPOSTA" ? "H120" : "H464") : addr.code });
        continue;
      }
      const state = lookup.get(brandId, addr.value, recipientType, type);
      if (state?.status === "ONAY" || (!state && recipientType === "TACIR")) result.allowed.push(raw);
      else result.denied.push({ recipient: raw, reason: state ? "refused" : "no_consent" });
    }
  })();
  return result;
}
