import { createHash } from "node:crypto";
import Database from "better-sqlite3";
import type { Db } from "../db/index";
import { formatIysDate, fromIstanbulWall, parseIysDate } from "./domain/time";
import { csvLine, IMPORT_COLUMNS, STATE_IYS_COLUMN } from "./import";

/**
 * A second, read-only connection for long streamed reads. better-sqlite3 allows no other statement
 * on a connection while an iterator is open, so a streamed export on the main connection would
 * block every write; the reader also gives a consistent snapshot (WAL) for the read's duration.
 */
export function openReader(db: Db): Database.Database {
  const reader = new Database(db.$client.name, { readonly: true, fileMustExist: true });
  reader.pragma("busy_timeout = 5000");
  return reader;
}

const DAY = 86_400_000;

/** `YYYY-MM-DD` (an Istanbul calendar day) → [start, end) instants in ms, or null if not a real date. */
export function istanbulDayRange(day: string): { start: number; end: number } | null {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return null;
  const start = parseIysDate(`${day} 00:00:00`);
  if (!start.ok) return null;
  const next = fromIstanbulWall(Date.parse(`${day}T00:00:00Z`) + DAY);
  return next ? { start: start.date.getTime(), end: next.getTime() } : null;
}

// Absent values are null (JSONL's null; an empty CSV field).
const iysDate = (ms: number | null) => (ms === null ? null : formatIysDate(new Date(ms)));

export type ExportFormat = "csv" | "jsonl";

interface StateRow {
  type: string;
  recipient: string;
  status: string;
  source: string | null;
  consentDate: number | null;
  recipientType: string;
  retailerCode: string | null;
}

interface EventRow extends StateRow {
  eventId: number;
  hash: string;
}

const toBulk = (r: StateRow) => ({
  type: r.type,
  recipient: r.recipient,
  status: r.status,
  source: r.source,
  consentDate: iysDate(r.consentDate),
  recipientType: r.recipientType,
  retailerCode: r.retailerCode,
});

function* lines<T extends Record<string, unknown>>(rows: Iterable<T>, columns: readonly string[], format: ExportFormat): Generator<string> {
  if (format === "csv") yield csvLine([...columns]);
  for (const r of rows) yield format === "csv" ? csvLine(columns.map((c) => r[c] as string | number | null)) : `${JSON.stringify(r)}\n`;
}

/** The state export's columns: the İYS bulk columns, and whether İYS holds the record (STATE_IYS_COLUMN). */
export const STATE_EXPORT_COLUMNS = [...IMPORT_COLUMNS, STATE_IYS_COLUMN] as const;

/**
 * The brand's current consents in the İYS bulk columns (re-importable with `hub import`), and `iys`:
 * `held` when İYS holds the record (İYS accepted the hub's report of it, or it is İYS's own or a
 * registered one); `not_held` when the hub's report of it is still on its way or İYS refused it;
 * `not_sent` when it was never sent (İYS not configured for the brand, a local suppression). Another
 * hub importing the file with --registered takes `not_held` rows as ordinary movements, reported to
 * İYS within their 3 business days or refused H467 as İYS would (a consent İYS never took is void
 * after that, domain.md); `held` and `not_sent` rows as records İYS holds, on the provider's word.
 */
export function* exportState(reader: Database.Database, brandId: number, format: ExportFormat): Generator<string> {
  const rows = reader
    .prepare(
      `SELECT s.type, s.recipient, s.status, s.source, s.consent_date AS consentDate, s.recipient_type AS recipientType, s.retailer_code AS retailerCode,
         CASE WHEN e.effect <> 'movement' THEN 'not_sent'
           WHEN e.origin IN ('iys', 'registered')
             OR EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = s.event_id AND o.kind = 'iys_report' AND o.status = 'done')
             OR EXISTS (SELECT 1 FROM iys_report_items i WHERE i.event_id = s.event_id AND i.status = 'success')
             OR EXISTS (SELECT 1 FROM iys_pulled_movements p WHERE p.event_id = s.event_id) THEN 'held'
           WHEN EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = s.event_id AND o.kind = 'iys_report' AND o.status IN ('pending', 'failed', 'exhausted'))
             OR EXISTS (SELECT 1 FROM iys_report_items i WHERE i.event_id = s.event_id AND i.status <> 'success')
             -- In a list İYS has not answered for (its movements are named in the row's target): computed once, not per row.
             OR s.event_id IN (SELECT j.value FROM outbox o, json_each(o.target) j WHERE o.kind = 'iys_batch' AND o.status IN ('pending', 'failed', 'exhausted')) THEN 'not_held'
           ELSE 'not_sent' END AS iys
       FROM consent_state s JOIN consent_events e ON e.id = s.event_id WHERE s.brand_id = ? ORDER BY s.recipient, s.recipient_type, s.type`,
    )
    .iterate(brandId) as Iterable<StateRow & { iys: string }>;
  yield* lines(map(rows, (r) => ({ ...toBulk(r), iys: r.iys })), STATE_EXPORT_COLUMNS, format);
}

export const EVENT_EXPORT_COLUMNS = [...IMPORT_COLUMNS, "eventId", "hash"] as const;

/** The brand's ledger events received in [fromMs, toMs), in ledger order, in the bulk columns plus eventId and hash. */
export function* exportEvents(reader: Database.Database, brandId: number, fromMs: number, toMs: number, format: ExportFormat): Generator<string> {
  const rows = reader
    .prepare(
      `SELECT id AS eventId, hash, type, recipient, status, source, consent_date AS consentDate, recipient_type AS recipientType, retailer_code AS retailerCode
       FROM consent_events WHERE received_at >= ? AND received_at < ? AND brand_id = ? ORDER BY id`,
    )
    .iterate(fromMs, toMs, brandId) as Iterable<EventRow>;
  yield* lines(map(rows, (r) => ({ ...toBulk(r), eventId: r.eventId, hash: r.hash })), EVENT_EXPORT_COLUMNS, format);
}

