import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { consentSources, consentStatuses, consentTypes, eventEffects, origins, recipientTypes } from "../../src/domain/consent";
import { brands } from "./brands";
import { receipts } from "./receipts";

/**
 * The append-only consent ledger. Ids are a gap-free sequence assigned by db/ledger.ts; each row's
 * `hash` covers every other column and the previous row's hash.
 */
export const consentEvents = sqliteTable(
  "consent_events",
  {
    id: integer("id").primaryKey(),
    brandId: integer("brand_id")
      .notNull()
      .references(() => brands.id),
    recipient: text("recipient").notNull(),
    recipientType: text("recipient_type", { enum: recipientTypes }).notNull(),
    type: text("type", { enum: consentTypes }).notNull(),
    status: text("status", { enum: consentStatuses }).notNull(),
    source: text("source", { enum: consentSources }),
    /** Instant (ms since epoch, UTC); rendered as Turkish wall time at the edges. */
    consentDate: integer("consent_date"),
    retailerCode: text("retailer_code"),
    origin: text("origin", { enum: origins }).notNull(),
    receiptId: integer("receipt_id").references(() => receipts.id),
    /** Makes a re-submitted API request or import row the same event. */
    idempotencyKey: text("idempotency_key"),
    effect: text("effect", { enum: eventEffects }).notNull(),
    receivedAt: integer("received_at").notNull(),
    /**
     * SHA-256 of the event's content hash and the hash of the event before it (id - 1; GENESIS_HASH
     * for the first). That previous hash is read from the event before (EVENT_COLUMNS' prevHash), not
     * stored again: a column of 64 characters an event (a quarter of the row) and ~0.8 µs of an
     * import's SQL a row, with nothing it could tell that the hashes do not.
     */
    hash: text("hash").notNull(),
    /**
     * 16 random bytes (base64url) in the event's canonical content (format 3): a proof shows the
     * content hashes of later events, which without it could be brute-forced back to their
     * recipients (a phone number is a billion guesses). Null for events of format 2.
     */
    salt: text("salt"),
  },
  (t) => [
    // Partial: imported events have no key, and a million NULL entries would only cost writes.
    uniqueIndex("consent_events_idempotency_key_idx").on(t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
    // History of one recipient for one brand (GET /api/v1/consents).
    index("consent_events_brand_id_recipient_idx").on(t.brandId, t.recipient),
    // Daily movement reports and exports by time.
    index("consent_events_received_at_idx").on(t.receivedAt),
  ],
);

/**
 * The current state: a projection of consent_events, updated in the same transaction. A WITHOUT
 * ROWID table (migration 0027: one b-tree write a state row instead of two), which drizzle-kit cannot
 * express: a generated migration that rebuilds this table must keep the clause.
 */
export const consentState = sqliteTable(
  "consent_state",
  {
    brandId: integer("brand_id")
      .notNull()
      .references(() => brands.id),
    recipient: text("recipient").notNull(),
    recipientType: text("recipient_type", { enum: recipientTypes }).notNull(),
    type: text("type", { enum: consentTypes }).notNull(),
    status: text("status", { enum: consentStatuses }).notNull(),
    source: text("source", { enum: consentSources }),
    consentDate: integer("consent_date"),
    retailerCode: text("retailer_code"),
    /** 1 once a reportable movement exists (İYS has a record); 0 for a bare suppression. */
    inIys: integer("in_iys", { mode: "boolean" }).notNull(),
    eventId: integer("event_id")
      .notNull()
      .references(() => consentEvents.id),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.brandId, t.recipient, t.recipientType, t.type] })],
);

/** Signed (EdDSA) statements of the chain head: once published, history before them cannot be rewritten unnoticed. */
export const ledgerCheckpoints = sqliteTable("ledger_checkpoints", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  eventId: integer("event_id").notNull(),
  hash: text("hash").notNull(),
  jws: text("jws").notNull(),
  createdAt: integer("created_at").notNull(),
});

/**
 * iys_report: one movement through İYS's single write; iys_batch: up to 1000 imported movements
 * through İYS's asynchronous multiple write (event_id is the first, target the JSON list of ids);
 * iys_follow: İYS's record of a consent taken after İYS refused the event's movement as older (H178).
 */
export const outboxKinds = ["iys_report", "iys_batch", "iys_follow", "confirmation", "callback", "email_confirmation"] as const;
export type OutboxKind = (typeof outboxKinds)[number];
export const outboxStatuses = ["pending", "done", "skipped", "failed", "exhausted"] as const;
export type OutboxStatus = (typeof outboxStatuses)[number];

