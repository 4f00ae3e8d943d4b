import { execFile, spawn } from "node:child_process";
import { existsSync, lstatSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import { serve, type ServerType } from "@hono/node-server";
import { Parser } from "csv-parse";
import { parse } from "csv-parse/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../src/app";
import { formatIysDate } from "../src/domain/time";
import Database from "better-sqlite3";
import { EVENT_COLUMNS, eventHash, type LedgerEvent } from "../db/ledger";
import { LedgerWriter } from "../db/ledger-writer";
import { disableEndpoint, insertEndpoint } from "../src/callbacks/store";
import { csvRecords, failInterruptedImports, IMPORT_STALE_MS, ImportFormatError, ImportTooLargeError, importById, rowToAction, runImport, type ImportDeps, type RejectedRow } from "../src/import";
import { createRuntime, type Runtime } from "../src/runtime";
import { ADMIN_KEY, authed, deletePrefix, tempDir, testConfig, TestClock, waitFor } from "./helpers";

const tmp = tempDir();
// Wednesday 4 March 2026, 12:00 in Istanbul: a business day with no holiday near.
const NOW = Date.parse("2026-03-04T09:00:00Z");
const clock = new TestClock(NOW);
let runtime: Runtime;
let app: App;
let importDeps: ImportDeps;

const HEADER = "recipientType,type,recipient,status,source,consentDate";
const iys = (ms: number) => formatIysDate(new Date(ms));
const phone = (i: number) => `+90532${String(i).padStart(7, "0")}`;

/**
 * Row i of the generated file (line i + 2). Every block of 1000 rows holds eight rows İYS refuses,
 * one exact duplicate and 991 good rows in assorted spellings.
 */
function row(i: number, offset = 0): { line: string; code?: string; duplicate?: boolean } {
  const n = i + offset;
  const date = iys(NOW - 3_600_000 - (i % 3600) * 1000);
  switch (i % 1000) {
    case 1:
      return { line: `BIREYSEL,MESAJ,0532 12,ONAY,HS_WEB,${date}`, code: "H121" };
    case 2:
      return { line: `BIREYSEL,EPOSTA,çiğdem${n}@example.com,ONAY,HS_WEB,${date}`, code: "H120" };
    case 3:
      return { line: `BIREYSEL,MESAJ,${phone(n)},ONAY,HS_WEB,${iys(NOW + 3_600_000)}`, code: "H162" };
    case 4:
      return { line: `BIREYSEL,MESAJ,${phone(n)},ONAY,IYS_WEB,${date}`, code: "H486" };
    case 5:
      return { line: `BIREYSEL,MESAJ,user${n}@example.com,ONAY,HS_WEB,${date}`, code: "H464" };
    case 6:
      return { line: `BIREYSEL,MESAJ,${phone(n)},ONAY,HS_2015,2015-05-02 00:00:00`, code: "H155" };
    case 7:
      // The same key as row i - 7 (ONAY), ONAY again with a later date.
      return { line: `BIREYSEL,MESAJ,0${phone(n - 7).slice(3)},ONAY,HS_WEB,${iys(NOW - 60_000)}`, code: "H174" };
    case 8:
      return { ...row(i - 8, offset), duplicate: true };
    case 9:
      return { line: `BIREYSEL,MESAJ,${phone(n)},ONAY,HS_WEB,${iys(NOW - 30 * 86_400_000)}`, code: "H467" };
    case 0:
      return { line: `BIREYSEL,MESAJ,${phone(n)},ONAY,HS_WEB,${date}` };
    default:
      if (i % 10 === 0) return { line: `BIREYSEL,ARAMA,0 (532) ${String(n).padStart(7, "0").replace(/(\d{3})(\d{2})(\d{2})/, "$1-$2-$3")},ONAY,HS_CAGRI_MERKEZI,${date}` };
      if (i % 10 === 1) return { line: `BIREYSEL,EPOSTA,User.${n}+tag@Example.com,ONAY,HS_EPOSTA,${date}` };
      if (i % 10 === 2) return { line: `TACIR,MESAJ,90532${String(n).padStart(7, "0")},ONAY,HS_2015,2015-05-01 00:00:00` };
      if (i % 10 === 3) return { line: `,MESAJ,${phone(n)},RET,HS_MESAJ,${date}` };
      return { line: `BIREYSEL,MESAJ,${phone(n)},ONAY,HS_WEB,${date}` };
  }
}

function generate(rows: number, offset = 0, pad = "") {
  const expected = new Map<number, string>();
  let duplicates = 0;
  const parts = [pad ? `${HEADER},note` : HEADER];
  for (let i = 0; i < rows; i++) {
    const r = row(i, offset);
    parts.push(pad ? `${r.line},${pad}` : r.line);
    if (r.code) expected.set(i + 2, r.code);
    if (r.duplicate) duplicates++;
  }
  return { csv: `${parts.join("\n")}\n`, expected, duplicates };
}

const countEvents = () => (runtime.deps.db.$client.prepare("SELECT COUNT(*) AS n FROM consent_events").get() as { n: number }).n;

async function createBrand(code: string) {
  const res = await app.request("/api/v1/brands", authed({ code, name: code, shortNames: [code], numbers: [] }));
  expect(res.status, await res.clone().text()).toBe(201);
}

beforeAll(async () => {
  runtime = await createRuntime(testConfig(tmp.dir), { clock });
  app = createApp(runtime.deps);
  importDeps = { ...runtime.deps, enqueueOutbox: runtime.deps.jobs.enqueueOutbox };
  for (const code of ["BULK", "UPLOAD", "SMALL", "LARGE", "CLI"]) await createBrand(code);
});

afterAll(async () => {
  await runtime.close();
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

const brandId = (code: string) => (runtime.deps.db.$client.prepare("SELECT id FROM brands WHERE code = ?").get(code) as { id: number }).id;

describe("bulk import of 100 000 rows", () => {
  const file = generate(100_000);
  const path = join(tmp.dir, "bulk.csv");
  writeFileSync(path, file.csv);
  let firstId = "";

  it("records the good rows and rejects each bad one with its İYS code", async () => {
    const rejected: { line: number; code: string }[] = [];
    const summary = await runImport(Readable.from([file.csv]), importDeps, {
      brandId: brandId("BULK"),
      via: "cli",
      onRejected: (r) => rejected.push({ line: r.line, code: r.code }),
    });
    firstId = summary.id;
    expect(file.expected.size).toBe(800);
    expect(summary).toMatchObject({ rowsRead: 100_000, recorded: 100_000 - 800 - file.duplicates, unchanged: file.duplicates, rejected: 800 });
    expect(summary.codes).toEqual({ H121: 100, H120: 100, H162: 100, H486: 100, H464: 100, H155: 100, H174: 100, H467: 100 });
    expect(new Map(rejected.map((r) => [r.line, r.code]))).toEqual(file.expected);
    expect(countEvents()).toBe(summary.recorded);
  });

  it("keeps the rejected rows as a CSV with the original columns, the line and the İYS code", async () => {
    const res = await app.request(`/api/v1/imports/${firstId}/rejected`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
    const rows = parse(await res.text(), { columns: true }) as Record<string, string>[];
    // Read 500 at a time: every row once, in file order.
    expect(rows).toHaveLength(800);
    expect(rows.map((r) => Number(r.line))).toEqual([...file.expected.keys()].sort((x, y) => x - y));
    const head = await app.request(`/api/v1/imports/${firstId}/rejected`, { method: "HEAD", headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toMatch(/^text\/csv/);
    expect(new Map(rows.map((r) => [Number(r.line), r.code]))).toEqual(file.expected);
    const lines = file.csv.split("\n");
    for (const r of rows.slice(0, 20)) {
      const original = lines[Number(r.line) - 1]!.split(",");
      expect([r.recipientType || "", r.type, r.recipient, r.status, r.source, r.consentDate]).toEqual(original);
      expect(r.message!.length).toBeGreaterThan(5);
    }
  });

  it("re-running the same file changes nothing", async () => {
    const before = countEvents();
    const state = runtime.deps.db.$client.prepare("SELECT * FROM consent_state ORDER BY recipient, type").all();
    const summary = await runImport(Readable.from([file.csv]), importDeps, { brandId: brandId("BULK"), via: "cli" });
    expect(summary).toMatchObject({ rowsRead: 100_000, recorded: 0, unchanged: 100_000 - 800, rejected: 800 });
    expect(countEvents()).toBe(before);
    expect(runtime.deps.db.$client.prepare("SELECT * FROM consent_state ORDER BY recipient, type").all()).toEqual(state);
  });

  it("memory stays flat: a ten times larger file does not take ten times the memory", async () => {
    // 1 KiB of ignored text a row: buffering the large file would take over 100 MiB.
    const pad = "x".repeat(1024);
    // Live memory, not garbage the collector has not reached yet: collect before each sample.
    v8.setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    async function peakGrowth(code: string, rows: number, offset: number) {
      gc();
      const base = process.memoryUsage();
      let peakHeap = 0;
      let peakRss = 0;
      const sample = () => {
        gc();
        const m = process.memoryUsage();
        peakHeap = Math.max(peakHeap, m.heapUsed - base.heapUsed);
        peakRss = Math.max(peakRss, m.rss - base.rss);
      };
      async function* source() {
        for (let i = 0; i < rows; i += 1000) {
          const part = generate(Math.min(1000, rows - i), offset + i, pad).csv;
          yield i === 0 ? part : part.slice(part.indexOf("\n") + 1);
          if (i % 10_000 === 0) sample();
        }
      }
      const summary = await runImport(source(), importDeps, { brandId: brandId(code), via: "cli", onProgress: sample });
      expect(summary.rowsRead).toBe(rows);
      return { peakHeap, peakRss };
    }
    const small = await peakGrowth("SMALL", 10_000, 200_000);
    const large = await peakGrowth("LARGE", 100_000, 300_000);
    const MiB = 1024 * 1024;
    expect(large.peakHeap).toBeLessThan(small.peakHeap + 64 * MiB);
    expect(large.peakRss).toBeLessThan(small.peakRss + 96 * MiB);
  });

  it("hub import prints a summary and exits 0 with rejected rows, 1 naming missing columns or an unknown brand", async () => {
    const run = promisify(execFile);
    const config = runtime.deps.config;
    const env = { ...process.env, DATABASE_PATH: config.DATABASE_PATH, LEDGER_KEY_PATH: config.LEDGER_KEY_PATH, HUB_SECRET: "test-hub-secret-0123456789abcdefghij", QUEUE_PREFIX: config.QUEUE_PREFIX, LOG_LEVEL: "warn", CHECKPOINT_INTERVAL_SECONDS: "0" };
    const hub = (...args: string[]) =>
      run(process.execPath, ["bin/hub.mjs", ...args], { env }).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    // The CLI runs on the real clock: dates an hour before now.
    const date = formatIysDate(new Date(Date.now() - 3_600_000));
    const small = join(tmp.dir, "cli.csv");
    writeFileSync(small, `type,recipient,status,source,consentDate\nMESAJ,05329990001,ONAY,HS_WEB,${date}\nEPOSTA,ayşe@example.com,ONAY,HS_WEB,${date}\n`);
    const ok = await hub("import", "--brand", "cli", small, "--rejected", join(tmp.dir, "cli-rejected.csv"));
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/read 2, recorded 1, unchanged 0, rejected 1/);
    expect(readFileSync(join(tmp.dir, "cli-rejected.csv"), "utf8")).toMatch(/ayşe@example.com,ONAY,HS_WEB,[^\n]*,3,H120,/);

    // The base İYS holds already, collected years ago: refused as new movements, taken as registered records.
    const old = join(tmp.dir, "cli-old.csv");
    writeFileSync(old, `type,recipient,status,source,consentDate\nMESAJ,05329990002,ONAY,HS_WEB,2021-06-01 10:00:00\n`);
    const asNew = await hub("import", "--brand", "CLI", old, "--rejected", join(tmp.dir, "cli-old-rejected.csv"));
    expect(asNew.stdout).toMatch(/recorded 0, unchanged 0, rejected 1/);
    expect(readFileSync(join(tmp.dir, "cli-old-rejected.csv"), "utf8")).toMatch(/,H467,.*hub import --registered/);
    const registered = await hub("import", "--brand", "CLI", old, "--registered");
    expect(registered.code, registered.stderr).toBe(0);
    expect(registered.stdout).toMatch(/\(registered: records İYS holds, not reported\): read 1, recorded 1, unchanged 0, rejected 0/);

    // A rejected-rows path that cannot be written fails before any row is read; a run without
    // rejected rows leaves no rejected file (not even one an earlier run left at that path).
    const fresh = join(tmp.dir, "cli-fresh.csv");
    writeFileSync(fresh, `type,recipient,status,source,consentDate\nMESAJ,05329990003,ONAY,HS_WEB,${date}\nEPOSTA,"=HYPERLINK(""http://x"")",ONAY,HS_WEB,${date}\nMESAJ,+90 532 999 00 04,ONAY,HS_YANLIS,${date}\n`);
    const nowhere = await hub("import", "--brand", "CLI", fresh, "--rejected", join(tmp.dir, "no-such-dir", "r.csv"));
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toContain(`cannot write the rejected rows to ${join(tmp.dir, "no-such-dir", "r.csv")}`);
    expect(runtime.deps.db.$client.prepare("SELECT count(*) AS n FROM consent_state WHERE recipient = ?").get("+905329990003")).toEqual({ n: 0 });
    const withRejected = await hub("import", "--brand", "CLI", fresh);
    expect(withRejected.stdout).toMatch(/recorded 1, unchanged 0, rejected 2/);
    // A field a spreadsheet would run as a formula is written as text; a phone stays as given.
    const rejectedCsv = readFileSync(`${fresh}.rejected.csv`, "utf8");
    expect(lstatSync(`${fresh}.rejected.csv`).mode & 0o777).toBe(0o600); // addresses: its owner's alone
    expect(rejectedCsv).toContain(`EPOSTA,"'=HYPERLINK(""http://x"")",ONAY`);
    expect(rejectedCsv).toContain(`MESAJ,+90 532 999 00 04,ONAY,HS_YANLIS`);
    writeFileSync(fresh, `type,recipient,status,source,consentDate\nMESAJ,05329990005,ONAY,HS_WEB,${date}\n`);
    const clean = await hub("import", "--brand", "CLI", fresh);
    expect(clean.stdout).toMatch(/recorded 1, unchanged 0, rejected 0/);
    // The earlier run's file is emptied (never taken for this run's); one this run made would be removed.
    expect(readFileSync(`${fresh}.rejected.csv`, "utf8")).toBe("");
    const cleanElsewhere = await hub("import", "--brand", "CLI", fresh, "--rejected", join(tmp.dir, "made-and-removed.csv"));
    expect(cleanElsewhere.code, cleanElsewhere.stderr).toBe(0);
    expect(existsSync(join(tmp.dir, "made-and-removed.csv"))).toBe(false);
    // Never the input itself, and a path that is no regular file (/dev/null behind a link) is only written to.
    const itself = await hub("import", "--brand", "CLI", fresh, "--rejected", fresh);
    expect(itself.code).toBe(2);
    expect(itself.stderr).toContain("is the file being imported");
    expect(readFileSync(fresh, "utf8")).toContain("05329990005");
    const devNull = join(tmp.dir, "nul");
    symlinkSync("/dev/null", devNull);
    const toDevNull = await hub("import", "--brand", "CLI", fresh, "--rejected", devNull);
    expect(toDevNull.code, toDevNull.stderr).toBe(0);
    expect(lstatSync(devNull).isSymbolicLink()).toBe(true);

    writeFileSync(small, `type,recipient\nMESAJ,05329990001\n`);
    const bad = await hub("import", "--brand", "CLI", small);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/lacks the columns status, source, consentDate/);
    const unknown = await hub("import", "--brand", "NOPE", small);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown brand NOPE/);
  });

  it("hub import - reads standard input, and a named pipe is read as a file; neither without --rejected", async () => {
    const config = runtime.deps.config;
    const env = { ...process.env, DATABASE_PATH: config.DATABASE_PATH, LEDGER_KEY_PATH: config.LEDGER_KEY_PATH, HUB_SECRET: "test-hub-secret-0123456789abcdefghij", QUEUE_PREFIX: config.QUEUE_PREFIX, LOG_LEVEL: "warn", CHECKPOINT_INTERVAL_SECONDS: "0" };
    const date = formatIysDate(new Date(Date.now() - 3_600_000));
    const csv = `type,recipient,status,source,consentDate\nMESAJ,05329991001,ONAY,HS_WEB,${date}\nMESAJ,0532,ONAY,HS_WEB,${date}\n`;
    const hub = (args: string[], input: string | null) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ["bin/hub.mjs", ...args], { env });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("close", (code) => resolve({ code, stdout, stderr }));
        child.stdin.on("error", () => {}); // a refused run may exit before reading
        child.stdin.end(input ?? "");
      });
    const nameless = await hub(["import", "--brand", "CLI", "-"], csv);
    expect(nameless.code).toBe(2);
    expect(nameless.stderr).toContain("reading standard input: give --rejected FILE, the file for the rejected rows");
    const rejected = join(tmp.dir, "stdin-rejected.csv");
    const piped = await hub(["import", "--brand", "CLI", "-", "--rejected", rejected], csv);
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout).toMatch(/read 2, recorded 1, unchanged 0, rejected 1/);
    expect(readFileSync(rejected, "utf8")).toMatch(/^MESAJ,0532,ONAY,HS_WEB,[^\n]*,3,H121,/m);
    expect(readFileSync(rejected, "utf8")).toMatch(/^\uFEFFtype,recipient,/); // a file, for a spreadsheet
    expect(runtime.deps.ledger.state(brandId("CLI"), "+905329991001", "BIREYSEL", "MESAJ")).toMatchObject({ status: "ONAY" });
    // Into a pipe (`--rejected /dev/stdout | cut …`): no byte-order mark before the header.
    const rejectedPipe = join(tmp.dir, "rejected.fifo");
    await promisify(execFile)("mkfifo", [rejectedPipe]);
    const reader = promisify(execFile)("cat", [rejectedPipe]);
    const intoPipe = await hub(["import", "--brand", "CLI", "-", "--rejected", rejectedPipe], csv.replace("05329991001", "05329991003"));
    expect(intoPipe.code, intoPipe.stderr).toBe(0);
    expect((await reader).stdout).toMatch(/^type,recipient,status,source,consentDate,[^\n]*\nMESAJ,0532,ONAY,HS_WEB,[^\n]*,3,H121,/);

    const fifo = join(tmp.dir, "consents.fifo");
    await promisify(execFile)("mkfifo", [fifo]);
    const noRejected = await hub(["import", "--brand", "CLI", fifo], null);
    expect(noRejected.code).toBe(2);
    expect(noRejected.stderr).toContain(`${fifo} is not a regular file: give --rejected FILE`);
    const writer = promisify(execFile)("sh", ["-c", `printf '%s' "$0" > "$1"`, csv.replace("05329991001", "05329991002"), fifo]);
    const viaFifo = await hub(["import", "--brand", "CLI", fifo, "--rejected", rejected], null);
    await writer;
    expect(viaFifo.code, viaFifo.stderr).toBe(0);
    expect(viaFifo.stdout).toMatch(/read 2, recorded 1, unchanged 0, rejected 1/);
    expect(runtime.deps.ledger.state(brandId("CLI"), "+905329991002", "BIREYSEL", "MESAJ")).toMatchObject({ status: "ONAY" });
  });

  it("hub import stopped by Ctrl-C keeps the rows before, marks the import failed saying so, and a re-run finishes it", async () => {
    const config = runtime.deps.config;
    const env = { ...process.env, DATABASE_PATH: config.DATABASE_PATH, LEDGER_KEY_PATH: config.LEDGER_KEY_PATH, HUB_SECRET: "test-hub-secret-0123456789abcdefghij", QUEUE_PREFIX: config.QUEUE_PREFIX, LOG_LEVEL: "warn", CHECKPOINT_INTERVAL_SECONDS: "0" };
    const date = formatIysDate(new Date(Date.now() - 3_600_000));
    const rows = 200_000;
    const lines = ["type,recipient,status,source,consentDate"];
    for (let i = 0; i < rows; i++) lines.push(`MESAJ,+90536${String(i).padStart(7, "0")},ONAY,HS_WEB,${date}`);
    const path = join(tmp.dir, "interrupted.csv");
    writeFileSync(path, `${lines.join("\n")}\n`);
    const db = runtime.deps.db.$client;
    const ofFile = () =>
      db.prepare("SELECT id, status, error, rows_read AS rowsRead, recorded FROM imports WHERE brand_id = ? ORDER BY started_at DESC LIMIT 1").get(brandId("CLI")) as
        | { id: string; status: string; error: string | null; rowsRead: number; recorded: number }
        | undefined;
    const before = ofFile()?.id;
    const child = spawn(process.execPath, ["bin/hub.mjs", "import", "--brand", "CLI", path], { env });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    // Some batches in, not all.
    await waitFor(() => {
      const r = ofFile();
      return r !== undefined && r.id !== before && r.recorded > 0;
    }, { timeoutMs: 60_000 });
    child.kill("SIGINT");
    expect(await exited).toBe(1);
    const record = ofFile()!;
    expect(record.status).toBe("failed");
    expect(record.error).toMatch(/^the file stopped before its end \(interrupted \(Ctrl-C\)\); the [\d]+ rows before it are in import /);
    expect(stderr).toContain("interrupted (Ctrl-C)");
    expect(record.recorded).toBeGreaterThan(0);
    expect(record.recorded).toBeLessThan(rows);
    const kept = (db.prepare("SELECT count(*) AS n FROM consent_state WHERE recipient LIKE '+90536%'").get() as { n: number }).n;
    expect(kept).toBe(record.recorded);
    const again = await promisify(execFile)(process.execPath, ["bin/hub.mjs", "import", "--brand", "CLI", path], { env });
    expect(again.stdout).toMatch(new RegExp(`recorded ${(rows - kept).toLocaleString("en-US")}, unchanged ${kept.toLocaleString("en-US")}, rejected 0`));
    // A file that breaks after rejected rows says where those rows are (only a finished import's summary did).
    const broken = join(tmp.dir, "broken-after-rejects.csv");
    writeFileSync(broken, `type,recipient,status,source,consentDate\nMESAJ,0532,ONAY,HS_WEB,${date}\nMESAJ,"+905370000001,ONAY,HS_WEB,${date}\n`);
    const failed = await promisify(execFile)(process.execPath, ["bin/hub.mjs", "import", "--brand", "CLI", broken], { env }).then(
      (r) => ({ code: 0, stderr: r.stderr }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`; the 1 rows rejected before it are in ${broken}.rejected.csv`);
    expect(readFileSync(`${broken}.rejected.csv`, "utf8")).toMatch(/MESAJ,0532,ONAY,HS_WEB,[^\n]*,2,H121,/);
  }, 180_000);
});

