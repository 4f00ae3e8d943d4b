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
// CROSS JOIN fixes the loop order: each address probes the state's primary key. Left to itself the
// planner may scan the brand's states and re-read the JSON array for each one (quadratic).
export const CHECK_SQL = `SELECT CAST(j.key AS INTEGER) AS i, s.status FROM json_each(?) j
  CROSS JOIN consent_state s ON s.brand_id = ? AND s.recipient = j.value AND s.recipient_type = ? AND s.type = ?`;

export function checkRecipients(db: Db, brandId: number, type: ConsentType, recipientType: RecipientType, recipients: string[]): CheckResult {
  const normalized: string[] = [];
  const invalid = new Map<number, string>();
  recipients.forEach((raw, i) => {
    const addr = normalizeRecipient(raw);
    const fits = addr.ok && (type === "EPOSTA" ? addr.kind === "email" : addr.kind === "phone" && (type === "ARAMA" || addr.phoneKind !== "fixed"));
    if (addr.ok && fits) normalized.push(addr.value);
    else {
      normalized.push("");
      invalid.set(i, addr.ok ? (type === "EPOSTA" ? "H120" : "H464") : addr.code);
    }
  });
  // Set-based: one statement joins every address to the state (index lookups inside SQLite), one
  // snapshot for the whole answer, instead of a call per recipient.
  const statuses = new Map<number, string>();
  for (const r of stmt<[string, number, string, string], { i: number; status: string }>(db, CHECK_SQL).all(JSON.stringify(normalized), brandId, recipientType, type)) {
    statuses.set(r.i, r.status);
  }
  const result: CheckResult = { allowed: [], denied: [] };
  recipients.forEach((raw, i) => {
    const code = invalid.get(i);
    if (code) return result.denied.push({ recipient: raw, reason: "invalid_address", code });
    const status = statuses.get(i);
    if (status === "ONAY" || (status === undefined && recipientType === "TACIR")) result.allowed.push(raw);
    else result.denied.push({ recipient: raw, reason: status ? "refused" : "no_consent" });
  });
  return result;
}
