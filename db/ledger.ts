import type { Statement } from "better-sqlite3";
import type { BusinessCalendar } from "../src/domain/calendar";
import { checkConsent, isLate, type RuleCode } from "../src/domain/consent-rules";
import type {
  ConsentSource,
  ConsentStatus,
  ConsentType,
  EventEffect,
  Origin,
  RecipientType,
} from "../src/domain/consent";
import { channelOrigins } from "../src/domain/consent";
import type { Clock } from "../src/domain/time";
import { canonicalRow, chainHash, contentHashRow, ROW_HASH, ROW_SALT, sealRow, sha256 } from "./event-hash.mjs";
import type { Db } from "./index";
import type { OutboxKind, ReceiptStatus } from "./schema";

export const GENESIS_HASH = "0".repeat(64);

/** One consent movement asked of the ledger, already normalised (recipient in canonical form). */
export interface ConsentAction {
  brandId: number;
  recipient: string;
  recipientKind: "phone" | "email";
  phoneKind?: "mobile" | "fixed" | "other";
  recipientType: RecipientType;
  type: ConsentType;
  status: ConsentStatus;
  source: ConsentSource | null;
  /** ms since epoch; null only for TACIR first records. */
  consentDate: number | null;
  retailerCode?: string | null;
  origin: Origin;
  receiptId?: number | null;
  idempotencyKey?: string | null;
  /**
   * `content` (bulk imports): the action is a duplicate when an event of the same origin with the
   * same content (brand, recipient, recipientType, type, status, source, consentDate, retailerCode)
   * exists. Probed through the recipient index, and only when a state row for the key exists (no
   * state, no event), so the common new row costs no probe and no entry in a random-ordered index.
   */
  dedupe?: "content";
  /** `iys` replays what İYS itself recorded (IYS_* sources allowed, no 3-business-day window). */
  writer?: "provider" | "iys" | "registered";
  /**
   * The recipient acting on one of the hub's own channels (SMS, IVR, link), dated when we received
   * it. Such an action is never refused over a date tie (H178): when the stored consent is as new or
   * newer (the same second, or a provider's write that landed while the action queued), it is dated
   * one second after the stored one. A refusal must not be lost to a clock.
   */
  datedOnReceipt?: boolean;
  /**
   * When the hub durably received the recipient's action (ms; channels). A consent dated on receipt
   * is moved past a stored refusal only when it was received after that refusal: one received before
   * it and applied late (its job lost in a crash, Redis down, the sweeper) would otherwise undo a
   * refusal the recipient gave after it. It is refused H178 instead, as İYS answers an older consent.
   */
  receivedAt?: number;
}

export interface LedgerEvent {
  id: number;
  brandId: number;
  recipient: string;
  recipientType: RecipientType;
  type: ConsentType;
  status: ConsentStatus;
  source: ConsentSource | null;
  consentDate: number | null;
  retailerCode: string | null;
  origin: Origin;
  receiptId: number | null;
  idempotencyKey: string | null;
  effect: EventEffect;
  receivedAt: number;
  /** The hash of the event before (GENESIS_HASH for the first): not a column, read from that event (EVENT_COLUMNS). */
  prevHash: string;
  hash: string;
  /** In the canonical content (format 3) so that a content hash cannot be guessed from the content; null: format 2. */
  salt: string | null;
}

/** An event as stored (EVENT_STORED_COLUMNS): what reads that neither show nor check the chain take. */
export type StoredEvent = Omit<LedgerEvent, "prevHash">;

export interface ConsentStateRow {
  brandId: number;
  recipient: string;
  recipientType: RecipientType;
  type: ConsentType;
  status: ConsentStatus;
  source: ConsentSource | null;
  consentDate: number | null;
  retailerCode: string | null;
  inIys: boolean;
  eventId: number;
  updatedAt: number;
}

export type ActionOutcome =
  | { kind: "recorded"; event: LedgerEvent; previous: ConsentStateRow | null }
  | { kind: "duplicate"; event: LedgerEvent }
  | { kind: "noop"; code: "H174"; message: string; state: ConsentStateRow }
  | {
      kind: "rejected";
      code: RuleCode;
      message: string;
      /**
       * A channel consent refused H178 because the recipient refused on a hub channel after giving it
       * (it was applied late): their later word stands and has its own confirmation.
       */
      supersededByRefusal?: true;
    };

export interface OutboxInput {
  kind: OutboxKind;
  eventId?: number | null;
  receiptId?: number | null;
  target?: string | null;
  /** A row written already `skipped` (e.g. a rate-limited confirmation): kept for audit, never enqueued. */
  skipped?: string;
}

export interface OutboxRef {
  id: number;
  kind: OutboxKind;
}

export interface ApplyOptions {
  /** Marks the receipt the actions came from, in the same transaction. */
  receipt?: { id: number; status: ReceiptStatus; result?: Record<string, unknown> };
  /**
   * Outbox rows of this call (confirmations, an import's İYS lists), computed inside the transaction
   * from the outcomes and from those of the refusals the ledger carried over (refusalsOverConsents).
   */
  outbox?: (outcomes: ActionOutcome[], derived: ActionOutcome[]) => OutboxInput[];
}

/** A chain head: the last event's id and hash (id 0 and GENESIS_HASH for an empty ledger). */
export interface ChainHead {
  id: number;
  hash: string;
}

/**
 * A call's writes, worked out by Ledger.plan against what the database held (and the writes of plans
 * made before it, not yet written) instead of written: what a writer (db/ledger-writer.ts) commits,
 * in one IMMEDIATE transaction, only while the ledger's head is still `after`. Any write to the
 * ledger moves its head, so an unchanged head means that nothing the plan read has changed since.
 */
