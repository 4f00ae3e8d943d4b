import { createHash } from "node:crypto";
import type { ConsentAction, ConsentStateRow, LedgerEvent } from "../db/ledger";
import { normalizeRecipient } from "./domain/address";
import type { ConsentSource, ConsentStatus, ConsentType, Origin, RecipientType } from "./domain/consent";
import { formatIysDate, parseConsentDate } from "./domain/time";

/** A consent movement as a provider or partner states it (raw address and İYS-format date). */
export interface ConsentStatement {
  brandId: number;
  recipient: string;
  recipientType: RecipientType;
  type: ConsentType;
  status: ConsentStatus;
  source: ConsentSource | null;
  consentDate: string | null;
  retailerCode?: string | null;
  origin: Origin;
}

export type StatementResult = { ok: true; action: ConsentAction } | { ok: false; code: `H${number}`; message: string; field: string };

/**
 * Normalises a stated movement into a ledger action. Idempotency covers the normalised content, so
 * the same statement in another spelling is the same event (like İYS's V2 endpoint): by a key
 * hashed from that content (the API), or, for bulk imports (`content`), by the ledger comparing
 * the content itself with the recipient's events (no key to index; see ConsentAction.dedupe).
 */
export function statementToAction(s: ConsentStatement, idempotency: "key" | "content" = "key"): StatementResult {
  const addr = normalizeRecipient(s.recipient);
  if (!addr.ok) return { ok: false, code: addr.code, message: addr.message, field: "recipient" };
  let consentDate: number | null = null;
  if (s.consentDate !== null) {
    const d = parseConsentDate(s.consentDate);
    if (!d.ok) return { ok: false, code: d.code, message: d.message, field: "consentDate" };
    consentDate = d.date.getTime();
  }
  const action: ConsentAction = {
    brandId: s.brandId,
    recipient: addr.value,
    recipientKind: addr.kind,
    phoneKind: addr.kind === "phone" ? addr.phoneKind : undefined,
    recipientType: s.recipientType,
    type: s.type,
    status: s.status,
    source: s.source,
    consentDate,
    retailerCode: s.retailerCode ?? null,
    origin: s.origin,
  };
  if (idempotency === "content") action.dedupe = "content";
  else action.idempotencyKey = idempotencyKey(action);
  return { ok: true, action };
}

export function idempotencyKey(a: ConsentAction): string {
  const content = JSON.stringify([
    a.origin,
    a.brandId,
    a.recipient,
    a.recipientType,
    a.type,
    a.status,
    a.source,
    a.consentDate,
    a.retailerCode ?? null,
  ]);
  return `${a.origin}:${createHash("sha256").update(content).digest("base64url")}`;
}

const iysDate = (ms: number | null) => (ms === null ? null : formatIysDate(new Date(ms)));

export function presentEvent(e: LedgerEvent, brandCode: string) {
  return {
    id: e.id,
    brand: brandCode,
    recipient: e.recipient,
    recipientType: e.recipientType,
    type: e.type,
    status: e.status,
    source: e.source,
    consentDate: iysDate(e.consentDate),
    retailerCode: e.retailerCode,
    origin: e.origin,
    effect: e.effect,
    receivedAt: new Date(e.receivedAt).toISOString(),
    hash: e.hash,
    prevHash: e.prevHash,
  };
}

export function presentState(s: ConsentStateRow, brandCode: string) {
  return {
    brand: brandCode,
    recipient: s.recipient,
    recipientType: s.recipientType,
    type: s.type,
    status: s.status,
    source: s.source,
    consentDate: iysDate(s.consentDate),
    retailerCode: s.retailerCode,
    /** False for a RET kept as a local suppression (İYS holds no record), until İYS takes its report. */
    inIys: s.inIys,
    eventId: s.eventId,
    updatedAt: new Date(s.updatedAt).toISOString(),
  };
}
