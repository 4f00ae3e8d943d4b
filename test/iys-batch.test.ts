import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../src/app";
import { statementToAction } from "../src/consents";
import { formatIysDate } from "../src/domain/time";
import { dailyReport, exportState, openReader } from "../src/export";
import { runImport, type ImportDeps } from "../src/import";
import { HttpIysReporter } from "../src/services/iys";
import { iysBatchPlanner, reopenSkippedIysReports } from "../src/iys-reports";
import { createRuntime, type Runtime } from "../src/runtime";
import type { ActionOutcome, LedgerEvent } from "../db/ledger";
import { FakeIys } from "./fakes/iys";
import { authed, deletePrefix, tempDir, testConfig, waitFor } from "./helpers";

/**
 * Imported movements reach İYS through its asynchronous multiple write (lists of up to 1000, one
 * outbox row each), not one single write each: real Redis, SQLite, workers and a fake İYS over HTTP.
 */
const tmp = tempDir();
const iys = new FakeIys();
let runtime: Runtime;
let app: App;
let brandId: number;
let deps: ImportDeps;

beforeAll(async () => {
  const url = await iys.start();
  runtime = await createRuntime(
    // Retries after a transient İYS failure 20 ms apart, doubled each time: nine in a row take ~10 s instead of ~1.5 h.
    testConfig(tmp.dir, { IYS_API_BASE_URL: url, IYS_USERNAME: "api@hs.example", IYS_PASSWORD: "secret", IYS_BATCH_POLL_SECONDS: "1", IYS_RETRY_BASE_SECONDS: "0.02" }),
  );
  runtime.startBackground();
  app = createApp(runtime.deps);
  const res = await app.request("/api/v1/brands", authed({ code: "BATCH", name: "Batch", iysCode: "700001", brandCode: "700002", shortNames: ["BATCH"], numbers: [] }));
  expect(res.status).toBe(201);
  brandId = (db().prepare("SELECT id FROM brands WHERE code = 'BATCH'").get() as { id: number }).id;
  deps = { ...runtime.deps, enqueueOutbox: runtime.deps.jobs.enqueueOutbox };
});

