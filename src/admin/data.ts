import type { Db } from "../../db/index";
import { maskAddress, redactAddresses } from "../domain/address";
import type { BusinessCalendar } from "../domain/calendar";
import { TURKEY_OFFSET } from "../domain/time";
import type { Metrics, QueueDepths } from "../metrics/index";
import { H178_NOTE } from "../../jobs/iys-report.handler";
import { IYS_SKIP_NOTES, iysSkipNote } from "../iys-reports";
import { iysPullStandings, type IysPullStanding } from "../iys-pull";

const DAY = 86_400_000;

export interface BrandCount {
  brand: string;
  origin: string;
  onay: number;
  ret: number;
}

export interface RecentEvent {
  id: number;
  brand: string;
  recipient: string;
  type: string;
  status: string;
  origin: string;
  effect: string;
  receivedAt: number;
  iys: string | null;
}

export interface DeadlineRow {
  eventId: number;
  brand: string;
  recipient: string;
  type: string;
  effect: string;
  kind: string;
  outboxStatus: string;
  lastError: string | null;
  receivedAt: number;
  deadline: number | null;
  state: "near" | "past" | "unknown";
}

/**
 * Where each brand's pull of its recipients' movements on İYS stands. İYS lists only its last 7
 * days: a pull that has not succeeded for longer loses refusals for good, so it is `late` after a
 * day and `losing` after 6.
 */
export interface PullRow extends IysPullStanding {
  state: "ok" | "late" | "losing" | "never";
}

export function iysPullStates(db: Db, now: number): PullRow[] {
  return iysPullStandings(db).map((r) => {
    const age = r.pulledAt === null ? null : now - r.pulledAt;
    const state = age === null ? "never" : age > 6 * DAY ? "losing" : age > DAY ? "late" : "ok";
    return { ...r, lastError: r.lastError === null ? null : redactAddresses(r.lastError), state };
  });
}

/**
 * A brand whose movements the hub does not report to İYS (the İYS API is not configured, or the
 * brand lacks its İYS codes): its report rows end `skipped`, so they are not among the deadlines,
 * yet İYS must have them within 3 business days by other means (İYS's panel or bulk upload).
 * Counted from the ledger: movements whose deadline has not passed (RET and ONAY) with the
 * earliest deadline, and the refusals of the last UNREPORTED_DAYS past it.
 */
export interface UnreportedRow {
  brand: string;
  reason: string;
  refusalsDue: number;
  consentsDue: number;
  /**
   * The earliest deadline among the movements due; null when none is due or a year is missing from
   * the holiday table. When `dueCapped`, of those read: one left out (received later, dated earlier)
   * may be due sooner.
   */
  nextDeadline: number | null;
  refusalsPast: number;
  /** More events than were read (UNREPORTED_SCAN_MAX a scan): the counts are lower bounds. */
  capped: boolean;
  /** The scan of the movements still due left some out: their counts are lower bounds, the earliest deadline an upper one. */
  dueCapped: boolean;
}

/** How far back refusals past their deadline are counted. */
export const UNREPORTED_DAYS = 14;
/** At most this many ledger events are read by each of the two scans of a page view (due, past). */
export const UNREPORTED_SCAN_MAX = 100_000;
/**
 * Whether the hub reports to İYS, as its workers last found it: the last İYS report or list to
 * finish, among the last 10 000 outbox rows, says so (skipped for want of the İYS API or not), since
 * the workers and this web process may be configured apart; with none, this process's own
 * IYS_API_BASE_URL (`ownConfig`).
 */
export function reportsToIysNow(db: Db, ownConfig: boolean): boolean {
  const newest = db.$client
    .prepare(
      `SELECT last_error AS note FROM (SELECT id, kind, status, last_error, updated_at FROM outbox ORDER BY id DESC LIMIT 10000)
       WHERE kind IN ('iys_report', 'iys_batch') AND status <> 'pending' ORDER BY updated_at DESC, id DESC LIMIT 1`,
    )
    .get() as { note: string | null } | undefined;
  return newest ? newest.note !== IYS_SKIP_NOTES.unconfigured : ownConfig;
}