function* map<A, B>(it: Iterable<A>, f: (a: A) => B): Generator<B> {
  for (const a of it) yield f(a);
}

/** The columns of İYS's daily movement file ("Günlük İzin Hareket Dosyası"), in its order. */
export const DAILY_COLUMNS = ["creationDate", "transactionId", "recipient", "recipientType", "type", "status", "consentDate", "source"] as const;

/**
 * Movements without İYS's creationDate (accepted before it was kept) count as registered when the
 * hub recorded them: looked for among the events recorded this long around the day.
 */
const UNDATED_REGISTRATION_LAG_MS = 8 * 24 * 3_600_000;

/**
 * The brand's movements İYS registered on one Istanbul calendar day, as İYS's daily movement file,
 * following the İYS API 3.2.0 "MUTABAKAT YÖNETİMİ" section, so that its SHA-384 can be compared
 * with the one of İYS's own file:
 * - columns creationDate, transactionId, recipient, recipientType, type, status, consentDate, source;
 * - rows sorted by creationDate then transactionId; the file ends with "\n";
 * - SHA-384 over the file's bytes, as lower-case hex.
 * The rows are the movements İYS accepted, with the transactionId and creationDate İYS answered (a
 * single write's kept on its outbox row, an imported list's movements' in iys_report_items, a
 * recipient's own movement on İYS as İYS's pull listed it in iys_pulled_movements; one the pull
 * listed that the hub took no event for, the status it held already or a date older than its
 * record, as İYS gave it in iys_listed_movements), and on
 * the day İYS registered them, however long after the hub recorded them (a report reopened when a
 * brand got its İYS codes weeks later): each of the three is found by that creationDate (indexed).
 * Movements not (yet) accepted — pending, refused, or İYS not configured — are not in İYS's file
 * and not here (the dashboard lists them); suppressions are no İYS movements at all. A movement
 * accepted before İYS's creationDate was kept has the hub's recording time instead.
 * Assumptions (the document does not settle them): the file starts with the header row shown in its
 * example; fields are comma-separated without quoting (no İYS value contains a comma); UTF-8.
 */
export function* dailyReport(reader: Database.Database, brandId: number, day: { start: number; end: number }): Generator<string> {
  const rows = reader
    .prepare(
      `WITH candidates(id) AS (
         SELECT event_id FROM outbox WHERE kind = 'iys_report' AND status = 'done' AND result ->> '$.creationDate' >= @start AND result ->> '$.creationDate' < @end
         UNION SELECT event_id FROM iys_report_items WHERE creation_date >= @start AND creation_date < @end
         UNION SELECT event_id FROM iys_pulled_movements WHERE creation_date >= @start AND creation_date < @end
         UNION SELECT id FROM consent_events WHERE received_at >= @start - @lag AND received_at < @end + @lag
       ),
       ev AS (
         SELECT created, transactionId, recipient, recipientType, type, status, consentDate, source, id FROM (
           SELECT COALESCE(json_extract(o.result, '$.creationDate'), i.creation_date, p.creation_date, e.received_at) AS created,
             COALESCE(json_extract(o.result, '$.transactionId'), i.transaction_id, p.transaction_id) AS transactionId, e.id,
             e.recipient, e.recipient_type AS recipientType, e.type, e.status, e.consent_date AS consentDate, e.source
           FROM candidates c
           JOIN consent_events e ON e.id = c.id
           LEFT JOIN outbox o ON o.event_id = e.id AND o.kind = 'iys_report' AND o.status = 'done'
           LEFT JOIN iys_report_items i ON i.event_id = e.id AND i.status = 'success'
           LEFT JOIN iys_pulled_movements p ON p.event_id = e.id
           WHERE e.brand_id = @brand AND (e.effect = 'movement' OR o.id IS NOT NULL))
         WHERE transactionId IS NOT NULL AND created >= @start AND created < @end
       )
       SELECT * FROM (
         SELECT created, transactionId, recipient, recipientType, type, status, consentDate, source, id FROM ev
         UNION ALL
         SELECT creation_date, transaction_id, recipient, recipient_type, type, status, consent_date, source, NULL FROM iys_listed_movements
         WHERE brand_id = @brand AND creation_date >= @start AND creation_date < @end AND transaction_id NOT IN (SELECT transactionId FROM ev)
       )
       ORDER BY created / 1000, transactionId, id`,
    )
    .iterate({ start: day.start, end: day.end, lag: UNDATED_REGISTRATION_LAG_MS, brand: brandId }) as Iterable<{
    created: number;
    transactionId: string;
    recipient: string;
    recipientType: string;
    type: string;
    status: string;
    /** An event's instant, or İYS's own text for a movement only İYS's pull listed. */
    consentDate: number | string | null;
    source: string | null;
  }>;
  yield `${DAILY_COLUMNS.join(",")}\n`;
  for (const r of rows) {
    const consentDate = typeof r.consentDate === "string" ? r.consentDate : iysDate(r.consentDate);
    yield `${[iysDate(r.created), r.transactionId, r.recipient, r.recipientType, r.type, r.status, consentDate, r.source ?? ""].join(",")}\n`;
  }
}

/** SHA-384 (lower-case hex) of the concatenated chunks. */
export function sha384(chunks: Iterable<string>): string {
  const h = createHash("sha384");
  for (const c of chunks) h.update(c, "utf8");
  return h.digest("hex");
}
