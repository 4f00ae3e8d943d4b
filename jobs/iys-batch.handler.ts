import { UnrecoverableError } from "bullmq";
import { stmt, type Db } from "../db/index";
import { EVENT_STORED_COLUMNS, type OutboxRef, type StoredEvent } from "../db/ledger";
import type { Clock } from "../src/domain/time";
import { alreadyRecorded, IYS_BATCH_MAX, RETRY_LATER_CODES, type IysReporter } from "../src/services/iys";
import { planIysFollows } from "./iys-follow.handler";
import { iysHoldUntil, retryLater } from "./iys-order";
import { IYS_RETRY_HORIZON_MS, iysRetryDelay, type OutboxOutcome, type OutboxRow } from "./outbox";
import { iysSkipped } from "../src/iys-reports";

export interface IysBatchDeps {
  db: Db;
  iys: IysReporter;
  clock: Clock;
  /** How long after sending a list (and between asks) to ask İYS what became of it. */
  iysBatchPollMs: number;
  /** First delay after a transient İYS failure (doubled each time, at most an hour). */
  iysRetryBaseMs: number;
  /** Enqueues the rows that take İYS's newer records when İYS refuses movements as older (H178). */
  enqueueOutbox(rows: OutboxRef[]): Promise<void>;
  /** A job for one row at `at` (a list of the movements İYS answered "later" for); the sweeper covers a lost one. */
  scheduleOutbox?(row: OutboxRef, delayMs: number, at: number): Promise<void>;
}

/** Kept on the row (outbox.result) between sending the list and its outcome. */
interface BatchState {
  requestId: string;
  submittedAt: number;
  /** The events sent under requestId when İYS refused some at once (İYS answers by position in this list). */
  sent?: number[];
  /** Codes of the movements İYS refused at once (kept in iys_report_items). */
  refusedAtOnce?: Record<string, number>;
}

const unreachable = (err: unknown): { ok: false; permanent: false; code: string; message: string; items?: undefined } => ({
  ok: false,
  permanent: false,
  code: "unreachable",
  message: err instanceof Error ? err.message : String(err),
});

const EVENTS = `SELECT ${EVENT_STORED_COLUMNS} FROM consent_events WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id`;

function eventIds(row: OutboxRow): number[] {
  let ids: unknown;
  try {
    ids = JSON.parse(row.target ?? "");
  } catch {
    ids = null;
  }
  // Ascending, as the planner writes them: the list is sent in id order and İYS answers by position.
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > IYS_BATCH_MAX || !ids.every((i, k) => Number.isInteger(i) && i > (k ? ids[k - 1] : 0))) {
    throw new UnrecoverableError("the row's target is not an ascending list of 1 to 1000 event ids");
  }
  return ids as number[];
}

/**
 * Reports a list of imported movements through İYS's asynchronous multiple write, in two steps a
 * poll period apart: send the list (İYS answers a requestId, kept on the row), then ask İYS what it
 * made of each movement — while it is still working on some, ask again later. Each movement's
 * outcome lands in iys_report_items (its transactionId for the daily movement file, or the error
 * code); the row ends done, or failed naming how many movements İYS refused and why.
 * A crash after sending and before the requestId is kept sends the list again: İYS answers the
 * repeated movements as already recorded (H174), which counts as success.
 */