export interface LedgerPlan {
  /**
   * The head the plan goes on from; its hash is null when that head is the last event of the plan
   * before it (`plan`: that plan's number), not written yet when this one was made: the writer takes
   * it only over the head it left by writing that very plan.
   */
  after: PlanHead;
  /** The head once it is written: its hash is the writer's to work out; `plan`, this plan's number (unique in the process). */
  head: PlanHead & { hash: null; plan: number };
  /**
   * LEDGER_SQL.insertEvent's arguments, in order, without their chain: the writer gives each its
   * hash, chained on the one before (sealRow, db/event-hash.mjs), as it writes them, on its own thread. The
   * events whose content hash Ledger.plan worked out (its `contentHashes` share) have their salt, and
   * that hash in the hash column until then; the others have neither yet.
   */
  events: unknown[][];
  /** Event id ranges whose state rows LEDGER_SQL.stateFromEvents writes, in order. */
  stateRanges: [number, number][];
  /** The outbox rows, as LEDGER_SQL.insertOutboxMany takes them (their ids come with the write). */
  outbox: unknown[][];
  /** The call's time (the events' receivedAt, the outbox rows' created_at). */
  receivedAt: number;
  /** The planners' guards (OutboxPlanner.guard) with what they gave: the plan is written only while each still gives it. */
  guards: [string, unknown][];
}

/** A plan while Ledger.plan makes it: whether `after` was given, and the content hashes it works out (hashShare an event: one each time `hashed` reaches 1). */
type Capture = LedgerPlan & { given: boolean; hashShare: number; hashed: number };

/** A plan's head: an event id, and its hash when it is known (LedgerPlan.after). */
export interface PlanHead {
  id: number;
  hash: string | null;
  /** With no hash: the number of the plan whose last event this is (its LedgerPlan.head.plan). */
  plan?: number;
}

let planTokens = 0;

/** Ledger.plan met a read it cannot answer without the writes it is planning (the same record twice, a refusal carried over): the call goes through apply. */
class NeedsWrites extends Error {}

export interface ApplyResult {
  outcomes: ActionOutcome[];
  outbox: OutboxRef[];
  /** True when `opts.receipt` was no longer waiting (another job applied it first): nothing was written. */
  alreadyApplied?: boolean;
}

/** Adds outbox rows for every recorded event (İYS report, callbacks, partners); runs inside the transaction. */
export type OutboxPlanner = ((event: LedgerEvent, context: PlanContext) => OutboxInput[]) & {
  /**
   * A query of one value that changes whenever anything the planner reads outside the ledger does
   * (callbacks: the endpoint version). A plan (Ledger.plan) is written only while it still gives
   * what it gave when the plan was made: such changes do not move the ledger's head.
   */
  guard?: string;
};

/** What a planner may need beyond the event: the state it replaced, and (suppressions) whether İYS would still take it. */
export interface PlanContext {
  previous: ConsentStateRow | null;
  /** A suppression collected more than 3 business days ago (İYS answers H467); false for other events. */
  late: boolean;
  /**
   * The write transaction the event is recorded in (a number unique in the process, new each call):
   * what other processes commit cannot change while it runs, so a planner may read its own settings
   * once a transaction instead of once an event.
   */
  transaction: number;
}

/**
 * What each element of the canonical array is, in order (`salt` only in format 3): published with
 * every proof so that a third party can read which brand (`brandId`, the proof's `brandId` and
 * `event.brand`), recipient, channel, status and dates (epoch milliseconds) the signed chain covers.
 * The array itself is made by canonicalRow (db/event-hash.mjs).
 */
export const CANONICAL_FIELDS = [
  "format", "id", "brandId", "recipient", "recipientType", "type", "status", "source", "consentDate", "retailerCode",
  "origin", "receiptId", "idempotencyKey", "effect", "receivedAt", "salt",
] as const;

/** An event as LEDGER_SQL.insertEvent's arguments. */
export function eventRow(e: Omit<LedgerEvent, "hash" | "prevHash"> & { hash?: string | null }): unknown[] {
  return [
    e.id,
    e.brandId,
    e.recipient,
    e.recipientType,
    e.type,
    e.status,
    e.source,
    e.consentDate,
    e.retailerCode,
    e.origin,
    e.receiptId,
    e.idempotencyKey,
    e.effect,
    e.receivedAt,
    e.hash || null,
    e.salt,
  ];
}

/**
 * The exact bytes an event's content hash covers: every column but `hash`, in a fixed order, as a
 * JSON array whose first element is the format version: 3 with the event's salt last, 2 (events
 * recorded before salts) without.
 */
export function canonicalEvent(e: Omit<LedgerEvent, "hash" | "prevHash">): string {
  return canonicalRow(eventRow(e));
}

export function contentHash(e: Omit<LedgerEvent, "hash" | "prevHash">): string {
  return sha256(canonicalEvent(e));
}

export function eventHash(e: Omit<LedgerEvent, "hash">): string {
  return chainHash(contentHash(e), e.prevHash);
}

/**
 * An event's previous hash, read from the event before it (`alias`: how the query names the
 * event's table): the hash of event id - 1, GENESIS_HASH for the first. Ids leave no gap; where one
 * was made (an event deleted), it is GENESIS_HASH, which the event's hash does not chain on.
 */
export const prevHashOf = (alias: string) => `COALESCE((SELECT p.hash FROM consent_events p WHERE p.id = ${alias}.id - 1), '${GENESIS_HASH}')`;

/** Every stored event column under LedgerEvent's names (all of LedgerEvent but prevHash). */
export const EVENT_STORED_COLUMNS = `id, brand_id AS brandId, recipient, recipient_type AS recipientType, type, status, source,
  consent_date AS consentDate, retailer_code AS retailerCode, origin, receipt_id AS receiptId,
  idempotency_key AS idempotencyKey, effect, received_at AS receivedAt, hash, salt`;