afterAll(async () => {
  await runtime.close();
  await iys.stop();
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

const db = () => runtime.deps.db.$client;
const date = formatIysDate(new Date(Date.now() - 3_600_000));
const phone = (i: number) => `+90532${String(i).padStart(7, "0")}`;

function csv(rows: string[]): Readable {
  return Readable.from([`type,recipient,status,source,consentDate,recipientType\n${rows.join("\n")}\n`]);
}

type OutboxRow = { id: number; kind: string; status: string; eventId: number; target: string | null; lastError: string | null; result: string | null };
const outboxOf = (fromEvent: number) =>
  db()
    .prepare(`SELECT id, kind, status, event_id AS eventId, target, last_error AS lastError, result FROM outbox WHERE kind LIKE 'iys_%' AND event_id > ? ORDER BY id`)
    .all(fromEvent) as OutboxRow[];
const headEvent = () => (db().prepare("SELECT coalesce(max(id), 0) AS id FROM consent_events").get() as { id: number }).id;

describe("bulk import reported to İYS in lists", () => {
  it("2 500 movements go as lists of 1000, 1000 and 500: each sent once, asked after, every transactionId kept", async () => {
    const before = headEvent();
    const batchesBefore = iys.batches.length;
    const queriesBefore = iys.batchQueries;
    iys.batchDelayMs = 2500; // İYS answers an empty list until it has processed the request
    const rows = Array.from({ length: 2500 }, (_, i) => `MESAJ,${phone(i)},ONAY,HS_WEB,${date},BIREYSEL`);
    const summary = await runImport(csv(rows), deps, { brandId, via: "cli", batchSize: 5000 });
    expect(summary.recorded).toBe(2500);

    const planned = outboxOf(before);
    expect(planned.map((r) => [r.kind, (JSON.parse(r.target!) as number[]).length])).toEqual([
      ["iys_batch", 1000],
      ["iys_batch", 1000],
      ["iys_batch", 500],
    ]);
    const done = await waitFor(() => {
      const rs = outboxOf(before);
      if (rs.some((r) => r.status === "pending")) throw new Error("still pending");
      return rs;
    });
    expect(done.map((r) => r.status)).toEqual(["done", "done", "done"]);
    // Asked once too early (an empty answer: still processing) and again after the poll period.
    expect(iys.batchQueries - queriesBefore).toBeGreaterThanOrEqual(6);
    // Each row's list went once (the three in any order: they are worked concurrently).
    const sent = iys.batches.slice(batchesBefore);
    expect(sent.map((b) => b.items.length).sort()).toEqual([1000, 1000, 500]);
    expect(sent.every((b) => b.iysCode === "700001" && b.brandCode === "700002")).toBe(true);
    const listOf = (row: OutboxRow) => {
      const { requestId } = JSON.parse(row.result!) as { requestId: string };
      return sent.find((b) => b.requestId === requestId)!;
    };
    expect(done.map((r) => listOf(r).items.length)).toEqual([1000, 1000, 500]);
    expect(JSON.parse(done[0]!.result!)).toMatchObject({ movements: 1000, refused: 0 });
    const [first, , last] = done.map(listOf);
    expect(first!.items[0]).toEqual({ recipient: phone(0), recipientType: "BIREYSEL", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: date });
    expect(last!.items[499]!.recipient).toBe(phone(2499));
    // No single writes for imported movements.
    expect(iys.writes.filter((w) => String(w.body.recipient).startsWith("+90532000"))).toEqual([]);

    const items = db()
      .prepare(`SELECT event_id AS eventId, status, transaction_id AS tx FROM iys_report_items WHERE event_id > ? ORDER BY event_id`)
      .all(before) as { eventId: number; status: string; tx: string }[];
    expect(items).toHaveLength(2500);
    expect(items.every((i) => i.status === "success")).toBe(true);
    expect(items[0]).toEqual({ eventId: before + 1, status: "success", tx: `btx-${first!.requestId}-0` });
    expect(items[2499]!.tx).toBe(`btx-${last!.requestId}-499`);

    // İYS's registration time is kept with each (its daily file's creationDate).
    const created = db().prepare(`SELECT count(*) AS n FROM iys_report_items WHERE event_id > ? AND creation_date > ?`).get(before, Date.now() - 600_000) as { n: number };
    expect(created.n).toBe(2500);
    // The daily movement file carries İYS's transactionIds of the imported movements.
    const start = Date.now() - 24 * 3_600_000;
    const file = [...dailyReport(db(), brandId, { start, end: Date.now() + 1000 })].join("");
    expect(file).toContain(`,btx-${first!.requestId}-0,${phone(0)},BIREYSEL,MESAJ,ONAY,`);
  });

  it("a movement İYS refuses is kept with its code and the row ends failed naming it; the others succeed", async () => {
    const before = headEvent();
    iys.batchDelayMs = 0;
    iys.refuse.add(phone(900_001));
    const summary = await runImport(
      csv([`MESAJ,${phone(900_000)},ONAY,HS_WEB,${date},BIREYSEL`, `MESAJ,${phone(900_001)},ONAY,HS_WEB,${date},BIREYSEL`, `EPOSTA,a.b@example.com,ONAY,HS_WEB,${date},BIREYSEL`]),
      deps,
      { brandId, via: "cli" },
    );
    expect(summary.recorded).toBe(3);
    const [row] = await waitFor(() => {
      const rs = outboxOf(before);
      if (rs.length !== 1 || rs[0]!.status === "pending") throw new Error("still pending");
      return rs;
    });
    expect(row!.status).toBe("failed");
    expect(row!.lastError).toBe("İYS refused 1 of 3 movements (H120 ×1); see iys_report_items");
    const items = db()
      .prepare(`SELECT status, error_code AS code, transaction_id AS tx FROM iys_report_items WHERE event_id > ? ORDER BY event_id`)
      .all(before) as { status: string; code: string | null; tx: string | null }[];
    expect(items.map((i) => [i.status, i.code])).toEqual([
      ["success", null],
      ["failure", "H120"],
      ["success", null],
    ]);
    // The state export says which records İYS holds: another hub takes the refused one as no record of İYS's.
    const reader = openReader(runtime.deps.db);
    const exported = [...exportState(reader, brandId, "csv")].join("").split("\n");
    reader.close();
    expect(exported.filter((l) => [phone(900_000), phone(900_001), "a.b@example.com"].some((r) => l.includes(`,${r},`))).map((l) => l.split(",").at(-1))).toEqual([
      "held",
      "not_held",
      "held",
    ]);
  });

  it("a movement İYS refuses for holding a newer record (H178) makes the hub take İYS's record: the pre-send check answers as İYS would", async () => {
    const before = headEvent();
    iys.batchDelayMs = 0;
    // The provider's other system wrote a refusal for one of them straight to İYS, after the file's consent date.
    const held = iys.providerMovement("700001", "700002", { recipient: phone(915_001), type: "MESAJ", status: "RET", source: "HS_CAGRI_MERKEZI", consentDate: formatIysDate(new Date(Date.now() - 600_000)) });
    const summary = await runImport(
      csv([`MESAJ,${phone(915_000)},ONAY,HS_WEB,${date},BIREYSEL`, `MESAJ,${phone(915_001)},ONAY,HS_WEB,${date},BIREYSEL`]),
      deps,
      { brandId, via: "cli" },
    );
    expect(summary.recorded).toBe(2);
    const [row, follow] = await waitFor(() => {
      const rs = outboxOf(before);
      if (rs.length !== 2 || rs.some((r) => r.status === "pending")) throw new Error("still pending");
      return rs;
    });
    expect(row!.status).toBe("failed");
    expect(row!.lastError).toBe("İYS refused 1 of 2 movements (H178 ×1); see iys_report_items; İYS's newer records (H178) are taken by iys_follow rows");
    expect(JSON.parse(row!.result!)).toMatchObject({ refused: 1, codes: { H178: 1 } });
    expect(follow).toMatchObject({ kind: "iys_follow", status: "done", eventId: before + 2 });
    const state = (p: string) => db().prepare(`SELECT status, source FROM consent_state WHERE brand_id = ? AND recipient = ? AND type = 'MESAJ'`).get(brandId, p);
    expect(state(phone(915_000))).toEqual({ status: "ONAY", source: "HS_WEB" });
    expect(state(phone(915_001))).toEqual({ status: "RET", source: "HS_CAGRI_MERKEZI" });
    const check = (await (await app.request("/api/v1/check", authed({ brand: "BATCH", type: "MESAJ", recipients: [phone(915_000), phone(915_001)] }))).json()) as unknown;
    expect(check).toEqual({ allowed: [phone(915_000)], denied: [{ recipient: phone(915_001), reason: "refused" }] });
    // İYS's record under its own id (the day file's key); never sent back to İYS.
    const taken = db().prepare(`SELECT e.id, e.origin, p.transaction_id AS tx FROM consent_events e JOIN iys_pulled_movements p ON p.event_id = e.id WHERE e.id > ?`).all(before);
    expect(taken).toEqual([{ id: expect.any(Number), origin: "iys", tx: held.transactionId }]);
    await new Promise((r) => setTimeout(r, 300));
    expect(outboxOf(before).filter((r) => r.eventId === (taken[0] as { id: number }).id)).toEqual([]);
  });

  it("a list İYS refuses at once for some movements (422 naming their index) goes again without them; they are kept refused", async () => {
    const before = headEvent();
    iys.batchDelayMs = 0;
    iys.refuseAtSubmit.add(phone(930_001));
    iys.refuseAtSubmit.add(phone(930_003));
    const batches = iys.batches.length;
    const summary = await runImport(
      csv([0, 1, 2, 3, 4].map((k) => `MESAJ,${phone(930_000 + k)},ONAY,HS_WEB,${date},BIREYSEL`)),
      deps,
      { brandId, via: "cli" },
    );
    expect(summary.recorded).toBe(5);
    const [row] = await waitFor(() => {
      const rs = outboxOf(before);
      if (rs.length !== 1 || rs[0]!.status === "pending") throw new Error("still pending");
      return rs;
    });
    expect(row!.lastError).toBe("İYS refused 2 of 5 movements (H467 ×2); see iys_report_items");
    // One list accepted, of the three others, answered by their positions in it.
    expect(iys.batches.slice(batches).map((b) => b.items.map((i) => i.recipient))).toEqual([[phone(930_000), phone(930_002), phone(930_004)]]);
    const items = db()
      .prepare(`SELECT status, error_code AS code, transaction_id AS tx FROM iys_report_items WHERE event_id > ? ORDER BY event_id`)
      .all(before) as { status: string; code: string | null; tx: string | null }[];
    expect(items.map((i) => [i.status, i.code, i.tx !== null])).toEqual([
      ["success", null, true],
      ["failure", "H467", false],
      ["success", null, true],
      ["failure", "H467", false],
      ["success", null, true],
    ]);
  });

  it("a list that ended failed does not hold back later movements of its consents", async () => {
    // The previous test's list ended failed (two movements refused): a later RET of one of its
    // other consents, and of a refused one, each reach İYS.
    const onayOk = db().prepare("SELECT id FROM consent_events WHERE recipient = ? AND brand_id = ?").get(phone(930_000), brandId) as { id: number };
    expect(onayOk).toBeDefined();
    const writes = iys.writes.length;
    for (const k of [0, 1]) {
      const res = await app.request(
        "/api/v1/consents",
        authed({ brand: "BATCH", recipient: phone(930_000 + k), type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - 1000)) }),
      );
      expect(res.status, await res.clone().text()).toBe(201);
    }
    await waitFor(() => iys.writes.length - writes === 2, { timeoutMs: 15_000 });
    expect(iys.writes.slice(writes).map((w) => [w.body.recipient, w.body.status]).sort()).toEqual([
      [phone(930_000), "RET"],
      [phone(930_001), "RET"],
    ]);
  });

  it("an address with two movements in one transaction goes through single writes; the rest as a list", async () => {
    const before = headEvent();
    const writesBefore = iys.writes.length;
    const later = formatIysDate(new Date(Date.now() - 1_800_000));
    await runImport(
      csv([
        `MESAJ,${phone(910_000)},ONAY,HS_WEB,${date},BIREYSEL`,
        `ARAMA,${phone(910_000)},ONAY,HS_WEB,${date},BIREYSEL`,
        `MESAJ,${phone(910_001)},ONAY,HS_WEB,${date},BIREYSEL`,
        `MESAJ,${phone(910_000)},RET,HS_WEB,${later},BIREYSEL`,
      ]),
      deps,
      { brandId, via: "cli" },
    );
    const rows = await waitFor(() => {
      const rs = outboxOf(before);
      if (rs.length !== 4 || rs.some((r) => r.status === "pending")) throw new Error("still pending");
      return rs;
    });
    expect(rows.map((r) => [r.kind, r.eventId - before, r.status])).toEqual([
      ["iys_report", 1, "done"],
      ["iys_report", 2, "done"],
      ["iys_report", 4, "done"],
      ["iys_batch", 3, "done"],
    ]);
    expect(JSON.parse(rows[3]!.target!)).toEqual([before + 3]);
    expect(iys.writes.slice(writesBefore).map((w) => [w.body.type, w.body.status]).sort()).toEqual([
      ["ARAMA", "ONAY"],
      ["MESAJ", "ONAY"],
      ["MESAJ", "RET"],
    ]);
  });

  it("a list İYS could not take (503) is sent again, once it answers", async () => {
    const before = headEvent();
    const batchesBefore = iys.batches.length;
    iys.failNext = 1;
    await runImport(csv([`MESAJ,${phone(920_000)},ONAY,HS_WEB,${date},BIREYSEL`]), deps, { brandId, via: "cli" });
    const [row] = await waitFor(() => {
      const rs = outboxOf(before);
      if (rs.length !== 1 || rs[0]!.status === "pending") throw new Error("still pending");
      return rs;
    });
    expect(row!.status).toBe("done");
    expect(iys.batches.slice(batchesBefore)).toHaveLength(1);
    expect(iys.failNext).toBe(0);
  });
});

