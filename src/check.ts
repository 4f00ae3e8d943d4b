import { stmt, type Db } from "../db/index";
import { normalizeRecipient } from "./domain/address";
import { addressUnfit } from "./domain/consent-rules";
import type { ConsentType, RecipientType } from "./domain/consent";

export type DenyReason = "no_consent" | "refused" | "invalid_address";

export interface CheckResult {
  allowed: string[];
  denied: { recipient: string; reason: DenyReason; code?: string }[];
}

/**
 * May `recipients` be sent `type` messages for the brand now? From the current state projection:
 * ONAY is allowed; RET (a movement or a bare suppression) is refused; no record is `no_consent`,
 * except for TACIR recipients, who may be messaged until they refuse — and a refusal counts whatever
 * record it was kept under: the hub's channels record what a number texts, says or clicks as
 * BIREYSEL (the recipient does not say which), so a TACIR check also reads the address's BIREYSEL
 * record, and the later of the two decides. Addresses are normalised as everywhere else and given
 * back as sent.
 */
// One character per address, in input order: "A" consented, "R" refused (a RET movement or a bare
// suppression), "-" unknown. The LEFT JOIN keeps json_each as the outer loop, so each address probes
// the state's primary key (left to itself the planner may scan the brand's states and re-read the JSON
// array for each one: quadratic); the aggregate returns one string instead of a row object per match.
export const CHECK_SQL = `SELECT group_concat(CASE WHEN s.status IS NULL THEN '-' WHEN s.status = 'ONAY' THEN 'A' ELSE 'R' END, '' ORDER BY j.key) AS marks
  FROM json_each(?) j
  LEFT JOIN consent_state s ON s.brand_id = ? AND s.recipient = j.value AND s.recipient_type = ? AND s.type = ?`;

/**
 * TACIR: the address's BIREYSEL record too; its RET refuses unless the TACIR record is a consent
 * dated after it — by consent date, not by the order they were recorded in (a TACIR consent dated
 * before the refusal but written after it, from a registered base or a back-dated write, let the
 * address through), in the same second the one recorded later; an undated TACIR consent cannot be
 * told to come after any refusal and counts as older.
 */
export const CHECK_TACIR_SQL = `SELECT group_concat(CASE
    WHEN s.status = 'RET' THEN 'R'
    WHEN b.status = 'RET' AND (s.event_id IS NULL OR s.consent_date IS NULL OR b.consent_date IS NULL
      OR b.consent_date > s.consent_date OR (b.consent_date = s.consent_date AND b.event_id > s.event_id)) THEN 'R'
    WHEN s.status = 'ONAY' THEN 'A'
    ELSE '-' END, '' ORDER BY j.key) AS marks
  FROM json_each(@json) j
  LEFT JOIN consent_state s ON s.brand_id = @brand AND s.recipient = j.value AND s.recipient_type = 'TACIR' AND s.type = @type
  LEFT JOIN consent_state b ON b.brand_id = @brand AND b.recipient = j.value AND b.recipient_type = 'BIREYSEL' AND b.type = @type`;

export function checkRecipients(db: Db, brandId: number, type: ConsentType, recipientType: RecipientType, recipients: string[]): CheckResult {
  const normalized: string[] = new Array(recipients.length);
  const invalid: (string | undefined)[] = new Array(recipients.length);
  for (let i = 0; i < recipients.length; i++) {
    // Longer than any address (an e-mail is at most 254 characters): not normalised at all.
    if (recipients[i]!.length > MAX_ADDRESS) {
      normalized[i] = "";
      invalid[i] = recipients[i]!.includes("@") ? "H120" : "H122";
      continue;
    }
    const addr = normalizeRecipient(recipients[i]!);
    const unfit = addr.ok ? addressUnfit(type, addr.kind, addr.kind === "phone" ? addr.phoneKind : undefined) : addr.code;
    if (unfit === null) normalized[i] = (addr as { value: string }).value;
    else {
      normalized[i] = "";
      invalid[i] = unfit;
    }
  }
  // Set-based: one statement joins every address to the state (index lookups inside SQLite), one
  // snapshot for the whole answer, instead of a call per recipient.
  const json = JSON.stringify(normalized);
  const marks =
    (recipientType === "TACIR"
      ? stmt<[{ json: string; brand: number; type: string }], { marks: string | null }>(db, CHECK_TACIR_SQL).get({ json, brand: brandId, type })
      : stmt<[string, number, string, string], { marks: string | null }>(db, CHECK_SQL).get(json, brandId, recipientType, type)
    )?.marks ?? "";
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

const MAX_ADDRESS = 320;
const A = "A".charCodeAt(0);
const UNKNOWN = "-".charCodeAt(0);
