import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { stmt, type Db } from "../db/index";
import { crashPoint } from "./crash";
import { addOutboxOnce } from "../jobs/outbox";
import type { ActionOutcome, ConsentAction, Ledger, OutboxRef } from "../db/ledger";
import { parseIysDate, type Clock } from "./domain/time";
import type { ConsentType, RecipientType } from "./domain/consent";
import { IMPORT_COLUMNS, rowToAction } from "./import";
import { isProviderSource } from "./domain/consent";
import type { Logger } from "./log";
import { IYS_CHANGES_MAX, type IysBrandRef, type IysChange, type IysConsentKey, type IysReporter } from "./services/iys";

/**
 * Recipients refuse (and consent) on İYS itself too — its web site, e-Devlet, its app, the 3338
 * line — and a provider must honour those as it honours refusals made on its own channels. İYS lists
 * them per brand (İzin Hareketi Sorgulama, `source=IYS`), oldest first, behind an `after` pointer,
 * over its last 7 days and not its last hour. Each movement goes through the ledger like any other
 * (origin `iys`: never reported back to İYS, but passed on to the provider's callbacks and its
 * dealers), idempotent on İYS's transactionId; the pointer moves in the same transaction as the
 * movements it covers, so a crash at any point loses none and applies none twice.
 *
 * The provider's own movements (`source=HS`) are pulled too, behind a pointer of their own: most are
 * the hub's reports, recognised by their content and skipped (their İYS identity kept where the hub
 * lacked it); the rest were written to İYS by the provider's other systems or typed into İYS's web
 * panel, and go into the ledger as İYS's records — İYS's daily file holds them, and a refusal typed
 * there must stop the hub's sends as much as one texted to the shortcode.
 */
export type IysPullSource = "IYS" | "HS";

export interface IysPullDeps {
  db: Db;
  ledger: Ledger;
  iys: IysReporter;
  clock: Clock;
  log: Logger;
  enqueueOutbox(rows: OutboxRef[]): Promise<void>;
}

export interface IysPullBrand {
  id: number;
  code: string;
  iysCode: string;
  brandCode: string;
}

export interface IysPullSummary {
  brand: string;
  source: IysPullSource;
  /** İYS answers read. */
  pages: number;
  /** Movements İYS listed. */
  listed: number;
  recorded: number;
  /** Already in the ledger: taken by an earlier pull, the same status the hub holds, or (HS) the hub's own report. */
  unchanged: number;
  /** Refused by the İYS rules, per code (H178: older than what the hub holds — İYS too keeps the newer one). */
  refused: Record<string, number>;
  after: string | null;
  /** Set when İYS failed to answer (the pointer stays; the next pull starts from it). */
  error?: string;
  /** True when another process moved the pointer meanwhile: it goes on from there. */
  overtaken?: boolean;
}

/** A pull reads at most this many pages (1000 movements each) a run; the next run goes on. */
const MAX_PAGES_PER_RUN = 100;

export function iysPullBrands(db: Db): IysPullBrand[] {
  return stmt<[], IysPullBrand>(
    db,
    `SELECT id, code, iys_code AS iysCode, brand_code AS brandCode FROM brands WHERE iys_code IS NOT NULL AND brand_code IS NOT NULL ORDER BY id`,
  ).all();
}

export interface IysPullCursor {
  after: string | null;
  movements: number;
  pulledAt: number | null;
  lastError: string | null;
}

/** The cursor columns of each pull. */
const CURSOR_COLUMNS = {
  IYS: { after: "after", movements: "movements", pulledAt: "pulled_at", lastError: "last_error" },
  HS: { after: "hs_after", movements: "hs_movements", pulledAt: "hs_pulled_at", lastError: "hs_last_error" },
} as const;

export function iysPullCursor(db: Db, brandId: number, source: IysPullSource = "IYS"): IysPullCursor | null {
  const c = CURSOR_COLUMNS[source];
  return (
    stmt<[number], IysPullCursor>(
      db,
      `SELECT ${c.after} AS after, ${c.movements} AS movements, ${c.pulledAt} AS pulledAt, ${c.lastError} AS lastError FROM iys_pull_cursors WHERE brand_id = ?`,
    ).get(brandId) ?? null
  );
}