describe("İYS busy (H123) or out of quota (H525): answers about İYS, not the movement", () => {
  const busy = { status: 400, code: "H123", message: "Ulaşmaya çalıştığınız servis şu anda meşguldür. Lütfen daha sonra tekrar deneyiniz." };
  const quota = { status: 422, code: "H525", message: "Kullanılan izin sayısı maksimum sayıya ulaştığı için yeni izin eklenememektedir." };

  it("a list answered so is sent again, not given up on", async () => {
    for (const answer of [busy, quota]) {
      const before = headEvent();
      const batchesBefore = iys.batches.length;
      iys.failAnswer = answer;
      iys.failNext = 1;
      try {
        await runImport(csv([`MESAJ,${phone(answer === busy ? 921_000 : 921_001)},ONAY,HS_WEB,${date},BIREYSEL`]), deps, { brandId, via: "cli" });
        const [row] = await waitFor(() => {
          const rs = outboxOf(before);
          if (rs.length !== 1 || rs[0]!.status === "pending") throw new Error("still pending");
          return rs;
        });
        expect(row!.status, answer.code).toBe("done");
        expect(iys.batches.slice(batchesBefore)).toHaveLength(1);
        expect(iys.failNext).toBe(0);
      } finally {
        iys.failNext = 0;
        iys.failAnswer = { status: 503, code: "ERR-SYS-0002", message: "Beklenmedik bir hata oluştu." };
      }
    }
  });

  it("movements a list's outcome answers so (the quota used up part way) go again in a list of their own; the others stand", async () => {
    const before = headEvent();
    const batchesBefore = iys.batches.length;
    const [a, b, c] = [phone(921_010), phone(921_011), phone(921_012)];
    iys.itemErrorsNext.set(b, [quota, busy]);
    await runImport(csv([a, b, c].map((r) => `MESAJ,${r},ONAY,HS_WEB,${date},BIREYSEL`)), deps, { brandId, via: "cli" });
    const rows = await waitFor(() => {
      const rs = outboxOf(before);
      if (rs.length !== 3 || rs.some((r) => r.status === "pending")) throw new Error("still pending");
      return rs;
    });
    // The list, then b alone twice (H525, then H123, then taken).
    expect(rows.map((r) => r.status)).toEqual(["done", "done", "done"]);
    expect(iys.batches.slice(batchesBefore).map((x) => x.items.map((i) => i.recipient))).toEqual([[a, b, c], [b], [b]]);
    const items = db().prepare("SELECT e.recipient, i.status, i.error_code AS code FROM iys_report_items i JOIN consent_events e ON e.id = i.event_id WHERE e.id > ? ORDER BY e.id").all(before);
    expect(items).toEqual([
      { recipient: a, status: "success", code: null },
      { recipient: b, status: "success", code: null },
      { recipient: c, status: "success", code: null },
    ]);
    expect(JSON.parse(db().prepare("SELECT result FROM outbox WHERE id = ?").pluck().get(rows[0]!.id) as string)).toMatchObject({ refused: 0, retried: 1, retryRow: rows[1]!.id });
    iys.itemErrorsNext.clear();
  });

  it("a single report answered so is sent again", async () => {
    const recipient = phone(7_780_001);
    iys.failAnswer = busy;
    iys.failNext = 1;
    try {
      const res = await app.request(
        "/api/v1/consents",
        authed({ brand: "BATCH", recipient, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - 120_000)) }),
      );
      expect(res.status).toBe(201);
      const id = ((await res.json()) as { event: { id: number } }).event.id;
      const single = () => db().prepare("SELECT status, attempts FROM outbox WHERE event_id = ? AND kind = 'iys_report'").get(id) as { status: string; attempts: number };
      await waitFor(() => single().status !== "pending", { timeoutMs: 20_000 });
      expect(single()).toMatchObject({ status: "done", attempts: 2 });
    } finally {
      iys.failNext = 0;
      iys.failAnswer = { status: 503, code: "ERR-SYS-0002", message: "Beklenmedik bir hata oluştu." };
    }
  });
});