/** A whole LedgerEvent (FROM consent_events, unaliased: the names are unqualified). */
export const EVENT_COLUMNS = `${EVENT_STORED_COLUMNS}, ${prevHashOf("consent_events")} AS prevHash`;

const STATE_COLUMNS = `brand_id AS brandId, recipient, recipient_type AS recipientType, type, status, source,
  consent_date AS consentDate, retailer_code AS retailerCode, in_iys AS inIys, event_id AS eventId, updated_at AS updatedAt`;

/** A state row as LEDGER_SQL.state gives it in raw mode: its values in STATE_COLUMNS' order. */
type RawState = [number, string, RecipientType, ConsentType, ConsentStatus, ConsentSource | null, number | null, string | null, number, number, number];

// From the row's values, not better-sqlite3's object of it: a statement building a named object
// (and a copy of it with inIys made boolean) took 7.3 µs against 5.4, and an import's re-run asks
// once a row (300 000 rows of a ledger of 300 000).
function toState(r: RawState | undefined): ConsentStateRow | null {
  return r
    ? { brandId: r[0], recipient: r[1], recipientType: r[2], type: r[3], status: r[4], source: r[5], consentDate: r[6], retailerCode: r[7], inIys: r[8] === 1, eventId: r[9], updatedAt: r[10] }
    : null;
}

/**
 * The statements every recorded event costs: per event for a small call, and for a call of
 * KNOWN_STATE_MIN actions or more (an import's batch) statesOf once, the events, and their state
 * rows through stateFromEvents (the bench's import-1m replays those alone, to measure what the
 * ledger's SQL leaves of the raw insert rate).
 */
