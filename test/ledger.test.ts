import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { join } from "node:path";
import { createCheckpoint, loadOrCreateLedgerKey, verifyLedger, type LedgerKey } from "../db/checkpoints";
import { openDatabase, runMigrations, type Db } from "../db/index";
import { canonicalEvent, contentHash, EVENT_COLUMNS, eventHash, GENESIS_HASH, Ledger, type ActionOutcome, type ConsentAction, type LedgerEvent } from "../db/ledger";
import { sha256 } from "../db/event-hash.mjs";
import { createBrand } from "../src/brands";
import { BusinessCalendar } from "../src/domain/calendar";
import { iysReportPlanner } from "../src/runtime";
import { iysBatchPlanner, iysFollowPlanner } from "../src/iys-reports";
import { run as applyReceipts, type ReceiptRow } from "../jobs/consent-apply.handler";
import { recordReceipt } from "../src/receipts";
import { callbackPlanner, insertEndpoint } from "../src/callbacks/store";
import { mobileOnay, TestClock, tempDir } from "./helpers";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const clock = new TestClock(Date.parse("2026-11-25T09:00:00Z"));
let db: Db;
let ledger: Ledger;
let key: LedgerKey;
let brandId: number;
let n = 0;

beforeEach(async () => {
  n++;
  db = openDatabase(join(tmp.dir, `ledger-${n}.db`));
  runMigrations(db);
  ledger = new Ledger(db, { clock, calendar: new BusinessCalendar(), planners: [iysReportPlanner] });
  key = await loadOrCreateLedgerKey(join(tmp.dir, "key.json"));
  brandId = createBrand(db, { code: "MIGROS", name: "Migros", iysCode: "600000", brandCode: "600001", shortNames: ["MIGROS"], numbers: [] }, clock.now().getTime()).id;
});

const action = (over: Partial<ConsentAction> = {}): ConsentAction => ({ ...mobileOnay(brandId, 1_234_567, clock.now().getTime() - 3_600_000), ...over });

