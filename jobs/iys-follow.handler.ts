import { UnrecoverableError } from "bullmq";
import { stmt, type Db } from "../db/index";
import type { Ledger, LedgerEvent, OutboxRef } from "../db/ledger";
import type { Clock } from "../src/domain/time";
import { takeIysRecord } from "../src/iys-pull";
import type { IysReporter } from "../src/services/iys";
import { retryLater } from "./iys-order";
import { addOutboxOnce, type OutboxOutcome, type OutboxRow } from "./outbox";
import { iysSkipped } from "../src/iys-reports";

/**
 * İYS refused a movement of the hub's because it holds a newer record of the consent (H178: the
 * recipient refused on İYS before the hub's pull saw it, or another of the provider's systems wrote
 * to İYS). Left there, the hub would go on answering the pre-send check from a record İYS overrode.
 * An `iys_follow` row per such movement asks İYS what it holds (the single status query) and takes
 * it into the ledger as İYS's record (takeIysRecord). Its own row, not the refused report's: the
 * report ends at once (nothing is sent to İYS again, later movements of the consent are not held
 * behind it), and each query is retried on İYS's schedule — a 429 past İYS's 1000 status queries an
 * hour only delays the rest of a list's.
 */
export interface IysFollowDeps {
  db: Db;
  ledger: Ledger;
  iys: IysReporter;
  clock: Clock;
  iysRetryBaseMs: number;
  enqueueOutbox(rows: OutboxRef[]): Promise<void>;
}

/**
 * The follow rows of movements İYS refused with H178, one per event (none added while one is
 * pending: a suppression reported after its first follow may be refused in turn); inside the
 * caller's transaction.
 */
export function planIysFollows(db: Db, eventIds: number[], now: number): OutboxRef[] {
  return eventIds.flatMap((id) => addOutboxOnce(db, "iys_follow", id, now, { unlessPending: true }));
}

const EVENT_SELECT = `SELECT e.id, e.brand_id AS brandId, e.recipient, e.recipient_type AS recipientType, e.type, e.effect, e.consent_date AS consentDate,
  b.iys_code AS iysCode, b.brand_code AS brandCode FROM consent_events e JOIN brands b ON b.id = e.brand_id WHERE e.id = ?`;

export async function run(row: OutboxRow, deps: IysFollowDeps): Promise<OutboxOutcome> {
  const event = stmt(deps.db, EVENT_SELECT).get(row.eventId) as
    | (Pick<LedgerEvent, "id" | "brandId" | "recipient" | "recipientType" | "type" | "effect" | "consentDate"> & { iysCode: string | null; brandCode: string | null })
    | undefined;
  if (!event) throw new UnrecoverableError("event not found");
  if (!deps.iys.configured || !event.iysCode || !event.brandCode) {
    return iysSkipped(deps.db, deps.iys.configured, event.brandId);
  }
  const now = deps.clock.now().getTime();
  let r: Awaited<ReturnType<typeof takeIysRecord>>;
  try {
    // A refusal too old for İYS only learns whether İYS still holds the consent: it waits behind the
    // questions İYS's 3 business days still hang on (the first half of the hour's status queries).
    const low = event.effect === "suppression" && event.consentDate !== null && deps.ledger.lateForIys(event.consentDate);
    r = await takeIysRecord(deps, { id: event.brandId, iysCode: event.iysCode, brandCode: event.brandCode }, event, event.id, { low });
  } catch (err) {
    r = { ok: false, permanent: false, code: "unreachable", message: err instanceof Error ? err.message : String(err) };
  }
  if (!r.ok) {
    if (r.permanent) throw new UnrecoverableError(`İYS refused the status query: ${r.code}: ${r.message}`);
    // The hour's budget of status queries is spent: asked again in the next hour, not on the failure schedule.
    if (r.retryAt !== undefined) return { status: "wait", until: r.retryAt + Math.floor(Math.random() * 60_000), error: `İYS status query waits: ${r.message}` };
    return retryLater(row, deps, now, row.createdAt, `İYS status query failed: ${r.code}`);
  }
  // The new event's callbacks and dealer deliveries (the sweeper retries an enqueue that fails).
  await deps.enqueueOutbox(r.outbox).catch(() => {});
  if (!r.held) return { status: "done", result: { held: null } };
  if (r.outcome === "refused" && r.code === "refusal_kept") {
    // İYS keeps a consent the recipient refused at the hub: someone must tell İYS (its panel).
    return {
      status: "failed",
      note: `İYS holds ONAY dated ${r.held.consentDate ?? "(none)"} (${r.held.source || "?"}), not newer than the hub's refusal: the refusal stands here, but İYS still holds the consent; record the refusal on İYS by hand`,
      result: { held: { status: r.held.status, consentDate: r.held.consentDate, source: r.held.source }, outcome: r.outcome, code: r.code },
    };
  }
  // What İYS holds and what the hub made of it; no address (the event names the consent).
  return {
    status: "done",
    result: {
      held: { status: r.held.status, consentDate: r.held.consentDate, source: r.held.source },
      outcome: r.outcome,
      ...(r.eventId ? { eventId: r.eventId } : {}),
      ...(r.code ? { code: r.code } : {}),
    },
  };
}
