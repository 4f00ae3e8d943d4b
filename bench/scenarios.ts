import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, runMigrations } from "../db/index";
import { Ledger, type ConsentAction } from "../db/ledger";
import { createBrand } from "../src/brands";
import { BusinessCalendar } from "../src/domain/calendar";
import { systemClock } from "../src/domain/time";
import { iysReportPlanner } from "../src/runtime";
import { mobileOnay } from "../test/helpers";
import { rate, type Scenario } from "./lib";
import { check1m } from "./check";
import { smsE2e, smsIngress, smsIngressHttp } from "./sms";
import { callbacksBench } from "./callbacks";
import { import1m } from "./import";
import { ivrStep } from "./ivr";
import { linkClick, linkIssue } from "./link";

function time(fn: () => number): { ops: number; ms: number } {
  const t0 = performance.now();
  const ops = fn();
  return { ops, ms: performance.now() - t0 };
}

/** Ledger appends (rules, hash chain, state, outbox) in batches vs plain SQLite inserts of the same rows. */
const ledgerApply: Scenario = {
  name: "ledger-apply",
  description: "consent actions through Ledger.apply in batches of 1000 (rules, hash chain, state projection, outbox)",
  async run() {
    const dir = mkdtempSync(join(tmpdir(), "hub-bench-"));
    try {
      const db = openDatabase(join(dir, "hub.db"));
      runMigrations(db);
      const ledger = new Ledger(db, { clock: systemClock, calendar: new BusinessCalendar(), planners: [iysReportPlanner] });
      const brandId = createBrand(db, { code: "BENCH", name: "Bench", shortNames: ["BENCH"], numbers: [] }, Date.now()).id;
      const total = 50_000;
      const batch = 1000;
      const consentDate = Date.now() - 3_600_000;
      const actions = (from: number): ConsentAction[] => Array.from({ length: batch }, (_, i) => mobileOnay(brandId, from + i, consentDate, "import"));
      const subject = time(() => {
        for (let i = 0; i < total; i += batch) ledger.apply(actions(i));
        return total;
      });
      db.$client.exec("CREATE TABLE plain (recipient TEXT, type TEXT, status TEXT, source TEXT, consent_date INTEGER)");
      const insert = db.$client.prepare("INSERT INTO plain VALUES (?, ?, ?, ?, ?)");
      const tx = db.$client.transaction((rows: ConsentAction[]) => {
        for (const r of rows) insert.run(r.recipient, r.type, r.status, r.source, r.consentDate);
      });
      const baseline = time(() => {
        for (let i = 0; i < total; i += batch) tx.immediate(actions(i));
        return total;
      });
      db.$client.close();
      return {
        value: rate(subject.ops, subject.ms),
        unit: "actions/s",
        baseline: { name: "plain SQLite INSERTs of the same rows, same batches", value: rate(baseline.ops, baseline.ms) },
        target: null,
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export const scenarios: Scenario[] = [ledgerApply, smsIngress, smsIngressHttp, smsE2e, ivrStep, linkClick, linkIssue, callbacksBench, import1m, check1m];
