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
// One character per address, in input order: "A" consented, "R" refused (a RET movement or a bare
// suppression), "-" unknown. The LEFT JOIN keeps json_each as the outer loop, so each address probes
// the state's primary key (left to itself the planner may scan the brand's states and re-read the JSON
// array for each one: quadratic); the aggregate returns one string instead of a row object per match.
export const CHECK_SQL = `SELECT group_concat(CASE WHEN s.status IS NULL THEN '-' WHEN s.status = 'ONAY' THEN 'A' ELSE 'R' END, '' ORDER BY j.key) AS marks
  FROM json_each(?) j
  LEFT JOIN consent_state s ON s.brand_id = ? AND s.recipient = j.value AND s.recipient_type = ? AND s.type = ?`;

export function checkRecipients(db: Db, brandId: number, type: ConsentType, recipientType: RecipientType, recipients: string[]): CheckResult {
  const normalized: string[] = new Array(recipients.length);
  const invalid: (string | undefined)[] = new Array(recipients.length);
  for (let i = 0; i < recipients.length; i++) {
    const addr = normalizeRecipient(recipients[i]!);
    const fits = addr.ok && (type === "EPOSTA" ? addr.kind === "email" : addr.kind === "phone" && (type === "ARAMA" || addr.phoneKind !== "fixed"));
    if (addr.ok && fits) normalized[i] = addr.value;
    else {
      normalized[i] = "";
      invalid[i] = addr.ok ? (type === "EPOSTA" ? "H120" : "H464") : addr.code;
    }
  }
  // Set-based: one statement joins every address to the state (index lookups inside SQLite), one
  // snapshot for the whole answer, instead of a call per recipient.
  const marks = stmt<[string, number, string, string], { marks: string | null }>(db, CHECK_SQL).get(JSON.stringify(normalized), brandId, recipientType, type)?.marks ?? "";
  if (marks.length !== recipients.length) throw new Error(`check: ${marks.length} marks for ${recipients.length} recipients`);
  const result: CheckResult = { allowed: [], denied: [] };
  for (let i = 0; i < recipients.length; i++) {
    const raw = recipients[i]!;
    const code = invalid[i];
    const mark = marks.charCodeAt(i);
    if (code) result.denied.push({ recipient: raw, reason: "invalid_address", code });
    else if (mark === A || (mark === UNKNOWN && recipientType === "TACIR")) result.allowed.push(raw);
    else result.denied.push({ recipient: raw, reason: mark === UNKNOWN ? "no_consent" : "refused" });
  }
  return result;
}

const A = "A".charCodeAt(0);
const UNKNOWN = "-".charCodeAt(0);