/** Work that must follow a ledger commit, written in the same transaction so none of it is lost. */
export const outbox = sqliteTable(
  "outbox",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    kind: text("kind", { enum: outboxKinds }).notNull(),
    eventId: integer("event_id").references(() => consentEvents.id),
    receiptId: integer("receipt_id").references(() => receipts.id),
    /** Kind-specific target: an endpoint id, a partner id, a template name. */
    target: text("target"),
    status: text("status", { enum: outboxStatuses }).notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    lastError: text("last_error"),
    /** What the last successful or final attempt returned (provider message id, response code…). */
    result: text("result", { mode: "json" }).$type<Record<string, unknown>>(),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    /** Not to be tried before this instant (a scheduled retry or an attempt in flight); null = now. */
    nextAttemptAt: integer("next_attempt_at"),
    /**
     * The end of the lease a callback attempt claimed the row with: an attempt is in flight (in any
     * process) while this equals next_attempt_at and is still ahead; whatever ends or reschedules the
     * attempt moves next_attempt_at away from it.
     */
    claimedUntil: integer("claimed_until"),
  },
  (t) => [
    // The sweeper looks for rows still waiting for their job.
    index("outbox_pending_idx").on(t.createdAt).where(sql`status = 'pending'`),
    index("outbox_event_id_idx").on(t.eventId),
    // The dashboard's deadlines: work not done, of any age (kept small: finished rows leave it).
    index("outbox_unfinished_idx").on(t.kind, t.eventId).where(sql`status <> 'done'`),
    // The daily movement file: single reports by the creationDate İYS answered (src/export.ts).
    index("outbox_iys_created_idx")
      .on(sql`${t.result} ->> '$.creationDate'`)
      .where(sql`kind = 'iys_report' AND status = 'done'`),
  ],
);

/**
 * Outbox rows taken back from a settled status (skipped İYS reports reopened when a brand gets its
 * codes, src/iys-reports.ts): a log /metrics reads to count them again (src/metrics/tally.ts), since
 * it reads every other row once and takes a settled status as final.
 */
export const outboxReopened = sqliteTable("outbox_reopened", {
  seq: integer("seq").primaryKey(),
  outboxId: integer("outbox_id").notNull(),
  at: integer("at").notNull(),
});

export const iysItemStatuses = ["success", "failure"] as const;

/**
 * What İYS made of each movement of an `iys_batch` row, once its asynchronous request was processed
 * (Çoklu İzin Ekleme İsteği Sorgulama): the transactionId of a success (the key of İYS's daily
 * movement file), the error code of a failure.
 */
export const iysReportItems = sqliteTable(
  "iys_report_items",
  {
    eventId: integer("event_id")
      .primaryKey()
      .references(() => consentEvents.id),
    outboxId: integer("outbox_id")
      .notNull()
      .references(() => outbox.id),
    status: text("status", { enum: iysItemStatuses }).notNull(),
    transactionId: text("transaction_id"),
    /** When İYS registered the movement (ms), as its request query answered: its daily file's creationDate. */
    creationDate: integer("creation_date"),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [index("iys_report_items_creation_date_idx").on(t.creationDate)],
);

/**
 * Where the pull of İYS's recipient movements (İzin Hareketi Sorgulama, source IYS: refusals and
 * consents recipients gave on İYS's web site, e-Devlet, its app or 3338) stands for each brand:
 * İYS's `after` pointer, written in the same transaction as the movements it covers.
 */
export const iysPullCursors = sqliteTable("iys_pull_cursors", {
  brandId: integer("brand_id")
    .primaryKey()
    .references(() => brands.id),
  /** İYS's pointer past the last movement taken (`<creationDate seconds>_<transactionId>`); null before the first. */
  after: text("after"),
  /** Movements taken so far (recorded, already held, or refused by the rules). */
  movements: integer("movements").notNull().default(0),
  /** When İYS last answered a pull (ms). */
  pulledAt: integer("pulled_at"),
  /** Why the last pull failed, until one succeeds. */
  lastError: text("last_error"),
  /**
   * The same four for the pull of the provider's own movements (`source=HS`): the hub's reports,
   * recognised and skipped, and what the provider's other systems or İYS's web panel wrote.
   */
  hsAfter: text("hs_after"),
  hsMovements: integer("hs_movements").notNull().default(0),
  hsPulledAt: integer("hs_pulled_at"),
  hsLastError: text("hs_last_error"),
  updatedAt: integer("updated_at").notNull(),
});

/**
 * The İYS identity of a movement taken from İYS's pull: its transactionId and creationDate, the key
 * of İYS's daily movement file (the hub's own movements keep theirs on their report rows).
 */
export const iysPulledMovements = sqliteTable(
  "iys_pulled_movements",
  {
    eventId: integer("event_id")
      .primaryKey()
      .references(() => consentEvents.id),
    transactionId: text("transaction_id").notNull(),
    creationDate: integer("creation_date"),
  },
  (t) => [index("iys_pulled_movements_creation_date_idx").on(t.creationDate)],
);

/**
 * Movements İYS's pull listed that the hub took no event for — the status it held already, a date
 * older than its record, a value its rules refuse — kept as İYS gave them: they are İYS's movements
 * all the same, in İYS's daily movement file (src/export.ts dailyReport), whose SHA-384 the hub's
 * report must match.
 */
export const iysListedMovements = sqliteTable(
  "iys_listed_movements",
  {
    transactionId: text("transaction_id").primaryKey(),
    brandId: integer("brand_id")
      .notNull()
      .references(() => brands.id),
    creationDate: integer("creation_date"),
    recipient: text("recipient").notNull(),
    recipientType: text("recipient_type").notNull(),
    type: text("type").notNull(),
    status: text("status").notNull(),
    /** As İYS wrote it ("YYYY-MM-DD HH:mm:ss"), or null. */
    consentDate: text("consent_date"),
    source: text("source"),
  },
  (t) => [index("iys_listed_movements_brand_id_creation_date_idx").on(t.brandId, t.creationDate)],
);