export function unreportedMovements(deps: { db: Db; calendar: BusinessCalendar; now: number; iysConfigured: boolean }, scanMax = UNREPORTED_SCAN_MAX): UnreportedRow[] {
  if (!Number.isInteger(scanMax) || scanMax < 1) throw new RangeError("scanMax must be a positive integer");
  const db = deps.db.$client;
  const brands = db
    .prepare(`SELECT id, code FROM brands WHERE ? = 0 OR iys_code IS NULL OR brand_code IS NULL ORDER BY code`)
    .all(deps.iysConfigured ? 1 : 0) as { id: number; code: string }[];
  if (brands.length === 0) return [];
  const ids = JSON.stringify(brands.map((b) => b.id));
  const since = deps.calendar.oldestOpenDay(new Date(deps.now), 3, UNREPORTED_DAYS).getTime();
  // Two scans of the received_at index, each at most UNREPORTED_SCAN_MAX events (the filters need
  // each event's row, and better-sqlite3 holds the web process meanwhile): since the oldest day
  // still due, oldest received first, so a cap leaves out the newest (mostly the least urgent); and the refusals
  // received before it (all past their deadline). A movement is due from the earlier of its
  // consentDate and its arrival, by Istanbul day (the deadline depends on the day only).
  // What reportsToIys (src/iys-reports.ts) sends to İYS, as a filter.
  const reported = `effect = 'movement' AND origin NOT IN ('iys', 'registered') AND brand_id IN (SELECT value FROM json_each(@ids))`;
  const due = db
    .prepare(
      `SELECT brand_id AS brandId, status, CAST((startsAt + ${TURKEY_OFFSET}) / ${DAY} AS INTEGER) AS day, min(startsAt) AS startsAt, count(*) AS n FROM (
         SELECT brand_id, status, effect, origin, min(received_at, COALESCE(consent_date, received_at)) AS startsAt FROM consent_events
          WHERE received_at >= @since ORDER BY received_at LIMIT ${scanMax})
       WHERE ${reported} GROUP BY brandId, status, day`,
    )
    .all({ since, ids }) as { brandId: number; status: string; startsAt: number; n: number }[];
  const past = db
    .prepare(
      `SELECT brand_id AS brandId, count(*) AS n FROM (
         SELECT brand_id, status, effect, origin FROM consent_events
          WHERE received_at >= @from AND received_at < @since ORDER BY received_at DESC LIMIT ${scanMax})
       WHERE status = 'RET' AND ${reported} GROUP BY brandId`,
    )
    .all({ from: deps.now - UNREPORTED_DAYS * DAY, since, ids }) as { brandId: number; n: number }[];
  // Whether either scan left events out (index only: no event row is read).
  const scanned = (from: number, to: number) =>
    (db.prepare(`SELECT count(*) AS n FROM (SELECT 1 FROM consent_events WHERE received_at >= ? AND received_at < ? LIMIT ${scanMax + 1})`).get(from, to) as { n: number }).n;
  const dueCapped = scanned(since, Number.MAX_SAFE_INTEGER) > scanMax;
  const capped = dueCapped || scanned(deps.now - UNREPORTED_DAYS * DAY, since) > scanMax;
  const reason = iysSkipNote(deps.iysConfigured);
  const rows = new Map(brands.map((b) => [b.id, { brand: b.code, reason, refusalsDue: 0, consentsDue: 0, nextDeadline: null as number | null, refusalsPast: 0, capped, dueCapped }]));
  for (const p of past) rows.get(p.brandId)!.refusalsPast += p.n;
  for (const g of due) {
    const row = rows.get(g.brandId)!;
    let deadline: number | null = null;
    try {
      deadline = deps.calendar.deadline(new Date(g.startsAt), 3).getTime();
    } catch {
      // A year missing from the holiday table: counted as due, its deadline unknown.
    }
    if (deadline !== null && deadline < deps.now) {
      if (g.status === "RET") row.refusalsPast += g.n;
      continue;
    }
    if (g.status === "RET") row.refusalsDue += g.n;
    else row.consentsDue += g.n;
    if (deadline !== null && (row.nextDeadline === null || deadline < row.nextDeadline)) row.nextDeadline = deadline;
  }
  return [...rows.values()];
}