describe("POST /api/v1/imports", () => {
  let server: ServerType;
  let base = "";
  beforeAll(async () => {
    server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise((r) => server.once("listening", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const auth = { authorization: `Bearer ${ADMIN_KEY}` };

  it("streams the upload into the ledger, with progress readable while it runs and the rejected rows afterwards", async () => {
    const file = generate(12_000, 500_000);
    const lines = file.csv.split(/(?<=\n)/);
    const encoder = new TextEncoder();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // The first 6001 lines (more than one batch), then hold the upload open until the progress is seen.
    const body = new ReadableStream<Uint8Array>({
      async start(ctl) {
        ctl.enqueue(encoder.encode(lines.slice(0, 6001).join("")));
        await held;
        ctl.enqueue(encoder.encode(lines.slice(6001).join("")));
        ctl.close();
      },
    });
    const upload = fetch(`${base}/api/v1/imports?brand=upload`, { method: "POST", headers: { ...auth, "content-type": "text/csv" }, body, duplex: "half" } as RequestInit);

    const running = await waitFor(async () => {
      const list = (await (await fetch(`${base}/api/v1/imports?brand=UPLOAD`, { headers: auth })).json()) as { imports: { id: string; status: string; rowsRead: number }[] };
      return list.imports.find((i) => i.status === "running" && i.rowsRead >= 5000);
    }).then((r) => r!);
    const progress = (await (await fetch(`${base}/api/v1/imports/${running.id}`, { headers: auth })).json()) as Record<string, unknown>;
    expect(progress).toMatchObject({ id: running.id, brand: "UPLOAD", status: "running", finishedAt: null });
    expect(progress.rowsRead as number).toBeLessThan(12_000);
    release();

    const res = await upload;
    expect(res.status).toBe(200);
    const summary = (await res.json()) as Record<string, unknown>;
    expect(summary).toMatchObject({ id: running.id, status: "done", rowsRead: 12_000, rejected: 96, unchanged: file.duplicates });
    expect(summary.bytesRead).toBe(Buffer.byteLength(file.csv));

    const done = (await (await fetch(`${base}/api/v1/imports/${running.id}`, { headers: auth })).json()) as Record<string, unknown>;
    expect(done).toMatchObject({ status: "done", rowsRead: 12_000, recorded: summary.recorded, rejected: 96 });
    const csv = await (await fetch(`${base}/api/v1/imports/${running.id}/rejected`, { headers: auth })).text();
    const rows = parse(csv, { columns: true }) as Record<string, string>[];
    expect(new Map(rows.map((r) => [Number(r.line), r.code]))).toEqual(file.expected);
  });

  it("takes a body larger than the 1 MiB limit of other routes", async () => {
    const file = generate(20_000, 700_000);
    expect(Buffer.byteLength(file.csv)).toBeGreaterThan(1024 * 1024);
    const res = await fetch(`${base}/api/v1/imports?brand=UPLOAD`, { method: "POST", headers: { ...auth, "content-type": "text/csv; charset=utf-8" }, body: file.csv });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ rowsRead: 20_000, rejected: 160 });
  });

  const post = (query: string, body: string, type = "text/csv") =>
    app.request(`/api/v1/imports${query}`, { method: "POST", headers: { ...auth, "content-type": type }, body });

  it("a file that is no CSV text (a workbook, UTF-16 without its mark, JSON Lines) is a 400 saying what it is; Excel's sep=; line and a quoted header name holding a comma are read", async () => {
    const before = countEvents();
    const header = "type,recipient,status,source,consentDate";
    const refused: [string | Uint8Array, RegExp][] = [
      [Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(64, 1)]), /ZIP archive \(an Excel \.xlsx workbook\?\), not CSV text: save it as CSV UTF-8/],
      [Buffer.from(`${header}\n`, "utf16le"), /NUL bytes: UTF-16 text without a byte-order mark/],
      [`{"type":"MESAJ","recipient":"${phone(819_001)}"}\n`, /the file is JSON \(an export made with --format jsonl\?\)/],
      [`sep=|\n${header.replaceAll(",", "|")}\n`, /\(sep=\|\) says fields are separated by "\|": they must be separated by , or ;/],
    ];
    for (const [body, message] of refused) {
      const res = await post("?brand=UPLOAD", body as string);
      expect(res.status).toBe(400);
      expect((await res.json()).error.message).toMatch(message);
    }
    expect(countEvents()).toBe(before);
    // Excel's first line naming the separator; the header's last name quoted with a comma inside.
    const sep = await post("?brand=UPLOAD", `sep=;\r\ntype;recipient;status;source;consentDate;"not, a column"\r\nMESAJ;${phone(819_002)};ONAY;HS_WEB;${iys(NOW - 60_000)};x\r\nMESAJ;0532;ONAY;HS_WEB;${iys(NOW - 60_000)};x\r\n`);
    expect(sep.status, await sep.clone().text()).toBe(200);
    const summary = await sep.json();
    expect(summary).toMatchObject({ rowsRead: 2, recorded: 1, rejected: 1 });
    // Line numbers are the file's: the rejected row is on line 4.
    const csv = await (await app.request(`/api/v1/imports/${summary.id}/rejected`, { headers: auth })).text();
    expect(csv.trimEnd().split("\n")[1]).toMatch(/^MESAJ;0532;ONAY;HS_WEB;[^;]+;;;4;H121;/);
  });

  it("registered=true (rows never reported to İYS) needs the admin key: a provider key's upload is a 403 recording nothing", async () => {
    const created = await app.request("/api/v1/keys", authed({ name: "SMS platform", brands: ["UPLOAD"] }));
    expect(created.status).toBe(201);
    const { key } = (await created.json()) as { key: string };
    const before = countEvents();
    const res = await app.request("/api/v1/imports?brand=UPLOAD&registered=true", {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "text/csv" },
      body: `${HEADER}\nBIREYSEL,MESAJ,${phone(920_001)},ONAY,HS_WEB,${iys(NOW - 30 * 86_400_000)}\n`,
    });
    expect(res.status).toBe(403);
    expect((await res.json()).error).toMatchObject({ code: "forbidden", field: "registered", message: expect.stringContaining("needs the admin key") });
    expect(countEvents()).toBe(before);
  });

  it("a missing brand is a 400 naming it, an unknown brand a 404", async () => {
    const missing = await post("", `${HEADER}\n`);
    expect(missing.status).toBe(400);
    expect((await missing.json()).error.field).toBe("brand");
    const unknown = await post("?brand=NOPE", `${HEADER}\n`);
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error).toMatchObject({ code: "not_found", field: "brand" });
  });

  it("a file saved by a spreadsheet under a Turkish locale (fields separated by ;) is read as such", async () => {
    // recipientType;type;recipient;status;source;consentDate (HEADER's order)
    const rows = [`BIREYSEL;MESAJ;${phone(910_001)};ONAY;HS_WEB;${iys(NOW - 60_000)}`, `;EPOSTA;semi.colon@example.com;ONAY;HS_WEB;${iys(NOW - 60_000)}`, `;MESAJ;${phone(910_002)};ONAY;HS_YOK;${iys(NOW - 60_000)}`];
    const res = await post("?brand=UPLOAD", `\ufeff${HEADER.replaceAll(",", ";")}\r\n${rows.join("\r\n")}\r\n`);
    expect(res.status, await res.clone().text()).toBe(200);
    const summary = await res.json();
    expect(summary).toMatchObject({ rowsRead: 3, recorded: 2, rejected: 1, codes: { H119: 1 } });
    // Its rejected rows come back separated the same way (a ',' file opens as one column there).
    const bytes = Buffer.from(await (await app.request(`/api/v1/imports/${summary.id}/rejected`, { headers: auth })).arrayBuffer());
    // With UTF-8's byte-order mark: Excel reads ş, ı, ğ right only so.
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const rejected = bytes.toString("utf8", 3);
    expect(rejected.split("\n")[0]).toBe("type;recipient;status;source;consentDate;recipientType;retailerCode;line;code;message");
    expect(rejected.split("\n")[1]).toMatch(new RegExp(`^MESAJ;\\${phone(910_002)};ONAY;HS_YOK;[^;]+;;;4;H119;`));
  });

  it("a header without the required columns is a 400 naming them, and nothing is written", async () => {
    const before = countEvents();
    const res = await post("?brand=UPLOAD", `type,recipient,status,consentDate\nMESAJ,${phone(1)},ONAY,${iys(NOW - 60_000)}\n`);
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.error.code).toBe("bad_request");
    expect(body.error.message).toMatch(/lacks the column source/);
    expect(countEvents()).toBe(before);
    const empty = await post("?brand=UPLOAD", "");
    expect(empty.status).toBe(400);
  });

  it("a header naming a column twice, or separated by tabs, is a 400 saying so; blank lines are no rows; a row rejected with the wrong number of fields says so", async () => {
    const before = countEvents();
    const twice = await post("?brand=UPLOAD", `type,type,recipient,status,source,consentDate\nMESAJ,ARAMA,${phone(808_001)},ONAY,HS_WEB,${iys(NOW - 60_000)}\n`);
    expect(twice.status).toBe(400);
    expect((await twice.json()).error.message).toBe("the header row names the column type twice: which one holds the values cannot be told");
    const tabs = await post("?brand=UPLOAD", `type\trecipient\tstatus\tsource\tconsentDate\nMESAJ\t${phone(808_002)}\tONAY\tHS_WEB\t${iys(NOW - 60_000)}\n`);
    expect(tabs.status).toBe(400);
    expect((await tabs.json()).error.message).toMatch(/lacks the columns type, recipient, status, source, consentDate .*; fields must be separated by , or ; \(this header is separated by tabs\)$/);
    expect(countEvents()).toBe(before);
    // The rows a spreadsheet leaves under its data (only separators), a line of spaces: skipped as an
    // empty line is. A row missing a separator: rejected, saying how many fields it has.
    const res = await post("?brand=UPLOAD", `type,recipient,status,source,consentDate\nMESAJ,${phone(808_003)},ONAY,HS_WEB,${iys(NOW - 60_000)}\n   \nMESAJ,${phone(808_004)},ONAY,HS_WEB ${iys(NOW - 60_000)}\n,,,,\n,,,,\n`);
    expect(res.status).toBe(200);
    const summary = await res.json();
    expect(summary).toMatchObject({ rowsRead: 2, recorded: 1, rejected: 1 });
    const csv = await (await app.request(`/api/v1/imports/${summary.id}/rejected`, { headers: auth })).text();
    expect(csv.trimEnd().split("\n")[1]).toMatch(/,4,H119,"İzin kaynağı \(source\) için uygun değerler: HS_FIZIKSEL_ORTAM, [A-Z_, 0-9]+, HS_KARAR \(satırda 4, başlık satırında 5 alan var\)"$/);
    // So does a row short of the required columns that the rules refuse (no source, no consent date).
    const short = await post("?brand=UPLOAD", `type,recipient,status,source,consentDate\nMESAJ,${phone(808_005)},ONAY\n`);
    const shortCsv = await (await app.request(`/api/v1/imports/${(await short.json()).id}/rejected`, { headers: auth })).text();
    expect(shortCsv.trimEnd().split("\n")[1]).toMatch(/,2,H113,"[^"]*\(satırda 3, başlık satırında 5 alan var\)"$/);
    // A row leaving out only the trailing optional columns is no shifted row: no such hint.
    const optional = await post("?brand=UPLOAD", `type,recipient,status,source,consentDate,recipientType,retailerCode\nMESAJ,0532,ONAY,HS_WEB,${iys(NOW - 60_000)}\n`);
    const optionalCsv = await (await app.request(`/api/v1/imports/${(await optional.json()).id}/rejected`, { headers: auth })).text();
    expect(optionalCsv.trimEnd().split("\n")[1]).toMatch(/,2,H121,/);
    expect(optionalCsv).not.toContain("satırda");
    // Broken at its first row: nothing was written, and the message does not speak of rows before it.
    const first = await post("?brand=UPLOAD", `type,recipient,status,source,consentDate\nMESAJ,"${phone(808_005)},ONAY,HS_WEB,${iys(NOW - 60_000)}\n`);
    expect(first.status).toBe(400);
    // csv-parse names the file's end (line 3); the quote was opened after line 1.
    expect((await first.json()).error.message).toMatch(/^the CSV is malformed: a quote opened after line 1 is never closed; no row was before it: nothing was written \(import [0-9a-f-]+ is marked failed\)$/);
  });

  it("a CSV broken past its first rows is a 400 naming the import that holds exactly the rows before the break", async () => {
    const before = countEvents();
    const good = Array.from({ length: 5100 }, (_, i) => `MESAJ,${phone(800_000 + i)},ONAY,HS_WEB,${iys(NOW - 60_000)}`);
    const res = await post("?brand=UPLOAD", `type,recipient,status,source,consentDate\n${good.join("\n")}\nMESAJ,"${phone(805_200)},ONAY,HS_WEB,${iys(NOW - 60_000)}\n`);
    expect(res.status).toBe(400);
    const { error } = await res.json();
    expect(error).toMatchObject({ code: "bad_request", field: "(body)", importId: expect.any(String) });
    expect(error.message).toMatch(/malformed.*5100 rows before it are in import/);
    expect(countEvents() - before).toBe(5100);
    const record = await (await app.request(`/api/v1/imports/${error.importId}`, { headers: auth })).json();
    expect(record).toMatchObject({ status: "failed", rowsRead: 5100, recorded: 5100 });
  });

  it("a quote inside a field and a record longer than 64 KiB are a 400 naming the line, not a 500, and quote no field value", async () => {
    const before = countEvents();
    const head = `type,recipient,status,source,consentDate\nMESAJ,${phone(806_001)},ONAY,HS_WEB,${iys(NOW - 60_000)}\n`;
    const quoted = await post("?brand=UPLOAD", `${head}MESAJ,0532"8060002,ONAY,HS_WEB,${iys(NOW - 60_000)}\n`);
    expect(quoted.status).toBe(400);
    const { error } = await quoted.json();
    expect(error).toMatchObject({ code: "bad_request", field: "(body)", importId: expect.any(String) });
    // The row before the break is in, even in the chunk that broke (csv-parse's stream used to drop it).
    expect(error.message).toBe(
      `the CSV is malformed: Invalid Opening Quote: a quote is found on field 1 at line 3; the 1 rows before it are in import ${error.importId} (recorded 1, unchanged 0, rejected 0), nothing after it: send the fixed file again (rows already in stay unchanged)`,
    );
    // A huge field, a line of commas (millions of empty fields) or a binary file sent as text/csv is
    // refused at 64 KiB a line, not held whole; a quoted field spanning lines, at 64 KiB a record.
    for (const line of [`MESAJ,${"9".repeat(200_000)},ONAY,HS_WEB,${iys(NOW - 60_000)}`, ",".repeat(5_000_000)]) {
      const long = await post("?brand=UPLOAD", `${head}${line}\n`);
      expect(long.status).toBe(400);
      expect((await long.json()).error).toMatchObject({ code: "bad_request", message: "the CSV is malformed: a line is longer than 65536 bytes" });
    }
    const spanning = await post("?brand=UPLOAD", `${head}MESAJ,"${"9\n".repeat(40_000)}",ONAY,HS_WEB,${iys(NOW - 60_000)}\n`);
    expect(spanning.status).toBe(400);
    expect((await spanning.json()).error.message).toMatch(/^the CSV is malformed: a record is longer than 65536 characters at line \d+; the 1 rows before it are in import /);
    const header = await post("?brand=UPLOAD", `${"x".repeat(70_000)}\n`);
    expect(header.status).toBe(400);
    expect((await header.json()).error.message).toBe("the CSV is malformed: a line is longer than 65536 bytes");
    // The one valid row, once: a line too long is refused before any of its chunk is read, and the
    // spanning record's file holds that row again (unchanged).
    expect(countEvents() - before).toBe(1);
  });

  it("another content type is a 415", async () => {
    const res = await post("?brand=UPLOAD", JSON.stringify({ rows: [] }), "application/json");
    expect(res.status).toBe(415);
    expect((await res.json()).error.code).toBe("unsupported_media_type");
    // Only text/csv itself (it took anything starting so).
    for (const type of ["text/csvx", "text/csv-schema"]) expect((await post("?brand=UPLOAD", "recipient\n", type)).status, type).toBe(415);
  });

  it("an import whose process died is marked failed once nothing is heard of it for 2 minutes; one whose rows come slowly keeps saying it is alive", async () => {
    const db = runtime.deps.db;
    const started = clock.now();
    try {
      // A slow upload: the header and a row, then nothing for longer than the staleness limit.
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      async function* slow() {
        yield `${HEADER}\n${row(0, 980_000).line}\n`;
        await gate;
      }
      let id = "";
      const running = runImport(slow(), importDeps, { brandId: brandId("UPLOAD"), via: "api", heartbeatMs: 20, onStart: (i) => void (id = i) });
      await waitFor(() => id !== "");
      clock.advance(IMPORT_STALE_MS + 1000);
      await new Promise((r) => setTimeout(r, 150)); // heartbeats at the new time
      expect(failInterruptedImports(db, clock.now().getTime())).toEqual([]);
      release();
      expect(await running).toMatchObject({ status: "done", rowsRead: 1 });
      // A process that died 18 000 rows into a file (kill -9): its import stays running, unheard of.
      const dead = "3f1f6c4e-2222-4222-8222-222222222222";
      const t = clock.now().getTime();
      db.$client
        .prepare("INSERT INTO imports (id, brand_id, via, registered, status, delimiter, started_at, updated_at, rows_read, recorded) VALUES (?, ?, 'api', 0, 'running', ',', ?, ?, 18000, 18000)")
        .run(dead, brandId("UPLOAD"), t - 300_000, t - IMPORT_STALE_MS + 10_000);
      expect(failInterruptedImports(db, t)).toEqual([]);
      expect(failInterruptedImports(db, t + 20_000)).toEqual([dead]);
      const rec = await (await app.request(`/api/v1/imports/${dead}`, { headers: auth })).json();
      expect(rec).toMatchObject({ status: "failed", error: expect.stringMatching(/^interrupted: the process running it stopped .*the 18000 rows read before are in .*send the file again/) });
      expect(rec.finishedAt).not.toBeNull();
    } finally {
      clock.set(started);
    }
  });

  it("an unknown import id is a 404, a malformed one a 400", async () => {
    expect((await app.request("/api/v1/imports/3f1f6c4e-1111-4111-8111-111111111111", { headers: auth })).status).toBe(404);
    expect((await app.request("/api/v1/imports/nope", { headers: auth })).status).toBe(400);
  });

  it("without an API key the upload is refused", async () => {
    const res = await app.request("/api/v1/imports?brand=UPLOAD", { method: "POST", headers: { "content-type": "text/csv" }, body: `${HEADER}\n` });
    expect(res.status).toBe(401);
  });
});