describe("iysBatchPlanner", () => {
  const event = (id: number, recipient: string, over: Partial<LedgerEvent> = {}): ActionOutcome => ({
    kind: "recorded",
    previous: null,
    event: {
      id, brandId: 1, recipient, recipientType: "BIREYSEL", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: 1, retailerCode: null,
      origin: "import", receiptId: null, idempotencyKey: null, effect: "movement", receivedAt: 1, prevHash: "", hash: "", salt: null, ...over,
    },
  });

  it("splits at the list size, leaves out what İYS does not take, and sends repeated addresses singly", () => {
    const outcomes: ActionOutcome[] = [
      event(1, "a"),
      event(2, "b"),
      event(3, "c", { effect: "suppression" }),
      event(4, "d", { source: "IYS_WEB" as LedgerEvent["source"] }),
      event(5, "a", { type: "ARAMA" }),
      event(6, "e"),
      { kind: "rejected", code: "H120", message: "x" },
      event(7, "f"),
    ];
    expect(iysBatchPlanner(outcomes, 2)).toEqual([
      { kind: "iys_report", eventId: 1 },
      { kind: "iys_report", eventId: 5 },
      { kind: "iys_batch", eventId: 2, target: "[2,6]" },
      { kind: "iys_batch", eventId: 7, target: "[7]" },
    ]);
    expect(iysBatchPlanner([])).toEqual([]);
  });
});

