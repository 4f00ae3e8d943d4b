import { UnrecoverableError } from "bullmq";
import { stmt, type Db } from "../db/index";
import type { StoredEvent } from "../db/ledger";
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

/** How far apart two movements of one consent reach İYS: within one second İYS gives them one transactionId. */
export const IYS_MOVEMENT_SPACING_MS = 1100;

/**
 * Until when a movement must wait before it goes to İYS, or null when it may go now:
 * - while an earlier movement of the same consent (brand, recipient, recipientType, type) is still on
 *   its way — its single write pending (waiting out a failure too), or the pending list that holds it —
 *   it looks again after `retryBaseMs`. İYS takes a consent's movements in order only: a RET overtaking
 *   the ONAY it follows is refused as a first record (H175) and the late ONAY then stands at İYS while
 *   the hub holds RET. A list that ended (done, failed, skipped, exhausted) holds nothing back: its
 *   movements are at İYS or never will be;
 * - until IYS_MOVEMENT_SPACING_MS after the latest earlier movement reached İYS. İYS: "Bir iletişim
 *   adresi ve izin türü için aynı saniyede gönderilen birden fazla izin hareketi, tek bir
 *   transactionid değeri üretmektedir" — the two would share one row of its daily file, and the day's
 *   SHA-384 would never match.
 */
export function iysHoldUntil(db: Db, e: StoredEvent, now: number, retryBaseMs: number): number | null {
  const earlier = stmt(
    db,
    `SELECT id, origin FROM consent_events WHERE brand_id = ? AND recipient = ? AND recipient_type = ? AND type = ? AND id < ?
       AND (effect = 'movement' OR EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'iys_report' AND o.event_id = consent_events.id)) ORDER BY id DESC LIMIT 20`,
  ).all(e.brandId, e.recipient, e.recipientType, e.type, e.id) as { id: number; origin: string }[];
  if (earlier.length === 0) return null;
  const single = stmt(db, `SELECT 1 FROM outbox WHERE event_id = ? AND kind = 'iys_report' AND status = 'pending' LIMIT 1`);
  // The list holding an imported movement: the pending one starting at or before it (lists hold ascending ids).
  const list = stmt(db, `SELECT target FROM outbox WHERE kind = 'iys_batch' AND status = 'pending' AND event_id <= ? ORDER BY event_id DESC LIMIT 1`);
  const onTheWay = earlier.some((p) => {
    if (single.get(p.id)) return true;
    if (p.origin !== "import") return false;
    const row = list.get(p.id) as { target: string } | undefined;
    return row !== undefined && (JSON.parse(row.target) as number[]).includes(p.id);
  });
  if (onTheWay) return now + retryBaseMs;
  // When the latest earlier movement İYS took reached it (a single write's answer, or a list's outcome).
  const reached = stmt(
    db,
    `SELECT max(at) AS at FROM (SELECT updated_at AS at FROM outbox WHERE event_id = @id AND kind = 'iys_report' AND status = 'done'
       UNION ALL SELECT updated_at FROM iys_report_items WHERE event_id = @id AND status = 'success')`,
  );
  for (const p of earlier) {
    const at = (reached.get({ id: p.id }) as { at: number | null }).at;
    if (at !== null) return now - at < IYS_MOVEMENT_SPACING_MS ? at + IYS_MOVEMENT_SPACING_MS : null;
  }
  return null;
}