export interface FailureRow {
  source: "outbox" | "delivery";
  id: number;
  kind: string;
  target: string | null;
  status: string;
  attempts: number;
  lastError: string | null;
  at: number;
}

export interface Dashboard {
  now: number;
  brandCounts: BrandCount[];
  receipts: { channel: string; status: string; n: number }[];
  recent: RecentEvent[];
  deadlines: DeadlineRow[];
  /** Deadline rows beyond the ones shown (the oldest). */
  deadlinesNotShown: number;
  iysPull: PullRow[];
  unreported: UnreportedRow[];
  failures: FailureRow[];
  queues: QueueDepths;
}

/**
 * Everything the dashboard shows. Counts come from the metrics tallies (no full-table GROUP BY per
 * page view); lists are index-bounded queries.
 */
export async function loadDashboard(deps: { db: Db; calendar: BusinessCalendar; metrics: Metrics; now: number; iysConfigured: boolean }): Promise<Dashboard> {
  const db = deps.db.$client;
  const [tallied, queues] = await Promise.all([deps.metrics.tallied(), deps.metrics.queueDepths()]);
  const brandCodes = new Map((db.prepare("SELECT id, code FROM brands").all() as { id: number; code: string }[]).map((b) => [String(b.id), b.code]));

  const byBrand = new Map<string, BrandCount>();
  for (const { labels, n } of tallied.events) {
    const brand = brandCodes.get(labels.brand_id!) ?? `#${labels.brand_id}`;
    const key = `${brand}\0${labels.origin}`;
    const row = byBrand.get(key) ?? { brand, origin: labels.origin!, onay: 0, ret: 0 };
    if (labels.status === "ONAY") row.onay += n;
    else row.ret += n;
    byBrand.set(key, row);
  }
  const brandCounts = [...byBrand.values()].sort((a, b) => a.brand.localeCompare(b.brand) || a.origin.localeCompare(b.origin));
  const receipts = tallied.receipts
    .map(({ labels, n }) => ({ channel: labels.channel!, status: labels.status!, n }))
    .sort((a, b) => a.channel.localeCompare(b.channel) || a.status.localeCompare(b.status));

  const recent = (
    db
      .prepare(
        `SELECT e.id, b.code AS brand, e.recipient, e.type, e.status, e.origin, e.effect, e.received_at AS receivedAt,
           COALESCE((SELECT o.status FROM outbox o WHERE o.event_id = e.id AND o.kind = 'iys_report' ORDER BY o.id DESC LIMIT 1),
             (SELECT CASE i.status WHEN 'success' THEN 'done' ELSE 'failed' END FROM iys_report_items i WHERE i.event_id = e.id)) AS iys
         FROM consent_events e JOIN brands b ON b.id = e.brand_id ORDER BY e.id DESC LIMIT 50`,
      )
      .all() as RecentEvent[]
  ).map((e) => ({ ...e, recipient: maskAddress(e.recipient) }));

  const due = deadlines(deps);
  return { now: deps.now, brandCounts, receipts, recent, deadlines: due.rows, deadlinesNotShown: due.notShown, iysPull: iysPullStates(deps.db, deps.now), unreported: unreportedMovements(deps), failures: failures(deps.db, tallied.failedOutboxIds, tallied.failedDeliveryIds), queues };
}

