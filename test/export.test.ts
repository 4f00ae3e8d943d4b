import { createHash } from "node:crypto";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConsentAction } from "../db/ledger";
import { createApp, type App } from "../src/app";
import { exportToFile } from "../src/cli-bulk";
import { statementToAction } from "../src/consents";
import { formatIysDate } from "../src/domain/time";
import { exportState, openReader } from "../src/export";
import { runImport } from "../src/import";
import { createRuntime, type Runtime } from "../src/runtime";
import { ADMIN_KEY, authed, deletePrefix, tempDir, testConfig, TestClock } from "./helpers";

const NOW = Date.parse("2026-03-04T09:00:00Z"); // Wednesday 12:00 in Istanbul
const tmpA = tempDir();
const tmpB = tempDir();
const clock = new TestClock(NOW);
let a: Runtime;
let b: Runtime;
let appA: App;

const iys = (ms: number) => formatIysDate(new Date(ms));
const brandId = (r: Runtime, code: string) => (r.deps.db.$client.prepare("SELECT id FROM brands WHERE code = ?").get(code) as { id: number }).id;
const deps = (r: Runtime) => ({ ...r.deps, enqueueOutbox: r.deps.jobs.enqueueOutbox });

beforeAll(async () => {
  a = await createRuntime(testConfig(tmpA.dir), { clock });
  b = await createRuntime(testConfig(tmpB.dir), { clock });
  appA = createApp(a.deps);
  for (const [r, code] of [[a, "ACME"], [a, "OTHER"], [b, "ACME"]] as const) {
    const res = await createApp(r.deps).request("/api/v1/brands", authed({ code, name: code, shortNames: [code], numbers: [] }));
    expect(res.status).toBe(201);
  }
});

afterAll(async () => {
  for (const r of [a, b]) {
    await r.close();
    await deletePrefix(r.deps.config.QUEUE_PREFIX);
  }
  tmpA.cleanup();
  tmpB.cleanup();
});

const STATE_COLUMNS = "recipient, recipient_type, type, status, source, consent_date, retailer_code";
const state = (r: Runtime) => r.deps.db.$client.prepare(`SELECT ${STATE_COLUMNS} FROM consent_state WHERE brand_id = ? ORDER BY recipient, recipient_type, type`).all(brandId(r, "ACME"));