export async function run(row: OutboxRow, deps: IysBatchDeps): Promise<OutboxOutcome> {
  const ids = eventIds(row);
  const brand = stmt(deps.db, `SELECT b.id, b.iys_code AS iysCode, b.brand_code AS brandCode FROM consent_events e JOIN brands b ON b.id = e.brand_id WHERE e.id = ?`).get(ids[0]) as
    | { id: number; iysCode: string | null; brandCode: string | null }
    | undefined;
  if (!brand) throw new UnrecoverableError("event not found");
  if (!deps.iys.configured || !brand.iysCode || !brand.brandCode) {
    return iysSkipped(deps.db, deps.iys.configured, brand.id);
  }
  const ref = { iysCode: brand.iysCode, brandCode: brand.brandCode };
  const now = deps.clock.now().getTime();
  const state = row.result ? (JSON.parse(row.result) as Partial<BatchState>) : {};

  const save = stmt(
    deps.db,
    `INSERT INTO iys_report_items (event_id, outbox_id, status, transaction_id, creation_date, error_code, error_message, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (event_id) DO UPDATE SET outbox_id = excluded.outbox_id, status = excluded.status, transaction_id = excluded.transaction_id,
       creation_date = excluded.creation_date, error_code = excluded.error_code, error_message = excluded.error_message, updated_at = excluded.updated_at`,
  );

  if (!state.requestId) {
    let events = stmt(deps.db, EVENTS).all(JSON.stringify(ids)) as StoredEvent[];
    if (events.length !== ids.length) throw new UnrecoverableError(`${ids.length - events.length} of the row's events are not in the ledger`);
    // As for single writes: a list goes once no earlier movement of any of its consents holds it back.
    const hold = Math.max(0, ...events.map((e) => iysHoldUntil(deps.db, e, now, deps.iysRetryBaseMs) ?? 0));
    if (hold > 0) return { status: "wait", until: hold };
    // İYS refuses the whole list for a movement it will never take (a 422 naming its index): those
    // are recorded as refused and the rest sent again at once, rather than all lost for one.
    const refusedAtOnce: Record<string, number> = {};
    for (;;) {
      // A network failure, a timeout or a paused token request is a transient failure like a 5xx.
      const sent = await deps.iys.submitBatch(ref, events).catch(unreachable);
      if (sent.ok) {
        const partial = events.length < ids.length;
        const result: BatchState = { requestId: sent.requestId, submittedAt: now, ...(partial ? { sent: events.map((e) => e.id), refusedAtOnce } : {}) };
        return { status: "wait", until: now + deps.iysBatchPollMs, result: result as unknown as Record<string, unknown> };
      }
      if (sent.permanent && sent.items?.length) {
        const refused = new Map(sent.items.map((i) => [i.index, i]));
        deps.db.$client.transaction(() => {
          for (const [index, item] of refused) {
            save.run(events[index]!.id, row.id, "failure", null, null, item.code, item.message, now);
            refusedAtOnce[item.code] = (refusedAtOnce[item.code] ?? 0) + 1;
          }
        })();
        events = events.filter((_, k) => !refused.has(k));
        if (events.length > 0) continue;
        const summary = Object.entries(refusedAtOnce).map(([c, n]) => `${c} ×${n}`).join(", ");
        return { status: "failed", note: `İYS refused all ${ids.length} movements (${summary}); see iys_report_items`, result: { movements: ids.length, refused: ids.length, codes: refusedAtOnce } };
      }
      if (sent.permanent) throw new UnrecoverableError(`İYS refused the list: ${sent.code}: ${sent.message}`);
      return retryLater(row, deps, now, row.createdAt, `İYS multiple write failed: ${sent.code}`);
    }
  }
  const listed = state.sent ?? ids;

  const asked = await deps.iys.batchStatus(ref, state.requestId).catch(unreachable);
  if (!asked.ok) {
    if (asked.permanent) throw new UnrecoverableError(`İYS refused the request query: ${asked.code}: ${asked.message}`);
    return retryLater(row, deps, now, row.createdAt, `İYS request query failed: ${asked.code}`, state as Record<string, unknown>);
  }
  const byIndex = new Map(asked.items.map((i) => [i.index, i]));
  const unfinished = listed.filter((_, k) => (byIndex.get(k)?.status ?? "enqueue") === "enqueue").length;
  const submittedAt = state.submittedAt ?? now;
  if (unfinished > 0) {
    // İYS keeps a request's outcome 60 days; one it has not processed in a week is given up on, visibly.
    if (now - submittedAt > IYS_RETRY_HORIZON_MS) {
      throw new UnrecoverableError(`İYS has not finished request ${state.requestId} in 7 days (${unfinished} of ${ids.length} movements still queued)`);
    }
    return { status: "wait", until: now + deps.iysBatchPollMs, result: { ...state, requestId: state.requestId, submittedAt } as unknown as Record<string, unknown> };
  }

  const codes: Record<string, number> = { ...state.refusedAtOnce };
  let refused = ids.length - listed.length;
  /** Movements İYS answered about itself (busy H123, quota used up H525…), not about them: sent again in a list of their own. */
  const later: number[] = [];
  const laterCodes: string[] = [];
  const retryAt = now + iysRetryDelay(row.attempts, deps.iysRetryBaseMs);
  // İYS holds newer records of these consents: iys_follow rows take them, so the hub answers as İYS does.
  const { follows, retry } = deps.db.$client.transaction(() => {
    const newerOnIys: number[] = [];
    listed.forEach((eventId, k) => {
      const item = byIndex.get(k)!;
      const ok = item.status === "success" || alreadyRecorded(item.code);
      if (!ok && item.code && RETRY_LATER_CODES.has(item.code)) {
        later.push(eventId);
        laterCodes.push(item.code);
      } else if (!ok) {
        refused++;
        const code = item.code ?? "unknown";
        codes[code] = (codes[code] ?? 0) + 1;
        if (code === "H178") newerOnIys.push(eventId);
      }
      save.run(eventId, row.id, ok ? "success" : "failure", item.transactionId ?? null, item.creationDate ?? null, ok ? null : (item.code ?? null), ok ? null : (item.message ?? null), now);
    });
    // The new list keeps this one's creation (İYS_RETRY_HORIZON_MS counts from it) and, pending, holds
    // back later movements of its consents (iysHoldUntil) as this one did.
    const retry =
      later.length === 0 || now - row.createdAt > IYS_RETRY_HORIZON_MS
        ? null
        : (stmt(
            deps.db,
            `INSERT INTO outbox (kind, event_id, target, status, attempts, next_attempt_at, created_at, updated_at)
             VALUES ('iys_batch', ?, ?, 'pending', ?, ?, ?, ?) RETURNING id`,
          ).get(later[0], JSON.stringify(later), row.attempts + 1, retryAt, row.createdAt, now) as { id: number });
    return { follows: planIysFollows(deps.db, newerOnIys, now), retry };
  })();
  await deps.enqueueOutbox(follows).catch(() => {});
  if (retry) await deps.scheduleOutbox?.({ id: retry.id, kind: "iys_batch" }, retryAt - now, retryAt).catch(() => {});
  if (later.length > 0 && !retry) {
    // Past the horizon: given up on, as a list whose every attempt failed would be.
    refused += later.length;
    for (const code of laterCodes) codes[code] = (codes[code] ?? 0) + 1;
  }
  const again = retry ? { retried: later.length, retryRow: retry.id } : {};
  const result = { requestId: state.requestId, submittedAt, movements: ids.length, refused, ...(refused ? { codes } : {}), ...again };
  if (refused === 0) return { status: "done", result };
  const summary = Object.entries(codes).map(([c, n]) => `${c} ×${n}`).join(", ");
  const taken = codes.H178 ? `; İYS's newer records (H178) are taken by iys_follow rows` : "";
  return { status: "failed", note: `İYS refused ${refused} of ${ids.length} movements (${summary}); see iys_report_items${taken}`, result };
}