const consent = async (recipient: string, status: "ONAY" | "RET", secondsAgo: number) => {
  const res = await app.request(
    "/api/v1/consents",
    authed({ brand: "RETRY", recipient, type: "MESAJ", status, source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - secondsAgo * 1000)) }),
  );
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { event: { id: number } }).event.id;
};
const report = (eventId: number) =>
  db().prepare("SELECT status, attempts, last_error AS lastError FROM outbox WHERE event_id = ? AND kind = 'iys_report'").get(eventId) as {
    status: string;
    attempts: number;
    lastError: string | null;
  };

describe("İYS reports through trouble", () => {
  beforeAll(async () => {
    const res = await app.request("/api/v1/brands", authed({ code: "RETRY", name: "Retry", iysCode: "710001", brandCode: "710002", shortNames: ["RETRY"], numbers: [] }));
    expect(res.status).toBe(201);
  });

  it("nine 503s in a row (more than a job's 8 quick attempts) delay the report, they do not end it", async () => {
    iys.failNext = 9;
    const writes = iys.writes.length;
    const id = await consent("+905321110101", "ONAY", 60);
    await waitFor(() => report(id).attempts >= 2);
    expect(report(id)).toMatchObject({ status: "pending", lastError: "İYS report failed: ERR-SYS-0002" });
    await waitFor(() => report(id).status === "done", { timeoutMs: 60_000 });
    expect(report(id)).toMatchObject({ status: "done", attempts: 10 });
    expect(iys.failNext).toBe(0);
    expect(iys.writes.length - writes).toBe(1); // the accepted write; the 503s are not counted as writes
  });

  it("a RET waits for the ONAY before it that İYS has not taken yet, so İYS gets them in order", async () => {
    const recipient = "+905321110202";
    iys.failNext = 3;
    const onay = await consent(recipient, "ONAY", 120);
    const ret = await consent(recipient, "RET", 60);
    await waitFor(() => report(onay).status === "done" && report(ret).status === "done", { timeoutMs: 60_000 });
    const order = iys.writes.filter((w) => w.body.recipient === recipient).map((w) => w.body.status);
    expect(order).toEqual(["ONAY", "RET"]);
  });

  it("two movements of one consent reach İYS more than a second apart (İYS gives one transactionId to a second's movements)", async () => {
    const recipient = "+905321110303";
    const writes = iys.writes.length;
    const onay = await consent(recipient, "ONAY", 120);
    const ret = await consent(recipient, "RET", 60);
    await waitFor(() => report(onay).status === "done" && report(ret).status === "done", { timeoutMs: 30_000 });
    const sent = iys.writes.slice(writes).filter((w) => w.body.recipient === recipient);
    expect(sent.map((w) => w.body.status)).toEqual(["ONAY", "RET"]);
    expect(sent[1]!.at - sent[0]!.at).toBeGreaterThanOrEqual(1000);
  });

  it("a write İYS recorded but whose answer was lost keeps İYS's transactionId: the retry's H174 is followed by a status query", async () => {
    const recipient = "+905321110404";
    const writes = iys.writes.length;
    iys.dropAnswerNext = 1;
    const id = await consent(recipient, "ONAY", 60);
    await waitFor(() => report(id).status === "done", { timeoutMs: 30_000 });
    // Sent twice (the first answer never came); the first is the one İYS holds.
    expect(iys.writes.length - writes).toBe(2);
    const result = JSON.parse((db().prepare("SELECT result FROM outbox WHERE event_id = ? AND kind = 'iys_report'").get(id) as { result: string }).result) as {
      transactionId: string;
      creationDate: number;
    };
    expect(result.transactionId).toBe(`tx${writes + 1}`);
    expect(result.creationDate).toBeGreaterThan(Date.now() - 60_000);
  });

  it("a list waits while an earlier single report of one of its consents is still on its way", async () => {
    const recipient = phone(7_770_001);
    iys.failNext = 6; // the ONAY's single write fails six times (~1.3 s of retries)
    const res = await app.request(
      "/api/v1/consents",
      authed({ brand: "BATCH", recipient, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - 120_000)) }),
    );
    expect(res.status).toBe(201);
    const onayId = ((await res.json()) as { event: { id: number } }).event.id;
    const before = headEvent();
    const summary = await runImport(csv([`MESAJ,${recipient},RET,HS_WEB,${formatIysDate(new Date(Date.now() - 60_000))},BIREYSEL`, `MESAJ,${phone(7_770_002)},ONAY,HS_WEB,${date},BIREYSEL`]), deps, {
      brandId,
      via: "cli",
    });
    expect(summary.recorded).toBe(2);
    const list = () => outboxOf(before).find((r) => r.kind === "iys_batch")!;
    await waitFor(() => list().result && JSON.parse(list().result!).requestId, { timeoutMs: 60_000 });
    const single = db().prepare("SELECT status, updated_at AS doneAt FROM outbox WHERE event_id = ? AND kind = 'iys_report'").get(onayId) as { status: string; doneAt: number };
    expect(single.status).toBe("done");
    expect((JSON.parse(list().result!) as { submittedAt: number }).submittedAt).toBeGreaterThanOrEqual(single.doneAt);
  });

  it("after İYS refuses a token request (429 H084, its hourly limit) no other is asked for an hour; the reports fail as transient meanwhile", async () => {
    let now = Date.now();
    const reporter = new HttpIysReporter({ baseUrl: runtime.deps.config.IYS_API_BASE_URL!, username: "api@hs.example", password: "secret", now: () => now });
    iys.tokenLimitedNext = 1;
    const before = iys.tokenRequests;
    const ev = { ...sampleEvent(0), recipient: "+905322209999" };
    const ref = { iysCode: "710001", brandCode: "710002" };
    await expect(reporter.report(ref, ev)).rejects.toThrow(/H084/);
    for (let i = 0; i < 5; i++) await expect(reporter.report(ref, ev)).rejects.toThrow(/paused until .*H084/);
    expect(iys.tokenRequests - before).toBe(1);
    now += 3_600_001;
    expect(await reporter.report(ref, ev)).toMatchObject({ ok: true });
    expect(iys.tokenRequests - before).toBe(2);
  });

  it("reports waiting on a token share one token request", async () => {
    const reporter = new HttpIysReporter({ baseUrl: runtime.deps.config.IYS_API_BASE_URL!, username: "api@hs.example", password: "secret" });
    const before = iys.tokenRequests;
    const event = sampleEvent;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => reporter.report({ iysCode: "710001", brandCode: "710002" }, event(i))));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(iys.tokenRequests - before).toBe(1);
  });
});