export interface IysPullStanding {
  brand: string;
  /** IYS: the recipients' movements; HS: the provider's own. */
  source: IysPullSource;
  /** When the last pull succeeded (ms); null before the first. */
  pulledAt: number | null;
  movements: number;
  lastError: string | null;
}

/** Every brand with İYS codes and where each of its two pulls stands (the dashboard and /metrics show them). */
export function iysPullStandings(db: Db): IysPullStanding[] {
  return stmt<[], IysPullStanding>(
    db,
    `SELECT b.code AS brand, s.source, CASE s.source WHEN 'IYS' THEN c.pulled_at ELSE c.hs_pulled_at END AS pulledAt,
       COALESCE(CASE s.source WHEN 'IYS' THEN c.movements ELSE c.hs_movements END, 0) AS movements,
       CASE s.source WHEN 'IYS' THEN c.last_error ELSE c.hs_last_error END AS lastError
     FROM brands b CROSS JOIN (SELECT 'IYS' AS source UNION ALL SELECT 'HS') s LEFT JOIN iys_pull_cursors c ON c.brand_id = b.id
     WHERE b.iys_code IS NOT NULL AND b.brand_code IS NOT NULL ORDER BY b.code, s.source = 'HS'`,
  ).all();
}

/** An İYS movement as a row in the İYS bulk columns: the same checks and normalisation as an import's. */
function changeToAction(c: IysChange, brandId: number): { ok: true; action: ConsentAction } | { ok: false; code: string } {
  const fields: Record<(typeof IMPORT_COLUMNS)[number], string> = {
    type: c.type,
    recipient: c.recipient,
    status: c.status,
    source: c.source,
    consentDate: c.consentDate ?? "",
    recipientType: c.recipientType,
    retailerCode: "",
  };
  const r = rowToAction(IMPORT_COLUMNS.map((k) => fields[k]), brandId, "iys");
  if (!r.ok) return { ok: false, code: r.code };
  // Without İYS's id (İYS always sends one; a movement must not be lost if it ever does not) the
  // movement is recognised by its content, as an import row is.
  if (!c.transactionId) return { ok: true, action: { ...r.action, writer: "iys" } };
  const { dedupe: _content, ...action } = r.action;
  // İYS's id of the movement: listed again (an older pointer), it is the same event. İYS gives one
  // transactionId to a consent's movements within one second (an ONAY and a RET), hence the status too.
  const key = `iys:${brandId}:${action.recipientType}:${action.type}:${action.status}:${c.transactionId}`;
  return { ok: true, action: { ...action, writer: "iys", idempotencyKey: key } };
}

/**
 * What became of one İYS record: not taken (İYS's values fail the bulk checks), the hub's own
 * movement (as İYS listed it back under HS, or a later one that supersedes it), or the ledger's outcome.
 */
type IysRecordResult =
  | { kind: "invalid"; code: string }
  | { kind: "own"; eventId: number }
  | { kind: "ledger"; outcome: ActionOutcome }
  /** İYS's ONAY is from before the hub's refusal kept as a local suppression (eventId), which goes to İYS (reportSuppression). */
  | { kind: "refusal"; eventId: number };

/**
 * İYS's records through the ledger as İYS's own (origin iys: never reported back to İYS, passed on
 * to callbacks and dealers), each recorded one kept with İYS's transactionId and creationDate (its
 * daily file's key). Call inside a transaction.
 */
function applyIysRecords(
  db: Db,
  ledger: Ledger,
  brandId: number,
  items: IysChange[],
  now: number,
  opts: { own?: boolean } = {},
): { results: IysRecordResult[]; outbox: OutboxRef[] } {
  const keepIdentity = stmt(db, `INSERT OR IGNORE INTO iys_pulled_movements (event_id, transaction_id, creation_date) VALUES (?, ?, ?)`);
  const results: (IysRecordResult | null)[] = [];
  const actions: ConsentAction[] = [];
  for (const item of items) {
    const r = changeToAction(item, brandId);
    if (!r.ok) {
      results.push({ kind: "invalid", code: r.code });
      continue;
    }
    const own = opts.own ? ownMovement(db, r.action) : null;
    if (own !== null) {
      // İYS's identity of the hub's report, for the daily file where the report's answer was lost.
      if (item.transactionId) keepIdentity.run(own, item.transactionId, item.creationDate);
      results.push({ kind: "own", eventId: own });
      continue;
    }
    results.push(null);
    actions.push(r.action);
  }
  const { outcomes, outbox } = ledger.apply(actions);
  let next = 0;
  const done = results.map((r, k): IysRecordResult => {
    if (r !== null) return r;
    const a = actions[next]!;
    const o = outcomes[next++]!;
    const item = items[k]!;
    if (o.kind === "recorded" && item.transactionId) keepIdentity.run(o.event.id, item.transactionId, item.creationDate);
    if (o.kind === "rejected" && o.code === "H178" && a.status === "ONAY") {
      const reported = reportSuppression(db, ledger, a, a.consentDate, now);
      if (reported) {
        outbox.push(...reported.outbox);
        return { kind: "refusal", eventId: reported.eventId };
      }
    }
    return { kind: "ledger", outcome: o };
  });
  return { results: done, outbox };
}