describe("csvRecords: lines split without csv-parse give what csv-parse gives", () => {
  /**
   * csv-parse over the whole file at once, every record kept as it is pushed ([the line it ends on,
   * its fields]), then its error if the file breaks.
   */
  class Recording extends Parser {
    out: unknown[] = [];
    override push(record: unknown, encoding?: BufferEncoding): boolean {
      if (record === null) return super.push(null, encoding);
      this.out.push([this.info.lines, record]);
      return true;
    }
  }
  async function reference(buf: Buffer, delimiter: string): Promise<unknown[]> {
    const parser = new Recording({ bom: true, relax_column_count: true, skip_empty_lines: true, delimiter, max_record_size: 65536 });
    parser.on("error", () => {});
    parser.resume();
    try {
      await new Promise<void>((resolve, reject) => parser.write(buf, (err) => (err ? reject(err) : resolve())));
      await new Promise<void>((resolve, reject) => {
        parser.once("error", reject);
        parser.end(() => resolve());
      });
    } catch (err) {
      parser.out.push(["error", (err as Error).message]);
    }
    return parser.out;
  }
  async function split(buf: Buffer, delimiter: string, cuts: number[]): Promise<unknown[]> {
    const chunks: Buffer[] = [];
    let at = 0;
    // Repeated cuts make empty chunks, as a web stream may give.
    for (const c of [...cuts, buf.length]) {
      chunks.push(buf.subarray(at, c));
      at = c;
    }
    const out: unknown[] = [];
    try {
      for await (const batch of csvRecords(Readable.from(chunks), delimiter)) out.push(...batch);
    } catch (err) {
      out.push(["error", (err as Error).message]);
    }
    return out;
  }

  it("on files cut anywhere (inside a character too): empty and blank lines, a last line without newline, ';', BOM, CR, quotes", async () => {
    const pieces = ["MESAJ", "+905321234567", "ğ", "İ", ",", ";", " ", "\n", "\n", "\n", "\r\n", "\r", '"', '""', "\uFEFF", "x y", "\t"];
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), (seed >>> 8) % n);
    let fast = 0;
    for (let t = 0; t < 3000; t++) {
      // Half the files without quotes and CR (the split path all through), some with a BOM.
      const plain = rnd(2) === 0;
      let text = rnd(4) === 0 ? "\uFEFF" : "";
      for (let i = 1 + rnd(30); i > 0; i--) {
        const p = pieces[rnd(pieces.length)]!;
        if (!(plain && /["\r\uFEFF]/.test(p))) text += p;
      }
      if (plain && !text.startsWith("\uFEFF")) fast++;
      const buf = Buffer.from(text);
      const cuts = Array.from({ length: rnd(5) }, () => rnd(buf.length + 1)).sort((a, b) => a - b);
      const delimiter = rnd(2) ? "," : ";";
      // A broken file too: every record before the break, then the same error.
      expect(await split(buf, delimiter, cuts), JSON.stringify({ text, cuts, delimiter })).toEqual(await reference(buf, delimiter));
    }
    expect(fast).toBeGreaterThan(600);
  });

  it("a CRLF file, a quoted field past the first chunk, and an unclosed quote (csv-parse's error, the lines before it given)", async () => {
    const cases = [
      "type,recipient\r\nMESAJ,+905321234567\r\n\r\nARAMA,05321234567\r\n",
      'type,recipient\nMESAJ,+905321234567\nEPOSTA,"a,b@example.com"\nMESAJ,"x\ny"\nARAMA,1\n',
    ];
    for (const text of cases) {
      const buf = Buffer.from(text);
      const out = await split(buf, ",", [20]);
      expect(out).toEqual(await reference(buf, ","));
      expect(out.length).toBeGreaterThan(2);
    }
    // UTF-16LE with its BOM: csv-parse decodes it by the BOM, so the split path must leave it alone.
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from("type,recipient\nMESAJ,+905321234567\n", "utf16le")]);
    expect(await split(utf16, ",", [7])).toEqual(await reference(utf16, ","));
    expect(await split(utf16, ",", [7])).toEqual([[1, ["type", "recipient"]], [2, ["MESAJ", "+905321234567"]]]);
    // Broken in the chunk csv-parse starts with, and in the file's first chunk: the rows before the break, then the break.
    for (const cut of [24, 100]) {
      const broken = Buffer.from('type,recipient\nMESAJ,1\nMESAJ,2\nMESAJ,"open\n');
      const out = await split(broken, ",", [cut]);
      expect(out).toEqual(await reference(broken, ","));
      expect(out.slice(0, 3)).toEqual([[1, ["type", "recipient"]], [2, ["MESAJ", "1"]], [3, ["MESAJ", "2"]]]);
      expect(out[3]).toEqual(["error", expect.stringContaining("Quote Not Closed")]);
    }
  });
});

