import { UnrecoverableError } from "bullmq";
import { stmt, type Db } from "../db/index";
import type { LedgerEvent } from "../db/ledger";
import { IYS_RETRY_HORIZON_MS, iysRetryDelay, type OutboxOutcome, type OutboxRow } from "./outbox";

/**
 * A transient İYS failure (5xx, 429, the network): asked again on İYS's retry schedule, what the
 * row already holds (a requestId) kept; given up on, visibly, a week after the work was planned.
 */
export function retryLater(
  row: OutboxRow,
  deps: { iysRetryBaseMs: number },
  now: number,
  since: number,
  error: string,
  result?: Record<string, unknown>,
): OutboxOutcome {
  if (now - since > IYS_RETRY_HORIZON_MS) throw new UnrecoverableError(`${error}; İYS still failing after 7 days`);
  return { status: "wait", until: now + iysRetryDelay(row.attempts, deps.iysRetryBaseMs), error, ...(result ? { result } : {}) };
}

/**
 * Whether an earlier movement of the same consent (brand, recipient, recipientType, type) is still
 * on its way to İYS: its single write pending (waiting out a failure too), or the list that holds it
 * unfinished. İYS takes a consent's movements in order only: a RET overtaking the ONAY it follows is
 * refused as a first record (H175) and the late ONAY then stands at İYS while the hub holds RET.
 */
export function earlierOnTheWay(db: Db, e: LedgerEvent): boolean {
  const earlier = stmt(
    db,
    `SELECT id, origin FROM consent_events WHERE brand_id = ? AND recipient = ? AND recipient_type = ? AND type = ? AND id < ? AND effect = 'movement' ORDER BY id DESC LIMIT 20`,
  ).all(e.brandId, e.recipient, e.recipientType, e.type, e.id) as { id: number; origin: string }[];
  const single = stmt(db, `SELECT 1 FROM outbox WHERE event_id = ? AND kind = 'iys_report' AND status = 'pending' LIMIT 1`);
  // The list holding an imported movement: the pending one starting at or before it (lists hold ascending
  // ids). A list that ended — done, failed, skipped, exhausted — holds nothing back: its movements are
  // at İYS or never will be (a failed list held every later movement of its consents back for good).
  const list = stmt(db, `SELECT target FROM outbox WHERE kind = 'iys_batch' AND status = 'pending' AND event_id <= ? ORDER BY event_id DESC LIMIT 1`);
  return earlier.some((p) => {
    if (single.get(p.id)) return true;
    if (p.origin !== "import") return false;
    const row = list.get(p.id) as { target: string } | undefined;
    return row !== undefined && (JSON.parse(row.target) as number[]).includes(p.id);
  });
}

/** How far apart two movements of one consent reach İYS: within one second İYS gives them one transactionId. */
export const IYS_MOVEMENT_SPACING_MS = 1100;

/**
 * Until when a movement must wait because the previous movement of its consent reached İYS less than
 * IYS_MOVEMENT_SPACING_MS ago (null: it may go now). İYS: "Bir iletişim adresi ve izin türü için aynı
 * saniyede gönderilen birden fazla izin hareketi, tek bir transactionid değeri üretmektedir" — the
 * two movements would share one row of its daily file, and the day's SHA-384 would never match.
 */
export function spacedUntil(db: Db, e: LedgerEvent, now: number): number | null {
  const last = stmt(
    db,
    `SELECT max(o.updated_at) AS at FROM consent_events p JOIN outbox o ON o.event_id = p.id AND o.kind = 'iys_report' AND o.status = 'done'
      WHERE p.brand_id = ? AND p.recipient = ? AND p.recipient_type = ? AND p.type = ? AND p.id < ? AND p.effect = 'movement'`,
  ).get(e.brandId, e.recipient, e.recipientType, e.type, e.id) as { at: number | null };
  const listed = stmt(
    db,
    `SELECT max(i.updated_at) AS at FROM consent_events p JOIN iys_report_items i ON i.event_id = p.id AND i.status = 'success'
      WHERE p.brand_id = ? AND p.recipient = ? AND p.recipient_type = ? AND p.type = ? AND p.id < ? AND p.effect = 'movement'`,
  ).get(e.brandId, e.recipient, e.recipientType, e.type, e.id) as { at: number | null };
  const at = Math.max(last.at ?? 0, listed.at ?? 0);
  return at > 0 && now - at < IYS_MOVEMENT_SPACING_MS ? at + IYS_MOVEMENT_SPACING_MS : null;
}