/**
 * The hub's refusal kept as a local suppression — it knew of no consent when the recipient refused —
 * where İYS holds an ONAY from an earlier second (`iysOnayAt`: collected by another of the
 * provider's systems, or not imported yet): İYS must hear of the refusal, or whatever asks İYS goes
 * on messaging the recipient. The suppression's own event is reported (an iys_report row; no new
 * event: it is the same refusal, and the state, the pre-send check and the subscriptions stay as
 * they are); İYS answers H467 for one collected more than 3 business days ago, a failed row on the
 * dashboard. Null when the state is no such suppression; no row when its report is planned already.
 * Inside a transaction.
 */
export function reportSuppression(
  db: Db,
  ledger: Ledger,
  key: { brandId: number; recipient: string; recipientType: RecipientType; type: ConsentType },
  iysOnayAt: number | null,
  now: number,
): { eventId: number; outbox: OutboxRef[] } | null {
  const state = ledger.state(key.brandId, key.recipient, key.recipientType, key.type);
  if (!state || state.status !== "RET" || state.inIys || state.consentDate === null || iysOnayAt === null) return null;
  // From an earlier second: İYS refuses a refusal dated the same second as its consent (H178).
  if (iysOnayAt >= Math.floor(state.consentDate / 1000) * 1000) return null;
  // İYS no longer takes it (H467): the refusal stays the hub's.
  if (ledger.lateForIys(state.consentDate)) return null;
  if (state.recipientType !== "BIREYSEL" || state.source === null || !isProviderSource(state.source)) return null;
  return { eventId: state.eventId, outbox: addOutboxOnce(db, "iys_report", state.eventId, now) };
}

/**
 * The hub's own movement that İYS lists under `source=HS`: an event the hub recorded and reported
 * (not one of İYS's; a suppression reported over İYS's older consent too) with the same consent,
 * status, source and date to the second (İYS keeps seconds). The newest such event's id, or null.
 */
function ownMovement(db: Db, a: ConsentAction): number | null {
  const row = stmt<unknown[], { id: number }>(
    db,
    `SELECT id FROM consent_events WHERE brand_id = ? AND recipient = ? AND recipient_type = ? AND type = ? AND status = ? AND source IS ?
       AND origin <> 'iys' AND (effect = 'movement' OR EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'iys_report' AND o.event_id = consent_events.id))
       AND ((? IS NULL AND consent_date IS NULL) OR (consent_date >= ? AND consent_date < ? + 1000))
     ORDER BY id DESC LIMIT 1`,
  ).get(a.brandId, a.recipient, a.recipientType, a.type, a.status, a.source, a.consentDate, a.consentDate, a.consentDate);
  return row?.id ?? null;
}

export interface IysRecordTaken {
  /** What İYS holds for the consent; null when it holds nothing. */
  held: IysChange | null;
  /** The ledger's event of İYS's record: recorded now, or there already. */
  eventId?: number;
  /**
   * recorded: the hub now holds İYS's record; unchanged: it held it already; refused: the İYS rules
   * kept the hub's (code; `refusal_kept`: the hub's refusal stands against a consent not strictly
   * newer); refusal_reported: İYS's ONAY is from before the hub's refusal kept as a local
   * suppression (eventId), which is reported to İYS (reportSuppression).
   */
  outcome?: "recorded" | "unchanged" | "refused" | "refusal_reported";
  code?: string;
  outbox: OutboxRef[];
}