describe("an import that stops early", () => {
  it("a body past maxBytes (a chunked upload has no Content-Length) stops the import: the rows before are kept, the import failed, the error names the limit", async () => {
    const rows = Array.from({ length: 40 }, (_, k) => `MESAJ,${phone(807_000 + k)},ONAY,HS_WEB,${iys(NOW - 60_000)}\n`);
    const chunks = ["type,recipient,status,source,consentDate\n", ...rows].map((r) => Buffer.from(r));
    const size = chunks.reduce((n, c) => n + c.length, 0);
    const maxBytes = size - 100; // the last two rows or so do not fit
    const source = (async function* () {
      yield* chunks;
    })();
    const err = await runImport(source, importDeps, { brandId: brandId("UPLOAD"), via: "api", batchSize: 7, maxBytes }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ImportTooLargeError);
    const { message, importId } = err as ImportTooLargeError;
    expect(message).toMatch(new RegExp(`^an import is at most ${maxBytes} bytes; split the file; the \\d+ rows before it are in import ${importId} .*send the rest as another file`));
    const record = importById(runtime.deps.db, importId!)!;
    const kept = Number(/the (\d+) rows before it/.exec(message)![1]);
    expect(kept).toBeGreaterThan(30);
    expect(kept).toBeLessThan(40);
    expect(record).toMatchObject({ status: "failed", rowsRead: kept, recorded: kept, error: message });
    // Within the limit, the same file goes whole.
    const whole = await runImport(Readable.from(chunks), importDeps, { brandId: brandId("UPLOAD"), via: "api", maxBytes: size });
    expect(whole).toMatchObject({ rowsRead: 40, recorded: 40 - kept, unchanged: kept });
  });

  it("a file in Windows-1254 (Turkish Excel's plain CSV) is read as such from its first byte that is not UTF-8; a file mixing UTF-8 and other bytes stops there", async () => {
    const cp1254 = (text: string) => Buffer.from(Array.from(text, (ch) => ({ ş: 0xfe, ı: 0xfd, ğ: 0xf0, İ: 0xdd, ç: 0xe7, ö: 0xf6, ü: 0xfc, Ş: 0xde })[ch] ?? ch.charCodeAt(0)));
    const row = (k: number, extra: string) => `MESAJ;${phone(811_000 + k)};ONAY;HS_WEB;${iys(NOW - 60_000)};${extra}\n`;
    const ascii = Array.from({ length: 30 }, (_, k) => row(k, "Ali Veli")).join("");
    // The Turkish letters only in the second chunk: the ASCII before them is read the same either way.
    const chunks = [
      Buffer.from(`type;recipient;status;source;consentDate;adSoyad\n${ascii}`),
      cp1254(`${row(30, "Ayşe Yılmaz")}EPOSTA;ayşe@örnek.com;ONAY;HS_WEB;${iys(NOW - 60_000)};Ayşe Yılmaz\n${row(31, "İsmail Öztürk")}`),
    ];
    const rejected: string[][] = [];
    const summary = await runImport(Readable.from(chunks), importDeps, { brandId: brandId("UPLOAD"), via: "api", batchSize: 7, onRejected: (r) => rejected.push(r.fields) });
    expect(summary).toMatchObject({ encoding: "windows-1254", rowsRead: 33, recorded: 32, rejected: 1, codes: { H120: 1 } });
    // The address is given back as the file spelled it, not as U+FFFD.
    expect(rejected).toEqual([["EPOSTA", "ayşe@örnek.com", "ONAY", "HS_WEB", iys(NOW - 60_000), "", ""]]);

    // UTF-8 with a letter cut between two chunks: read as UTF-8, the letter whole.
    const utf8 = Buffer.from(`type,recipient,status,source,consentDate\nEPOSTA,şule@örnek.com,ONAY,HS_WEB,${iys(NOW - 60_000)}\n`);
    const at = utf8.indexOf("ş");
    const split: string[][] = [];
    const whole = await runImport(Readable.from([utf8.subarray(0, at + 1), utf8.subarray(at + 1)]), importDeps, {
      brandId: brandId("UPLOAD"),
      via: "api",
      onRejected: (r) => split.push(r.fields),
    });
    expect(whole).toMatchObject({ encoding: "utf-8", rowsRead: 1, rejected: 1 });
    expect(split[0]![1]).toBe("şule@örnek.com");

    // UTF-8 text, then a byte that cannot be UTF-8: neither reading is the file's; the lines before that byte are kept.
    const mixed = [
      Buffer.from(`type;recipient;status;source;consentDate;adSoyad\n${row(40, "Şahin")}`),
      Buffer.concat([Buffer.from(row(41, "Ali")), cp1254(row(42, "Ayşe")), Buffer.from(row(43, "Ali"))]),
    ];
    const err = await runImport(Readable.from(mixed), importDeps, { brandId: brandId("UPLOAD"), via: "api", batchSize: 1 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ImportFormatError);
    const { message, importId } = err as ImportFormatError;
    const badByte = mixed[0]!.length + Buffer.byteLength(row(41, "Ali")) + cp1254(row(42, "Ay")).length; // 1-based: the byte after "Ay" (row() adds the newline, one byte, counted in place of it)
    expect(message).toMatch(new RegExp(`^the CSV is malformed: the file mixes encodings: it has UTF-8 text, then bytes that are not UTF-8 \\(at byte ${badByte}\\): save it as CSV UTF-8.*; the 2 rows before it are in import ${importId}`));
    expect(importById(runtime.deps.db, importId!)).toMatchObject({ status: "failed", rowsRead: 2, recorded: 2 });
    expect(runtime.deps.ledger.state(brandId("UPLOAD"), phone(811_042), "BIREYSEL", "MESAJ")).toBeNull();
    expect(runtime.deps.ledger.state(brandId("UPLOAD"), phone(811_043), "BIREYSEL", "MESAJ")).toBeNull();
  });

  it("Windows-1254 wherever the chunks fall: a letter last in a chunk or last in the file; UTF-8 and other bytes in one chunk stop the file; a workbook and UTF-16BE are still named", async () => {
    const cp1254 = (text: string) => Buffer.from(Array.from(text, (ch) => ({ ş: 0xfe, ı: 0xfd, ö: 0xf6, ü: 0xfc })[ch] ?? ch.charCodeAt(0)));
    const file = cp1254(`type,recipient,status,source,consentDate\nEPOSTA,ayşe@örnek.com,ONAY,HS_WEB,${iys(NOW - 60_000)}\nEPOSTA,Ataş@x.com,ONAY,HS_WEB,${iys(NOW - 60_000)},Ataş`);
    const at = file.indexOf(0xfe);
    const fields: string[] = [];
    // Split right after the first ş, and one byte at a time at the end of the file (ş the very last byte).
    const chunks = [file.subarray(0, at + 1), file.subarray(at + 1, file.length - 1), file.subarray(file.length - 1)];
    const read = await runImport(Readable.from(chunks), importDeps, { brandId: brandId("UPLOAD"), via: "api", onRejected: (r) => void fields.push(r.fields[1]!) });
    expect(read).toMatchObject({ encoding: "windows-1254", rowsRead: 2, rejected: 2 });
    expect(fields).toEqual(["ayşe@örnek.com", "Ataş@x.com"]);
    const lastOnly = await runImport(Readable.from([file]), importDeps, { brandId: brandId("UPLOAD"), via: "api" });
    expect(lastOnly).toMatchObject({ encoding: "windows-1254", rowsRead: 2 });

    // UTF-8 letters and a Windows-1254 one in the same chunk: refused, not read as mojibake.
    const mixed = Buffer.concat([Buffer.from(`type,recipient,status,source,consentDate\nEPOSTA,şule@örnek.com,ONAY,HS_WEB,${iys(NOW - 60_000)}\n`), cp1254(`EPOSTA,ayşe@x.com,ONAY,HS_WEB,${iys(NOW - 60_000)}\n`)]);
    await expect(runImport(Readable.from([mixed]), importDeps, { brandId: brandId("UPLOAD"), via: "api" })).rejects.toThrow(/the file mixes encodings/);

    // UTF-16LE with its byte-order mark (Excel's "Unicode text") is read, and the summary says so.
    const utf16le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`type,recipient,status,source,consentDate\nEPOSTA,şule.utf16@örnek.com,ONAY,HS_WEB,${iys(NOW - 60_000)}\n`, "utf16le")]);
    expect(await runImport(Readable.from([utf16le]), importDeps, { brandId: brandId("UPLOAD"), via: "api" })).toMatchObject({ encoding: "utf-16le", rowsRead: 1 });

    // A workbook and UTF-16BE are named by their first bytes, as before the 1254 reading.
    const xls = Buffer.concat([Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), Buffer.alloc(64, 0xfe)]);
    await expect(runImport(Readable.from([xls]), importDeps, { brandId: brandId("UPLOAD"), via: "api" })).rejects.toThrow(/old Excel workbook \(\.xls\)/);
    const utf16be = Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from("type,recipient\n", "utf16le").swap16()]);
    await expect(runImport(Readable.from([utf16be]), importDeps, { brandId: brandId("UPLOAD"), via: "api" })).rejects.toThrow(/UTF-16 big-endian/);
  });

  it("a source cut part way (an upload its client aborted) keeps the whole rows read before the cut, in a failed import saying so", async () => {
    const rows = Array.from({ length: 12 }, (_, k) => `MESAJ,${phone(809_000 + k)},ONAY,HS_WEB,${iys(NOW - 60_000)}\n`);
    const source = (async function* () {
      yield Buffer.from(`type,recipient,status,source,consentDate\n${rows.join("")}MESAJ,${phone(809_100)},ON`);
      throw new Error("aborted");
    })();
    const err = await runImport(source, importDeps, { brandId: brandId("UPLOAD"), via: "api", batchSize: 5 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ImportFormatError);
    const { message, importId } = err as ImportFormatError;
    expect(message).toBe(
      `the file stopped before its end (aborted); the 12 rows before it are in import ${importId} (recorded 12, unchanged 0, rejected 0), nothing after it: send the file again (rows already in stay unchanged)`,
    );
    expect(importById(runtime.deps.db, importId!)).toMatchObject({ status: "failed", rowsRead: 12, recorded: 12, error: message });
    // The line cut in the middle is not a row.
    expect(runtime.deps.ledger.state(brandId("UPLOAD"), phone(809_100), "BIREYSEL", "MESAJ")).toBeNull();
  });

  it("a refused header of a file csv-parse reads (CRLF) is answered while the upload's body stalls", async () => {
    let closed = false;
    const stalled = (async function* () {
      try {
        yield Buffer.from("type,recipient\r\nMESAJ,+905321234567\r\n");
        await new Promise(() => {}); // the client sends nothing more
      } finally {
        closed = true;
      }
    })();
    await expect(runImport(stalled, importDeps, { brandId: brandId("BULK"), via: "api" })).rejects.toThrow(/lacks the columns status, source, consentDate/);
    expect(closed).toBe(true); // the upload's body is let go of, not read on
  });
});