const count = (table: string) => (db.$client.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

describe("ledger", () => {
  it("one apply writes the event, the state and the İYS outbox row together", () => {
    const { outcomes, outbox } = ledger.apply([action()]);
    expect(outcomes[0]).toMatchObject({ kind: "recorded", event: { id: 1, prevHash: GENESIS_HASH, effect: "movement" } });
    expect(outbox).toEqual([{ id: 1, kind: "iys_report" }]);
    expect(ledger.state(brandId, "+905321234567", "BIREYSEL", "MESAJ")).toMatchObject({ status: "ONAY", inIys: true, eventId: 1 });
    expect(count("consent_events")).toBe(1);
    expect(count("outbox")).toBe(1);
  });

  it("events are hash-chained: each covers its content and the previous hash", () => {
    ledger.apply([action()]);
    clock.advance(60_000);
    ledger.apply([action({ status: "RET", consentDate: clock.now().getTime() - 1000 })]);
    const rows = db.$client.prepare(`SELECT ${EVENT_COLUMNS} FROM consent_events ORDER BY id`).all() as LedgerEvent[];
    // The previous hash is no column of its own: read from the event before (GENESIS_HASH for the first).
    expect(Object.keys(db.$client.prepare("SELECT * FROM consent_events").get() as object)).not.toContain("prev_hash");
    expect(rows.map((r) => r.prevHash)).toEqual([GENESIS_HASH, rows[0]!.hash]);
    for (const r of rows) expect(eventHash(r)).toBe(r.hash);
    expect(rows[1]!.hash).toBe(sha256(contentHash(rows[1]!) + rows[0]!.hash));
    const { outcomes } = ledger.apply([]);
    expect(outcomes).toEqual([]);
  });

  it("a failure inside the transaction leaves nothing half-written", () => {
    expect(() =>
      ledger.apply([action(), action({ type: "ARAMA" })], {
        outbox: () => {
          throw new Error("boom after the events were inserted");
        },
      }),
    ).toThrow("boom");
    expect(count("consent_events")).toBe(0);
    expect(count("consent_state")).toBe(0);
    expect(count("outbox")).toBe(0);
    // The chain continues from genesis afterwards.
    expect(ledger.apply([action()]).outcomes[0]).toMatchObject({ kind: "recorded", event: { id: 1 } });
  });

  it("a repeated idempotency key returns the original event and writes nothing", () => {
    const first = ledger.apply([action({ idempotencyKey: "k1" })]);
    const again = ledger.apply([action({ idempotencyKey: "k1" })]);
    expect(again.outcomes[0]).toMatchObject({ kind: "duplicate" });
    expect(again.outcomes[0]!.kind === "duplicate" && again.outcomes[0]!.event.hash).toBe(
      first.outcomes[0]!.kind === "recorded" && first.outcomes[0]!.event.hash,
    );
    expect(again.outbox).toEqual([]);
    expect(count("consent_events")).toBe(1);
    // The key is unique in the database too, and looked up through its (partial) index, which
    // keyless events (imports) do not enter.
    expect(() => db.$client.prepare("INSERT INTO consent_events SELECT NULL, brand_id, recipient, recipient_type, type, status, source, consent_date, retailer_code, origin, receipt_id, idempotency_key, effect, received_at, hash, salt FROM consent_events").run()).toThrow(/UNIQUE/);
    const plan = (db.$client.prepare("EXPLAIN QUERY PLAN SELECT id FROM consent_events WHERE idempotency_key = ?").all("k1") as { detail: string }[]).map((r) => r.detail);
    expect(plan.join("\n")).toContain("consent_events_idempotency_key_idx");
    // Keyless rows are not in it: SQLite cannot answer a NULL lookup from it.
    expect(() => db.$client.prepare("SELECT id FROM consent_events INDEXED BY consent_events_idempotency_key_idx WHERE idempotency_key IS NULL")).toThrow(/no query solution/);
  });


  it("a large call (its recipients' state rows read in one statement, up front) judges each action as calls of one action each do", () => {
    const otherDb = openDatabase(join(tmp.dir, `ledger-${n}-single.db`));
    runMigrations(otherDb);
    createBrand(otherDb, { code: "MIGROS", name: "Migros", iysCode: "600000", brandCode: "600001", shortNames: ["MIGROS"], numbers: [] }, clock.now().getTime());
    const single = new Ledger(otherDb, { clock, calendar: new BusinessCalendar(), planners: [iysReportPlanner] });
    const now = clock.now().getTime();
    const at = (minutesAgo: number) => now - minutesAgo * 60_000;
    const imported = (i: number, over: Partial<ConsentAction>) => ({ ...mobileOnay(brandId, 2_000_000 + i, at(120), "import"), dedupe: "content" as const, ...over });
    // Records the call finds: consents of recipients 0-59, a refusal of calls for 0-19.
    const seed = [
      ...Array.from({ length: 60 }, (_, i) => imported(i, {})),
      ...Array.from({ length: 20 }, (_, i) => imported(i, { type: "ARAMA", status: "RET", source: "HS_MESAJ", consentDate: at(110) })),
    ];
    ledger.apply(seed);
    single.apply(seed);
    clock.advance(60_000);
    const call: ConsentAction[] = [];
    for (let i = 0; i < 20; i++) call.push(imported(i, {})); // the same rows again: unchanged
    for (let i = 20; i < 40; i++) {
      // Refused, then consented again in the same call: the second reads the state the first left.
      call.push(imported(i, { status: "RET", source: "HS_MESAJ", consentDate: at(30) }));
      call.push(imported(i, { source: "HS_MOBIL", consentDate: at(20) }));
    }
    for (let i = 40; i < 50; i++) call.push(imported(i, { source: "HS_MOBIL", consentDate: at(200) })); // a consent older than the consent recorded: H174
    for (let i = 0; i < 10; i++) call.push(imported(i, { type: "ARAMA", status: "ONAY", consentDate: at(100) })); // over the refusal of calls
    for (let i = 10; i < 20; i++) call.push(imported(i, { source: "HS_MOBIL", consentDate: at(5) })); // a consent again (not the call refusal's record): H174
    for (let i = 60; i < 80; i++) call.push(imported(i, {})); // new recipients
    expect(call.length).toBeGreaterThanOrEqual(64);
    const judged = (outcomes: ActionOutcome[]) => outcomes.map((o) => (o.kind === "rejected" || o.kind === "noop" ? o.code : o.kind === "recorded" ? `${o.kind} ${o.event.status} after ${o.previous?.status ?? "-"}` : o.kind));
    const together = judged(ledger.apply(call).outcomes);
    const oneByOne = judged(call.flatMap((a) => single.apply([a]).outcomes));
    expect(together).toEqual(oneByOne);
    expect(together.filter((k) => k === "duplicate")).toHaveLength(20);
    expect(together.filter((k) => k === "H174")).toHaveLength(20);
    expect(together.filter((k) => k === "recorded ONAY after RET")).toHaveLength(20 + 10);
    expect(together.filter((k) => k === "recorded RET after ONAY")).toHaveLength(20);
    const rows = (d: Db, sql: string) => d.$client.prepare(sql).all();
    const STATE = "SELECT recipient, recipient_type, type, status, source, consent_date, retailer_code, in_iys, event_id, updated_at FROM consent_state ORDER BY recipient, recipient_type, type";
    const EVENTS = "SELECT id, recipient, recipient_type, type, status, source, consent_date, origin, effect FROM consent_events ORDER BY id";
    expect(rows(db, STATE)).toEqual(rows(otherDb, STATE));
    expect(rows(db, EVENTS)).toEqual(rows(otherDb, EVENTS));
    otherDb.$client.close();
  });

  it("content idempotency: the same content of the same origin is the original event, even after a later movement", () => {
    const consentDate = clock.now().getTime() - 3_600_000;
    const imported = (over: Partial<ConsentAction> = {}) => action({ origin: "import", dedupe: "content", consentDate, ...over });
    const first = ledger.apply([imported(), imported()]);
    expect(first.outcomes.map((o) => o.kind)).toEqual(["recorded", "duplicate"]);
    expect(first.outcomes[1]!.kind === "duplicate" && first.outcomes[1]!.event.id).toBe(1);
    clock.advance(60_000);
    ledger.apply([action({ status: "RET", consentDate: clock.now().getTime() - 1000 })]);
    // The imported row again: still the first event, not an older-dated ONAY refused by the rules (H178).
    const again = ledger.apply([imported()]);
    expect(again.outcomes[0]).toMatchObject({ kind: "duplicate", event: { id: 1, origin: "import" } });
    expect(again.outbox).toEqual([]);
    // The event is read when the outcome's reader asks for it, whole (with its previous hash), once;
    // it goes into an API answer's JSON like any property.
    const dup = again.outcomes[0]!;
    const stored = db.$client.prepare(`SELECT ${EVENT_COLUMNS} FROM consent_events WHERE id = 1`).get() as LedgerEvent;
    expect(stored.prevHash).toBe(GENESIS_HASH);
    expect(dup.kind === "duplicate" && dup.event).toEqual(stored);
    expect(dup.kind === "duplicate" && dup.event === dup.event).toBe(true);
    expect(JSON.parse(JSON.stringify(dup))).toEqual({ kind: "duplicate", event: stored });
    // Another source, date or origin is other content.
    const other = ledger.apply([imported({ source: "HS_MOBIL" }), imported({ consentDate: clock.now().getTime() - 500 }), action({ consentDate })]);
    expect(other.outcomes.map((o) => o.kind === "rejected" || o.kind === "noop" ? o.code : o.kind)).toEqual(["H178", "recorded", "H174"]);
    expect(count("consent_events")).toBe(3);
    expect((db.$client.prepare("SELECT count(*) AS n FROM consent_events WHERE idempotency_key IS NOT NULL").get() as { n: number }).n).toBe(0);
  });
  it("a RET without prior consent is a suppression with no İYS report, only a question to İYS whether it holds an older consent (not for TACIR or imports)", () => {
    // Registered by the runtime when the İYS API is configured; only for brands with İYS codes.
    ledger.addPlanner(iysFollowPlanner(db));
    const other = createBrand(db, { code: "KOTON", name: "Koton", shortNames: ["KOTON"], numbers: [] }, clock.now().getTime()).id;
    expect(ledger.apply([action({ status: "RET", brandId: other })]).outbox).toEqual([]);
    const { outcomes, outbox } = ledger.apply([action({ status: "RET" })]);
    expect(outcomes[0]).toMatchObject({ kind: "recorded", event: { effect: "suppression" } });
    expect(outbox).toEqual([{ id: 1, kind: "iys_follow" }]);
    expect(ledger.apply([action({ status: "RET", recipient: "+905321234568", recipientType: "TACIR" })]).outbox).toEqual([]);
    expect(ledger.apply([action({ status: "RET", recipient: "+905321234569", origin: "import" })]).outbox).toEqual([]);
    // Past İYS's 3 business days (it would answer H467), or over a consent the hub holds: nothing to ask.
    expect(ledger.apply([action({ status: "RET", recipient: "+905321234570", consentDate: clock.now().getTime() - 10 * 86_400_000 })]).outbox).toEqual([]);
    ledger.apply([action({ recipient: "+905321234571", consentDate: clock.now().getTime() - 20 * 86_400_000 })]);
    const late = ledger.apply([action({ status: "RET", recipient: "+905321234571", consentDate: clock.now().getTime() - 10 * 86_400_000 })]);
    expect(late.outcomes[0]).toMatchObject({ kind: "recorded", event: { effect: "suppression" } });
    expect(late.outbox).toEqual([]);
    expect(ledger.state(brandId, "+905321234567", "BIREYSEL", "MESAJ")).toMatchObject({ status: "RET", inIys: false });
  });

  it("a refusal too old for İYS over a consent İYS holds asks İYS too (İYS keeps the consent: the row is to say so), of either recipient type", () => {
    ledger.addPlanner(iysFollowPlanner(db));
    const day = 86_400_000;
    const t = clock.now().getTime();
    // An old refusal sent through the API over the registered base: a suppression, and a question to İYS.
    ledger.apply([action({ recipient: "+905321234580", origin: "registered", writer: "registered", consentDate: t - 365 * day, dedupe: "content" })]);
    expect(ledger.state(brandId, "+905321234580", "BIREYSEL", "MESAJ")).toMatchObject({ status: "ONAY", inIys: true });
    const old = ledger.apply([action({ recipient: "+905321234580", status: "RET", consentDate: t - 10 * day })]);
    expect(old.outcomes[0]).toMatchObject({ kind: "recorded", event: { effect: "suppression" } });
    expect(old.outbox).toEqual([{ id: expect.any(Number), kind: "iys_follow" }]);
    // A recipient's SMS refusal of ten days ago, carried over to a TACIR base registered now.
    ledger.apply([action({ recipient: "+905321234581", status: "RET", origin: "sms", source: "HS_MESAJ", consentDate: t - 10 * day, idempotencyKey: "sms:SM9:MESAJ" })]);
    const base = ledger.apply([action({ recipient: "+905321234581", recipientType: "TACIR", origin: "registered", writer: "registered", consentDate: t - 365 * day, dedupe: "content" })]);
    const follows = db.$client
      .prepare("SELECT e.recipient_type AS t, e.status, e.effect, e.origin FROM outbox o JOIN consent_events e ON e.id = o.event_id WHERE o.kind = 'iys_follow' AND o.id IN (SELECT value FROM json_each(?))")
      .all(JSON.stringify(base.outbox.map((r) => r.id)));
    expect(follows).toEqual([{ t: "TACIR", status: "RET", effect: "suppression", origin: "sms" }]);
    // Within İYS's 3 business days the carried-over refusal is a movement, reported: no question.
    ledger.apply([action({ recipient: "+905321234582", status: "RET", origin: "sms", source: "HS_MESAJ", consentDate: t - 600_000, idempotencyKey: "sms:SM10:MESAJ" })]);
    const fresh = ledger.apply([action({ recipient: "+905321234582", recipientType: "TACIR", origin: "registered", writer: "registered", consentDate: t - 365 * day, dedupe: "content" })]);
    const kinds = db.$client.prepare("SELECT kind FROM outbox WHERE id IN (SELECT value FROM json_each(?))").all(JSON.stringify(fresh.outbox.map((r) => r.id)));
    expect(kinds).toEqual([{ kind: "iys_report" }]);
  });

  it("a repeated status is a no-op that writes no event", () => {
    ledger.apply([action()]);
    clock.advance(1000);
    const { outcomes } = ledger.apply([action({ consentDate: clock.now().getTime() - 10 })]);
    expect(outcomes[0]).toMatchObject({ kind: "noop", code: "H174" });
    expect(count("consent_events")).toBe(1);
  });

  it("actions in one batch see each other's state", () => {
    const t = clock.now().getTime();
    const { outcomes } = ledger.apply([
      action({ consentDate: t - 5000 }),
      action({ status: "RET", consentDate: t - 4000 }),
      action({ status: "RET", consentDate: t - 3000 }),
    ]);
    expect(outcomes.map((o) => o.kind)).toEqual(["recorded", "recorded", "noop"]);
  });

  it("a recipient's own RET in the same second as the stored ONAY is dated one second later, never refused", () => {
    const t = clock.now().getTime();
    ledger.apply([action({ consentDate: t })]);
    const stated = ledger.apply([action({ status: "RET", source: "HS_MESAJ", origin: "api", consentDate: t })]);
    expect(stated.outcomes[0]).toMatchObject({ kind: "rejected", code: "H178" });
    const { outcomes } = ledger.apply([action({ status: "RET", source: "HS_MESAJ", origin: "sms", consentDate: t, datedOnReceipt: true })]);
    expect(outcomes[0]).toMatchObject({ kind: "recorded", event: { status: "RET", consentDate: t + 1000, effect: "movement" } });
    expect(ledger.state(brandId, "+905321234567", "BIREYSEL", "MESAJ")).toMatchObject({ status: "RET", consentDate: t + 1000 });
  });

  it("a recipient's consent received before a refusal now stored, applied late, does not undo it (H178); one received after it in its second is dated after it", () => {
    const now = clock.now().getTime();
    const t = Math.floor(now / 1000) * 1000;
    ledger.apply([action({ consentDate: t - 60_000 })]);
    // The recipient's RET, received and applied now (the event's time: no receipt row here).
    ledger.apply([action({ status: "RET", source: "HS_MESAJ", origin: "sms", consentDate: t, datedOnReceipt: true, receivedAt: now })]);
    // Their ONAY texted just before it, whose job was lost: applied only now by the sweeper.
    const late = ledger.apply([action({ status: "ONAY", source: "HS_MESAJ", origin: "sms", consentDate: t, datedOnReceipt: true, receivedAt: now - 300 })]);
    expect(late.outcomes[0]).toMatchObject({ kind: "rejected", code: "H178", supersededByRefusal: true });
    expect(ledger.state(brandId, "+905321234567", "BIREYSEL", "MESAJ")).toMatchObject({ status: "RET", consentDate: t });
    // Received in the refusal's very millisecond, with no receipts to order them: the refusal stands.
    expect(ledger.apply([action({ status: "ONAY", source: "HS_MESAJ", origin: "sms", consentDate: t, datedOnReceipt: true, receivedAt: now })]).outcomes[0]).toMatchObject({
      kind: "rejected",
      code: "H178",
    });
    // An ONAY received after the refusal, in the same second: the recipient's later word.
    const after = ledger.apply([action({ status: "ONAY", source: "HS_MESAJ", origin: "sms", consentDate: t, datedOnReceipt: true, receivedAt: now + 300 })]);
    expect(after.outcomes[0]).toMatchObject({ kind: "recorded", event: { status: "ONAY", consentDate: t + 1000 } });
  });

  it("texts received in the same millisecond are ordered by their receipts: RET then ONAY gives ONAY, ONAY then RET keeps RET", () => {
    const now = clock.now().getTime();
    const t = Math.floor(now / 1000) * 1000;
    const receipt = (ref: string) => recordReceipt(db, { channel: "sms", provider: "twilio", providerRef: ref, fromAddress: "+905321234567", body: "x" }, now).id;
    const [first, second, third, fourth] = [receipt("SMsame1"), receipt("SMsame2"), receipt("SMsame3"), receipt("SMsame4")];
    const text = (status: "RET" | "ONAY", receiptId: number) =>
      ledger.apply([action({ status, source: "HS_MESAJ", origin: "sms", consentDate: t, datedOnReceipt: true, receivedAt: now, receiptId })]).outcomes[0];
    ledger.apply([action({ consentDate: t - 60_000 })]);
    expect(text("RET", second)).toMatchObject({ kind: "recorded" });
    // Received after the RET (a later receipt), in its millisecond: the sender's later word.
    expect(text("ONAY", third)).toMatchObject({ kind: "recorded", event: { status: "ONAY", consentDate: t + 1000 } });
    expect(text("RET", fourth)).toMatchObject({ kind: "recorded", event: { status: "RET" } });
    // Received before that RET's receipt, applied after it: refused.
    expect(text("ONAY", first)).toMatchObject({ kind: "rejected", code: "H178" });
  });

  it("a recipient's RET that queued behind a newer provider ONAY is dated after it", () => {
    const t = clock.now().getTime();
    ledger.apply([action({ consentDate: t - 2000 })]);
    const { outcomes } = ledger.apply([action({ status: "RET", source: "HS_MESAJ", origin: "sms", consentDate: t - 5000, datedOnReceipt: true })]);
    expect(outcomes[0]).toMatchObject({ kind: "recorded", event: { consentDate: t - 1000 } });
  });

  it("a consent of the other recipient type recorded after a channel refusal but dated before it gets that refusal; one dated after it stands", () => {
    const refusedAt = clock.now().getTime() - 600_000;
    // The recipient texted RET: BIREYSEL, no consent before (a local suppression).
    const sms = ledger.apply([action({ status: "RET", origin: "sms", source: "HS_MESAJ", consentDate: refusedAt, receiptId: null, idempotencyKey: "sms:SM1:MESAJ" })]);
    expect(sms.outcomes[0]).toMatchObject({ kind: "recorded", event: { effect: "suppression" } });
    // The provider's registered base, loaded afterwards: a TACIR consent of a year before.
    const base = ledger.apply([action({ recipientType: "TACIR", origin: "registered", writer: "registered", consentDate: refusedAt - 365 * 86_400_000, dedupe: "content" })]);
    expect(base.outcomes).toHaveLength(1);
    expect(base.outcomes[0]).toMatchObject({ kind: "recorded", event: { status: "ONAY", origin: "registered" } });
    expect(ledger.state(brandId, "+905321234567", "TACIR", "MESAJ")).toMatchObject({ status: "RET", consentDate: refusedAt });
    const derived = db.$client.prepare("SELECT origin, source, idempotency_key AS k, effect FROM consent_events WHERE recipient_type = 'TACIR' AND status = 'RET'").all();
    expect(derived).toEqual([{ origin: "sms", source: "HS_MESAJ", k: "sms:SM1:MESAJ:TACIR", effect: "movement" }]);
    // The same file again: nothing new.
    const events = count("consent_events");
    expect(ledger.apply([action({ recipientType: "TACIR", origin: "registered", writer: "registered", consentDate: refusedAt - 365 * 86_400_000, dedupe: "content" })]).outcomes[0]!.kind).toBe("duplicate");
    expect(count("consent_events")).toBe(events);
    // A consent given after the refusal is a new consent.
    const later = ledger.apply([action({ recipientType: "TACIR", consentDate: refusedAt + 60_000 })]);
    expect(later.outcomes[0]).toMatchObject({ kind: "recorded" });
    expect(ledger.state(brandId, "+905321234567", "TACIR", "MESAJ")).toMatchObject({ status: "ONAY" });
    // A refusal through the API is the provider's record, not the recipient's word on a channel: not carried over.
    ledger.apply([action({ recipient: "+905329990000", status: "RET", consentDate: refusedAt })]);
    ledger.apply([action({ recipient: "+905329990000", recipientType: "TACIR", consentDate: refusedAt - 60_000 })]);
    expect(ledger.state(brandId, "+905329990000", "TACIR", "MESAJ")).toMatchObject({ status: "ONAY" });
  });

  it("a consent's history in one batch, recorded after a channel refusal of the other type, is taken whole and then refused", () => {
    const refusedAt = clock.now().getTime() - 600_000;
    const day = 86_400_000;
    ledger.apply([action({ status: "RET", origin: "sms", source: "HS_MESAJ", consentDate: refusedAt, idempotencyKey: "sms:SM2:MESAJ" })]);
    const history = ledger.apply([
      action({ recipientType: "TACIR", origin: "registered", writer: "registered", consentDate: refusedAt - 365 * day, dedupe: "content" }),
      action({ recipientType: "TACIR", origin: "registered", writer: "registered", status: "RET", consentDate: refusedAt - 100 * day, dedupe: "content" }),
      action({ recipientType: "TACIR", origin: "registered", writer: "registered", consentDate: refusedAt - 50 * day, dedupe: "content" }),
    ]);
    expect(history.outcomes.map((o) => o.kind)).toEqual(["recorded", "recorded", "recorded"]);
    expect(ledger.state(brandId, "+905321234567", "TACIR", "MESAJ")).toMatchObject({ status: "RET", consentDate: refusedAt, source: "HS_MESAJ" });
    expect(count("consent_events")).toBe(5);
  });

  it("the refusal carried over is the first channel refusal after the consent, even when the other record has moved on since", () => {
    const refusedAt = clock.now().getTime() - 2 * 3_600_000;
    ledger.apply([action({ status: "RET", origin: "sms", source: "HS_MESAJ", consentDate: refusedAt, idempotencyKey: "sms:SM3:MESAJ" })]);
    // Given again on BIREYSEL an hour later: the TACIR record, had it been there, would still hold the refusal.
    ledger.apply([action({ consentDate: refusedAt + 3_600_000 })]);
    ledger.apply([action({ recipientType: "TACIR", consentDate: refusedAt - 1_800_000 })]);
    expect(ledger.state(brandId, "+905321234567", "TACIR", "MESAJ")).toMatchObject({ status: "RET", consentDate: refusedAt });
  });

  it("a refusal dated a second ahead of the clock (a tie with a consent) is carried over with its date", () => {
    const at = clock.now().getTime();
    ledger.apply([action({ consentDate: at })]);
    const ret = ledger.apply([action({ status: "RET", origin: "sms", source: "HS_MESAJ", consentDate: at, datedOnReceipt: true, idempotencyKey: "sms:SM4:MESAJ" })]);
    expect(ret.outcomes[0]).toMatchObject({ kind: "recorded", event: { consentDate: at + 1000 } });
    ledger.apply([action({ recipientType: "TACIR", consentDate: at - 60_000 })]);
    expect(ledger.state(brandId, "+905321234567", "TACIR", "MESAJ")).toMatchObject({ status: "RET", consentDate: at + 1000 });
  });

  it("a consent dated in the refusal's own second is refused, the refusal dated a second after it; an undated TACIR consent, older than any refusal, with the refusal's date", () => {
    const refusedAt = Math.floor((clock.now().getTime() - 600_000) / 1000) * 1000;
    ledger.apply([action({ status: "RET", origin: "sms", source: "HS_MESAJ", consentDate: refusedAt, idempotencyKey: "sms:SM6:MESAJ" })]);
    ledger.apply([action({ recipientType: "TACIR", consentDate: refusedAt })]);
    expect(ledger.state(brandId, "+905321234567", "TACIR", "MESAJ")).toMatchObject({ status: "RET", consentDate: refusedAt + 1000 });
    ledger.apply([action({ recipient: "+905321230000", status: "RET", origin: "sms", source: "HS_MESAJ", consentDate: refusedAt, idempotencyKey: "sms:SM7:MESAJ" })]);
    ledger.apply([action({ recipient: "+905321230000", recipientType: "TACIR", source: null, consentDate: null })]);
    expect(ledger.state(brandId, "+905321230000", "TACIR", "MESAJ")).toMatchObject({ status: "RET", consentDate: refusedAt });
  });

  it("an imported consent that gets a refusal is reported singly, not in a list (İYS: an address's several movements go singly)", () => {
    const refusedAt = clock.now().getTime() - 600_000;
    ledger.apply([action({ status: "RET", origin: "sms", source: "HS_MESAJ", consentDate: refusedAt, idempotencyKey: "sms:SM8:MESAJ" })]);
    const imported = ledger.apply(
      [action({ recipientType: "TACIR", origin: "import", consentDate: refusedAt - 60_000, dedupe: "content" }), action({ recipient: "+905321239999", origin: "import", consentDate: refusedAt - 60_000, dedupe: "content" })],
      { outbox: (o, derived) => iysBatchPlanner(o, undefined, derived) },
    );
    const rows = db.$client.prepare("SELECT o.kind, e.recipient, e.recipient_type AS t, e.status FROM outbox o JOIN consent_events e ON e.id = o.event_id WHERE o.id IN (SELECT value FROM json_each(?)) ORDER BY o.id").all(JSON.stringify(imported.outbox.map((r) => r.id)));
    expect(rows).toEqual([
      { kind: "iys_report", recipient: "+905321234567", t: "TACIR", status: "RET" },
      { kind: "iys_report", recipient: "+905321234567", t: "TACIR", status: "ONAY" },
      { kind: "iys_batch", recipient: "+905321239999", t: "BIREYSEL", status: "ONAY" },
    ]);
  });

  it("İYS's own records are not refused over: a later page of the pull may list İYS's own refusal", () => {
    const refusedAt = clock.now().getTime() - 600_000;
    ledger.apply([action({ status: "RET", origin: "sms", source: "HS_MESAJ", consentDate: refusedAt, idempotencyKey: "sms:SM5:MESAJ" })]);
    ledger.apply([action({ recipientType: "TACIR", origin: "iys", writer: "iys", source: "HS_WEB", consentDate: refusedAt - 86_400_000, idempotencyKey: "iys:1:TACIR:MESAJ:ONAY:tx1" })]);
    expect(ledger.state(brandId, "+905321234567", "TACIR", "MESAJ")).toMatchObject({ status: "ONAY" });
    const iysRet = ledger.apply([action({ recipientType: "TACIR", origin: "iys", writer: "iys", status: "RET", source: "IYS_WEB", consentDate: refusedAt - 3_600_000, idempotencyKey: "iys:1:TACIR:MESAJ:RET:tx2" })]);
    expect(iysRet.outcomes[0]).toMatchObject({ kind: "recorded" });
  });

  it("rejections carry the İYS code and write nothing", () => {
    const { outcomes } = ledger.apply([action({ consentDate: clock.now().getTime() + 60_000 })]);
    expect(outcomes[0]).toMatchObject({ kind: "rejected", code: "H162" });
    expect(count("consent_events")).toBe(0);
  });
});

describe("applying receipts", () => {
  it("a receipt that throws is rolled back alone: its neighbours in the batch are applied once, it stays received, the job fails naming it", async () => {
    const now = clock.now().getTime();
    const ids = ["ok-1", "bad", "ok-2"].map((ref, i) =>
      recordReceipt(db, { channel: "link", provider: "test", providerRef: ref, fromAddress: `+90532000000${i}`, payload: {} }, now).id,
    );
    const outboxSeen: number[] = [];
    const deps = {
      db,
      ledger,
      enqueueOutbox: async (rows: { id: number }[]) => void outboxSeen.push(...rows.map((r) => r.id)),
      interpreters: {
        link: (r: ReceiptRow) => {
          if (r.providerRef === "bad") throw new Error("no holiday table for 2031");
          return { actions: [action({ recipient: r.fromAddress!, status: "RET", origin: "link", idempotencyKey: `test:${r.id}` })], status: "applied" as const };
        },
      },
    };
    await expect(applyReceipts({ payload: { receiptIds: ids }, deps })).rejects.toThrow(/1 receipt\(s\) could not be applied: #\d+: no holiday table for 2031/);
    const statuses = db.$client.prepare("SELECT provider_ref AS ref, status FROM receipts ORDER BY id").all();
    expect(statuses).toEqual([{ ref: "ok-1", status: "applied" }, { ref: "bad", status: "received" }, { ref: "ok-2", status: "applied" }]);
    expect(count("consent_events")).toBe(2);
    // The outbox rows enqueued are the applied receipts' and exist (nothing from the rolled-back first try).
    expect(outboxSeen.length).toBe(count("outbox"));
    // Run again: the good ones are left as they are.
    await expect(applyReceipts({ payload: { receiptIds: ids }, deps })).rejects.toThrow(/1 receipt/);
    expect(count("consent_events")).toBe(2);
  });

  it("a batch of receipts without failures is applied in one go, each once", async () => {
    const now = clock.now().getTime();
    const ids = Array.from({ length: 50 }, (_, i) => recordReceipt(db, { channel: "link", provider: "test", providerRef: `r${i}`, fromAddress: `+9053200010${String(i).padStart(2, "0")}`, payload: {} }, now).id);
    const deps = {
      db,
      ledger,
      enqueueOutbox: async () => {},
      interpreters: { link: (r: ReceiptRow) => ({ actions: [action({ recipient: r.fromAddress!, status: "RET", origin: "link", idempotencyKey: `test:${r.id}` })], status: "applied" as const }) },
    };
    expect(await applyReceipts({ payload: { receiptIds: [...ids, ...ids.slice(0, 5)] }, deps })).toBe("applied: 50, already applied: 5");
    expect(count("consent_events")).toBe(50);
  });
});

describe("ledger verification", () => {
  let seeded = 0;
  function seed(events = 5) {
    for (let i = 0; i < events; i++) {
      clock.advance(60_000);
      const recipient = `+9053212345${String(seeded++ % 100).padStart(2, "0")}`;
      ledger.apply([action({ recipient, consentDate: clock.now().getTime() - 1000 })]);
    }
  }

  it("an untouched ledger with checkpoints verifies", async () => {
    seed(3);
    await createCheckpoint(db, key, clock);
    seed(2);
    await createCheckpoint(db, key, clock);
    const report = await verifyLedger(db, key.publicKey);
    expect(report).toMatchObject({ ok: true, events: 5, checkpoints: 2, firstBadEventId: null, problems: [] });
    expect(report.head?.id).toBe(5);
  });

  it("stored hashes are the recomputed canonical hashes", () => {
    seed(2);
    const rows = db.$client
      .prepare(
`SELECT ${EVENT_COLUMNS} FROM consent_events`,
      )
      .all() as (Parameters<typeof eventHash>[0] & { hash: string })[];
    for (const r of rows) expect(eventHash(r)).toBe(r.hash);
    // Format 3: the salt is the last field of the canonical content, a new one each event.
    expect(rows.map((r) => JSON.parse(canonicalEvent(r))[0])).toEqual([3, 3]);
    expect(rows[0]!.salt).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(rows[1]!.salt).not.toBe(rows[0]!.salt);
  });

  it("an event of format 2 (recorded before salts) still verifies, with and after events of format 3", async () => {
    seed(3);
    // Event 1 as an older hub wrote it: no salt, its hash over the format-2 content, and the chain after it relinked.
    const events = db.$client.prepare(`SELECT ${EVENT_COLUMNS} FROM consent_events ORDER BY id`).all() as LedgerEvent[];
    let prev = GENESIS_HASH;
    for (const e of events) {
      const row = { ...e, salt: e.id === 1 ? null : e.salt, prevHash: prev };
      const hash = eventHash(row);
      db.$client.prepare("UPDATE consent_events SET salt = ?, hash = ? WHERE id = ?").run(row.salt, hash, e.id);
      prev = hash;
    }
    expect(JSON.parse(canonicalEvent({ ...events[0]!, salt: null }))[0]).toBe(2);
    expect(await verifyLedger(db, key.publicKey)).toMatchObject({ ok: true, events: 3, problems: [] });
  });

  const columns = [
    "brand_id",
    "recipient",
    "recipient_type",
    "type",
    "status",
    "source",
    "consent_date",
    "retailer_code",
    "origin",
    "idempotency_key",
    "effect",
    "received_at",
    "hash",
    "salt",
  ];

  for (const column of columns) {
    it(`a single altered byte in ${column} of event 3 is detected and named`, async () => {
      seed(5);
      await createCheckpoint(db, key, clock);
      db.$client.pragma("foreign_keys = OFF");
      const numeric = ["brand_id", "consent_date", "received_at"].includes(column);
      if (numeric) db.$client.prepare(`UPDATE consent_events SET ${column} = ${column} + 1 WHERE id = 3`).run();
      else {
        // Flip the last character (NULL columns become one character).
        db.$client
          .prepare(
            `UPDATE consent_events SET ${column} = CASE WHEN ${column} IS NULL THEN 'x'
               ELSE substr(${column}, 1, length(${column}) - 1) ||
                 CASE WHEN substr(${column}, -1) = 'A' THEN 'B' ELSE 'A' END END WHERE id = 3`,
          )
          .run();
      }
      const report = await verifyLedger(db, key.publicKey);
      expect(report.ok).toBe(false);
      expect(report.firstBadEventId).toBe(3);
    });
  }

  it("a deleted event is detected", async () => {
    seed(4);
    db.$client.pragma("foreign_keys = OFF");
    db.$client.prepare("DELETE FROM outbox WHERE event_id = 2").run();
    db.$client.prepare("DELETE FROM consent_state WHERE event_id = 2").run();
    db.$client.prepare("DELETE FROM consent_events WHERE id = 2").run();
    const report = await verifyLedger(db, key.publicKey);
    expect(report.ok).toBe(false);
    expect(report.firstBadEventId).toBe(3);
  });

  it("checkpoints made at once (the timer and a proof) sign each event once, every 1000th and the head", async () => {
    const brandId = (db.$client.prepare("SELECT id FROM brands LIMIT 1").get() as { id: number }).id;
    const at = clock.now().getTime() - 1000;
    ledger.apply(Array.from({ length: 2500 }, (_, i) => mobileOnay(brandId, 6_000_000 + i, at)));
    const made = await Promise.all([createCheckpoint(db, key, clock), createCheckpoint(db, key, clock), createCheckpoint(db, key, clock)]);
    expect(made.filter((m) => m !== null)).toHaveLength(1);
    expect(db.$client.prepare("SELECT event_id AS e FROM ledger_checkpoints ORDER BY id").all()).toEqual([{ e: 1000 }, { e: 2000 }, { e: 2500 }]);
    expect(await verifyLedger(db, key.publicKey)).toMatchObject({ ok: true, checkpoints: 3 });
  });

  it("a rewritten tail after a checkpoint is detected by the checkpoint", async () => {
    seed(3);
    await createCheckpoint(db, key, clock);
    // Rewrite the last event consistently (recomputing its hash): the chain alone cannot tell, the checkpoint can.
    const row = db.$client
      .prepare(
`SELECT ${EVENT_COLUMNS} FROM consent_events WHERE id = 3`,
      )
      .get() as Parameters<typeof eventHash>[0];
    const forged = { ...row, status: "RET" as const };
    db.$client.prepare("UPDATE consent_events SET status = 'RET', hash = ? WHERE id = 3").run(eventHash(forged));
    db.$client.prepare("UPDATE consent_state SET status = 'RET' WHERE event_id = 3").run();
    const report = await verifyLedger(db, key.publicKey);
    expect(report.ok).toBe(false);
    expect(report.firstBadEventId).toBe(3);
    expect(report.problems.map((p) => p.problem).join("\n")).toContain("signed checkpoint");
  });

  it("a checkpoint signed by another key is refused", async () => {
    seed(2);
    const other = await loadOrCreateLedgerKey(join(tmp.dir, `other-${n}.json`));
    await createCheckpoint(db, other, clock);
    const report = await verifyLedger(db, key.publicKey);
    expect(report.ok).toBe(false);
    expect(report.problems[0]!.problem).toContain("signature");
  });

  it("a state projection edited by hand is detected", async () => {
    seed(2);
    db.$client.prepare("UPDATE consent_state SET status = 'RET' WHERE event_id = 1").run();
    const report = await verifyLedger(db, key.publicKey);
    expect(report.ok).toBe(false);
    expect(report.problems[0]!.problem).toContain("consent_state");
  });
});

describe("the callback planner reads the endpoints once a transaction", () => {
  it("a subscription made between two transactions gets the second's events, whichever Ledger records them (one planner may serve two)", () => {
    const planner = callbackPlanner(db);
    const a = new Ledger(db, { clock, calendar: new BusinessCalendar(), planners: [planner] });
    const b = new Ledger(db, { clock, calendar: new BusinessCalendar(), planners: [planner] });
    const callbacks = (r: { outbox: { kind: string }[] }) => r.outbox.filter((o) => o.kind === "callback").length;
    expect(callbacks(a.apply([action({ recipient: "+905321234561" })]))).toBe(0);
    insertEndpoint(db, { kind: "subscription", brands: "*", events: ["consent.changed"], url: "https://hooks.example.com/iys", secretEnc: "x" }, clock.now().getTime());
    expect(callbacks(b.apply([action({ recipient: "+905321234562" }), action({ recipient: "+905321234563" })]))).toBe(2);
    expect(callbacks(a.apply([action({ recipient: "+905321234564" })]))).toBe(1);
  });
});