/**
 * Asks İYS what it holds for one consent and takes that into the ledger as İYS's record. For a
 * movement of the hub's that İYS refused because it holds a newer one (H178: the recipient's own on
 * İYS not pulled yet, or the provider's from another system): without it the hub would go on
 * answering the pre-send check from a record İYS overrode. İYS's transactionId makes it the same
 * event the pull would take. One status query (İYS answers 1000 an hour).
 */
export async function takeIysRecord(
  deps: { db: Db; ledger: Ledger; iys: IysReporter; clock: Clock },
  brand: { id: number } & IysBrandRef,
  consent: IysConsentKey,
  /** The event İYS refused (or the suppression asked about): once the consent has moved on from it, the hub's later movements speak to İYS. */
  forEvent?: number,
  /** A question that can wait (IysReporter.consentStatus). */
  opts: { low?: boolean } = {},
): Promise<({ ok: true } & IysRecordTaken) | { ok: false; permanent: boolean; code: string; message: string; retryAt?: number }> {
  const asked = await deps.iys.consentStatus({ iysCode: brand.iysCode, brandCode: brand.brandCode }, consent, opts);
  if (!asked.ok) return asked;
  if (asked.held === null) return { ok: true, held: null, outbox: [] };
  const held = asked.held;
  const taken = deps.db.$client.transaction(() => {
    // A refusal is never overridden by a consent İYS holds that is not strictly newer (the same
    // second, or undated): the recipient refused, and which came first cannot be told.
    const state = deps.ledger.state(brand.id, consent.recipient, consent.recipientType as RecipientType, consent.type as ConsentType);
    const heldDate = held.consentDate === null ? null : parseIysDate(held.consentDate);
    const heldAt = heldDate?.ok ? heldDate.date.getTime() : null;
    if (state?.status === "RET" && held.status === "ONAY" && (heldAt === null || state.consentDate === null || heldAt < state.consentDate + 1000)) {
      // The consent moved on since: the hub's later movement, reported in its turn, speaks to İYS.
      if (forEvent !== undefined && state.eventId !== forEvent && state.inIys) return { results: [{ kind: "own", eventId: state.eventId }] as IysRecordResult[], outbox: [] };
      // Unless it is a refusal the hub kept to itself, and İYS's consent is older: İYS must hear of it.
      const key = { brandId: brand.id, recipient: consent.recipient, recipientType: consent.recipientType as RecipientType, type: consent.type as ConsentType };
      const reported = reportSuppression(deps.db, deps.ledger, key, heldAt, deps.clock.now().getTime());
      return reported && { results: [{ kind: "refusal", eventId: reported.eventId }] as IysRecordResult[], outbox: reported.outbox };
    }
    return applyIysRecords(deps.db, deps.ledger, brand.id, [held], deps.clock.now().getTime());
  }).immediate();
  if (taken === null) return { ok: true, held, outcome: "refused", code: "refusal_kept", outbox: [] };
  const { results, outbox } = taken;
  const r = results[0]!;
  if (r.kind === "refusal") return { ok: true, held, outcome: "refusal_reported", eventId: r.eventId, outbox };
  if (r.kind === "invalid") return { ok: true, held, outcome: "refused", code: r.code, outbox };
  if (r.kind === "own") return { ok: true, held, outcome: "unchanged", eventId: r.eventId, outbox };
  const o = r.outcome;
  if (o.kind === "recorded") return { ok: true, held, outcome: "recorded", eventId: o.event.id, outbox };
  if (o.kind === "duplicate") return { ok: true, held, outcome: "unchanged", eventId: o.event.id, outbox };
  if (o.kind === "noop") return { ok: true, held, outcome: "unchanged", eventId: o.state.eventId, outbox };
  return { ok: true, held, outcome: "refused", code: o.code, outbox };
}

/**
 * Pulls one brand's movements from İYS up to now (less İYS's hour), page by page: the recipients'
 * own (`source` IYS, the default) or the provider's (HS).
 */
