import { stmt, type Db } from "../db/index";
import type { ActionOutcome, LedgerEvent, OutboxInput, OutboxPlanner, OutboxRef, PlanContext } from "../db/ledger";
import { UnknownHolidayYearError, type BusinessCalendar } from "./domain/calendar";
import type { OutboxOutcome } from "../jobs/outbox";
import { isProviderSource } from "./domain/consent";
import { isLate } from "./domain/consent-rules";
import { IYS_BATCH_MAX } from "./services/iys";

/**
 * Provider-sourced movements go to İYS; suppressions are not İYS movements, İYS's own and the
 * records a registered import says İYS holds are already there. A TACIR first record may have no source (İYS makes source and consentDate optional for it,
 * and the ledger marks it as held by İYS): it is reported without them.
 */
export function reportsToIys(e: LedgerEvent): boolean {
  if (e.effect !== "movement" || e.origin === "iys" || e.origin === "registered") return false;
  return e.source === null ? e.recipientType === "TACIR" : isProviderSource(e.source);
}

/**
 * A refusal kept as a local suppression because the hub knew of no consent: İYS is asked whether it
 * holds one from before (collected by another of the provider's systems); if so the refusal is
 * reported over it (iys_follow, reportSuppression). Only for brands with İYS codes (registered when
 * the İYS API is configured), where the hub had no record and İYS would still take it (not past 3
 * business days); BIREYSEL only (the channels' refusals), not bulk imports': a status query each
 * would spend İYS's 1000 an hour for days.
 * And a refusal too old for İYS (H467) over a consent İYS holds, of either recipient type: the
 * follow cannot report it, but if İYS still holds the consent the row ends failed saying so (to be
 * recorded on İYS by hand), where the dashboard lists failures.
 */
export function iysFollowPlanner(db: Db): OutboxPlanner {
  return (e: LedgerEvent, context: PlanContext) => {
    if (e.effect !== "suppression" || e.status !== "RET" || e.origin === "import" || e.origin === "registered" || e.origin === "iys") return [];
    if (e.source === null || !isProviderSource(e.source)) return [];
    // A channel refusal carried over to a base registered later, an old refusal sent through the API.
    const lateOverConsent = context.late && context.previous?.status === "ONAY" && context.previous.inIys;
    if (!lateOverConsent && (e.recipientType !== "BIREYSEL" || context.previous !== null || context.late)) return [];
    return brandHasIysCodes(db, e.brandId) ? [{ kind: "iys_follow", eventId: e.id }] : [];
  };
}

/**
 * Every reportable movement one `iys_report` row (İYS's single write) — except bulk imports', which
 * `iysBatchPlanner` reports in lists: at İYS's 10 requests a second a million single writes would
 * take more than a day of the brand's whole API budget, ahead of its recipients' refusals.
 */
export function iysReportPlanner(e: LedgerEvent): OutboxInput[] {
  if (!reportsToIys(e) || e.origin === "import") return [];
  return [{ kind: "iys_report", eventId: e.id }];
}

/**
 * The İYS reports of one import transaction: its reportable movements in `iys_batch` rows of up to
 * IYS_BATCH_MAX (İYS's asynchronous multiple write), in ledger order. İYS asks that a list not hold
 * one address twice and that several movements of one address go through the single write; so an
 * address with more than one movement in the transaction has them all reported singly — counting
 * the refusals the ledger carried over to the import's consents (`derived`: reported singly by
 * iysReportPlanner already, as channel refusals).
 */
export function iysBatchPlanner(outcomes: ActionOutcome[], max = IYS_BATCH_MAX, derived: ActionOutcome[] = []): OutboxInput[] {
  const events: LedgerEvent[] = [];
  const seen = new Map<string, number>();
  const count = (e: LedgerEvent) => seen.set(e.recipient, (seen.get(e.recipient) ?? 0) + 1);
  for (const o of outcomes) {
    if (o.kind !== "recorded" || !reportsToIys(o.event)) continue;
    events.push(o.event);
    count(o.event);
  }
  for (const o of derived) if (o.kind === "recorded" && reportsToIys(o.event)) count(o.event);
  const rows: OutboxInput[] = [];
  let list: number[] = [];
  const close = () => {
    if (list.length) rows.push({ kind: "iys_batch", eventId: list[0]!, target: JSON.stringify(list) });
    list = [];
  };
  for (const e of events) {
    if (seen.get(e.recipient)! > 1) {
      rows.push({ kind: "iys_report", eventId: e.id });
      continue;
    }
    list.push(e.id);
    if (list.length === max) close();
  }
  close();
  return rows;
}

/** Brands whose movements can go to İYS: both codes given (an empty one is none, as the İYS jobs tell it). */
const HAS_IYS_CODES = `iys_code <> '' AND brand_code <> ''`;

export function brandHasIysCodes(db: Db, brandId: number): boolean {
  return stmt(db, `SELECT 1 FROM brands WHERE id = ? AND ${HAS_IYS_CODES}`).get(brandId) !== undefined;
}

