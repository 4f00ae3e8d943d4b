import { randomBytes } from "node:crypto";
import { closeSync, createReadStream, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import Database from "better-sqlite3";
import { openDatabase, runMigrations, type Db } from "../db/index";
import { LEDGER_SQL } from "../db/ledger";
import { createBrand } from "../src/brands";
import { importFile } from "../src/cli-bulk";
import { loadConfig } from "../src/config";
import { formatIysDate } from "../src/domain/time";
import { createLogger } from "../src/log";
import { deletePrefix } from "../test/helpers";
import { BENCH_SECRET, rate, type Scenario } from "./lib";

const ROWS = Number(process.env.BENCH_IMPORT_ROWS ?? 1_000_000);

/** A valid file in the İYS bulk columns: phones in several spellings, e-mails, calls; dates within the last hour. */
export function writeCsv(path: string, rows: number) {
  const fd = openSync(path, "w");
  const now = Date.now();
  let chunk = "type,recipient,status,source,consentDate,recipientType,retailerCode\n";
  for (let i = 0; i < rows; i++) {
    const date = formatIysDate(new Date(now - 3_600_000 + (i % 3000) * 1000));
    const n = String(i).padStart(7, "0");
    switch (i % 4) {
      case 0: chunk += `MESAJ,+90532${n},ONAY,HS_WEB,${date},BIREYSEL,\n`; break;
      case 1: chunk += `MESAJ,0533 ${n.slice(0, 3)} ${n.slice(3, 5)} ${n.slice(5)},ONAY,HS_MOBIL,${date},BIREYSEL,\n`; break;
      case 2: chunk += `EPOSTA,user.${i}@example.com,ONAY,HS_EPOSTA,${date},BIREYSEL,\n`; break;
      default: chunk += `ARAMA,0535${n},ONAY,HS_CAGRI_MERKEZI,${date},TACIR,12345678\n`;
    }
    if (chunk.length > 1 << 20) {
      writeSync(fd, chunk);
      chunk = "";
    }
  }
  writeSync(fd, chunk);
  closeSync(fd);
}

/** The floor: the same file's rows read line by line and inserted as they are, 5000 a transaction, no index. */
async function rawInsert(path: string, dbPath: string): Promise<number> {
  const db = new Database(dbPath);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec("CREATE TABLE plain (type TEXT, recipient TEXT, status TEXT, source TEXT, consent_date TEXT, recipient_type TEXT, retailer_code TEXT)");
  const insert = db.prepare("INSERT INTO plain VALUES (?, ?, ?, ?, ?, ?, ?)");
  const tx = db.transaction((rows: string[][]) => {
    for (const r of rows) insert.run(r);
  });
  let batch: string[][] = [];
  let n = 0;
  let header = true;
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    if (header) {
      header = false;
      continue;
    }
    if (!line) continue;
    batch.push(line.split(","));
    n++;
    if (batch.length === 5000) {
      tx.immediate(batch);
      batch = [];
    }
  }
  if (batch.length) tx.immediate(batch);
  db.close();
  return n;
}

/**
 * What the ledger's SQL alone costs: the events the import recorded, replayed into a fresh hub
 * database through the statements Ledger.apply runs for an import's batch (one read of which records
 * the batch's recipients have, the events, and their state rows written from them in one statement),
 * 5000 a transaction, the arguments made before the clock starts. No parsing, rules, hashing or
 * outbox: the ceiling of any import through the ledger's tables and indexes, measured in the same
 * run as the raw rate.
 */
function ledgerSqlOnly(source: Db, dbPath: string): { rows: number; ms: number } {
  const db = openDatabase(dbPath);
  runMigrations(db);
  createBrand(db, { code: "BENCH", name: "Bench", shortNames: ["BENCH"], numbers: [] }, Date.now());
  const c = db.$client;
  // The page cache hub import gives itself (src/cli-bulk.ts).
  c.pragma("cache_size = -262144");
  const statesOf = c.prepare(LEDGER_SQL.statesOf).raw();
  const insertEvent = c.prepare(LEDGER_SQL.insertEvent);
  const stateFromEvents = c.prepare(LEDGER_SQL.stateFromEvents);
  type Row = unknown[] & { 0: number; 1: number; 2: string };
  const tx = c.transaction((rows: Row[]) => {
    statesOf.all(JSON.stringify([...new Set(rows.map((e) => e[2]))]), rows[0]![1]);
    for (const e of rows) insertEvent.run(e);
    stateFromEvents.run(rows[0]![0], rows[rows.length - 1]![0]);
  });
  const read = source.$client
    .prepare(
      `SELECT id, brand_id, recipient, recipient_type, type, status, source, consent_date, retailer_code, origin, receipt_id,
        idempotency_key, effect, received_at, hash, salt FROM consent_events WHERE id > ? ORDER BY id LIMIT 5000`,
    )
    .raw();
  let rows = 0;
  let ms = 0;
  for (let after = 0; ; ) {
    const batch = read.all(after) as Row[];
    if (batch.length === 0) break;
    after = batch[batch.length - 1]![0] as number;
    const t0 = performance.now();
    tx.immediate(batch);
    ms += performance.now() - t0;
    rows += batch.length;
  }
  c.close();
  return { rows, ms };
}