export async function pullIysChanges(
  deps: IysPullDeps,
  brand: IysPullBrand,
  opts: { limit?: number; maxPages?: number; stopped?: () => boolean; source?: IysPullSource } = {},
): Promise<IysPullSummary> {
  const { db, ledger } = deps;
  const source = opts.source ?? "IYS";
  const c = CURSOR_COLUMNS[source];
  const limit = opts.limit ?? IYS_CHANGES_MAX;
  const now = () => deps.clock.now().getTime();
  const summary: IysPullSummary = { brand: brand.code, source, pages: 0, listed: 0, recorded: 0, unchanged: 0, refused: {}, after: iysPullCursor(db, brand.id, source)?.after ?? null };
  const saveCursor = stmt(
    db,
    `INSERT INTO iys_pull_cursors (brand_id, ${c.after}, ${c.movements}, ${c.pulledAt}, ${c.lastError}, updated_at) VALUES (?, ?, ?, ?, NULL, ?)
     ON CONFLICT (brand_id) DO UPDATE SET ${c.after} = excluded.${c.after}, ${c.movements} = ${c.movements} + excluded.${c.movements},
       ${c.pulledAt} = excluded.${c.pulledAt}, ${c.lastError} = NULL, updated_at = excluded.updated_at`,
  );
  const saveError = stmt(
    db,
    `INSERT INTO iys_pull_cursors (brand_id, ${c.lastError}, updated_at) VALUES (?, ?, ?)
     ON CONFLICT (brand_id) DO UPDATE SET ${c.lastError} = excluded.${c.lastError}, updated_at = excluded.updated_at`,
  );
  const codesNow = stmt<[number], { iysCode: string | null; brandCode: string | null }>(db, `SELECT iys_code AS iysCode, brand_code AS brandCode FROM brands WHERE id = ?`);
  const keepListed = stmt(
    db,
    `INSERT OR IGNORE INTO iys_listed_movements (transaction_id, brand_id, creation_date, recipient, recipient_type, type, status, consent_date, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  /** A movement İYS listed that no event of the hub stands for: kept as İYS gave it, for the daily file. */
  const listedOnly = (item: IysChange) => {
    if (item.transactionId) {
      keepListed.run(item.transactionId, brand.id, item.creationDate, item.recipient, item.recipientType, item.type, item.status, item.consentDate, item.source);
    }
  };
  // İYS's id, type and status only (no address): enough to find the movement in İYS's panel or daily file.
  const notTaken = (item: IysChange, code: string) => {
    listedOnly(item);
    summary.refused[code] = (summary.refused[code] ?? 0) + 1;
    deps.log.warn(
      { brand: brand.code, transactionId: item.transactionId ?? null, type: item.type, status: item.status, code },
      item.status === "RET" ? "a refusal listed by İYS was not applied" : "a movement listed by İYS was not applied",
    );
  };

  /** Applies one page and moves the pointer, in one transaction; null when another pull moved it first. */
  const applyPage = db.$client.transaction((from: string | null, to: string | null, items: IysChange[]) => {
    if ((iysPullCursor(db, brand.id, source)?.after ?? null) !== from) return null;
    // The brand's İYS codes changed while İYS answered: the page is the old İYS brand's.
    const codes = codesNow.get(brand.id);
    if (codes?.iysCode !== brand.iysCode || codes?.brandCode !== brand.brandCode) return null;
    const { results, outbox } = applyIysRecords(db, ledger, brand.id, items, now(), { own: source === "HS" });
    results.forEach((r, i) => {
      const item = items[i]!;
      if (r.kind === "invalid") return notTaken(item, r.code);
      if (r.kind === "own") return void summary.unchanged++;
      if (r.kind === "refusal") {
        listedOnly(item);
        summary.unchanged++;
        deps.log.info({ brand: brand.code, transactionId: item.transactionId || null, type: item.type, eventId: r.eventId }, "İYS holds an older consent under a refusal the hub kept to itself: the refusal goes to İYS");
        return;
      }
      const o = r.outcome;
      if (o.kind === "recorded") {
        summary.recorded++;
        if (!item.transactionId) deps.log.warn({ brand: brand.code, eventId: o.event.id, type: item.type, status: item.status }, "İYS listed a movement without its transactionId: taken, but it cannot be matched in İYS's daily file");
      } else if (o.kind === "duplicate" || o.kind === "noop") {
        listedOnly(item);
        summary.unchanged++;
      }
      else notTaken(item, o.code);
    });
    crashPoint("iys-pull-before-commit");
    const t = now();
    saveCursor.run(brand.id, to ?? from, items.length, t, t);
    return outbox;
  });

  for (let page = 0; page < (opts.maxPages ?? MAX_PAGES_PER_RUN) && !opts.stopped?.(); page++) {
    const from = summary.after;
    let res;
    try {
      res = await deps.iys.changes({ iysCode: brand.iysCode, brandCode: brand.brandCode }, from, limit, source);
    } catch (err) {
      res = { ok: false as const, code: "network", message: (err as Error).message };
    }
    if (!res.ok) {
      summary.error = `${res.code}: ${res.message}`;
      saveError.run(brand.id, summary.error, now());
      break;
    }
    summary.pages++;
    summary.listed += res.items.length;
    const outbox = applyPage.immediate(from, res.after, res.items);
    if (outbox === null) {
      summary.overtaken = true;
      break;
    }
    crashPoint("iys-pull-after-commit");
    summary.after = res.after ?? from;
    // The callbacks and partner deliveries of what changed (the sweeper retries an enqueue that fails).
    await deps.enqueueOutbox(outbox);
    if (res.items.length < limit) break;
  }
  return summary;
}

/** The longest a failing pull waits before it is tried again (İYS lists 7 days: an hour loses nothing). */
export const IYS_PULL_MAX_BACKOFF_MS = 3_600_000;

/**
 * Pulls every brand with İYS codes now and then every `intervalMs`. One process pulls a brand at a
 * time (a Redis lock; while Redis is down each process pulls, which the pointer's check keeps
 * correct); a run still going when the next is due is not doubled.
 */
export function startIysPull(deps: IysPullDeps & { redis: Redis; prefix: string }, intervalMs: number): { stop(): Promise<void> } {
  let running: Promise<void> | null = null;
  let stopped = false;
  // A pull that keeps failing (403 H353: the brand is not the account's; a page İYS keeps answering
  // malformed; İYS down) is tried again after twice as long each time, up to IYS_PULL_MAX_BACKOFF_MS
  // (or the interval, if longer): İYS counts refused requests against the account. Per process.
  const failing = new Map<string, { failures: number; until: number }>();
  const runOnce = async () => {
    for (const brand of iysPullBrands(deps.db)) for (const source of ["IYS", "HS"] as const) {
      if (stopped) return;
      const key = `${brand.id}:${source}`;
      const backoff = failing.get(key);
      if (backoff && Date.now() < backoff.until) continue;
      const lock = `${deps.prefix}:iys:pull:${brand.id}${source === "HS" ? ":hs" : ""}`;
      const token = randomUUID();
      if (deps.redis.status === "ready") {
        // Held for at most a minute (or the interval): a process that dies holding it delays the next pull that long.
        const got = await deps.redis.set(lock, token, "PX", Math.min(intervalMs, 60_000), "NX").catch(() => "OK");
        if (got !== "OK") continue;
      }
      try {
        const s = await pullIysChanges(deps, brand, { stopped: () => stopped, source });
        const fields = { brand: s.brand, source, pages: s.pages, listed: s.listed, recorded: s.recorded, unchanged: s.unchanged, refused: s.refused };
        if (s.error) {
          // Pages taken before the failure are progress: the count starts again.
          const failures = s.pages > 0 ? 1 : (backoff?.failures ?? 0) + 1;
          const waitMs = Math.min(intervalMs * 2 ** (failures - 1), Math.max(intervalMs, IYS_PULL_MAX_BACKOFF_MS));
          // Half an interval early: the tick due at the end of the wait is not missed by a few milliseconds.
          failing.set(key, { failures, until: Date.now() + waitMs - intervalMs / 2 });
          deps.log.warn({ ...fields, err: s.error, failures, nextInSeconds: Math.round(waitMs / 1000) }, "İYS pull failed; the next one starts where this one stopped");
        } else {
          failing.delete(key);
          if (s.listed > 0) deps.log.info(fields, source === "IYS" ? "İYS pull: recipients' movements on İYS taken" : "İYS pull: the provider's movements on İYS taken");
        }
      } catch (err) {
        deps.log.error({ brand: brand.code, source, err: (err as Error).message }, "İYS pull failed");
      } finally {
        if (deps.redis.status === "ready") {
          await deps.redis
            .get(lock)
            .then((v) => (v === token ? deps.redis.del(lock) : 0))
            .catch(() => {});
        }
      }
    }
  };
  const tick = () => {
    if (stopped || running) return;
    running = runOnce().finally(() => {
      running = null;
    });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  setImmediate(tick);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