function sampleEvent(i: number): LedgerEvent {
  return {
    id: 900_000 + i,
    brandId: 1,
    recipient: `+90532220${String(i).padStart(4, "0")}`,
    recipientType: "BIREYSEL",
    type: "MESAJ",
    status: "ONAY",
    source: "HS_WEB",
    consentDate: Date.now() - 60_000,
    retailerCode: null,
    origin: "api",
    receiptId: null,
    idempotencyKey: null,
    effect: "movement",
    receivedAt: Date.now(),
    prevHash: "0".repeat(64),
    hash: "0".repeat(64),
    salt: null,
  };
}

describe("reports skipped for want of İYS codes or of the İYS API", () => {
  const post = async (brand: string, recipient: string, status: "ONAY" | "RET", secondsAgo: number) => {
    const res = await app.request(
      "/api/v1/consents",
      authed({ brand, recipient, type: "MESAJ", status, source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - secondsAgo * 1000)) }),
    );
    expect(res.status, await res.clone().text()).toBe(201);
    return ((await res.json()) as { event: { id: number } }).event.id;
  };
  const row = (eventId: number, kind = "iys_report") =>
    db().prepare("SELECT id, status, attempts, last_error AS lastError FROM outbox WHERE event_id = ? AND kind = ?").get(eventId, kind) as {
      id: number;
      status: string;
      attempts: number;
      lastError: string | null;
    };
  const brandIdOf = (code: string) => (db().prepare("SELECT id FROM brands WHERE code = ?").get(code) as { id: number }).id;

  it("a brand given its codes has what İYS would still take reported, in order; its import lists too", async () => {
    const res = await app.request("/api/v1/brands", authed({ code: "LATER", name: "Later", shortNames: ["LATER"], numbers: [] }));
    expect(res.status).toBe(201);
    const a = "+905321120101";
    const onay = await post("LATER", a, "ONAY", 120);
    const ret = await post("LATER", a, "RET", 60);
    const other = await post("LATER", "+905321120102", "ONAY", 30);
    const before = headEvent();
    const summary = await runImport(csv([`MESAJ,+905321120103,ONAY,HS_WEB,${date},BIREYSEL`, `MESAJ,+905321120104,ONAY,HS_WEB,${date},BIREYSEL`]), deps, {
      brandId: brandIdOf("LATER"),
      via: "cli",
    });
    expect(summary.recorded).toBe(2);
    const list = outboxOf(before).find((r) => r.kind === "iys_batch")!;
    await waitFor(() => [onay, ret, other].every((id) => row(id).status === "skipped") && row(list.eventId, "iys_batch").status === "skipped");
    expect(row(ret).lastError).toBe("brand has no iysCode/brandCode");
    const writes = iys.writes.length;
    const batches = iys.batches.length;

    // Name only: nothing to reopen.
    const renamed = await app.request("/api/v1/brands/LATER", { ...authed({ name: "Later A.Ş." }), method: "PATCH" });
    expect(renamed.status).toBe(200);
    expect(row(onay).status).toBe("skipped");

    const patched = await app.request("/api/v1/brands/LATER", { ...authed({ iysCode: "720001", brandCode: "720002" }), method: "PATCH" });
    expect(patched.status, await patched.clone().text()).toBe(200);
    await waitFor(() => [onay, ret, other].every((id) => row(id).status === "done") && row(list.eventId, "iys_batch").status === "done", { timeoutMs: 30_000 });
    const sent = iys.writes.slice(writes);
    expect(sent.filter((w) => w.body.recipient === a).map((w) => w.body.status)).toEqual(["ONAY", "RET"]);
    expect(sent.every((w) => w.iysCode === "720001" && w.brandCode === "720002")).toBe(true);
    expect(sent).toHaveLength(3);
    expect(iys.batches.slice(batches).map((b) => b.items.map((i) => i.recipient))).toEqual([["+905321120103", "+905321120104"]]);
    // Given the codes again: nothing is reopened (it would be pending as the answer comes), nothing sent twice.
    const again = await app.request("/api/v1/brands/LATER", { ...authed({ iysCode: "720001", brandCode: "720002" }), method: "PATCH" });
    expect(again.status).toBe(200);
    expect([onay, ret, other].map((id) => row(id).status)).toEqual(["done", "done", "done"]);
    expect(row(list.eventId, "iys_batch").status).toBe("done");
    expect(iys.writes.length - writes).toBe(3);
  });

  it("a brand given its codes while a job is deciding to skip its report: the report is not lost, it goes", async () => {
    for (const code of ["SLOWOK", "RACING"]) {
      const body = code === "SLOWOK" ? { code, name: code, iysCode: "750001", brandCode: "750002", shortNames: [code], numbers: [] } : { code, name: code, shortNames: [code], numbers: [] };
      expect((await app.request("/api/v1/brands", authed(body))).status).toBe(201);
    }
    // Two movements recorded without their jobs, then worked in one job: the first waits on a slow
    // İYS while the second (a brand without codes) is decided skipped at once; the codes come meanwhile.
    const action = (code: string, recipient: string) => {
      const r = statementToAction({ brandId: brandIdOf(code), recipient, recipientType: "BIREYSEL", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: date, origin: "api" });
      if (!r.ok) throw new Error(r.code);
      return r.action;
    };
    const { outcomes, outbox } = runtime.deps.ledger.apply([action("SLOWOK", "+905321150101"), action("RACING", "+905321150102")]);
    const racing = (outcomes[1] as { event: { id: number } }).event.id;
    let release!: () => void;
    const arrived = new Promise<void>((resolve) => {
      iys.holdWrites = { arrived: () => resolve(), release: new Promise<void>((r) => (release = r)) };
    });
    try {
      await runtime.deps.jobs.enqueueOutbox(outbox);
      // The job has claimed both rows and is waiting on İYS for the first; the second was decided skipped.
      await arrived;
      const patched = await app.request("/api/v1/brands/RACING", { ...authed({ iysCode: "760001", brandCode: "760002" }), method: "PATCH" });
      expect(patched.status).toBe(200);
      expect(row(racing).status).toBe("pending"); // not settled yet: the reopen could not see it
    } finally {
      iys.holdWrites = null;
      release();
    }
    await waitFor(() => row(racing).status === "done", { timeoutMs: 30_000 });
    expect(iys.writes.filter((w) => w.body.recipient === "+905321150102").map((w) => w.iysCode)).toEqual(["760001"]);
  });

  it("what İYS would refuse as registered too late (past 3 business days after its consentDate, H467) stays skipped", async () => {
    const res = await app.request("/api/v1/brands", authed({ code: "LATE2", name: "Late", shortNames: ["LATE2"], numbers: [] }));
    expect(res.status).toBe(201);
    const { calendar } = runtime.deps;
    const now = Date.now();
    // A consentDate a few days back whose deadline (3 business days on) is still ahead, but before
    // the deadline of a consent of today: the days between hold a business day.
    const back = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
      .map((k) => now - k * 86_400_000)
      .find((d) => calendar.deadline(new Date(d)).getTime() > now + 600_000 && calendar.deadline(new Date(d)) < calendar.deadline(new Date(now)))!;
    expect(back).toBeDefined();
    const fresh = await post("LATE2", "+905321130101", "ONAY", 1);
    const older = await post("LATE2", "+905321130102", "ONAY", Math.round((now - back) / 1000));
    await waitFor(() => row(fresh).status === "skipped" && row(older).status === "skipped");
    const brand = brandIdOf("LATE2");
    db().prepare("UPDATE brands SET iys_code = '730001', brand_code = '730002' WHERE id = ?").run(brand);
    // Two weeks on, both are past their deadline whatever the holidays.
    expect(reopenSkippedIysReports(runtime.deps.db, calendar, now + 14 * 86_400_000, brand)).toEqual([]);
    // Just past the older one's deadline: only the consent of today is reopened, once.
    const later = calendar.deadline(new Date(back)).getTime() + 1000;
    const reopened = reopenSkippedIysReports(runtime.deps.db, calendar, later, brand);
    expect(reopened).toEqual([{ id: row(fresh).id, kind: "iys_report" }]);
    expect(row(fresh)).toMatchObject({ status: "pending", attempts: 0, lastError: null });
    expect(row(older).status).toBe("skipped");
    expect(reopenSkippedIysReports(runtime.deps.db, calendar, later, brand)).toEqual([]);
    await runtime.deps.jobs.enqueueOutbox(reopened, { tag: "reopened-test" });
    await waitFor(() => row(fresh).status === "done", { timeoutMs: 30_000 });
  });
});

