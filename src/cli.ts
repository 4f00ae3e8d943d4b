import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { checkpointSigners, createCheckpoint, hasCheckpoints, hasLedgerTables, ledgerKeyFor, loadOrCreateLedgerKey, loadPublicKeyFile, verifyLedger } from "../db/checkpoints";
import { assertHubDatabaseFile, openDatabase, openDatabaseReadOnly, pendingMigrations, readsPrivateCopy, runMigrations, type Db } from "../db/index";
import { listBrands, numbersOfBrand } from "./brands";
import { deliveryLog, getEndpoint, presentDelivery } from "./callbacks/store";
import { assertNotHubFile, backupTo, CliUsageError, exportToFile, importFile, summaryText } from "./cli-bulk";
import { assertNotLostDatabase } from "./runtime";
import { ConfigError, loadConfig } from "./config";
import { systemClock } from "./domain/time";
import { createLogger } from "./log";
import { issueLinks } from "../channels/link/issue";
import { linkKeyring } from "../channels/link/token";
import { brandByCode } from "./brands";
import { recipientTypes, type RecipientType } from "./domain/consent";
import { loadSecrets } from "./secrets";

/** "1 event", "2 events". */
const counted = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`;

const usage = `Usage: hub <command> [options]

Commands:
  migrate [--new-ledger]
                   apply database migrations (npm start does this too); a database that does not
                   exist beside an existing ledger key (LEDGER_KEY_PATH) is made only with --new-ledger
  verify [--public-key FILE] [--json]
                   recompute the ledger hash chain and check every signed checkpoint;
                   exits 0 when intact, 1 naming the first bad event. --public-key: check the
                   signatures with a public key (the JWK set GET /api/v1/ledger/public-key answers)
                   instead of the signing key at LEDGER_KEY_PATH (an auditor needs no secret)
  checkpoint       sign the current ledger head now
  backup <directory>
                   a consistent copy of the database (while the hub runs), with the ledger signing
                   key and the hub secret beside it, into a new directory (mode 700, files 600)
  brands           list brands and their numbers
  link --brand CODE [--tacir] [--json] <e-mail>…
                   print the rejection link and List-Unsubscribe headers of each address
                   (the same link every time; PUBLIC_BASE_URL, LINK_KEYS / HUB_SECRET)
  deliveries       callback delivery attempts, newest first
                   [--failed] only failed attempts, [--endpoint ID] one endpoint, [--limit N], [--json]
  import --brand CODE <file.csv> [--registered] [--rejected out.csv] [--json]
                   import consents in the İYS bulk columns (type, recipient, status, source,
                   consentDate, recipientType, retailerCode); rejected rows go to out.csv
                   (default <file>.rejected.csv) with their İYS codes; exit 0 even with rejected rows.
                   <file.csv> may be - (standard input) or a named pipe, with --rejected.
                   --registered: records İYS already holds (the base registered before the hub, another
                   hub's state export): for consents the hub holds no record of, any age and never
                   reported to İYS; over the hub's own records, ordinary movements
  export --brand CODE [--events --from YYYY-MM-DD --to YYYY-MM-DD] [--format csv|jsonl] [--out file]
                   current consents (re-importable into another hub with import --registered), or the
                   ledger events of those Istanbul days

Configuration comes from the environment (see README.md): DATABASE_PATH, LEDGER_KEY_PATH, …`;

const COMMANDS = new Set(["migrate", "verify", "checkpoint", "backup", "brands", "link", "deliveries", "import", "export"]);
/** Commands that only read the database: on a database with every migration they open it read-only. */
const READ_ONLY_COMMANDS = new Set(["verify", "backup", "brands", "deliveries", "export"]);

/**
 * The options each command reads and whether it takes arguments: anything else is a usage error
 * (`hub export --brand X state.csv` wrote every address to the terminal, the file name ignored).
 */
const ACCEPTS: Record<string, { options: string[]; positionals: boolean; hint?: string }> = {
  migrate: { options: ["new-ledger"], positionals: false },
  verify: { options: ["json", "public-key"], positionals: false },
  checkpoint: { options: [], positionals: false },
  backup: { options: [], positionals: true },
  brands: { options: [], positionals: false },
  link: { options: ["brand", "tacir", "json"], positionals: true },
  deliveries: { options: ["endpoint", "failed", "limit", "json"], positionals: false },
  import: { options: ["brand", "rejected", "registered", "json"], positionals: true },
  export: { options: ["brand", "events", "from", "to", "format", "out"], positionals: false, hint: " (the file to write is --out FILE)" },
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "help" || command === "--help" || command === "-h") {
    console.log(usage);
    return command ? 0 : 2;
  }
  if (!COMMANDS.has(command)) {
    console.error(`unknown command: ${command}\n\n${usage}`);
    return 2;
  }
  const { values, positionals, tokens } = parseArgs({
    args: rest,
    tokens: true,
    options: {
      help: { type: "boolean", short: "h", default: false },
      json: { type: "boolean", default: false },
      brand: { type: "string" },
      tacir: { type: "boolean", default: false },
      failed: { type: "boolean", default: false },
      endpoint: { type: "string" },
      limit: { type: "string", default: "100" },
      rejected: { type: "string" },
      registered: { type: "boolean", default: false },
      events: { type: "boolean", default: false },
      from: { type: "string" },
      to: { type: "string" },
      format: { type: "string", default: "csv" },
      out: { type: "string" },
      "public-key": { type: "string" },
      "new-ledger": { type: "boolean", default: false },
    },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const accepts = ACCEPTS[command]!;
  const foreign = [...new Set(tokens.flatMap((t) => (t.kind === "option" && !accepts.options.includes(t.name) ? [`--${t.name}`] : [])))];
  if (foreign.length > 0) {
    throw new CliUsageError(`hub ${command} takes ${accepts.options.length ? accepts.options.map((o) => `--${o}`).join(", ") : "no options"}, not ${foreign.join(", ")}`);
  }
  if (!accepts.positionals && positionals.length > 0) {
    throw new CliUsageError(`hub ${command} takes no arguments, not ${positionals.join(" ")}${accepts.hint ?? ""}`);
  }
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL === "info" ? "warn" : config.LOG_LEVEL, process.stderr as never);
  // Only migrate makes a database: a mistyped DATABASE_PATH or the wrong directory must not pass
  // `verify` as an intact empty ledger (nor leave a new database and ledger key behind).
  if (command !== "migrate" && config.DATABASE_PATH !== ":memory:" && !existsSync(config.DATABASE_PATH)) {
    throw new Error(`no database at ${resolve(config.DATABASE_PATH)} (DATABASE_PATH): start the hub (npm start) or run \`hub migrate\` first, or point DATABASE_PATH at the hub's database`);
  }
  // Nor do the other commands: a 0-byte file or another program's database is no hub database, and
  // migrating it (the commands that write bring the schema up to date) added the hub's tables to it
  // (looked at read-only: opening it for writing would turn it into a database). Verify says NO LEDGER.
  const where = `${resolve(config.DATABASE_PATH)} (DATABASE_PATH)`;
  let db: Db | null = null;
  let pending = 0;
  if (command !== "migrate" && config.DATABASE_PATH !== ":memory:") {
    let probe: Db;
    let hub: boolean;
    try {
      probe = openDatabaseReadOnly(config.DATABASE_PATH, { copy: READ_ONLY_COMMANDS.has(command) });
    } catch (err) {
      throw new Error(`cannot open ${where}: ${(err as Error).message}`);
    }
    try {
      hub = hasLedgerTables(probe.$client);
      pending = hub ? pendingMigrations(probe.$client) : 0;
    } catch (err) {
      probe.$client.close();
      throw new Error(`cannot open ${where}: ${(err as Error).message}`);
    }
    if (!hub) {
      probe.$client.close();
      if (command === "verify") {
        console.error(`NO LEDGER: ${where} holds none of the hub's ledger tables: not the hub's database, or emptied; nothing verified`);
        return 1;
      }
      throw new Error(`${where} is not the hub's database (none of its ledger tables; a 0-byte file or another program's database): point DATABASE_PATH at the hub's database, or make one with \`hub migrate\``);
    }
    // A command that only reads leaves the file as it is (no migration, not even WAL upkeep): a ledger
    // being verified is evidence, and a backup or replica may not be writable by whoever checks it.
    // A backup copies the file as it is, whatever its schema (never migrating the live database).
    if (READ_ONLY_COMMANDS.has(command) && (pending === 0 || command === "backup")) {
      db = probe;
      // Ctrl-C, a kill: an exit, so that the private copy of a database that could not be read in
      // place is removed (it answers once the command's current stretch of work yields).
      if (readsPrivateCopy(db)) for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) process.once(signal, () => process.exit(code));
    } else probe.$client.close();
  }
  if (!db) {
    if (command === "migrate") {
      assertHubDatabaseFile(config.DATABASE_PATH);
      // As the server's start: a lost database is not replaced by an empty one without saying so.
      if (!values["new-ledger"]) assertNotLostDatabase(config);
    }
    try {
      db = openDatabase(config.DATABASE_PATH, { synchronous: config.SQLITE_SYNCHRONOUS });
      runMigrations(db);
    } catch (err) {
      db?.$client.close();
      const lacking = pending > 0 && /readonly|read-only|permission|unable to open/i.test((err as Error).message) ? `; it lacks ${counted(pending, "migration")} of this version of the hub, which must be written into it first: run \`hub migrate\` where it can be written (on a copy, for a backup)` : "";
      throw new Error(`cannot open ${where}: ${(err as Error).message}${lacking}`);
    }
  }
  try {
    switch (command) {
      case "migrate": {
        console.log(`migrations applied to ${config.DATABASE_PATH}`);
        return 0;
      }
      case "verify": {
        // The key only checks signatures: none is made when nothing was signed.
        const publicKeyFile = values["public-key"];
        if (publicKeyFile === "") throw new CliUsageError("--public-key needs a file (the JWK set GET /api/v1/ledger/public-key answers)");
        const keyWhere = publicKeyFile ? `--public-key ${publicKeyFile}` : `LEDGER_KEY_PATH ${config.LEDGER_KEY_PATH}`;
        const key = !hasCheckpoints(db)
          ? null
          : publicKeyFile
            ? await loadPublicKeyFile(publicKeyFile, checkpointSigners(db).at(-1))
            : await loadOrCreateLedgerKey(config.LEDGER_KEY_PATH, log, { create: false });
        const report = await verifyLedger(db, key?.publicKey ?? null);
        // The chain and the state are whole, and the key verifies none of the checkpoints: another
        // hub's key (or a new one), or every checkpoint replaced. Said as that, not as an altered event.
        if (key && report.checkpoints > 0 && report.signaturesVerified === 0 && report.otherProblems === 0) {
          const problem = `${keyWhere} holds key ${key.kid}, which verifies none of the ${counted(report.checkpoints, "checkpoint")} (signed by ${[...new Set(checkpointSigners(db))].join(", ") || "a key they do not name"}); the hash chain and the state are whole: either this is not the key that signed this ledger (${publicKeyFile ? "give the hub's public key" : "point LEDGER_KEY_PATH at it, or restore it from your backup"}), or every checkpoint was replaced`;
          if (values.json) console.log(JSON.stringify({ ...report, ok: false, problems: [{ problem }] }, null, 2));
          else console.error(`WRONG KEY: ${problem}`);
          return 1;
        }
        // A hub makes its key at its first start: a key beside a ledger with no event and no checkpoint
        // is a ledger emptied, or one nothing was ever recorded in: either way nothing was verified.
        if (report.events === 0 && report.checkpoints === 0 && existsSync(config.LEDGER_KEY_PATH)) {
          const problem = `no event and no signed checkpoint, while the ledger signing key exists at ${config.LEDGER_KEY_PATH} (LEDGER_KEY_PATH): if this hub ever recorded anything, its ledger was emptied`;
          if (values.json) console.log(JSON.stringify({ ...report, ok: false, problems: [{ problem }] }, null, 2));
          else console.error(`LEDGER EMPTY: ${problem}`);
          return 1;
        }
        if (values.json) console.log(JSON.stringify(report, null, 2));
        else if (report.ok) {
          console.log(
            `ledger intact: ${counted(report.events, "event")}, ${counted(report.checkpoints, "signed checkpoint")}, head ${report.head ? `#${report.head.id} ${report.head.hash}` : "(empty)"}`,
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
        // Nothing to sign makes no key (a key beside an empty ledger reads as an emptied one to verify).
        if (!db.$client.prepare("SELECT 1 FROM consent_events LIMIT 1").get()) {
          if (hasCheckpoints(db)) {
            console.error("the ledger has no events, yet signed checkpoints exist: its events were deleted (see hub verify); nothing signed");
            return 1;
          }
          console.log("nothing to sign: the ledger has no events yet");
          return 0;
        }
        const key = await ledgerKeyFor(db, config.LEDGER_KEY_PATH, log);
        const cp = await createCheckpoint(db, key, systemClock);
        console.log(cp ? `checkpoint #${cp.id} signs event #${cp.eventId} ${cp.hash}` : "nothing new to sign");
        return 0;
      }
      case "backup": {
        if (positionals.length !== 1) throw new CliUsageError("usage: hub backup <directory> (a new or empty directory)");
        assertNotHubFile(config, positionals[0]!, "hub backup");
        const done = await backupTo(config, db, positionals[0]!);
        console.log(`backed up to ${done.dir}:\n${done.files.map((f) => `  ${f}`).join("\n")}`);
        if (done.notCopied.length > 0) console.log(`not in it (set in the environment, keep them with it): ${done.notCopied.join(", ")}`);
        console.log(`check it: DATABASE_PATH=${done.files[0]} LEDGER_KEY_PATH=${join(done.dir, "ledger-key.json")} hub verify`);
        return 0;
      }
      case "brands": {
        const brands = listBrands(db);
        if (brands.length === 0) console.log("no brands yet (POST /api/v1/brands creates one)");
        for (const b of brands) {
          const nums = numbersOfBrand(db, b.id).map((n) => `${n.number} (${n.provider}: ${n.channels.join("+")})`);
          console.log(`${b.code}\t${b.name}\tİYS ${b.iysCode ?? "-"}/${b.brandCode ?? "-"}\t${b.shortNames.join(", ")}\t${nums.join(", ")}`);
        }
        return 0;
      }
      case "link": {
        if (!values.brand || positionals.length === 0) {
          console.error("usage: hub link --brand CODE [--tacir] [--json] <e-mail>…");
          return 2;
        }
        const brand = brandByCode(db, values.brand);
        if (!brand) {
          console.error(`brand ${values.brand} not found`);
          return 1;
        }
        // Links are signed with the running hub's key: a secret made up here would sign links it refuses.
        if (!config.LINK_KEYS && !config.HUB_SECRET && !existsSync(config.HUB_SECRET_PATH)) {
          console.error(
            `no hub secret: HUB_SECRET and LINK_KEYS are unset and ${resolve(config.HUB_SECRET_PATH)} (HUB_SECRET_PATH) does not exist; links signed with a new secret would not work on the running hub: run this where the hub runs, or set HUB_SECRET_PATH (or LINK_KEYS) as the hub has it`,
          );
          return 1;
        }
        const secrets = loadSecrets(config.HUB_SECRET, config.HUB_SECRET_PATH, log);
        const recipientType: RecipientType = values.tacir ? recipientTypes[1] : recipientTypes[0];
        const ring = linkKeyring(config.LINK_KEYS, secrets.derive);
        const results = issueLinks(db, ring, config.PUBLIC_BASE_URL, brand, positionals.map((recipient) => ({ recipient, recipientType })), Date.now());
        if (values.json) console.log(JSON.stringify(results.map((r) => (r.ok ? { url: r.url, headers: r.headers, expiresAt: r.expiresAt } : { error: r.error })), null, 2));
        else {
          results.forEach((r, i) => {
            if (!r.ok) console.error(`${positionals[i]}: ${r.error.code} ${r.error.message}`);
            // Each address's block starts with the address: several in one call are told apart.
            else console.log(`${positionals[i]}\n${r.url}\nList-Unsubscribe: ${r.headers["List-Unsubscribe"]}\nList-Unsubscribe-Post: ${r.headers["List-Unsubscribe-Post"]}\n`);
          });
        }
        return results.every((r) => r.ok) ? 0 : 1;
      }
      case "deliveries": {
        const limit = /^\d{1,6}$/.test(values.limit) ? Number(values.limit) : Number.NaN;
        if (!(limit >= 1 && limit <= 10_000)) throw new CliUsageError(`--limit ${values.limit}: a whole number from 1 to 10000, in digits`);
        if (values.endpoint !== undefined && !getEndpoint(db, values.endpoint)) {
          console.error(`unknown endpoint ${values.endpoint} (GET /api/v1/subscriptions and a brand's partners list the endpoints)`);
          return 1;
        }
        const rows = deliveryLog(db, values.endpoint ?? null, { limit, failedOnly: values.failed });
        if (values.json) console.log(JSON.stringify(rows.map((d) => ({ endpointId: d.endpointId, ...presentDelivery(d) })), null, 2));
        else {
          for (const d of rows) {
            console.log(
              `${new Date(d.at).toISOString()}\t${d.endpointId}\toutbox #${d.outboxId}\tattempt ${d.attempt}\t${d.ok ? "ok" : "FAILED"}\t${d.responseCode ?? "-"}\t${d.latencyMs} ms\t${d.outboxStatus ?? "-"}${d.error ? `\t${d.error}` : ""}`,
            );
          }
          if (rows.length === 0) console.log(values.failed ? "no failed deliveries" : "no deliveries");
        }
        return 0;
      }
      case "import": {
        const file = positionals[0];
        if (!values.brand || !file) throw new CliUsageError("usage: hub import --brand CODE <file.csv> [--registered] [--rejected out.csv] [--json]");
        // One file per run: the others were ignored, unimported, without a word.
        if (positionals.length > 1) throw new CliUsageError(`hub import takes one file, not ${positionals.length} (${positionals.join(", ")}): run it once per file`);
        const summary = await importFile(config, db, log, { brand: values.brand, file, rejectedPath: values.rejected, registered: values.registered });
        console.log(values.json ? JSON.stringify(summary, null, 2) : summaryText(summary));
        return 0;
      }
      case "export": {
        if (!values.brand) throw new CliUsageError("usage: hub export --brand CODE [--events --from YYYY-MM-DD --to YYYY-MM-DD] [--format csv|jsonl] [--out file]");
        if (values.out === "") throw new CliUsageError("--out needs a file name (without --out the export goes to standard output)");
        if (values.out) assertNotHubFile(config, values.out, "--out");
        const rows = exportToFile(db, { brand: values.brand, events: values.events, from: values.from, to: values.to, format: values.format as "csv", out: values.out });
        if (values.out) console.error(`exported ${counted(rows, "row")} to ${resolve(values.out)}`);
        return 0;
      }
      default:
        throw new Error(`command ${command} has no case`);
    }
  } finally {
    db.$client.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // Usage errors exit 2 (as an unknown command does), failures 1: a script can tell them apart.
    const usageError = err instanceof CliUsageError || String((err as { code?: string }).code ?? "").startsWith("ERR_PARSE_ARGS");
    console.error(err instanceof ConfigError ? err.message : `hub: ${(err as Error).message}${usageError && !(err instanceof CliUsageError) ? `\n\n${usage}` : ""}`);
    process.exit(err instanceof ConfigError || usageError ? 2 : 1);
  },
);
