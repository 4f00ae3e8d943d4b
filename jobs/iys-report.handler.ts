import { UnrecoverableError } from "bullmq";
import { stmt, type Db } from "../db/index";
import type { OutboxRef, StoredEvent } from "../db/ledger";
import type { Clock } from "../src/domain/time";
import type { IysReporter } from "../src/services/iys";
import { planIysFollows } from "./iys-follow.handler";
import { iysHoldUntil, retryLater } from "./iys-order";
import type { OutboxOutcome, OutboxRow } from "./outbox";
import { iysSkipped } from "../src/iys-reports";

/** How an iys_report row refused H178 begins its note: an iys_follow row then takes İYS's newer record (the dashboard's deadlines read it). */
export const H178_NOTE = "İYS refused the movement: H178";

export interface IysReportDeps {
  db: Db;
  iys: IysReporter;
  clock: Clock;
  /** First delay after a transient İYS failure (doubled each time, at most an hour). */
  iysRetryBaseMs: number;
  /** Enqueues the row that takes İYS's newer record when İYS refuses a movement as older (H178). */
  enqueueOutbox(rows: OutboxRef[]): Promise<void>;
}

const EVENT_SELECT = `SELECT e.id, e.brand_id AS brandId, e.recipient, e.recipient_type AS recipientType, e.type, e.status, e.source,
  e.consent_date AS consentDate, e.retailer_code AS retailerCode, e.origin, e.receipt_id AS receiptId,
  e.idempotency_key AS idempotencyKey, e.effect, e.received_at AS receivedAt, e.hash, e.salt,
  b.iys_code AS iysCode, b.brand_code AS brandCode
  FROM consent_events e JOIN brands b ON b.id = e.brand_id WHERE e.id = ?`;

/** Reports one ledger movement to İYS. */
export async function run(row: OutboxRow, deps: IysReportDeps): Promise<OutboxOutcome> {
  const event = stmt(deps.db, EVENT_SELECT).get(row.eventId) as
    | (StoredEvent & { iysCode: string | null; brandCode: string | null })
    | undefined;
  if (!event) throw new UnrecoverableError("event not found");
  if (!deps.iys.configured || !event.iysCode || !event.brandCode) {
    return iysSkipped(deps.db, deps.iys.configured, event.brandId);
  }
  // A recipient's action dated one second after a stored consent (see ConsentAction.datedOnReceipt)
  // may not have come yet: İYS refuses future dates (H162), so wait for it — a scheduled time, which
  // the sweeper honours should the delayed job be lost (a thrown retry's job lost with Redis waited
  // the sweeper's 15 minutes for rows already tried), and no failed attempt to log.
  if (event.consentDate !== null && event.consentDate > deps.clock.now().getTime()) return { status: "wait", until: event.consentDate };
  const now = deps.clock.now().getTime();
  // Behind an earlier movement of the same consent, and a moment after it reached İYS.
  const hold = iysHoldUntil(deps.db, event, now, deps.iysRetryBaseMs);
  if (hold !== null) return { status: "wait", until: hold };
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
  if (result.permanent && result.code === "H178") {
    // İYS holds a newer record of this consent: an iys_follow row takes it, so the hub answers as İYS does.
    const follow = planIysFollows(deps.db, [event.id], now);
    await deps.enqueueOutbox(follow).catch(() => {});
    return { status: "failed", note: `${H178_NOTE}: ${result.message}; İYS's record is taken by an iys_follow row` };
  }
  if (result.permanent) throw new UnrecoverableError(`İYS refused the movement: ${result.code}: ${result.message}`);
  // Seven days from the movement, or from when its report was planned anew (reopened, see reopenSkippedIysReports).
  return retryLater(row, deps, now, Math.max(event.receivedAt, row.createdAt), `İYS report failed: ${result.code}`);
}