/**
 * RETs (movements and suppressions) whose 3-business-day deadline is less than one business day
 * away or past while their İYS report (a single write, or an imported list's movement İYS has not
 * accepted), the question to İYS about a refusal kept to the hub (iys_follow) or a provider/partner
 * notification (callback) is not done — however long ago: an
 * overdue refusal stays listed until its work is done. The deadline runs from the refusal's date
 * (consentDate; the time it reached us when that is earlier or missing), as İYS counts it (H467). A
 * RET dated less than 24 h ago cannot be near: the end of the 2nd business day after it is more
 * than a day away.
 */
/** At most this many deadline rows are shown; the rest are counted (DashboardData.deadlinesNotShown). */
const DEADLINES_SHOWN = 500;
/** Rows read for them (a few at the cutoff may turn out not near yet, and are left out). */
const DEADLINES_READ = 2000;

/**
 * The latest start (refusal date) whose last business day (the 2nd after it) has begun by `now`:
 * every refusal dated at or before it is near its deadline or past it. Null when the holiday table
 * cannot tell (a year missing): the caller falls back to a day ago, and judges each row itself.
 */
function nearCutoff(calendar: BusinessCalendar, now: number): number | null {
  const near = (starts: number) => calendar.deadline(new Date(starts), 2).getTime() < now;
  try {
    let lo = now - 40 * DAY; // the longest closure is 9 days: 40 calendar days hold 3 business days
    let hi = now - DAY;
    if (!near(lo)) return null;
    if (near(hi)) return hi;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (near(mid)) lo = mid;
      else hi = mid;
    }
    return lo;
  } catch {
    return null;
  }
}

/**
 * Refusals whose İYS report or notification is not done, near their 3-business-day deadline or past
 * it, counted by state (for /metrics: alert on any `past`). Those beyond the rows read (over 2 000,
 * all older than the oldest read) count in that oldest row's state: an older start only makes the
 * deadline earlier.
 */
export function deadlineCounts(deps: { db: Db; calendar: BusinessCalendar; now: number }): Record<DeadlineRow["state"], number> {
  const { rows, notShown } = deadlines({ ...deps, shown: Number.MAX_SAFE_INTEGER });
  const counts: Record<DeadlineRow["state"], number> = { near: 0, past: 0, unknown: 0 };
  for (const r of rows) counts[r.state]++;
  const oldest = rows.reduce<DeadlineRow | null>((o, r) => (o === null || r.receivedAt < o.receivedAt ? r : o), null);
  if (notShown > 0) counts[oldest?.state ?? "past"] += notShown;
  return counts;
}