/** Why an İYS report row ended `skipped`: the İYS API is not configured, or the brand lacks its İYS codes. */
export const IYS_SKIP_NOTES = {
  unconfigured: "İYS API not configured (IYS_API_BASE_URL)",
  noCodes: "brand has no iysCode/brandCode",
} as const;

export const iysSkipNote = (configured: boolean) => (configured ? IYS_SKIP_NOTES.noCodes : IYS_SKIP_NOTES.unconfigured);

/**
 * What an İYS job makes of work İYS cannot be sent: skipped, saying why — unless the brand has its
 * codes by the time that is written (given them while the job ran: the reopen of the change did not
 * see this row, still pending then), when it is tried again at once.
 */
export function iysSkipped(db: Db, configured: boolean, brandId: number): OutboxOutcome {
  if (!configured) return { status: "skipped", note: IYS_SKIP_NOTES.unconfigured };
  return { status: "skipped", note: IYS_SKIP_NOTES.noCodes, unlessNow: () => brandHasIysCodes(db, brandId) };
}

/** Rows reopened a transaction (each a savepoint of the caller's transaction, when there is one). */
const REOPEN_CHUNK = 1000;

/**
 * İYS reports skipped because the hub could not report them then (the İYS API not configured, the
 * brand without its codes), made pending again now that the brand has its codes, while İYS would
 * still take them: movements no more than 3 business days after their consentDate (or arrival, if
 * earlier; H467; HS_2015 whenever), lists (iys_batch) of imports and follows (iys_follow: a
 * follow judges lateness itself, and one of a refusal too old for İYS is to say İYS still holds
 * the consent) received since the oldest day still open. Older ones stay skipped: İYS would refuse
 * them. Reopened work is planned anew (created_at now): its retries' 7 days count from here.
 * `brandId` limits it to one brand. Answers the rows reopened (to enqueue; the sweeper takes them
 * otherwise).
 */
export function reopenSkippedIysReports(db: Db, calendar: BusinessCalendar, now: number, brandId?: number): OutboxRef[] {
  const since = calendar.oldestOpenDay(new Date(now)).getTime();
  const first = stmt<[number], { id: number }>(db, `SELECT id FROM consent_events WHERE received_at >= ? ORDER BY received_at LIMIT 1`).get(since);
  if (!first) return [];
  // `status <> 'done'` lets SQLite use the partial index of unfinished rows (kind, event_id).
  type Candidate = { id: number; kind: OutboxRef["kind"]; consentDate: number | null; receivedAt: number; source: string | null };
  const rows = stmt<[number, string, string, number | null, number | null], Candidate>(
    db,
    `SELECT o.id, o.kind, e.consent_date AS consentDate, e.received_at AS receivedAt, e.source FROM outbox o
       JOIN consent_events e ON e.id = o.event_id
     WHERE o.kind IN ('iys_report', 'iys_batch', 'iys_follow') AND o.status <> 'done' AND o.status = 'skipped' AND o.event_id >= ?
       AND o.last_error IN (?, ?) AND e.brand_id IN (SELECT id FROM brands WHERE ${HAS_IYS_CODES}) AND (? IS NULL OR e.brand_id = ?)`,
  ).all(first.id, IYS_SKIP_NOTES.unconfigured, IYS_SKIP_NOTES.noCodes, brandId ?? null, brandId ?? null);
  const open = rows.filter((r) => {
    if (r.kind !== "iys_report") return r.receivedAt >= since;
    if (r.source === "HS_2015") return true; // İYS's fixed date for consents before the law: no window
    try {
      return !isLate(new Date(Math.min(r.consentDate ?? r.receivedAt, r.receivedAt)), { now: new Date(now), calendar });
    } catch (err) {
      if (err instanceof UnknownHolidayYearError) return true; // a year missing from the holiday table: İYS decides
      throw err;
    }
  });
  const reopen = stmt(
    db,
    `UPDATE outbox SET status = 'pending', attempts = 0, last_error = NULL, result = NULL, next_attempt_at = NULL, created_at = ?, updated_at = ? WHERE id = ? AND status = 'skipped'`,
  );
  // Logged for /metrics, which takes a settled status as final unless told (src/metrics/tally.ts).
  const logged = stmt(db, `INSERT INTO outbox_reopened (outbox_id, at) VALUES (?, ?)`);
  const done: OutboxRef[] = [];
  for (let k = 0; k < open.length; k += REOPEN_CHUNK) {
    db.$client.transaction(() => {
      for (const r of open.slice(k, k + REOPEN_CHUNK)) {
        if (reopen.run(now, now, r.id).changes !== 1) continue;
        logged.run(r.id, now);
        done.push({ id: r.id, kind: r.kind });
      }
    })();
  }
  return done;
}

/** Enqueues reopened rows a chunk at a time, under job ids of their own (the jobs that skipped them are finished); the sweeper takes what could not be. */
export async function enqueueReopened(enqueue: (rows: OutboxRef[], opts: { tag: string }) => Promise<void>, rows: OutboxRef[], now: number): Promise<void> {
  for (let k = 0; k < rows.length; k += REOPEN_CHUNK) await enqueue(rows.slice(k, k + REOPEN_CHUNK), { tag: `reopened${now}` });
}
