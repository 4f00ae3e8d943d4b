import { parseArgs } from "node:util";
import { createCheckpoint, loadOrCreateLedgerKey, verifyLedger } from "../db/checkpoints";
import { openDatabase, runMigrations } from "../db/index";
import { listBrands, numbersOfBrand } from "./brands";
import { CliError, exportToFile, importFile, summaryText } from "./cli-bulk";
import { ConfigError, loadConfig } from "./config";
import { systemClock } from "./domain/time";
import { createLogger } from "./log";

const usage = `Usage: hub <command> [options]

Commands:
  migrate          apply database migrations (npm start does this too)
  verify           recompute the ledger hash chain and check every signed checkpoint;
                   exits 0 when intact, 1 naming the first bad event
  checkpoint       sign the current ledger head now
  brands           list brands and their numbers
  import --brand CODE <file.csv> [--rejected out.csv] [--json]
                   import consents in the İYS bulk columns (type, recipient, status, source,
                   consentDate, recipientType, retailerCode); rejected rows go to out.csv
                   (default <file>.rejected.csv) with their İYS codes; exit 0 even with rejected rows
  export --brand CODE [--events --from YYYY-MM-DD --to YYYY-MM-DD] [--format csv|jsonl] [--out file]
                   current consents (re-importable), or the ledger events of those Istanbul days

Configuration comes from the environment (see README.md): DATABASE_PATH, LEDGER_KEY_PATH, …`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "help" || command === "--help" || command === "-h") {
    console.log(usage);
    return command ? 0 : 2;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      json: { type: "boolean", default: false },
      brand: { type: "string" },
      rejected: { type: "string" },
      events: { type: "boolean", default: false },
      from: { type: "string" },
      to: { type: "string" },
      format: { type: "string", default: "csv" },
      out: { type: "string" },
    },
    allowPositionals: true,
  });
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL === "info" ? "warn" : config.LOG_LEVEL, process.stderr as never);
  const db = openDatabase(config.DATABASE_PATH);
  try {
    switch (command) {
      case "migrate": {
        runMigrations(db);
        console.log(`migrations applied to ${config.DATABASE_PATH}`);
        return 0;
      }
      case "verify": {
        runMigrations(db);
        const key = await loadOrCreateLedgerKey(config.LEDGER_KEY_PATH, log);
        const report = await verifyLedger(db, key.publicKey);
        if (values.json) console.log(JSON.stringify(report, null, 2));
        else if (report.ok) {
          console.log(
            `ledger intact: ${report.events} events, ${report.checkpoints} signed checkpoints, head ${report.head ? `#${report.head.id} ${report.head.hash}` : "(empty)"}`,
          );
        } else {
          console.error(
            `LEDGER TAMPERED: ${report.firstBadEventId !== null ? `first bad event #${report.firstBadEventId}` : "checkpoint or state problems"}`,
          );
          for (const p of report.problems) {
            console.error(`  ${p.eventId !== undefined ? `event #${p.eventId}` : ""}${p.checkpointId !== undefined ? ` checkpoint #${p.checkpointId}` : ""}: ${p.problem}`);
          }
        }
        return report.ok ? 0 : 1;
      }
      case "checkpoint": {
        runMigrations(db);
        const key = await loadOrCreateLedgerKey(config.LEDGER_KEY_PATH, log);
        const cp = await createCheckpoint(db, key, systemClock);
        console.log(cp ? `checkpoint #${cp.id} signs event #${cp.eventId} ${cp.hash}` : "nothing new to sign");
        return 0;
      }
      case "brands": {
        runMigrations(db);
        for (const b of listBrands(db)) {
          const nums = numbersOfBrand(db, b.id).map((n) => `${n.number} (${n.provider}: ${n.channels.join("+")})`);
          console.log(`${b.code}\t${b.name}\tİYS ${b.iysCode ?? "-"}/${b.brandCode ?? "-"}\t${b.shortNames.join(", ")}\t${nums.join(", ")}`);
        }
        return 0;
      }
      case "import": {
        runMigrations(db);
        const file = positionals[0];
        if (!values.brand || !file) throw new CliError("usage: hub import --brand CODE <file.csv> [--rejected out.csv]");
        const summary = await importFile(config, db, log, { brand: values.brand, file, rejectedPath: values.rejected });
        console.log(values.json ? JSON.stringify(summary, null, 2) : summaryText(summary));
        return 0;
      }
      case "export": {
        runMigrations(db);
        if (!values.brand) throw new CliError("usage: hub export --brand CODE [--events --from YYYY-MM-DD --to YYYY-MM-DD] [--format csv|jsonl] [--out file]");
        const rows = exportToFile(db, { brand: values.brand, events: values.events, from: values.from, to: values.to, format: values.format as "csv", out: values.out });
        if (values.out) console.error(`exported ${rows} rows to ${values.out}`);
        return 0;
      }
      default:
        console.error(`unknown command: ${command}\n\n${usage}`);
        return 2;
    }
  } finally {
    db.$client.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof ConfigError ? err.message : `hub: ${(err as Error).message}`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