export const LEDGER_SQL = {
  head: "SELECT id, hash FROM consent_events ORDER BY id DESC LIMIT 1",
  // The outbox rows of a whole call in one statement (a bulk import's batch has one per event).
  insertOutboxMany: `INSERT INTO outbox (kind, event_id, receipt_id, target, status, last_error, attempts, created_at, updated_at)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, 0, ?, ? FROM json_each(?)
         RETURNING id, kind, status`,
  state: `SELECT ${STATE_COLUMNS} FROM consent_state WHERE brand_id = ? AND recipient = ? AND recipient_type = ? AND type = ?`,
  // Answered from the primary key's index alone (no table row read, no row object built).
  hasState: `SELECT 1 FROM consent_state WHERE brand_id = ? AND recipient = ? AND recipient_type = ? AND type = ?`,
  // The state rows (either recipient type, any consent type) of a brand's recipients, read once for
  // a large call (a JSON array of recipients), as `state` gives a row in raw mode: the records a
  // call's actions do not find here need no probe of their own, and those it finds none either
  // until the call writes them. The join order is forced: the other way round scans the brand's
  // whole state.
  statesOf: `SELECT s.brand_id, s.recipient, s.recipient_type, s.type, s.status, s.source, s.consent_date, s.retailer_code, s.in_iys,
      s.event_id, s.updated_at FROM json_each(?) j CROSS JOIN consent_state s ON s.brand_id = ? AND s.recipient = j.value`,
  // The state rows of a range of events just recorded (a large call's, written together: one
  // statement instead of one per event), in ledger order: what upsertState would have left.
  stateFromEvents: `INSERT INTO consent_state (brand_id, recipient, recipient_type, type, status, source, consent_date,
          retailer_code, in_iys, event_id, updated_at)
         SELECT brand_id, recipient, recipient_type, type, status, source, consent_date, retailer_code, effect = 'movement', id, received_at
          FROM consent_events WHERE id BETWEEN ? AND ? ORDER BY id
         ON CONFLICT (brand_id, recipient, recipient_type, type) DO UPDATE SET
          status = excluded.status, source = excluded.source, consent_date = excluded.consent_date,
          retailer_code = excluded.retailer_code, in_iys = excluded.in_iys OR consent_state.in_iys, event_id = excluded.event_id,
          updated_at = excluded.updated_at`,
  insertEvent: `INSERT INTO consent_events (id, brand_id, recipient, recipient_type, type, status, source, consent_date,
          retailer_code, origin, receipt_id, idempotency_key, effect, received_at, hash, salt)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  upsertState: `INSERT INTO consent_state (brand_id, recipient, recipient_type, type, status, source, consent_date,
          retailer_code, in_iys, event_id, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (brand_id, recipient, recipient_type, type) DO UPDATE SET
          status = excluded.status, source = excluded.source, consent_date = excluded.consent_date,
          retailer_code = excluded.retailer_code, in_iys = excluded.in_iys, event_id = excluded.event_id,
          updated_at = excluded.updated_at`,
} as const;

/** Calls of at least this many actions read their records' existence once (Ledger.knownState) instead of probing each. */
const KNOWN_STATE_MIN = 64;

/** A record's recipient type and type as one bit of a recipient's mask (KnownState): bits 0 to 11. */
const stateBit = (recipientType: string, type: string): number =>
  1 << ((recipientType === "BIREYSEL" ? 0 : recipientType === "TACIR" ? 4 : 8) + (type === "MESAJ" ? 0 : type === "ARAMA" ? 1 : type === "EPOSTA" ? 2 : 3));

/** Where a recipient's mask holds its records still pending (KnownState): bits 12 to 23, small integers still. */
const PENDING_SHIFT = 12;
const STATE_BITS = (1 << PENDING_SHIFT) - 1;

/**
 * The state rows that existed when a call began, for the recipients of its actions, and those the
 * call has written since: a record of those recipients in neither has no state row (no probe
 * needed). Per brand, each recipient's records as a bit mask (recipient type × type), which also
 * holds the records whose state row the call has not written yet (pending, Ledger.applyInTransaction:
 * their events are in, their state rows are written together, before anything reads them). One map
 * lookup a question, one update a record written.
 */
class KnownState {
  /** The pending records of recipients the masks do not hold (not among the call's actions), by brand. */
  private readonly others = new Map<number, Map<string, number>>();
  /** The recipients with pending records (and their brands), to clear when their state rows are written. */
  private readonly touched: string[] = [];
  private readonly touchedBrands: number[] = [];
  /**
   * @param stored the rows themselves, by brand and recipient, as they were when the call began: a
   * row leaves when the call writes its record (its state is then read from the database).
   */
  constructor(
    private readonly brands: Map<number, Map<string, number>>,
    private readonly stored: Map<number, Map<string, RawState[]>> = new Map(),
  ) {}
  /** Whether the record certainly has no state row now (false: not known, ask the database). */
  absent(brandId: number, recipient: string, recipientType: string, type: string): boolean {
    const mask = this.brands.get(brandId)?.get(recipient);
    return mask !== undefined && (mask & stateBit(recipientType, type)) === 0;
  }
  /** The recipient's stored rows, and where among them the record's is (-1: none). */
  private storedRow(brandId: number, recipient: string, recipientType: string, type: string): { rows: RawState[]; at: number } | null {
    const rows = this.stored.get(brandId)?.get(recipient);
    return rows ? { rows, at: rows.findIndex((r) => r[2] === recipientType && r[3] === type) } : null;
  }
  /** The record's state row as the call began, while the call has not written the record (undefined: ask the database). */
  row(brandId: number, recipient: string, recipientType: string, type: string): ConsentStateRow | undefined {
    const found = this.storedRow(brandId, recipient, recipientType, type);
    return found && found.at !== -1 ? toState(found.rows[found.at])! : undefined;
  }
  /** The call recorded an event of the record: its state row exists once written, and is pending until then. */
  written(brandId: number, recipient: string, recipientType: string, type: string): void {
    const found = this.storedRow(brandId, recipient, recipientType, type);
    if (found && found.at !== -1) found.rows.splice(found.at, 1);
    const bit = stateBit(recipientType, type);
    const rows = this.brands.get(brandId);
    const mask = rows?.get(recipient);
    if (mask !== undefined) rows!.set(recipient, mask | bit | (bit << PENDING_SHIFT));
    else {
      let p = this.others.get(brandId);
      if (!p) this.others.set(brandId, (p = new Map()));
      p.set(recipient, (p.get(recipient) ?? 0) | bit);
    }
    this.touched.push(recipient);
    this.touchedBrands.push(brandId);
  }
  /** Whether the record's state row is still to be written (its event recorded by this call). */
  isPending(brandId: number, recipient: string, recipientType: string, type: string): boolean {
    const bit = stateBit(recipientType, type);
    const mask = this.brands.get(brandId)?.get(recipient);
    if (mask !== undefined) return (mask & (bit << PENDING_SHIFT)) !== 0;
    return ((this.others.get(brandId)?.get(recipient) ?? 0) & bit) !== 0;
  }
  /** The pending state rows were written. */
  flushed(): void {
    this.touched.forEach((recipient, i) => {
      const rows = this.brands.get(this.touchedBrands[i]!);
      const mask = rows?.get(recipient);
      if (mask !== undefined) rows!.set(recipient, mask & STATE_BITS);
    });
    this.touched.length = 0;
    this.touchedBrands.length = 0;
    this.others.clear();
  }
}

/** Numbers applyInTransaction's calls (PlanContext.transaction), across every Ledger of the process: a planner may serve several. */
let transactions = 0;

export interface LedgerDeps {
  clock: Clock;
  calendar: Pick<BusinessCalendar, "isWithinBusinessDays">;
  planners?: OutboxPlanner[];
}

/**
 * The only writer of consent state. One IMMEDIATE transaction appends the hash-chained events,
 * updates the state projection, writes the outbox rows and marks the receipt.
 *
 * Raw prepared statements rather than the query builder: this is the hot path of every channel and
 * of bulk imports, and the SQL is the contract the hash chain depends on.
 */
export class Ledger {
  private readonly planners: OutboxPlanner[];
  private readonly s: {
    head: Statement<[], { id: number; hash: string } | undefined>;
    origin: Statement<[number], { origin: string } | undefined>;
    receivedOf: Statement<[number], { receivedAt: number; receiptId: number | null; origin: string } | undefined>;
    channelRefusal: Statement<[number, string, string, string, number], StoredEvent | undefined>;
    byKey: Statement<[string], number | undefined>;
    byContent: Statement<unknown[], number | undefined>;
    event: Statement<[number], LedgerEvent | undefined>;
    state: Statement<[number, string, string, string], RawState | undefined>;
    hasState: Statement<[number, string, string, string], 1 | undefined>;
    statesOf: Statement<[string, number], RawState>;
    insertEvent: Statement<unknown[]>;
    upsertState: Statement<unknown[]>;
    stateFromEvents: Statement<[number, number]>;
    insertOutbox: Statement<unknown[]>;
    insertOutboxMany: Statement<[number, number, string], { id: number; kind: OutboxKind; status: string }>;
    markReceipt: Statement<unknown[]>;
    receiptStatus: Statement<[number], { status: string } | undefined>;
  };

  constructor(
    private readonly db: Db,
    private readonly deps: LedgerDeps,
  ) {
    this.planners = [...(deps.planners ?? [])];
    const c = db.$client;
    this.s = {
      head: c.prepare(LEDGER_SQL.head),
      origin: c.prepare("SELECT origin FROM consent_events WHERE id = ?"),
      // When the action behind an event reached the hub: its receipt's time, or the event's own.
      receivedOf: c.prepare(
        "SELECT COALESCE(r.received_at, e.received_at) AS receivedAt, r.id AS receiptId, e.origin FROM consent_events e LEFT JOIN receipts r ON r.id = e.receipt_id WHERE e.id = ?",
      ),
      // Through the (brand_id, recipient) index: an address has few events.
      channelRefusal: c.prepare(
        `SELECT ${EVENT_STORED_COLUMNS} FROM consent_events WHERE brand_id = ? AND recipient = ? AND recipient_type = ? AND type = ? AND status = 'RET'
          AND origin IN ('sms', 'ivr', 'link') AND consent_date >= ? ORDER BY consent_date, id LIMIT 1`,
      ),
      // byKey and byContent give the id alone: the event is read when an outcome's reader asks for it (duplicateOf).
      byKey: c.prepare<[string], number>(`SELECT id FROM consent_events WHERE idempotency_key = ?`).pluck(),
      byContent: c
        .prepare<unknown[], number>(
          `SELECT id FROM consent_events WHERE brand_id = ? AND recipient = ? AND recipient_type = ? AND type = ?
          AND origin = ? AND status = ? AND source IS ? AND consent_date IS ? AND retailer_code IS ? ORDER BY id LIMIT 1`,
        )
        .pluck(),
      event: c.prepare(`SELECT ${EVENT_COLUMNS} FROM consent_events WHERE id = ?`),
      state: c.prepare<[number, string, string, string], RawState>(LEDGER_SQL.state).raw(),
      hasState: c.prepare<[number, string, string, string], 1>(LEDGER_SQL.hasState).pluck(),
      statesOf: c.prepare<[string, number], RawState>(LEDGER_SQL.statesOf).raw(),
      insertEvent: c.prepare(LEDGER_SQL.insertEvent),
      upsertState: c.prepare(LEDGER_SQL.upsertState),
      stateFromEvents: c.prepare<[number, number]>(LEDGER_SQL.stateFromEvents),
      insertOutbox: c.prepare(
        `INSERT INTO outbox (kind, event_id, receipt_id, target, status, last_error, attempts, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?) RETURNING id`,
      ),
      insertOutboxMany: c.prepare(LEDGER_SQL.insertOutboxMany),
      receiptStatus: c.prepare(`SELECT status FROM receipts WHERE id = ?`),
      markReceipt: c.prepare(`UPDATE receipts SET status = ?, result = ?, applied_at = ? WHERE id = ?`),
    };
  }

  /**
   * A refusal on the hub's channels covers the address's record of the other recipient type too
   * (jobs/consent-apply.handler.ts withTacirRefusals) — when that record holds a consent at the
   * time. A consent of the other type recorded later but dated before the refusal (a registered
   * base loaded after the channels ran, a back-dated import or API write) gets the same refusal
   * here, as it would have had it been there first: the first channel refusal of the other type
   * dated at or after the record's consent as the call left it (a file may hold the record's
   * history), with its date (a second after the consent's when in the same second), source, origin
   * and receipt, its key the refusal's with the recipient type. An undated consent (a TACIR first
   * record) cannot be told to come after any refusal, so it counts as older than all of them: the
   * address's first channel refusal of the other type covers it (it let an undated TACIR ONAY undo
   * a refusal made on the channels before it was written).
   * Not for İYS's own records (a later page of the pull may list İYS's own refusal), nor for
   * consents given on the channels themselves (dated when given); a consent dated after the
   * refusal is a new consent and stands.
   */
  private refusalsOverConsents(consents: ConsentAction[], known: KnownState | null, planning = false): ConsentAction[] {
    const out: ConsentAction[] = [];
    const seen = new Set<string>();
    for (const a of consents) {
      const otherType = a.recipientType === "BIREYSEL" ? "TACIR" : "BIREYSEL";
      // A channel refusal always leaves a state row: without one (the usual new key) nothing to look for.
      if (known && known.absent(a.brandId, a.recipient, otherType, a.type)) continue;
      // What follows reads the record the call wrote (its state row, not written while planning).
      if (planning) throw new NeedsWrites();
      if (this.s.hasState.get(a.brandId, a.recipient, otherType, a.type) === undefined) continue;
      const key = `${a.brandId}\0${a.recipient}\0${a.recipientType}\0${a.type}`;
      if (seen.has(key)) continue;
      seen.add(key);
      // The record as the call left it: a consent still (an undated one older than any refusal), and
      // neither İYS's own nor given on a channel.
      const own = toState(this.s.state.get(a.brandId, a.recipient, a.recipientType, a.type));
      if (!own || own.status !== "ONAY") continue;
      const ownOrigin = this.s.origin.get(own.eventId)?.origin;
      if (ownOrigin === undefined || ownOrigin === "iys" || channelOrigins.has(ownOrigin)) continue;
      const refusal = this.s.channelRefusal.get(a.brandId, a.recipient, otherType, a.type, own.consentDate ?? 0);
      if (!refusal) continue;
      out.push({
        brandId: a.brandId,
        recipient: a.recipient,
        recipientKind: a.recipientKind,
        phoneKind: a.phoneKind,
        recipientType: a.recipientType,
        type: a.type,
        status: "RET",
        source: refusal.source,
        consentDate: refusal.consentDate,
        origin: refusal.origin,
        receiptId: refusal.receiptId,
        idempotencyKey: refusal.idempotencyKey ? `${refusal.idempotencyKey}:${a.recipientType}` : null,
        // Made in the consent's second, it is dated one second after it, as on the channel itself.
        datedOnReceipt: true,
      });
    }
    return out;
  }

  /** Which records the actions' recipients have at the start of the call (one statement a brand). */
  /** `records`: the call's recipients by brand, as Ledger.plan collected them (their masks are reset and reused). */
  private knownState(actions: ConsentAction[], records?: Map<number, Map<string, number>>): KnownState {
    const brands = records ?? new Map<number, Map<string, number>>();
    if (records) {
      for (const rows of records.values()) for (const recipient of rows.keys()) rows.set(recipient, 0);
    } else {
      for (const a of actions) {
        let rows = brands.get(a.brandId);
        if (!rows) brands.set(a.brandId, (rows = new Map()));
        rows.set(a.recipient, 0);
      }
    }
    const stored = new Map<number, Map<string, RawState[]>>();
    for (const [brandId, rows] of brands) {
      const found = this.s.statesOf.all(JSON.stringify([...rows.keys()]), brandId);
      if (found.length === 0) continue;
      const byRecipient = new Map<string, RawState[]>();
      stored.set(brandId, byRecipient);
      for (const r of found) {
        const recipient = r[1];
        rows.set(recipient, rows.get(recipient)! | stateBit(r[2], r[3]));
        const list = byRecipient.get(recipient);
        if (list) list.push(r);
        else byRecipient.set(recipient, [r]);
      }
    }
    return new KnownState(brands, stored);
  }

  /**
   * The outcome of an action its recorded event already holds (the event `id`). The event is read
   * the first time the outcome's reader asks for it (an API answer shows it; an import counts the
   * outcome and never does): events are never changed once written. Reading it with each duplicate
   * (16 columns and its previous hash, 11.5 µs against 4.7 for its id) was a third of an import's
   * re-run.
   */
  private duplicateOf(id: number): ActionOutcome {
    const read = this.s.event;
    let event: LedgerEvent | undefined;
    return {
      kind: "duplicate",
      get event(): LedgerEvent {
        return (event ??= read.get(id)!);
      },
    };
  }

  /** The origin of a ledger event (null: no such event). */
  originOf(eventId: number): Origin | null {
    return (this.s.origin.get(eventId)?.origin as Origin | undefined) ?? null;
  }

  /** Registers a planner (callbacks, partners) that adds outbox rows for every recorded event. */
  addPlanner(p: OutboxPlanner): void {
    this.planners.push(p);
  }

  /** Whether a movement dated `consentDate` is too old for İYS now (more than 3 business days: H467). */
  lateForIys(consentDate: number): boolean {
    return isLate(new Date(consentDate), { now: this.deps.clock.now(), calendar: this.deps.calendar });
  }

  state(brandId: number, recipient: string, recipientType: RecipientType, type: ConsentType): ConsentStateRow | null {
    return toState(this.s.state.get(brandId, recipient, recipientType, type));
  }

  /**
   * Works out what apply would write for a large call (an import's batch) without writing it, in a
   * read transaction, going on from `after` (the head of a plan not written yet: its records must not
   * be among this call's) or from the ledger's head. Null when the call needs apply itself: fewer
   * than KNOWN_STATE_MIN actions, a receipt, idempotency keys, a record twice in the call, or a
   * consent of a recipient who has a record of the other recipient type (refusalsOverConsents reads
   * the records the call writes). The outcomes hold only once the plan is written; their events get
   * their chain from the writer, and past the `contentHashes` share their salt and content hash too
   * (LedgerPlan.events): the outcomes' events have none of them here.
   */
  plan(
    actions: ConsentAction[],
    opts: Omit<ApplyOptions, "receipt"> & {
      after?: PlanHead | null;
      /**
       * The share (0 to 1) of the events whose salt and content hash the plan works out, spread
       * evenly; the writer works out the rest. A caller whose writer keeps it waiting gives it more.
       */
      contentHashes?: number;
    } = {},
  ): {
    outcomes: ActionOutcome[];
    plan: LedgerPlan;
    /** The call's recipients, by brand (for their keys: whether a later call's recipient is among them). */
    recipients: ReadonlyMap<number, ReadonlyMap<string, unknown>>;
  } | null {
    if (actions.length < KNOWN_STATE_MIN) return null;
    // Each recipient's records in the call, as KnownState keeps them (a bit a record): one seen twice declines.
    const records = new Map<number, Map<string, number>>();
    for (const a of actions) {
      if (a.idempotencyKey) return null;
      let rows = records.get(a.brandId);
      if (!rows) records.set(a.brandId, (rows = new Map()));
      const mask = rows.get(a.recipient) ?? 0;
      const bit = stateBit(a.recipientType, a.type);
      if ((mask & bit) !== 0) return null;
      rows.set(a.recipient, mask | bit);
    }
    const capture: LedgerPlan = { after: opts.after ?? { id: 0, hash: GENESIS_HASH }, head: { id: 0, hash: null, plan: ++planTokens }, events: [], stateRanges: [], outbox: [], receivedAt: 0, guards: [] };
    this.readTx ??= this.db.$client.transaction((a: ConsentAction[], o: ApplyOptions, c: Capture, r: Map<number, Map<string, number>>) => this.applyInTransaction(a, o, c, r));
    try {
      const { outcomes } = this.readTx.deferred(actions, { outbox: opts.outbox }, Object.assign(capture, { given: Boolean(opts.after), hashShare: opts.contentHashes ?? 0, hashed: 0 }), records);
      return { outcomes, plan: capture, recipients: records };
    } catch (err) {
      if (err instanceof NeedsWrites) return null;
      throw err;
    }
  }

  apply(actions: ConsentAction[], opts: ApplyOptions = {}): ApplyResult {
    // Made once: better-sqlite3 builds a wrapper (and its savepoint statements) per transaction().
    this.tx ??= this.db.$client.transaction((a: ConsentAction[], o: ApplyOptions) => this.applyInTransaction(a, o));
    return this.tx.immediate(actions, opts);
  }

  /**
   * As apply, inside a transaction the caller holds (no savepoint of its own: a savepoint's
   * sub-journal goes to a temp file, which was half of an SMS receipt's apply time). Should it
   * throw, what it wrote is undone only with the caller's transaction.
   */
  applyWithin(actions: ConsentAction[], opts: ApplyOptions = {}): ApplyResult {
    if (!this.db.$client.inTransaction) throw new Error("applyWithin needs an open transaction");
    return this.applyInTransaction(actions, opts);
  }

  private tx: import("better-sqlite3").Transaction<(a: ConsentAction[], o: ApplyOptions) => ApplyResult> | undefined;
  private readTx: import("better-sqlite3").Transaction<(a: ConsentAction[], o: ApplyOptions, c: Capture, r: Map<number, Map<string, number>>) => ApplyResult> | undefined;

  /** With `capture` (plan): nothing is written; the writes go into it, and reads a write of the call would change throw NeedsWrites. */
  private applyInTransaction(actions: ConsentAction[], opts: ApplyOptions, capture?: Capture, records?: Map<number, Map<string, number>>): ApplyResult {
    // Checked inside the write transaction: two jobs racing for one receipt apply it once.
    if (opts.receipt) {
      const current = this.s.receiptStatus.get(opts.receipt.id) as { status: string } | undefined;
      if (current && current.status !== "received") return { outcomes: [], outbox: [], alreadyApplied: true };
    }
    const now = this.deps.clock.now();
    const receivedAt = now.getTime();
    const transaction = ++transactions;
    const start: PlanHead = capture?.given ? capture.after : (this.s.head.get() ?? { id: 0, hash: GENESIS_HASH });
    // The last event of the call so far (updated in place: one object a call, not one an event).
    const head: PlanHead = { id: start.id, hash: start.hash };
    if (capture) {
      capture.after = start;
      capture.receivedAt = receivedAt;
      // Read in the snapshot the planners read in.
      for (const p of this.planners) if (p.guard) capture.guards.push([p.guard, this.db.$client.prepare(p.guard).pluck().get() ?? null]);
    }
    const results: ActionOutcome[] = [];
    const outboxInputs: OutboxInput[] = [];
    /** A plan's events, in order (capture). */
    const planned: LedgerEvent[] | null = capture ? [] : null;

    // The actions asked for; then, for the consents they recorded, the channel refusals of the
    // other recipient type dated after them (refusalsOverConsents). Outcomes are of the actions asked for.
    // (The derived ones after the call's own: an action at actions.length or later is derived.)
    const queue: ConsentAction[] = actions.slice();
    // The consents the call recorded (what became of each record is read after the call's actions).
    const consents: ConsentAction[] = [];
    const derivedOutcomes: ActionOutcome[] = [];
    let derivedPlanned = false;
    const known = actions.length >= KNOWN_STATE_MIN ? this.knownState(actions, records) : null;
    // A large call's state rows are written from its events together (stateFromEvents), before any
    // read of a record it wrote and at its end: the first event whose state row is still to be written.
    let pendingFrom = 0;
    const writeState = () => {
      if (pendingFrom !== 0) {
        if (capture) capture.stateRanges.push([pendingFrom, head.id]);
        else this.s.stateFromEvents.run(pendingFrom, head.id);
      }
      pendingFrom = 0;
      // A plan's records stay pending: the database never has them while it is made.
      if (!capture) known?.flushed();
    };
    for (let q = 0; ; q++) {
      if (q === queue.length) {
        if (derivedPlanned || consents.length === 0) break;
        derivedPlanned = true;
        writeState();
        for (const d of this.refusalsOverConsents(consents, known, capture !== undefined)) queue.push(d);
        if (q === queue.length) break;
      }
      const a = queue[q]!;
      const derived = q >= actions.length;
      const outcomes: ActionOutcome[] = derived ? derivedOutcomes : results;
      if (a.idempotencyKey) {
        const existing = this.s.byKey.get(a.idempotencyKey);
        if (existing !== undefined) {
          outcomes.push(this.duplicateOf(existing));
          continue;
        }
      }
      if (known?.isPending(a.brandId, a.recipient, a.recipientType, a.type)) {
        if (capture) throw new NeedsWrites();
        writeState();
      }
      const previous =
        known && known.absent(a.brandId, a.recipient, a.recipientType, a.type)
          ? null
          : (known?.row(a.brandId, a.recipient, a.recipientType, a.type) ?? toState(this.s.state.get(a.brandId, a.recipient, a.recipientType, a.type)));
      // A registered import's row (a record İYS holds, on the provider's word) seeds a key the hub
      // knows nothing of, or goes on with what registered rows hold (a key's history in the file).
      // Over a record of the hub's own it is an import's movement like any other (the
      // 3-business-day window applies, it is reported): a file never overrides the hub's record — a
      // refusal it reported, or one it keeps — on its word alone.
      let writer = a.writer ?? "provider";
      let origin = a.origin;
      if (writer === "registered" && previous && this.s.origin.get(previous.eventId)?.origin !== "registered") {
        writer = "provider";
        origin = "import";
      }
      if (previous && a.dedupe === "content" && !a.idempotencyKey) {
        let existing: number | undefined;
        for (const o of origin === a.origin ? [origin] : [a.origin, origin]) {
          existing ??= this.s.byContent.get(a.brandId, a.recipient, a.recipientType, a.type, o, a.status, a.source, a.consentDate, a.retailerCode ?? null);
        }
        if (existing !== undefined) {
          outcomes.push(this.duplicateOf(existing));
          continue;
        }
      }
      let consentDate = a.consentDate;
      let ruleNow = now;
      /** The stored refusal a consent dated on receipt came before (applied late), or null. */
      let olderThanRefusal: { origin: string } | null = null;
      if (a.datedOnReceipt && consentDate !== null && previous?.consentDate != null && previous.status !== a.status && consentDate <= previous.consentDate) {
        // A refusal always; a consent only when received after the refusal stored (else H178 below).
        if (a.status === "ONAY" && a.receivedAt !== undefined) {
          const stored = this.s.receivedOf.get(previous.eventId);
          const at = stored?.receivedAt ?? previous.updatedAt;
          // In the same millisecond the receipts' order decides (their ids follow arrival); without
          // two receipts to compare, the refusal stands.
          const older = a.receivedAt < at || (a.receivedAt === at && (stored?.receiptId == null || a.receiptId == null || a.receiptId < stored.receiptId));
          if (older) olderThanRefusal = { origin: stored?.origin ?? "" };
        }
        if (!olderThanRefusal) {
          consentDate = previous.consentDate + 1000;
          // At most a second ahead of our clock: the İYS report waits until the date has passed.
          if (consentDate > now.getTime()) ruleNow = new Date(consentDate);
        }
      }
      // A refusal moved a second ahead of the clock (datedOnReceipt) is carried over with its date.
      if (derived && consentDate !== null && consentDate > now.getTime()) ruleNow = new Date(consentDate);
      const verdict = checkConsent(
        {
          recipientKind: a.recipientKind,
          phoneKind: a.phoneKind,
          recipientType: a.recipientType,
          type: a.type,
          status: a.status,
          source: a.source,
          consentDate: consentDate === null ? null : new Date(consentDate),
        },
        previous && {
          status: previous.status,
          consentDate: previous.consentDate === null ? null : new Date(previous.consentDate),
          inIys: previous.inIys,
          // The state row's last write is its event's receipt (the ledger alone writes it).
          receivedAt: new Date(previous.updatedAt),
        },
        { now: ruleNow, calendar: this.deps.calendar, writer },
      );
      if (!verdict.ok) {
        if (verdict.noop && previous) outcomes.push({ kind: "noop", code: "H174", message: verdict.message, state: previous });
        else {
          const channelRefusal = olderThanRefusal !== null && verdict.code === "H178" && ["sms", "ivr", "link"].includes(olderThanRefusal.origin);
          outcomes.push({ kind: "rejected", code: verdict.code, message: verdict.message, ...(channelRefusal ? { supersededByRefusal: true as const } : {}) });
        }
        continue;
      }

      const event: LedgerEvent = {
        id: head.id + 1,
        brandId: a.brandId,
        recipient: a.recipient,
        recipientType: a.recipientType,
        type: a.type,
        status: a.status,
        source: a.source,
        consentDate,
        retailerCode: a.retailerCode ?? null,
        origin,
        receiptId: a.receiptId ?? null,
        idempotencyKey: a.idempotencyKey ?? null,
        effect: verdict.effect,
        receivedAt,
        prevHash: "",
        salt: null,
        hash: "",
      };
      // A plan's events are chained by its writer (LedgerPlan.events), made into rows once the call is
      // planned (below); these here, hashed in their row.
      if (planned) planned.push(event);
      else {
        const row = eventRow(event);
        event.prevHash = head.hash!;
        event.hash = sealRow(row, event.prevHash);
        event.salt = row[ROW_SALT] as string;
        this.s.insertEvent.run(row);
      }
      const inIys = verdict.effect === "movement" || (previous?.inIys ?? false);
      if (known) {
        if (pendingFrom === 0) pendingFrom = event.id;
      } else this.s.upsertState.run(
        event.brandId,
        event.recipient,
        event.recipientType,
        event.type,
        event.status,
        event.source,
        event.consentDate,
        event.retailerCode,
        inIys ? 1 : 0,
        event.id,
        receivedAt,
      );
      head.id = event.id;
      head.hash = event.hash;
      known?.written(event.brandId, event.recipient, event.recipientType, event.type);
      outcomes.push({ kind: "recorded", event, previous });
      const late = verdict.effect === "suppression" && (consentDate === null || this.lateForIys(consentDate));
      const context: PlanContext = { previous, late, transaction };
      for (const plan of this.planners) outboxInputs.push(...plan(event, context));
      if (!derivedPlanned && event.status === "ONAY" && writer !== "iys" && !channelOrigins.has(origin)) consents.push(a);
    }

    writeState();
    if (opts.outbox) outboxInputs.push(...opts.outbox(results, derivedOutcomes));
    let outbox: OutboxRef[] = [];
    const values = outboxInputs.map((o) => [
      o.kind,
      o.eventId ?? null,
      o.receiptId ?? null,
      o.target ?? null,
      o.skipped === undefined ? "pending" : "skipped",
      o.skipped ?? null,
    ]);
    if (capture) {
      // The rows (and the share of content hashes the caller asks for, spread evenly; the writer
      // works out the rest) are made only now: made with each event, they lived through the
      // scavenges of the whole call and were copied into the old generation with it.
      for (const event of planned!) {
        const row = eventRow(event);
        capture.hashed += capture.hashShare;
        if (capture.hashed >= 1) {
          capture.hashed -= 1;
          row[ROW_HASH] = contentHashRow(row);
        } else row[ROW_HASH] = null;
        capture.events.push(row);
      }
      capture.outbox = values;
      capture.head = { id: head.id, hash: null, plan: capture.head.plan };
    } else if (values.length > 1) {
      outbox = this.s.insertOutboxMany
        .all(receivedAt, receivedAt, JSON.stringify(values))
        .filter((r) => r.status === "pending")
        .map((r) => ({ id: r.id, kind: r.kind }))
        .sort((a, b) => a.id - b.id);
    } else if (values.length === 1) {
      const o = outboxInputs[0]!;
      const row = this.s.insertOutbox.get(...values[0]!, receivedAt, receivedAt) as { id: number };
      if (o.skipped === undefined) outbox.push({ id: row.id, kind: o.kind });
    }

    if (opts.receipt) {
      this.s.markReceipt.run(
        opts.receipt.status,
        opts.receipt.result ? JSON.stringify(opts.receipt.result) : null,
        receivedAt,
        opts.receipt.id,
      );
    }
    return { outcomes: results, outbox };
  }
}