describe("an import's callbacks wait behind everyone else's", () => {
  it("its callback jobs are prioritized (taken only while no other waits), its İYS reports are not", async () => {
    const producer = runtime.producer;
    await producer.enqueueOutbox([{ id: 990_001, kind: "callback" }, { id: 990_002, kind: "iys_report" }], { bulk: true });
    await producer.enqueueOutbox([{ id: 990_003, kind: "callback" }]);
    const prioritized = await producer.queues.callbacks.getJobs(["prioritized"]);
    const plain = await producer.queues.callbacks.getJobs(["wait"]);
    const bulk = prioritized.find((j) => (j.data as { outboxIds: number[] }).outboxIds.includes(990_001));
    expect(bulk?.opts.priority).toBe(10);
    expect(plain.some((j) => (j.data as { outboxIds: number[] }).outboxIds.includes(990_003))).toBe(true);
    const reports = await producer.queues["iys-reports"].getJobs(["wait", "prioritized"]);
    expect(reports.find((j) => (j.data as { outboxIds: number[] }).outboxIds.includes(990_002))?.opts.priority ?? 0).toBe(0);
    for (const j of [...prioritized, ...plain, ...reports]) await j.remove();
  });
});

describe("the writer thread: large batches planned ahead (Ledger.plan) and written while the next is read", () => {
  // Rows of unique keys a batch (what plans take), with rows the file refuses (a bad number) and rows
  // İYS refuses (H467): a fresh file, then one over the same records (refusals over the consents,
  // the same rows again, TACIR consents beside BIREYSEL ones, which plans decline).
  const fresh = (n: number, base: number) => {
    const lines = [HEADER];
    for (let i = 0; i < n; i++) {
      const date = i % 50 === 7 ? iys(NOW - 30 * 86_400_000) : iys(NOW - 3_600_000 + i * 1000);
      lines.push(i % 37 === 5 ? `BIREYSEL,MESAJ,0532 12${i},ONAY,HS_WEB,${date}` : `BIREYSEL,MESAJ,${phone(base + i)},ONAY,HS_WEB,${date}`);
    }
    return `${lines.join("\n")}\n`;
  };
  const over = (n: number, base: number) => {
    const lines = [HEADER];
    for (let i = 0; i < n; i++) {
      if (i < 300) lines.push(`BIREYSEL,MESAJ,${phone(base + i)},RET,HS_MESAJ,${iys(NOW - 60_000)}`);
      else if (i < 400) lines.push(`BIREYSEL,MESAJ,${phone(base + i)},ONAY,HS_WEB,${iys(NOW - 3_600_000 + i * 1000)}`);
      else lines.push(`TACIR,MESAJ,${phone(base + i)},ONAY,HS_WEB,${iys(NOW - 120_000)}`);
    }
    return `${lines.join("\n")}\n`;
  };

  /** deps whose ledger counts what plan and apply are asked (calling through). */
  function counting() {
    const seen = { planned: 0, declined: 0, largeApplies: 0 };
    const ledger = runtime.deps.ledger;
    const spy = Object.create(ledger) as typeof ledger;
    spy.plan = (actions, opts) => {
      const r = ledger.plan(actions, opts);
      if (r) seen.planned++;
      else seen.declined++;
      return r;
    };
    spy.apply = (actions, opts) => {
      if (actions.length >= 64) seen.largeApplies++;
      return ledger.apply(actions, opts);
    };
    return { deps: { ...importDeps, ledger: spy }, seen };
  }

  const db = () => runtime.deps.db.$client;
  const stateOf = (brand: number) =>
    db().prepare(`SELECT recipient, recipient_type, type, status, source, consent_date, retailer_code, in_iys, updated_at FROM consent_state WHERE brand_id = ? ORDER BY recipient, recipient_type, type`).all(brand);
  const eventsOf = (brand: number) =>
    db().prepare(`SELECT recipient, recipient_type, type, status, source, consent_date, retailer_code, origin, effect, received_at FROM consent_events WHERE brand_id = ? ORDER BY id`).all(brand);
  const outboxOf = (brand: number) =>
    db().prepare(`SELECT o.kind, COUNT(*) AS n FROM outbox o JOIN consent_events e ON e.id = o.event_id WHERE e.brand_id = ? GROUP BY o.kind ORDER BY o.kind`).all(brand);
  /** Every event after `from` links to the one before and hashes to its stored hash. */
  function chainHolds(from: number) {
    const rows = db().prepare(`SELECT ${EVENT_COLUMNS} FROM consent_events WHERE id >= ? ORDER BY id`).all(from) as LedgerEvent[];
    for (let i = 1; i < rows.length; i++) {
      expect(rows[i]!.id).toBe(rows[i - 1]!.id + 1);
      expect(rows[i]!.prevHash).toBe(rows[i - 1]!.hash);
      expect(eventHash(rows[i]!)).toBe(rows[i]!.hash);
    }
    return rows.length;
  }

  it("records, rejects, counts and reports exactly what Ledger.apply does, batch for batch", async () => {
    await createBrand("WRITER");
    await createBrand("INPLACE");
    const summaries: Record<string, unknown>[] = [];
    const rejected: Record<string, RejectedRow[]> = { WRITER: [], INPLACE: [] };
    const used = { planned: 0, declined: 0, largeApplies: 0 };
    for (const file of [fresh(600, 5_000_000), over(600, 5_000_000)]) {
      for (const code of ["WRITER", "INPLACE"]) {
        const { deps, seen } = counting();
        const s = await runImport(Readable.from([file]), deps, { brandId: brandId(code), via: "cli", batchSize: 100, writerThread: code === "WRITER", onRejected: (r) => void rejected[code]!.push(r) });
        if (code === "WRITER") for (const k of ["planned", "declined", "largeApplies"] as const) used[k] += seen[k];
        else expect(seen.planned).toBe(0);
        const { id: _id, seconds: _s, ...rest } = s;
        summaries.push(rest);
        expect(importById(runtime.deps.db, s.id)).toMatchObject({ status: "done", rowsRead: s.rowsRead, recorded: s.recorded, unchanged: s.unchanged, rejected: s.rejected });
      }
    }
    // The fresh file's six batches planned; the TACIR rows' batches declined (and applied in place).
    expect(used.planned).toBeGreaterThanOrEqual(6);
    expect(used.declined).toBeGreaterThanOrEqual(2);
    expect(summaries[0]).toEqual(summaries[1]);
    expect(summaries[2]).toEqual(summaries[3]);
    expect(summaries[0]).toMatchObject({ rowsRead: 600, rejected: 17 + 12 });
    expect(summaries[2]).toMatchObject({ unchanged: 100 - 2 - 3 });
    expect(rejected.WRITER).toEqual(rejected.INPLACE);
    // A row the rules refuse is given back in the İYS columns' order (the file has recipientType
    // first), from its line: the fields of a row are not kept while the ledger judges it.
    expect(rejected.WRITER!.find((r) => r.line === 9)).toMatchObject({
      code: "H467",
      fields: ["MESAJ", phone(5_000_007), "ONAY", "HS_WEB", iys(NOW - 30 * 86_400_000), "BIREYSEL", ""],
    });
    const [w, p] = [brandId("WRITER"), brandId("INPLACE")];
    expect(stateOf(w)).toEqual(stateOf(p));
    expect(eventsOf(w)).toEqual(eventsOf(p));
    expect(outboxOf(w)).toEqual(outboxOf(p));
    expect(stateOf(w).length).toBeGreaterThan(700);
  });

  it("a batch holding recipients of the batch still being written is planned only once that one is in: the same events as in place", async () => {
    // Batch 1 gives consents, batch 2 refuses the same records: its plan must read batch 1's state rows.
    const lines = [HEADER];
    for (let i = 0; i < 100; i++) lines.push(`BIREYSEL,MESAJ,${phone(9_100_000 + i)},ONAY,HS_WEB,${iys(NOW - 3_600_000 + i * 1000)}`);
    for (let i = 0; i < 100; i++) lines.push(`BIREYSEL,MESAJ,${phone(9_100_000 + i)},RET,HS_MESAJ,${iys(NOW - 60_000)}`);
    const file = `${lines.join("\n")}\n`;
    for (const code of ["FOLLOWED", "FOLLOWED_HERE"]) {
      await createBrand(code);
      const { deps, seen } = counting();
      const s = await runImport(Readable.from([file]), deps, { brandId: brandId(code), via: "cli", batchSize: 100, writerThread: code === "FOLLOWED" });
      expect(s).toMatchObject({ rowsRead: 200, recorded: 200, rejected: 0 });
      expect(seen.planned).toBe(code === "FOLLOWED" ? 2 : 0);
    }
    const [w, p] = [brandId("FOLLOWED"), brandId("FOLLOWED_HERE")];
    expect(eventsOf(w)).toEqual(eventsOf(p));
    expect(stateOf(w)).toEqual(stateOf(p));
    expect(outboxOf(w)).toEqual(outboxOf(p));
  });

  it("a batch whose plan another write overtook (the head moved) is applied in place: nothing lost, nothing twice, the chain whole", async () => {
    await createBrand("OVERTAKEN");
    const brand = brandId("OVERTAKEN");
    // The last event before the import (none when this test runs alone): the chain is checked from it.
    const before = (db().prepare("SELECT MAX(id) AS id FROM consent_events").get() as { id: number | null }).id ?? 0;
    const { deps, seen } = counting();
    let wrote = false;
    const summary = await runImport(Readable.from([fresh(400, 6_000_000)]), deps, {
      brandId: brand,
      via: "cli",
      batchSize: 100,
      // Batch 2 is planned on top of batch 1 before batch 1 is counted: a write in between moves the head under it.
      onProgress: () => {
        if (wrote) return;
        wrote = true;
        const r = rowToAction(["MESAJ", phone(6_999_999), "ONAY", "HS_WEB", iys(NOW - 60_000), "BIREYSEL", ""], brand);
        if (!r.ok) throw new Error(r.message);
        expect(runtime.deps.ledger.apply([r.action]).outcomes[0]!.kind).toBe("recorded");
      },
    });
    // Each batch is handed to the thread as soon as it is planned, so the write after batch 1 lands
    // before or after the thread writes batch 2 (a race for the write lock). Either way two batches are
    // overtaken: the first one the write moved the head under, and the one already handed over on top
    // of it; both applied here, and the next goes in place unplanned. Before: 1 written; 2 and 3
    // overtaken; 4 in place. After: 1 and 2 written; 3 and 4 overtaken.
    expect([
      { planned: 3, declined: 0, largeApplies: 3 },
      { planned: 4, declined: 0, largeApplies: 2 },
    ]).toContainEqual(seen);
    expect(summary).toMatchObject({ rowsRead: 400, recorded: 400 - 11 - 8, rejected: 11 + 8 });
    expect(eventsOf(brand)).toHaveLength(summary.recorded + 1);
    expect(stateOf(brand)).toHaveLength(summary.recorded + 1);
    expect(chainHolds(before)).toBe(summary.recorded + 1 + (before > 0 ? 1 : 0));
    // Run again: every row is there once.
    expect(await runImport(Readable.from([fresh(400, 6_000_000)]), importDeps, { brandId: brand, via: "cli", batchSize: 100 })).toMatchObject({ recorded: 0, unchanged: summary.recorded });
  });

  it("a plan's events are chained by its writer, over the head it finds: one made on top of a plan not yet written is written only over the head that writer left by writing that plan", async () => {
    await createBrand("SEALED");
    const brand = brandId("SEALED");
    const actions = (from: number) =>
      Array.from({ length: 100 }, (_, i) => {
        const r = rowToAction(["MESAJ", phone(from + i), "ONAY", "HS_WEB", iys(NOW - 60_000), "BIREYSEL", ""], brand);
        if (!r.ok) throw new Error(r.message);
        return r.action;
      });
    const ledger = runtime.deps.ledger;
    // An event below the plans (the ledger may be empty when this test runs alone).
    expect(ledger.apply(actions(7_000_300).slice(0, 1)).outcomes[0]!.kind).toBe("recorded");
    const before = (db().prepare("SELECT MAX(id) AS id FROM consent_events").get() as { id: number }).id;
    const first = ledger.plan(actions(7_000_000))!;
    // A share of the content hashes worked out while planning (the import's writer keeps it waiting).
    const second = ledger.plan(actions(7_000_100), { after: first.plan.head, contentHashes: 0.25 })!;
    // Nothing of the chain is worked out on the planning thread, and by default no content hash either.
    expect(first.plan.events.map((e) => [e.length, e[14], e[15]])).toEqual(Array(100).fill([16, null, null]));
    const ahead = second.plan.events.filter((e) => e[14] !== null);
    expect(ahead.map((e) => second.plan.events.indexOf(e))).toEqual(Array.from({ length: 25 }, (_, i) => 4 * i + 3));
    for (const e of ahead) expect([(e[14] as string).length, (e[15] as string).length]).toEqual([64, 22]);
    expect(second.plan.events.filter((e) => e[14] === null && e[15] === null)).toHaveLength(75);
    expect(second.plan.after).toEqual({ id: before + 100, hash: null, plan: first.plan.head.plan });
    const writer = LedgerWriter.open(runtime.deps.db)!;
    const other = LedgerWriter.open(runtime.deps.db)!;
    try {
      // A writer that did not write the plan below it does not know its head: nothing written.
      expect(await writer.write(second.plan)).toEqual({ moved: true, waited: false });
      // Sent once the thread had answered the one before: it sat idle until then.
      expect(await writer.write(first.plan)).toMatchObject({ moved: false, waited: true });
      expect((await other.write(second.plan)).moved).toBe(true);
      expect((await writer.write(second.plan)).moved).toBe(false);
      expect(chainHolds(before)).toBe(201);
      const salts = db().prepare("SELECT COUNT(DISTINCT salt) AS n FROM consent_events WHERE id > ?").get(before) as { n: number };
      expect(salts.n).toBe(200);
      // The head at the same id but not the event this writer wrote (as after another writer's
      // write): the plan on top of it is not written.
      const third = ledger.plan(actions(7_000_200), { after: second.plan.head })!;
      const top = db().prepare("SELECT hash FROM consent_events WHERE id = ?").get(second.plan.head.id) as { hash: string };
      db().prepare("UPDATE consent_events SET hash = ? WHERE id = ?").run("f".repeat(64), second.plan.head.id);
      try {
        expect((await writer.write(third.plan)).moved).toBe(true);
      } finally {
        db().prepare("UPDATE consent_events SET hash = ? WHERE id = ?").run(top.hash, second.plan.head.id);
      }
      expect((await writer.write(third.plan)).moved).toBe(false);
      expect(chainHolds(before)).toBe(301);
      // Two plans made on one head, of as many events: the writer writes one; a plan made on top of
      // the other (never written) finds a head of its id left by this writer, and is not written on it.
      const p = ledger.plan(actions(7_000_400))!;
      const q = ledger.plan(actions(7_000_500))!;
      const onQ = ledger.plan(actions(7_000_600), { after: q.plan.head })!;
      expect(q.plan.head.id).toBe(p.plan.head.id);
      expect((await writer.write(p.plan)).moved).toBe(false);
      expect((await writer.write(onQ.plan)).moved).toBe(true);
      // A plan sent while the thread is still busy with the one before (held here by another
      // connection's write lock) was waiting for it: the thread did not wait for the plan.
      const blocker = new Database(runtime.deps.db.$client.name);
      blocker.exec("BEGIN IMMEDIATE");
      const busy = writer.write(p.plan);
      const queued = writer.write(onQ.plan);
      await new Promise((r) => setTimeout(r, 100));
      blocker.exec("COMMIT");
      blocker.close();
      expect(await busy).toMatchObject({ moved: true, waited: true });
      expect(await queued).toEqual({ moved: true, waited: false });
      expect(chainHolds(before)).toBe(401);
    } finally {
      await writer.close();
      await other.close();
    }
  });

  it("a batch planned before a callback subscription was made, written after, gets its callback rows (the endpoints' version guards plans)", async () => {
    await createBrand("SUBSCRIBED");
    const brand = brandId("SUBSCRIBED");
    let after = 0;
    let endpoint = "";
    const summary = await runImport(Readable.from([fresh(400, 7_000_000)]), importDeps, {
      brandId: brand,
      via: "cli",
      batchSize: 100,
      onProgress: () => {
        if (endpoint) return;
        endpoint = insertEndpoint(runtime.deps.db, { kind: "subscription", brands: [brand], events: ["consent.changed"], url: "http://127.0.0.1:9/cb", secretEnc: "unused" }, NOW).id;
        after = (db().prepare("SELECT MAX(id) AS id FROM consent_events").get() as { id: number }).id;
      },
    });
    disableEndpoint(runtime.deps.db, endpoint, "test over", NOW);
    const events = db().prepare("SELECT COUNT(*) AS n FROM consent_events WHERE brand_id = ? AND id > ?").pluck().get(brand, after) as number;
    const rows = db().prepare("SELECT COUNT(*) AS n FROM outbox WHERE kind = 'callback' AND target = ?").pluck().get(endpoint) as number;
    expect(summary.recorded).toBe(400 - 11 - 8);
    // Batch 2 was planned before the subscription; the thread wrote it before it (not counted here)
    // or after it (refused by the guard, applied here with its rows). Batches 3 and 4 came after.
    expect(events).toBeGreaterThanOrEqual(191);
    expect(rows).toBe(events);
    // The guard itself: a plan made before a subscription is not written after it.
    const planned = runtime.deps.ledger.plan(
      Array.from({ length: 100 }, (_, i) => {
        const r = rowToAction(["MESAJ", phone(7_100_000 + i), "ONAY", "HS_WEB", iys(NOW - 60_000), "BIREYSEL", ""], brand);
        if (!r.ok) throw new Error(r.message);
        return r.action;
      }),
    )!;
    const again = insertEndpoint(runtime.deps.db, { kind: "subscription", brands: [brand], events: ["consent.changed"], url: "http://127.0.0.1:9/cb2", secretEnc: "unused" }, NOW).id;
    const writer = LedgerWriter.open(runtime.deps.db)!;
    try {
      expect((await writer.write(planned.plan)).moved).toBe(true);
    } finally {
      await writer.close();
      disableEndpoint(runtime.deps.db, again, "test over", NOW);
    }
  });

  it("the thread checks a plan's references itself: a plan of a brand or receipt that does not exist is refused as SQLite refuses such a row, and nothing of it is written", async () => {
    await createBrand("REFERENCED");
    const brand = brandId("REFERENCED");
    const actions = (brandId: number, from: number) =>
      Array.from({ length: 100 }, (_, i) => {
        const r = rowToAction(["MESAJ", phone(from + i), "ONAY", "HS_WEB", iys(NOW - 60_000), "BIREYSEL", ""], brandId);
        if (!r.ok) throw new Error(r.message);
        return r.action;
      });
    const ledger = runtime.deps.ledger;
    const events = () => db().prepare("SELECT COUNT(*) FROM consent_events").pluck().get() as number;
    const noBrand = (db().prepare("SELECT MAX(id) + 1000 FROM brands").pluck().get() as number);
    const writer = LedgerWriter.open(runtime.deps.db)!;
    try {
      const before = events();
      const orphan = ledger.plan(actions(noBrand, 7_200_000))!;
      const err = await writer.write(orphan.plan).then(() => null, (e: unknown) => e as Error & { code?: string });
      expect(err?.code).toBe("SQLITE_CONSTRAINT_FOREIGNKEY");
      expect(err?.message).toContain(`brand ${noBrand} does not exist`);
      // A brand's later events in the same plan are checked too (one brand a plan is the usual case, not the rule).
      const mixed = ledger.plan([...actions(brand, 7_200_100), ...actions(noBrand, 7_200_200)])!;
      expect((await writer.write(mixed.plan).then(() => null, (e: unknown) => e as { code?: string }))?.code).toBe("SQLITE_CONSTRAINT_FOREIGNKEY");
      const receipt = ledger.plan(actions(brand, 7_200_300))!;
      receipt.plan.events[50]![10] = 987_654_321;
      const refused = await writer.write(receipt.plan).then(() => null, (e: unknown) => e as Error & { code?: string });
      expect([refused?.code, refused?.message]).toEqual(["SQLITE_CONSTRAINT_FOREIGNKEY", "FOREIGN KEY constraint failed (receipt 987654321 does not exist)"]);
      expect(events()).toBe(before);
      // The thread goes on: a plan whose references hold is written.
      const good = ledger.plan(actions(brand, 7_200_400))!;
      expect((await writer.write(good.plan)).moved).toBe(false);
      expect(events()).toBe(before + 100);
      expect(db().prepare("SELECT COUNT(*) FROM consent_state WHERE brand_id = ?").pluck().get(brand)).toBe(100);
    } finally {
      await writer.close();
    }
  });

  it("a write the thread cannot make (the lock held past busy_timeout) fails the import, marked failed with SQLite's code, and nothing else", async () => {
    await createBrand("BLOCKED");
    const brand = brandId("BLOCKED");
    const file = fresh(300, 8_000_000);
    const head = file.split("\n").slice(0, 102).join("\n") + "\n";
    const other = new Database(runtime.deps.db.$client.name);
    const c = runtime.deps.db.$client;
    c.pragma("busy_timeout = 100"); // the thread takes the connection's own
    let id = "";
    try {
      // The first batch goes to the thread while another connection holds the write lock and the
      // import waits for the rest of a slow upload: the failed write must not end the process.
      async function* source() {
        yield head;
        other.exec("BEGIN IMMEDIATE");
        await new Promise((r) => setTimeout(r, 600));
        other.exec("COMMIT");
        yield file.slice(head.length);
      }
      const err = await runImport(source(), importDeps, { brandId: brand, via: "api", batchSize: 100, onStart: (i) => void (id = i) }).then(
        () => null,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(err?.code).toBe("SQLITE_BUSY");
    } finally {
      c.pragma("busy_timeout = 5000");
      if (other.inTransaction) other.exec("ROLLBACK");
      other.close();
    }
    expect(importById(runtime.deps.db, id)).toMatchObject({ status: "failed", recorded: 0, rowsRead: 0 });
    expect(eventsOf(brand)).toHaveLength(0);
  });

  it("a file broken after a batch whose write failed says how many rows are in and that writing the next failed (not the rows before the break)", async () => {
    await createBrand("UNWRITTEN");
    const brand = brandId("UNWRITTEN");
    // Batch 2's write fails in the thread's transaction (as a full disk would): a trigger on one of its rows.
    const poisoned = phone(9_000_150);
    db().exec(`CREATE TRIGGER unwritten_test BEFORE INSERT ON consent_events WHEN NEW.recipient = '${poisoned}' BEGIN SELECT RAISE(ABORT, 'the disk is full (test)'); END`);
    let id = "";
    try {
      const file = fresh(250, 9_000_000) + `BIREYSEL,MESAJ,"${phone(9_999_999)},ONAY,HS_WEB,${iys(NOW - 60_000)}\n`;
      const err = await runImport(Readable.from([file]), importDeps, { brandId: brand, via: "cli", batchSize: 100, onStart: (i) => void (id = i) }).then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(ImportFormatError);
      const record = importById(runtime.deps.db, id)!;
      expect(record).toMatchObject({ status: "failed", rowsRead: 100 });
      expect(err!.message).toBe(
        `the CSV is malformed: a quote opened after line 251 is never closed; the first 100 rows are in import ${id} (recorded ${record.recorded}, unchanged 0, rejected ${record.rejected}), nothing after them: writing the next ones failed (the disk is full (test)): send the fixed file again (rows already in stay unchanged)`,
      );
      expect(record.error).toBe(err!.message);
      expect(eventsOf(brand)).toHaveLength(record.recorded);
    } finally {
      db().exec("DROP TRIGGER unwritten_test");
    }
  });

  it("a process runs at most LedgerWriter.MAX_THREADS writer threads: an import finding none free writes its batches itself, and takes one once it is free", async () => {
    await createBrand("NOTHREAD");
    const brand = brandId("NOTHREAD");
    const before = (db().prepare("SELECT MAX(id) AS id FROM consent_events").get() as { id: number | null }).id ?? 0;
    const taken = Array.from({ length: LedgerWriter.MAX_THREADS }, () => LedgerWriter.open(runtime.deps.db));
    expect(taken.every((w) => w !== null)).toBe(true);
    expect(LedgerWriter.available(runtime.deps.db)).toBe(false);
    expect(LedgerWriter.open(runtime.deps.db)).toBeNull();
    const file = fresh(400, 8_000_000);
    const head = file.split("\n").slice(0, 201).join("\n") + "\n";
    const { deps, seen } = counting();
    try {
      // The first 200 rows (two batches) while every thread is taken; one is given back before the rest.
      async function* source() {
        yield head;
        await taken.pop()!.close();
        yield file.slice(head.length);
      }
      const summary = await runImport(source(), deps, { brandId: brand, via: "cli", batchSize: 100 });
      expect(summary).toMatchObject({ rowsRead: 400, recorded: 400 - 11 - 8, rejected: 11 + 8 });
    } finally {
      for (const w of taken) await w!.close();
    }
    // Batches 1 and 2 applied in place, with no plan made for nothing; 3 and 4 planned and written by the thread.
    expect(seen).toEqual({ planned: 2, declined: 0, largeApplies: 2 });
    expect(chainHolds(before)).toBe(400 - 11 - 8 + (before > 0 ? 1 : 0));
    expect(LedgerWriter.available(runtime.deps.db)).toBe(true);
  });
});