describe("export", () => {
  it("the exported state imported into a fresh hub gives the same state", async () => {
    const d = (min: number) => iys(NOW - min * 60_000);
    const rows = [
      "type,recipient,status,source,consentDate,recipientType,retailerCode",
      `MESAJ,0532 111 22 33,ONAY,HS_WEB,${d(120)},BIREYSEL,`,
      `MESAJ,05321112233,RET,HS_MESAJ,${d(60)},BIREYSEL,`,
      `ARAMA,05321112233,ONAY,HS_CAGRI_MERKEZI,${d(90)},BIREYSEL,12345678`,
      `EPOSTA,"Ayse.Yilmaz+news@Example.com",ONAY,HS_EPOSTA,${d(30)},BIREYSEL,`,
      `MESAJ,905329998877,ONAY,HS_2015,2015-05-01 00:00:00,TACIR,`,
      `MESAJ,+905551234567,RET,HS_WEB,${d(10)},BIREYSEL,`,
    ];
    for (let i = 0; i < 500; i++) rows.push(`MESAJ,+90533${String(i).padStart(7, "0")},ONAY,HS_WEB,${d(200 + (i % 50))},BIREYSEL,`);
    const first = await runImport(Readable.from([rows.join("\n")]), deps(a), { brandId: brandId(a, "ACME"), via: "cli" });
    expect(first).toMatchObject({ recorded: 506, rejected: 0 });

    const reader = openReader(a.deps.db);
    const exported = [...exportState(reader, brandId(a, "ACME"), "csv")].join("");
    reader.close();
    expect(exported.split("\n")[0]).toBe("type,recipient,status,source,consentDate,recipientType,retailerCode,iys");
    // Hub A's workers do not run here: its reports are still on their way, the single writes of the
    // address with two movements and the list of the rest alike (not_held); a local suppression was never sent.
    expect(exported).toContain(`MESAJ,+905321112233,RET,HS_MESAJ,${d(60)},BIREYSEL,,not_held\n`);
    expect(exported).toContain(`ARAMA,+905321112233,ONAY,HS_CAGRI_MERKEZI,${d(90)},BIREYSEL,12345678,not_held\n`);
    expect(exported).toContain(`MESAJ,+905330000007,ONAY,HS_WEB,${d(207)},BIREYSEL,,not_held\n`);
    expect(exported).toContain(`MESAJ,+905551234567,RET,HS_WEB,${d(10)},BIREYSEL,,not_sent\n`);

    const second = await runImport(Readable.from([exported]), deps(b), { brandId: brandId(b, "ACME"), via: "cli" });
    expect(second).toMatchObject({ rowsRead: 505, recorded: 505, rejected: 0 });
    expect(state(b)).toEqual(state(a));
    expect(state(a)).toHaveLength(505);
  });

  it("a month later the state export loads into another hub as records İYS holds (registered): every consent, refusals kept as the hub's own, nothing reported; without it old consents are refused H467 saying how", async () => {
    const reader = openReader(a.deps.db);
    const withPending = [...exportState(reader, brandId(a, "ACME"), "csv")].join("");
    reader.close();
    // As a hub that never sent its reports (İYS not configured) exports it.
    const exported = withPending.replaceAll(",not_held\n", ",not_sent\n");
    const appB = createApp(b.deps);
    for (const code of ["MOVED", "FRESH", "PENDING"]) expect((await appB.request("/api/v1/brands", authed({ code, name: code, shortNames: [code], numbers: [] }))).status).toBe(201);
    clock.set(new Date(NOW + 30 * 86_400_000));
    try {
      const plain = await runImport(Readable.from([exported]), deps(b), { brandId: brandId(b, "FRESH"), via: "cli", onRejected: (r) => void (r.code === "H467" && expect(r.message).toContain("--registered")) });
      // Only the refusals (kept as local suppressions) and the HS_2015 consent get in.
      expect(plain).toMatchObject({ rowsRead: 505, recorded: 3, rejected: 502, codes: { H467: 502 }, registered: false });

      const moved = await runImport(Readable.from([exported]), deps(b), { brandId: brandId(b, "MOVED"), via: "api", registered: true });
      expect(moved).toMatchObject({ rowsRead: 505, recorded: 505, rejected: 0, registered: true });
      const stateOf = (code: string) => b.deps.db.$client.prepare(`SELECT ${STATE_COLUMNS} FROM consent_state WHERE brand_id = ? ORDER BY recipient, recipient_type, type`).all(brandId(b, code));
      expect(stateOf("MOVED")).toEqual(state(a));
      // Consents held by İYS; refusals kept as the hub's own suppressions (a file's word does not
      // make them İYS's: hub A's were suppressions); nothing planned for İYS.
      expect(b.deps.db.$client.prepare("SELECT status, in_iys AS inIys, count(*) AS n FROM consent_state WHERE brand_id = ? GROUP BY 1, 2 ORDER BY 1").all(brandId(b, "MOVED"))).toEqual([
        { status: "ONAY", inIys: 1, n: 503 },
        { status: "RET", inIys: 0, n: 2 },
      ]);
      expect(b.deps.db.$client.prepare("SELECT DISTINCT origin, effect FROM consent_events WHERE brand_id = ? ORDER BY effect").all(brandId(b, "MOVED"))).toEqual([
        { origin: "registered", effect: "movement" },
        { origin: "registered", effect: "suppression" },
      ]);
      expect(
        b.deps.db.$client
          .prepare("SELECT count(*) AS n FROM outbox o JOIN consent_events e ON e.id = o.event_id WHERE e.brand_id = ? AND o.kind IN ('iys_report', 'iys_batch')")
          .get(brandId(b, "MOVED")),
      ).toEqual({ n: 0 });
      const check = await appB.request("/api/v1/check", authed({ brand: "MOVED", type: "MESAJ", recipients: ["+905330000007", "+905321112233"] }));
      expect(await check.json()).toEqual({ allowed: ["+905330000007"], denied: [{ recipient: "+905321112233", reason: "refused" }] });
      const shown = await (await appB.request(`/api/v1/imports/${moved.id}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json();
      expect(shown).toMatchObject({ registered: true, recorded: 505 });
      // Loaded again: nothing new.
      expect(await runImport(Readable.from([exported]), deps(b), { brandId: brandId(b, "MOVED"), via: "cli", registered: true })).toMatchObject({ recorded: 0, unchanged: 505 });

      // Rows whose report İYS had not accepted (not_held) are no records of İYS's: ordinary movements,
      // the month-old consent refused H467 saying why, the refusal a suppression reported by nobody.
      const messages: string[] = [];
      const pending = await runImport(Readable.from([withPending]), deps(b), { brandId: brandId(b, "PENDING"), via: "cli", registered: true, onRejected: (r) => void messages.push(r.message) });
      expect(pending).toMatchObject({ rowsRead: 505, recorded: 3, rejected: 502, codes: { H467: 502 } });
      expect(new Set(messages)).toEqual(new Set([expect.stringContaining("iys=not_held")]));
      expect(
        b.deps.db.$client.prepare("SELECT type, status, origin FROM consent_events WHERE brand_id = ? AND recipient = '+905321112233' ORDER BY id").all(brandId(b, "PENDING")),
      ).toEqual([{ type: "MESAJ", status: "RET", origin: "import" }]);
    } finally {
      clock.set(new Date(NOW));
    }
  });

  it("a registered row never overrides a record the hub holds on the file's word: over a refusal İYS took, an old consent is refused H467 and a new one is a movement reported like any import's", async () => {
    const recipient = "+905557770001";
    const move = (daysAgo: number, status: "ONAY" | "RET") => {
      clock.set(new Date(NOW - daysAgo * 86_400_000));
      const r = statementToAction({ brandId: brandId(a, "OTHER"), recipient, recipientType: "BIREYSEL", type: "MESAJ", status, source: "HS_WEB", consentDate: iys(NOW - daysAgo * 86_400_000 - 60_000), origin: "api" });
      if (!r.ok) throw new Error(r.code);
      expect(a.deps.ledger.apply([r.action]).outcomes[0]).toMatchObject({ kind: "recorded", event: { effect: "movement" } });
    };
    move(10, "ONAY");
    move(9, "RET");
    clock.set(new Date(NOW));
    const row = (daysAgo: number) => `type,recipient,status,source,consentDate\nMESAJ,${recipient},ONAY,HS_WEB,${iys(NOW - daysAgo * 86_400_000)}\n`;
    const old = await runImport(Readable.from([row(8)]), deps(a), { brandId: brandId(a, "OTHER"), via: "cli", registered: true });
    expect(old).toMatchObject({ recorded: 0, rejected: 1, codes: { H467: 1 } });
    const check = async () => (await (await appA.request("/api/v1/check", authed({ brand: "OTHER", type: "MESAJ", recipients: [recipient] }))).json()) as { allowed: string[] };
    expect((await check()).allowed).toEqual([]);
    const fresh = await runImport(Readable.from([row(1 / 24)]), deps(a), { brandId: brandId(a, "OTHER"), via: "cli", registered: true });
    expect(fresh).toMatchObject({ recorded: 1, rejected: 0 });
    const last = a.deps.db.$client.prepare("SELECT id, origin, effect FROM consent_events WHERE recipient = ? ORDER BY id DESC LIMIT 1").get(recipient) as { id: number; origin: string; effect: string };
    expect(last).toMatchObject({ origin: "import", effect: "movement" });
    expect(a.deps.db.$client.prepare("SELECT kind FROM outbox WHERE kind = 'iys_batch' AND event_id = ?").all(last.id)).toEqual([{ kind: "iys_batch" }]);
    expect((await check()).allowed).toEqual([recipient]);
    // The same file again changes nothing.
    expect(await runImport(Readable.from([row(1 / 24)]), deps(a), { brandId: brandId(a, "OTHER"), via: "cli", registered: true })).toMatchObject({ recorded: 0, unchanged: 1 });
  });

  it("a registered file may hold a consent's history: each row after the first goes on from what registered rows hold", async () => {
    const [p1, p2] = ["+905557770011", "+905557770012"];
    const year = 365 * 86_400_000;
    const row = (p: string, status: string, yearsAgo: number) => `MESAJ,${p},${status},HS_WEB,${iys(NOW - yearsAgo * year)}`;
    const file = ["type,recipient,status,source,consentDate", row(p1, "RET", 5), row(p1, "ONAY", 2), row(p2, "ONAY", 5), row(p2, "RET", 3), row(p2, "ONAY", 1)].join("\n");
    const summary = await runImport(Readable.from([file]), deps(a), { brandId: brandId(a, "OTHER"), via: "cli", registered: true });
    expect(summary).toMatchObject({ recorded: 5, rejected: 0 });
    const check = (await (await appA.request("/api/v1/check", authed({ brand: "OTHER", type: "MESAJ", recipients: [p1, p2] }))).json()) as { allowed: string[] };
    expect(check.allowed).toEqual([p1, p2]);
    expect(await runImport(Readable.from([file]), deps(a), { brandId: brandId(a, "OTHER"), via: "cli", registered: true })).toMatchObject({ recorded: 0, unchanged: 5 });
  });

  it("a registered consent written +9005… (a record İYS holds where operators never look) is refused, saying it must be registered again as +905…; a refusal so written is kept", async () => {
    const [p1, p2, p3] = ["+905557770021", "+905557770022", "+905557770023"];
    const date = iys(NOW - 2 * 365 * 86_400_000);
    const file = ["type,recipient,status,source,consentDate", `MESAJ,+90 0${p1.slice(3)},ONAY,HS_WEB,${date}`, `MESAJ,900${p2.slice(3)},RET,HS_WEB,${date}`, `MESAJ,${p3},ONAY,HS_WEB,${date}`].join("\n");
    const rejected: { code: string; message: string }[] = [];
    const summary = await runImport(Readable.from([file]), deps(a), { brandId: brandId(a, "OTHER"), via: "cli", registered: true, onRejected: (r) => rejected.push(r) });
    expect(summary).toMatchObject({ recorded: 2, rejected: 1, codes: { H121: 1 } });
    expect(rejected[0]!.message).toMatch(/^İYS'de \+9005… biçiminde kayıtlı bir onay operatörlerce bulunamaz .*registered kipi olmadan yükleyin\)\.$/);
    const check = (await (await appA.request("/api/v1/check", authed({ brand: "OTHER", type: "MESAJ", recipients: [p1, p2, p3] }))).json()) as { allowed: string[]; denied: { recipient: string; reason: string }[] };
    expect(check.allowed).toEqual([p3]);
    expect(check.denied).toEqual([
      { recipient: p1, reason: "no_consent" },
      { recipient: p2, reason: "refused" },
    ]);
  });

  it("hub export writes JSONL of the state, and the events of a day range with their ids and hashes", () => {
    const out = join(tmpA.dir, "state.jsonl");
    expect(exportToFile(a.deps.db, { brand: "ACME", events: false, format: "jsonl", out })).toBe(505);
    const first = JSON.parse(readFileSync(out, "utf8").split("\n")[0]!);
    expect(Object.keys(first)).toEqual(["type", "recipient", "status", "source", "consentDate", "recipientType", "retailerCode", "iys"]);
    // What a row does not hold is null, not an empty string.
    const rows = readFileSync(out, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.some((r) => r.retailerCode === "")).toBe(false);
    expect(rows.filter((r) => r.retailerCode === null).length).toBeGreaterThan(0);

    const events = join(tmpA.dir, "events.csv");
    expect(exportToFile(a.deps.db, { brand: "ACME", events: true, from: "2026-03-04", to: "2026-03-04", format: "csv", out: events })).toBe(506);
    const lines = readFileSync(events, "utf8").trimEnd().split("\n");
    expect(lines[0]).toBe("type,recipient,status,source,consentDate,recipientType,retailerCode,eventId,hash");
    const ids = a.deps.db.$client.prepare("SELECT id, hash FROM consent_events WHERE brand_id = ? ORDER BY id").all(brandId(a, "ACME")) as { id: number; hash: string }[];
    expect(lines.slice(1).map((l) => l.split(",").slice(-2).join(","))).toEqual(ids.map((e) => `${e.id},${e.hash}`));
    expect(exportToFile(a.deps.db, { brand: "ACME", events: true, from: "2026-03-05", to: "2026-03-06", format: "csv", out: events })).toBe(0);
  });
});

describe("GET /api/v1/reports/daily", () => {
  // Istanbul is UTC+3: 2026-03-10 runs from 2026-03-09T21:00Z to 2026-03-10T21:00Z.
  const at = (iso: string, actions: () => ConsentAction[]) => {
    clock.set(iso);
    return a.deps.ledger.apply(actions());
  };
  const action = (brand: string, recipient: string, type: "MESAJ" | "EPOSTA", status: "ONAY" | "RET", minutesBefore = 5) => {
    const r = statementToAction({
      brandId: brandId(a, brand),
      recipient,
      recipientType: "BIREYSEL",
      type,
      status,
      source: "HS_WEB",
      consentDate: iys(clock.now().getTime() - minutesBefore * 60_000),
      origin: "api",
    });
    if (!r.ok) throw new Error(r.code);
    return r.action;
  };
  const events: Record<string, { hash: string; id: number }> = {};

  beforeAll(() => {
    const rec = (name: string, res: ReturnType<typeof at>) => {
      const o = res.outcomes[0]!;
      if (o.kind !== "recorded") throw new Error(o.kind);
      events[name] = o.event;
    };
    rec("dayBefore", at("2026-03-09T20:59:59Z", () => [action("ACME", "+905420000001", "MESAJ", "ONAY")]));
    rec("firstSecond", at("2026-03-09T21:00:00Z", () => [action("ACME", "+905420000002", "MESAJ", "ONAY")]));
    rec("suppression", at("2026-03-10T08:00:00Z", () => [action("ACME", "+905420000009", "MESAJ", "RET")]));
    rec("otherBrand", at("2026-03-10T08:00:00Z", () => [action("OTHER", "+905420000003", "MESAJ", "ONAY")]));
    rec("noon", at("2026-03-10T09:00:00Z", () => [action("ACME", "b@example.com", "EPOSTA", "ONAY")]));
    rec("noonRet", at("2026-03-10T09:00:00Z", () => [action("ACME", "+905420000001", "MESAJ", "RET", 1)]));
    rec("lastSecond", at("2026-03-10T20:59:59Z", () => [action("ACME", "+905420000004", "MESAJ", "ONAY")]));
    rec("dayAfter", at("2026-03-10T21:00:00Z", () => [action("ACME", "+905420000005", "MESAJ", "ONAY")]));
    // What İYS answered: a transactionId and its own creationDate (Turkish time), on the outbox row
    // of a single write or in iys_report_items for a movement of an imported list.
    const db = a.deps.db.$client;
    const ist = (wall: string) => Date.parse(`${wall.replace(" ", "T")}+03:00`);
    const single = (name: string, transactionId: string, created: string) =>
      db.prepare(`UPDATE outbox SET status = 'done', result = ? WHERE event_id = ? AND kind = 'iys_report'`).run(
        JSON.stringify({ transactionId, creationDate: ist(created) }), events[name]!.id);
    single("dayBefore", "txd", "2026-03-10 00:00:01"); // recorded at 23:59:59, registered by İYS after midnight
    single("firstSecond", "txf", "2026-03-10 00:00:02");
    single("noon", `${"0".repeat(63)}1`, "2026-03-10 12:00:05");
    single("noonRet", `${"0".repeat(63)}0`, "2026-03-10 12:00:05"); // the same second: sorted by transactionId
    single("otherBrand", "txo", "2026-03-10 08:00:01");
    const anyOutbox = (db.prepare("SELECT id FROM outbox LIMIT 1").get() as { id: number }).id;
    db.prepare(`INSERT INTO iys_report_items (event_id, outbox_id, status, transaction_id, creation_date, updated_at) VALUES (?, ?, 'success', 'txl', ?, 0)`).run(
      events.lastSecond!.id, anyOutbox, ist("2026-03-11 00:00:03"));
    db.prepare(`UPDATE outbox SET status = 'failed', last_error = 'H178' WHERE event_id = ? AND kind = 'iys_report'`).run(events.dayAfter!.id);
    clock.set("2026-03-11T09:00:00Z");
  });

  const get = (q: string) => appA.request(`/api/v1/reports/daily${q}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });

  it("lists the movements İYS registered that Istanbul day, with its transactionId and creationDate, and the SHA-384 of the file", async () => {
    const res = await get("?brand=acme&date=2026-03-10");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
    const body = await res.text();
    // Sorted by creationDate, then transactionId; the file ends with a newline. Not in it: the
    // suppression (no İYS movement), the other brand's, the movement İYS registered the next day,
    // and the one İYS refused.
    const expected = [
      "creationDate,transactionId,recipient,recipientType,type,status,consentDate,source",
      "2026-03-10 00:00:01,txd,+905420000001,BIREYSEL,MESAJ,ONAY,2026-03-09 23:54:59,HS_WEB",
      "2026-03-10 00:00:02,txf,+905420000002,BIREYSEL,MESAJ,ONAY,2026-03-09 23:55:00,HS_WEB",
      `2026-03-10 12:00:05,${"0".repeat(63)}0,+905420000001,BIREYSEL,MESAJ,RET,2026-03-10 11:59:00,HS_WEB`,
      `2026-03-10 12:00:05,${"0".repeat(63)}1,b@example.com,BIREYSEL,EPOSTA,ONAY,2026-03-10 11:55:00,HS_WEB`,
    ].join("\n") + "\n";
    expect(body).toBe(expected);
    expect(res.headers.get("x-content-sha384")).toBe(createHash("sha384").update(Buffer.from(expected, "utf8")).digest("hex"));
    // The movement recorded at 23:59:59 that İYS registered after midnight is in the next day's file.
    expect(await (await get("?brand=acme&date=2026-03-11")).text()).toBe(
      "creationDate,transactionId,recipient,recipientType,type,status,consentDate,source\n" +
        "2026-03-11 00:00:03,txl,+905420000004,BIREYSEL,MESAJ,ONAY,2026-03-10 23:54:59,HS_WEB\n",
    );
  });

  it("a movement İYS registered weeks after the hub recorded it (a report reopened when the brand got its İYS codes) is in the file of the day İYS registered it", async () => {
    const db = a.deps.db.$client;
    const ist = (wall: string) => Date.parse(`${wall.replace(" ", "T")}+03:00`);
    const single = at("2026-01-05T09:00:00Z", () => [action("ACME", "+905420000006", "MESAJ", "ONAY")]).outcomes[0]!;
    const listed = at("2026-02-02T09:00:00Z", () => [action("ACME", "+905420000007", "MESAJ", "ONAY")]).outcomes[0]!;
    if (single.kind !== "recorded" || listed.kind !== "recorded") throw new Error("not recorded");
    db.prepare(`UPDATE outbox SET status = 'done', result = ? WHERE event_id = ? AND kind = 'iys_report'`).run(
      JSON.stringify({ transactionId: "txlate1", creationDate: ist("2026-03-20 10:00:00") }), single.event.id);
    const anyOutbox = (db.prepare("SELECT id FROM outbox LIMIT 1").get() as { id: number }).id;
    db.prepare(`INSERT INTO iys_report_items (event_id, outbox_id, status, transaction_id, creation_date, updated_at) VALUES (?, ?, 'success', 'txlate2', ?, 0)`).run(
      listed.event.id, anyOutbox, ist("2026-03-20 11:00:00"));
    clock.set("2026-03-21T09:00:00Z");
    try {
      expect(await (await get("?brand=acme&date=2026-03-20")).text()).toBe(
        "creationDate,transactionId,recipient,recipientType,type,status,consentDate,source\n" +
          "2026-03-20 10:00:00,txlate1,+905420000006,BIREYSEL,MESAJ,ONAY,2026-01-05 11:55:00,HS_WEB\n" +
          "2026-03-20 11:00:00,txlate2,+905420000007,BIREYSEL,MESAJ,ONAY,2026-02-02 11:55:00,HS_WEB\n",
      );
    } finally {
      clock.set("2026-03-11T09:00:00Z");
    }
  });

  it("format=json gives the same rows and hash", async () => {
    const csv = await (await get("?brand=ACME&date=2026-03-10")).text();
    const res = await get("?brand=ACME&date=2026-03-10&format=json");
    expect(res.status).toBe(200);
    const json = await res.json();
    expect(json.sha384).toBe(createHash("sha384").update(csv).digest("hex"));
    expect(json.rows).toHaveLength(4);
    expect(json.rows[3]).toEqual({
      creationDate: "2026-03-10 12:00:05",
      transactionId: `${"0".repeat(63)}1`,
      recipient: "b@example.com",
      recipientType: "BIREYSEL",
      type: "EPOSTA",
      status: "ONAY",
      consentDate: "2026-03-10 11:55:00",
      source: "HS_WEB",
    });
  });

  it("over HTTP, a HEAD leaves no database reader open (one left open keeps a snapshot and its descriptors until restart); the CSV has its length", async () => {
    const server = serve({ fetch: appA.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise<void>((resolve) => server.once("listening", () => resolve()));
    const { port } = server.address() as AddressInfo;
    try {
      // A day of 3000 movements: well over the 64 KiB the response is written in.
      const many = () => Array.from({ length: 3000 }, (_, i) => action("ACME", `+90543${String(i).padStart(7, "0")}`, "MESAJ", "ONAY"));
      const recorded = at("2026-03-08T09:00:00Z", many).outcomes.map((o) => (o.kind === "recorded" ? o.event.id : 0));
      clock.set("2026-03-11T09:00:00Z");
      const mark = a.deps.db.$client.prepare(`UPDATE outbox SET status = 'done', result = ? WHERE event_id = ? AND kind = 'iys_report'`);
      a.deps.db.$client.transaction(() => recorded.forEach((id) => mark.run(JSON.stringify({ transactionId: `big${id}`, creationDate: Date.parse("2026-03-08T09:00:01Z") }), id)))();
      const url = `http://127.0.0.1:${port}/api/v1/reports/daily?brand=ACME&date=2026-03-08`;
      const headers = { authorization: `Bearer ${ADMIN_KEY}` };
      const full = await fetch(url, { headers });
      const body = await full.text();
      expect(body.split("\n")).toHaveLength(3002);
      expect(full.headers.get("content-length")).toBe(String(Buffer.byteLength(body)));
      // A reader left open holds its descriptors of the database file.
      const dbPath = a.deps.db.$client.name;
      const onDb = () => readdirSync("/proc/self/fd").filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dbPath);
        } catch {
          return false;
        }
      }).length;
      const before = onDb();
      for (let i = 0; i < 3; i++) {
        const head = await fetch(url, { method: "HEAD", headers });
        expect(head.status).toBe(200);
        expect(head.headers.get("x-content-sha384")).toBe(createHash("sha384").update(body).digest("hex"));
      }
      await new Promise((r) => setTimeout(r, 50));
      expect(onDb()).toBe(before);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it("a day without movements is the header alone", async () => {
    const res = await get("?brand=ACME&date=2026-03-01");
    expect(await res.text()).toBe("creationDate,transactionId,recipient,recipientType,type,status,consentDate,source\n");
  });

  it("a bad date is a 400 naming it, an unknown brand a 404", async () => {
    const bad = await get("?brand=ACME&date=2026-02-30");
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.field).toBe("date");
    const worse = await get("?brand=ACME&date=10.03.2026");
    expect(worse.status).toBe(400);
    // A day not yet begun in Istanbul (the test clock is in March 2026).
    const future = await get("?brand=ACME&date=2027-01-01");
    expect(future.status).toBe(400);
    expect((await future.json()).error).toMatchObject({ field: "date", message: "date: 2027-01-01 has not begun yet in Istanbul" });
    expect((await get("?brand=NOPE&date=2026-03-10")).status).toBe(404);
  });
});
