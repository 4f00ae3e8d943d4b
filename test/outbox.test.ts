import { join } from "node:path";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { openDatabase, runMigrations, type Db } from "../db/index";
import { Ledger } from "../db/ledger";
import { finishOutbox, OUTBOX_LEASE_MS, pendingOutbox, recordAttemptFailure } from "../jobs/outbox";
import { receiptJobId } from "../jobs/registry";
import { sweep } from "../jobs/sweeper";
import { createBrand } from "../src/brands";
import { BusinessCalendar } from "../src/domain/calendar";
import { iysReportPlanner } from "../src/runtime";
import { silentLog, TestClock, tempDir } from "./helpers";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const clock = new TestClock(Date.parse("2026-11-25T09:00:00Z"));
let db: Db;
let n = 0;
let rowId: number;

beforeEach(() => {
  db = openDatabase(join(tmp.dir, `outbox-${++n}.db`));
  runMigrations(db);
  const brandId = createBrand(db, { code: "MIGROS", name: "Migros", iysCode: "1", brandCode: "2", shortNames: [], numbers: [] }, clock.now().getTime()).id;
  const ledger = new Ledger(db, { clock, calendar: new BusinessCalendar(), planners: [iysReportPlanner] });
  const { outbox } = ledger.apply([
    { brandId, recipient: "+905321234567", recipientKind: "phone", phoneKind: "mobile", recipientType: "BIREYSEL", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: clock.now().getTime() - 60_000, origin: "api" },
  ]);
  rowId = outbox[0]!.id;
});

describe("outbox claims", () => {
  it("a row claimed by one job cannot be claimed by another until its lease runs out", () => {
    const t = clock.now().getTime();
    expect(pendingOutbox(db, rowId, t)).toMatchObject({ id: rowId, kind: "iys_report" });
    expect(pendingOutbox(db, rowId, t + 1)).toBeNull();
    expect(pendingOutbox(db, rowId, t + OUTBOX_LEASE_MS - 1)).toBeNull();
    expect(pendingOutbox(db, rowId, t + OUTBOX_LEASE_MS)).toMatchObject({ id: rowId });
  });

  it("a failed attempt releases the lease for the retry; a finished row is never claimed again", () => {
    const t = clock.now().getTime();
    expect(pendingOutbox(db, rowId, t)).not.toBeNull();
    recordAttemptFailure(db, rowId, t + 10, "provider 500");
    expect(pendingOutbox(db, rowId, t + 20)).toMatchObject({ attempts: 1 });
    finishOutbox(db, rowId, "done", t + 30);
    expect(pendingOutbox(db, rowId, t + OUTBOX_LEASE_MS * 10)).toBeNull();
  });
});

describe("sweeper job ids", () => {
  it("re-enqueues under a tagged id (never the id of the job that left it unfinished), the same one within a grace period", async () => {
    db.$client.prepare("INSERT INTO receipts (channel, provider, provider_ref, status, received_at) VALUES ('sms', 'twilio', 'SMx', 'received', ?)").run(clock.now().getTime() - 120_000);
    const seen: string[] = [];
    const deps = {
      db,
      log: silentLog,
      now: () => clock.now().getTime(),
      graceMs: 30_000,
      enqueueReceipt: async (id: number, tag: string) => void seen.push(receiptJobId(id, tag)),
      enqueueOutbox: async () => {},
    };
    await sweep(deps);
    clock.advance(1000);
    await sweep(deps);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBe(seen[1]);
    expect(seen[0]).not.toBe(receiptJobId(1));
    clock.advance(30_000);
    await sweep(deps);
    expect(seen[2]).not.toBe(seen[0]);
  });
});
