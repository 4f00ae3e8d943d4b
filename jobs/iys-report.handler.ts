import { UnrecoverableError } from "bullmq";
import { stmt, type Db } from "../db/index";
import type { LedgerEvent } from "../db/ledger";
import type { Clock } from "../src/domain/time";
import type { IysReporter } from "../src/services/iys";
import { retryLater } from "./iys-batch.handler";
import type { OutboxOutcome, OutboxRow } from "./outbox";

export interface IysReportDeps {
  db: Db;
  iys: IysReporter;
  clock: Clock;
  /** First delay after a transient İYS failure (doubled each time, at most an hour). */
  iysRetryBaseMs: number;
}

/**
 * Whether an earlier movement of the same consent (brand, recipient, recipientType, type) is still
 * on its way to İYS: its single write pending (waiting out a failure too), or the list that holds it
 * unfinished. İYS takes a consent's movements in order only: a RET overtaking the ONAY it follows is
 * refused as a first record (H175) and the late ONAY then stands at İYS while the hub holds RET.
 */
function earlierOnTheWay(db: Db, e: LedgerEvent): boolean {
  const earlier = stmt(
    db,
    `SELECT id, origin FROM consent_events WHERE brand_id = ? AND recipient = ? AND recipient_type = ? AND type = ? AND id < ? AND effect = 'movement' ORDER BY id DESC LIMIT 20`,
  ).all(e.brandId, e.recipient, e.recipientType, e.type, e.id) as { id: number; origin: string }[];
  const single = stmt(db, `SELECT 1 FROM outbox WHERE event_id = ? AND kind = 'iys_report' AND status = 'pending' LIMIT 1`);
  // The list holding an imported movement: the unfinished one starting at or before it (lists hold ascending ids).
  const list = stmt(db, `SELECT target FROM outbox WHERE kind = 'iys_batch' AND status <> 'done' AND event_id <= ? ORDER BY event_id DESC LIMIT 1`);
  return earlier.some((p) => {
    if (single.get(p.id)) return true;
    if (p.origin !== "import") return false;
    const row = list.get(p.id) as { target: string } | undefined;
    return row !== undefined && (JSON.parse(row.target) as number[]).includes(p.id);
  });
}

const EVENT_SELECT = `SELECT e.id, e.brand_id AS brandId, e.recipient, e.recipient_type AS recipientType, e.type, e.status, e.source,
  e.consent_date AS consentDate, e.retailer_code AS retailerCode, e.origin, e.receipt_id AS receiptId,
  e.idempotency_key AS idempotencyKey, e.effect, e.received_at AS receivedAt, e.prev_hash AS prevHash, e.hash,
  b.iys_code AS iysCode, b.brand_code AS brandCode
  FROM consent_events e JOIN brands b ON b.id = e.brand_id WHERE e.id = ?`;

/** Reports one ledger movement to İYS. */
export async function run(row: OutboxRow, deps: IysReportDeps): Promise<OutboxOutcome> {
  const event = stmt(deps.db, EVENT_SELECT).get(row.eventId) as
    | (LedgerEvent & { iysCode: string | null; brandCode: string | null })
    | undefined;
  if (!event) throw new UnrecoverableError("event not found");
  if (!deps.iys.configured || !event.iysCode || !event.brandCode) {
    return { status: "skipped", note: !deps.iys.configured ? "İYS API not configured (IYS_API_BASE_URL)" : "brand has no iysCode/brandCode" };
  }
  // A recipient's action dated one second after a stored consent (see ConsentAction.datedOnReceipt)
  // may not have come yet: İYS refuses future dates (H162), so wait for it.
  if (event.consentDate !== null && event.consentDate > deps.clock.now().getTime()) throw new Error("consentDate not reached yet; retried");
  const now = deps.clock.now().getTime();
  // Held back behind an earlier movement of the same consent: looks again after the retry base.
  if (earlierOnTheWay(deps.db, event)) return { status: "wait", until: now + deps.iysRetryBaseMs };
  let result: Awaited<ReturnType<IysReporter["report"]>>;
  try {
    result = await deps.iys.report({ iysCode: event.iysCode, brandCode: event.brandCode }, event);
  } catch (err) {
    // The network, a timeout, a token request that failed: transient.
    result = { ok: false, permanent: false, code: "unreachable", message: err instanceof Error ? err.message : String(err) };
  }
  // İYS's transactionId and creationDate are the key of its daily movement file (src/export.ts dailyReport).
  if (result.ok) {
    if (!result.transactionId) return { status: "done" };
    return { status: "done", result: { transactionId: result.transactionId, ...(result.creationDate ? { creationDate: result.creationDate } : {}) } };
  }
  if (result.permanent) throw new UnrecoverableError(`İYS refused the movement: ${result.code}: ${result.message}`);
  return retryLater(row, deps, now, event.receivedAt, `İYS report failed: ${result.code}`);
}