describe("İYS configured after the hub ran without it", () => {
  it("a worker started with IYS_API_BASE_URL reports what was skipped and İYS would still take", async () => {
    const dir = tempDir();
    const plain = await createRuntime(testConfig(dir.dir));
    let second: Runtime | null = null;
    try {
      plain.startBackground();
      const plainApp = createApp(plain.deps);
      const res = await plainApp.request("/api/v1/brands", authed({ code: "NOIYS", name: "No İYS", iysCode: "740001", brandCode: "740002", shortNames: ["NOIYS"], numbers: [] }));
      expect(res.status).toBe(201);
      const consented = await plainApp.request(
        "/api/v1/consents",
        authed({ brand: "NOIYS", recipient: "+905321140101", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - 60_000)) }),
      );
      expect(consented.status).toBe(201);
      const eventId = ((await consented.json()) as { event: { id: number } }).event.id;
      const status = (rt: Runtime) =>
        rt.deps.db.$client.prepare("SELECT status, last_error AS lastError FROM outbox WHERE event_id = ? AND kind = 'iys_report'").get(eventId) as { status: string; lastError: string | null };
      await waitFor(() => status(plain).status === "skipped");
      expect(status(plain).lastError).toBe("İYS API not configured (IYS_API_BASE_URL)");
      await plain.close();
      const writes = iys.writes.length;
      second = await createRuntime(
        testConfig(dir.dir, { QUEUE_PREFIX: plain.deps.config.QUEUE_PREFIX, IYS_API_BASE_URL: runtime.deps.config.IYS_API_BASE_URL!, IYS_USERNAME: "api@hs.example", IYS_PASSWORD: "secret" }),
      );
      second.startBackground();
      await waitFor(() => status(second!).status === "done", { timeoutMs: 30_000 });
      expect(iys.writes.slice(writes).map((w) => [w.iysCode, w.body.recipient, w.body.status])).toEqual([["740001", "+905321140101", "ONAY"]]);
    } finally {
      await second?.close();
      await deletePrefix(plain.deps.config.QUEUE_PREFIX);
      dir.cleanup();
    }
  });

  it("a follow a worker without the İYS API skipped is asked once a worker with it starts", async () => {
    // The web process has the İYS API (so a refusal of a consent the hub never knew plans its status
    // query); the only worker running does not, and skips it; a worker with the API comes later.
    const dir = tempDir();
    const withIys = { IYS_API_BASE_URL: runtime.deps.config.IYS_API_BASE_URL!, IYS_USERNAME: "api@hs.example", IYS_PASSWORD: "secret" };
    const web = await createRuntime(testConfig(dir.dir, { ...withIys, RUN_WORKERS: "false" }));
    const prefix = web.deps.config.QUEUE_PREFIX;
    let plain: Runtime | null = await createRuntime(testConfig(dir.dir, { QUEUE_PREFIX: prefix }));
    let second: Runtime | null = null;
    try {
      plain.startBackground();
      const webApp = createApp(web.deps);
      expect((await webApp.request("/api/v1/brands", authed({ code: "FOLLOWLATER", name: "F", iysCode: "770001", brandCode: "770002", shortNames: ["FOLLOWLATER"], numbers: [] }))).status).toBe(201);
      const refused = await webApp.request(
        "/api/v1/consents",
        authed({ brand: "FOLLOWLATER", recipient: "+905321170101", type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - 60_000)) }),
      );
      expect(refused.status, await refused.clone().text()).toBe(201);
      const eventId = ((await refused.json()) as { event: { id: number } }).event.id;
      const follow = () =>
        web.deps.db.$client.prepare("SELECT status, last_error AS lastError, result FROM outbox WHERE event_id = ? AND kind = 'iys_follow'").get(eventId) as
          | { status: string; lastError: string | null; result: string | null }
          | undefined;
      await waitFor(() => follow()?.status === "skipped");
      expect(follow()!.lastError).toBe("İYS API not configured (IYS_API_BASE_URL)");
      await plain.close();
      plain = null;
      const asked = iys.statusQueries;
      second = await createRuntime(testConfig(dir.dir, { ...withIys, QUEUE_PREFIX: prefix }));
      second.startBackground();
      await waitFor(() => follow()?.status === "done", { timeoutMs: 30_000 });
      expect(iys.statusQueries - asked).toBe(1);
      expect(JSON.parse(follow()!.result!)).toEqual({ held: null });
    } finally {
      await second?.close();
      await plain?.close();
      await web.close();
      await deletePrefix(prefix);
      dir.cleanup();
    }
  });
});