function deadlines(deps: { db: Db; calendar: BusinessCalendar; now: number; shown?: number }): { rows: DeadlineRow[]; notShown: number } {
  // Open: not done, and not skipped (work left undone on purpose: İYS not configured, an endpoint
  // disabled — replayed from there), and no later row of the same work done (a callback replayed,
  // a follow asked again).
  const open = `WITH open AS (
         SELECT o.event_id AS eventId, o.kind, o.status, o.last_error FROM outbox o
          WHERE o.status NOT IN ('done', 'skipped') AND o.kind IN ('iys_report', 'iys_follow', 'callback') AND o.event_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM outbox d WHERE d.event_id = o.event_id AND d.kind = o.kind AND d.target IS o.target AND d.status = 'done')
            -- Refused H178 (İYS holds a newer record of the consent): nothing is owed once the follow took İYS's record.
            AND NOT (o.kind = 'iys_report' AND substr(o.last_error, 1, ${H178_NOTE.length}) = '${H178_NOTE}'
                     AND EXISTS (SELECT 1 FROM outbox f WHERE f.event_id = o.event_id AND f.kind = 'iys_follow' AND f.status = 'done'))
         UNION ALL
         SELECT CAST(j.value AS INTEGER), o.kind, o.status, o.last_error FROM outbox o, json_each(o.target) j
          WHERE o.status NOT IN ('done', 'skipped') AND o.kind = 'iys_batch'
            AND NOT EXISTS (SELECT 1 FROM iys_report_items i WHERE i.event_id = j.value AND i.status = 'success'))`;
  const from = `FROM open
       JOIN consent_events e ON e.id = open.eventId
       JOIN brands b ON b.id = e.brand_id
       WHERE e.status = 'RET' AND min(e.received_at, COALESCE(e.consent_date, e.received_at)) <= ?`;
  // Only refusals near or past their deadline are read (SQL cannot count business days): newer
  // ones, however many, never crowd the overdue out of what is read.
  const cutoff = nearCutoff(deps.calendar, deps.now) ?? deps.now - DAY;
  const rows = deps.db.$client
    .prepare(
      `${open}
       SELECT e.id AS eventId, b.code AS brand, e.recipient, e.type, e.effect, e.received_at AS receivedAt,
         min(e.received_at, COALESCE(e.consent_date, e.received_at)) AS startsAt,
         open.kind, open.status AS outboxStatus, open.last_error AS lastError
       ${from}
       ORDER BY startsAt DESC LIMIT ${DEADLINES_READ}`,
    )
    .all(cutoff) as (Omit<DeadlineRow, "deadline" | "state"> & { startsAt: number })[];
  const out: DeadlineRow[] = [];
  for (const r of rows) {
    let deadline: number | null = null;
    let state: DeadlineRow["state"] = "unknown";
    try {
      const starts = new Date(r.startsAt);
      deadline = deps.calendar.deadline(starts, 3).getTime();
      const lastDayStarts = deps.calendar.deadline(starts, 2).getTime();
      if (deps.now > deadline) state = "past";
      else if (deps.now > lastDayStarts) state = "near";
      else continue;
    } catch {
      // A year missing from the holiday table: shown as unknown rather than guessed.
    }
    const { startsAt: _, ...row } = r;
    out.push({ ...row, recipient: maskAddress(r.recipient), deadline, state });
  }
  // Past first, then near, oldest first in each; the newest kept when there are too many (the
  // oldest overdue work is the least likely to be still saved by a look at this page).
  const rank = { past: 0, near: 1, unknown: 2 } as const;
  const shown = out.slice(0, deps.shown ?? DEADLINES_SHOWN).sort((a, b) => rank[a.state] - rank[b.state] || a.receivedAt - b.receivedAt);
  // Read newest first, so the rows left out of what was read (not near yet) are all among it.
  const total = rows.length < DEADLINES_READ ? rows.length : (deps.db.$client.prepare(`${open} SELECT count(*) AS n ${from}`).get(cutoff) as { n: number }).n;
  return { rows: shown, notShown: total - (rows.length - out.length) - shown.length };
}

function failures(db: Db, outboxIds: number[], deliveryIds: number[]): FailureRow[] {
  const byIds = <T>(sql: (marks: string) => string, ids: number[]): T[] => (ids.length ? (db.$client.prepare(sql(ids.map(() => "?").join(","))).all(...ids) as T[]) : []);
  const outbox = byIds<FailureRow>(
    (m) => `SELECT 'outbox' AS source, id, kind, target, status, attempts, last_error AS lastError, updated_at AS at FROM outbox WHERE id IN (${m})`,
    outboxIds,
  );
  const deliveries = byIds<FailureRow>(
    (m) =>
      `SELECT 'delivery' AS source, id, 'callback' AS kind, endpoint_id AS target, COALESCE('HTTP ' || response_code, 'error') AS status, attempt AS attempts, error AS lastError, at FROM deliveries WHERE id IN (${m})`,
    deliveryIds,
  );
  // Errors are stored masked (jobs/workers.ts); masked again here for rows written before that.
  return [...outbox, ...deliveries].map((r) => ({ ...r, lastError: r.lastError === null ? null : redactAddresses(r.lastError) })).sort((a, b) => b.at - a.at);
}