/**
 * Rounds of the scenario: each inserts the file raw and imports it into a fresh hub, the two in turn,
 * and the median round of each side is compared, as sms-ingress does. This machine is shared: a single
 * pair of runs moved by ±10 % with nothing changed (another tenant's work slows the import, two busy
 * threads, more than the one-thread raw loop). Every round's figures are in the notes.
 */
const ROUNDS = Math.max(1, Number(process.env.BENCH_IMPORT_ROUNDS ?? 3));

/**
 * One import of `csv` (`rows` rows) into a fresh hub database under `dir`: its time, and the database
 * (for the SQL-only replay); with `again`, the time of the same file imported a second time too
 * (every row unchanged).
 */
export async function importRound(csv: string, dir: string, prefix: string, rows = ROWS, again = false): Promise<{ ms: number; againMs: number | null; db: Db }> {
  const config = loadConfig({
    ...process.env,
    DATABASE_PATH: join(dir, "hub.db"),
    LEDGER_KEY_PATH: join(dir, "key.json"),
    HUB_SECRET: BENCH_SECRET,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: "warn",
    CHECKPOINT_INTERVAL_SECONDS: "0",
  });
  const db = openDatabase(config.DATABASE_PATH);
  runMigrations(db);
  createBrand(db, { code: "BENCH", name: "Bench", shortNames: ["BENCH"], numbers: [] }, Date.now());
  try {
    const t0 = performance.now();
    const summary = await importFile(config, db, createLogger("warn"), { brand: "BENCH", file: csv, progress: Boolean(process.stderr.isTTY) });
    const ms = performance.now() - t0;
    if (summary.recorded !== rows) throw new Error(`expected ${rows} recorded rows, got ${JSON.stringify(summary)}`);
    if (!again) return { ms, againMs: null, db };
    const t1 = performance.now();
    const second = await importFile(config, db, createLogger("warn"), { brand: "BENCH", file: csv, progress: false });
    const againMs = performance.now() - t1;
    if (second.unchanged !== rows || second.recorded !== 0) throw new Error(`expected ${rows} unchanged rows on the re-run, got ${JSON.stringify(second)}`);
    return { ms, againMs, db };
  } finally {
    await deletePrefix(prefix, config.REDIS_URL).catch(() => {});
  }
}

export const import1m: Scenario = {
  name: "import-1m",
  description: `${ROWS.toLocaleString("en-US")}-row CSV in the İYS bulk columns through hub import (parse, normalise, İYS rules, hash chain, state, İYS-report outbox rows of 1000 movements, BullMQ enqueue) vs raw batched INSERTs of the same rows; the median of ${ROUNDS} rounds of each, in turn`,
  async run() {
    const dir = mkdtempSync(join(tmpdir(), "hub-bench-import-"));
    const prefix = `bench-import-${randomBytes(4).toString("hex")}`;
    try {
      const csv = join(dir, "consents.csv");
      writeCsv(csv, ROWS);
      const imports: number[] = [];
      const raws: number[] = [];
      let last: Db | null = null;
      let rerun = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const t1 = performance.now();
        const raw = await rawInsert(csv, join(dir, `raw-${round}.db`));
        raws.push(rate(raw, performance.now() - t1));
        if (raw !== ROWS) throw new Error(`the raw loop read ${raw} rows, not ${ROWS}`);
        // The previous round's hub: only the last one is kept (for the replay below).
        if (last) {
          last.$client.close();
          rmSync(join(dir, `hub-${round - 1}`), { recursive: true, force: true });
        }
        rmSync(join(dir, `raw-${round}.db`), { force: true });
        const roundDir = join(dir, `hub-${round}`);
        mkdirSync(roundDir);
        // The last round imports the file a second time too (a provider sending its whole base again).
        const { ms, againMs, db } = await importRound(csv, roundDir, `${prefix}-${round}`, ROWS, round === ROUNDS - 1);
        imports.push(rate(ROWS, ms));
        if (againMs !== null) rerun = againMs;
        last = db;
      }
      const peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
      const sqlOnly = ledgerSqlOnly(last!, join(dir, "sql-only.db"));
      last!.$client.close();
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const value = median(imports);
      const rawValue = median(raws);
      const sqlRatio = rate(sqlOnly.rows, sqlOnly.ms) / rawValue;
      const list = (xs: number[]) => xs.map((x) => Math.round(x)).join(", ");
      return {
        value,
        unit: "rows/s",
        baseline: { name: `raw better-sqlite3 INSERTs of the same rows, 5000 a transaction (median of ${ROUNDS} rounds)`, value: rawValue },
        target: 0.25,
        notes:
          `${ROWS} rows in ${(ROWS / value).toFixed(1)} s in the median round (target < 60 s); rounds, in turn: import ${list(imports)} rows/s, raw ${list(raws)} rows/s ` +
          `(ratios of each round's pair: ${imports.map((v, i) => (v / raws[i]!).toFixed(3)).join(", ")}); ${(statSync(csv).size / 2 ** 20).toFixed(0)} MiB file; peak RSS ${peakRssMiB} MiB (the process, over its rounds); ` +
          `the same file again into the last round's hub (every row unchanged): ${(rerun / 1000).toFixed(1)} s, ${Math.round(rate(ROWS, rerun))} rows/s; ` +
          `the ledger's SQL alone (the recorded events replayed through Ledger.apply's statements, nothing else): ${rate(sqlOnly.rows, sqlOnly.ms)} rows/s, ${sqlRatio.toFixed(3)} of the median raw`,
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
