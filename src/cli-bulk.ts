import { chmodSync, closeSync, copyFileSync, createReadStream, existsSync, fchmodSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync, type Stats } from "node:fs";
import { join, resolve } from "node:path";
import type { Db } from "../db/index";
import { brandByCode } from "./brands";
import type { Config } from "./config";
import { exportEvents, exportState, istanbulDayRange, openReader, type ExportFormat } from "./export";
import { rejectedCsvHeader, rejectedCsvLine, runImport, type ImportCounts, type ImportSummary } from "./import";
import type { Logger } from "./log";
import { createRuntime } from "./runtime";

/** A fatal CLI error: printed as is, exit 1. */
export class CliError extends Error {}

/** The command was called wrongly (a missing or contradictory argument): printed as is, exit 2. */
export class CliUsageError extends CliError {}

/** Narrows a regular file's mode to its owner (it holds addresses); one the process may not change is left as it is. */
function ownerOnly(fd: number): void {
  try {
    const mode = fstatSync(fd).mode & 0o777;
    if (mode & 0o077) fchmodSync(fd, mode & 0o700);
  } catch {
    // not ours to change (another owner): written all the same, as before
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

/**
 * Refuses an output path that is one of the hub's own files (database and its WAL, ledger key, hub
 * secret), however it is spelled: `--out data/hub.db` emptied the ledger.
 */
export function assertNotHubFile(config: Pick<Config, "DATABASE_PATH" | "LEDGER_KEY_PATH" | "HUB_SECRET_PATH">, path: string, flag: string): void {
  const out = statOrNull(path);
  if (!out) return;
  const own: [string, string][] = [
    [config.DATABASE_PATH, "the hub's database (DATABASE_PATH)"],
    [`${config.DATABASE_PATH}-wal`, "the hub database's write-ahead log"],
    [`${config.DATABASE_PATH}-shm`, "the hub database's shared memory file"],
    [config.LEDGER_KEY_PATH, "the ledger signing key (LEDGER_KEY_PATH)"],
    [config.HUB_SECRET_PATH, "the hub secret (HUB_SECRET_PATH)"],
  ];
  for (const [file, what] of own) {
    const st = statOrNull(file);
    if (st && st.dev === out.dev && st.ino === out.ino) throw new CliUsageError(`${flag} ${path} is ${what}: choose another path`);
  }
}

/**
 * Writes all of `data` to `fd`. A pipe (`hub export | gzip`) may take part of a write, or none with
 * EAGAIN when its reader is behind (Node may have made stdout non-blocking): writeSync alone then
 * dropped the rest of the chunk, or the whole export stopped halfway through a line.
 */
export function writeAllSync(fd: number, data: string): void {
  const buf = Buffer.from(data);
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
      Atomics.wait(pause, 0, 0, 5);
    }
  }
}

const fmt = (n: number) => n.toLocaleString("en-US");

function duration(s: number): string {
  if (!Number.isFinite(s)) return "--:--";
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, "0")}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
}

/** A one-line progress bar on stderr (redrawn in place on a terminal, a line every 5 s otherwise). */
export function progressLine(c: ImportCounts, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? (c.rowsRead / elapsedMs) * 1000 : 0;
  const counts = `${fmt(c.rowsRead)} rows | ${fmt(Math.round(rate))} rows/s`;
  const outcome = `recorded ${fmt(c.recorded)} unchanged ${fmt(c.unchanged)} rejected ${fmt(c.rejected)}`;
  // A pipe: how much is left is not known.
  if (c.bytesTotal === null) return `${counts} | ${(c.bytesRead / 2 ** 20).toFixed(1)} MiB read | ${outcome}`;
  const frac = c.bytesTotal ? Math.min(1, c.bytesRead / c.bytesTotal) : 0;
  const width = 24;
  const bar = "█".repeat(Math.round(frac * width)).padEnd(width, "░");
  const eta = frac > 0 ? ((elapsedMs / 1000) * (1 - frac)) / frac : Number.NaN;
  return `${bar} ${(frac * 100).toFixed(1).padStart(5)}% | ${counts} | ETA ${duration(eta)} | ${outcome}`;
}

export interface ImportFileOptions {
  brand: string;
  file: string;
  rejectedPath?: string;
  progress?: boolean;
  /** Records İYS already holds (ImportOptions.registered). */
  registered?: boolean;
}

/** `hub import`: the same path as POST /api/v1/imports, reading a file. */
export async function importFile(config: Config, db: Db, log: Logger, opts: ImportFileOptions): Promise<ImportSummary & { rejectedPath?: string }> {
  // "-" is standard input (`zcat consents.csv.gz | hub import --brand X - --rejected r.csv`); a
  // named pipe (`<(zcat …)`) is read as one. Neither has a size (no percentage, no ETA) nor a name
  // the rejected rows' file could be named after.
  const stdin = opts.file === "-";
  let input: Stats;
  try {
    input = stdin ? fstatSync(0) : statSync(opts.file);
    if (input.isDirectory()) throw new Error("it is a directory");
  } catch (err) {
    // The resolved path: under `npm run` relative paths are taken from the checkout's root, not the shell's directory.
    throw new CliError(`cannot read ${stdin ? "standard input" : resolve(opts.file)}: ${(err as Error).message}`);
  }
  if (stdin && process.stdin.isTTY) throw new CliUsageError("hub import - reads the file from standard input, which is a terminal here: pipe the file in (… | hub import --brand CODE - --rejected out.csv)");
  const sized = input.isFile() && !stdin;
  if (!sized && !opts.rejectedPath) {
    throw new CliUsageError(`${stdin ? "reading standard input" : `${opts.file} is not a regular file`}: give --rejected FILE, the file for the rejected rows`);
  }
  // Checked before the hub's runtime starts (it would claim the queue prefix, note the database's id).
  const rejectedPath = opts.rejectedPath ?? `${opts.file}.rejected.csv`;
  assertNotHubFile(config, rejectedPath, "--rejected");
  const before = statOrNull(rejectedPath);
  if (before && before.dev === input.dev && before.ino === input.ino) {
    throw new CliUsageError(`--rejected ${rejectedPath} is the file being imported: choose another path for the rejected rows`);
  }
  // A dedicated process: a larger page cache keeps the ledger's indexes in memory past a million rows.
  db.$client.pragma("cache_size = -262144");
  const runtime = await createRuntime(config, { db, log });
  try {
    const brand = brandByCode(runtime.deps.db, opts.brand);
    if (!brand) throw new CliError(`unknown brand ${opts.brand} (see \`hub brands\`)`);
    // Opened before any row is read (appending: nothing is emptied yet), so a path that cannot be
    // written fails the command with nothing imported (it failed at the first rejected row, after the
    // rows before it were in). A regular file is emptied at the first rejected row; with none, the
    // file this run created is removed and one an earlier run left is emptied, so it is never read
    // as this run's. Anything else (/dev/null, a pipe) is only written to.
    let fd: number;
    try {
      fd = openSync(rejectedPath, "a", 0o600); // personal data: readable by its owner only
    } catch (err) {
      throw new CliError(`cannot write the rejected rows to ${rejectedPath}: ${(err as Error).message} (--rejected chooses the file)`);
    }
    const regular = fstatSync(fd).isFile();
    // A file an earlier run or another program left, readable by others, is made its owner's too.
    if (regular) ownerOnly(fd);
    let rejectedRows = 0;
    let delimiter = ",";
    const started = performance.now();
    // From the import's start (performance.now() counts from the process's: a slow start drew at once).
    let lastDraw = started;
    let drawn = false;
    const tty = Boolean(process.stderr.isTTY);
    const draw = (c: ImportCounts, final = false) => {
      if (opts.progress === false) return;
      const t = performance.now();
      if (!final && t - lastDraw < (tty ? 200 : 5000)) return;
      lastDraw = t;
      drawn = true;
      const line = progressLine(c, t - started);
      process.stderr.write(tty ? `\r\x1b[2K${line}${final ? "\n" : ""}` : `${line}\n`);
    };
    const source = stdin ? process.stdin : createReadStream(opts.file);
    // Ctrl-C: the file is cut where it was read to; the rows before are written and the import is
    // marked failed, saying so (it stayed "running" for ever). A second Ctrl-C quits at once.
    let interrupted = false;
    const interrupt = () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      process.stderr.write(`\nhub: stopping: writing the rows read so far and marking the import failed (Ctrl-C again quits at once; the hub's sweeper then marks it failed within minutes)\n`);
      source.destroy(new Error("interrupted (Ctrl-C)"));
    };
    process.on("SIGINT", interrupt);
    try {
      const summary = await runImport(source, { ...runtime.deps, enqueueOutbox: (rows) => runtime.deps.jobs.enqueueOutbox(rows, { bulk: true }) }, {
        brandId: brand.id,
        via: "cli",
        registered: opts.registered === true,
        bytesTotal: sized ? input.size : null,
        onStart: (_id, d) => {
          delimiter = d;
        },
        onProgress: (c) => draw(c),
        onRejected: (r) => {
          if (rejectedRows++ === 0) {
            if (regular) ftruncateSync(fd, 0);
            writeAllSync(fd, rejectedCsvHeader(delimiter, regular));
          }
          writeAllSync(fd, rejectedCsvLine(r, delimiter));
        },
      });
      draw(summary, true);
      return { ...summary, ...(rejectedRows > 0 ? { rejectedPath } : {}) };
    } catch (err) {
      // The message goes below the progress line, not onto it.
      if (drawn && tty) process.stderr.write("\n");
      if (rejectedRows > 0 && err instanceof Error) err.message += `; the ${fmt(rejectedRows)} rows rejected before it are in ${rejectedPath}`;
      throw err;
    } finally {
      process.removeListener("SIGINT", interrupt);
      if (rejectedRows === 0 && regular) {
        if (before) ftruncateSync(fd, 0);
        else rmSync(rejectedPath, { force: true });
      }
      closeSync(fd);
    }
  } finally {
    await runtime.close();
  }
}

export function summaryText(s: ImportSummary & { rejectedPath?: string }): string {
  const codes = Object.entries(s.codes)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(", ");
  return [
    `import ${s.id}${s.registered ? " (registered: records İYS holds, not reported)" : ""}: read ${fmt(s.rowsRead)}, recorded ${fmt(s.recorded)}, unchanged ${fmt(s.unchanged)}, rejected ${fmt(s.rejected)} in ${s.seconds.toFixed(1)} s`,
    ...(s.encoding === "windows-1254" ? ["read as Windows-1254 (Turkish): the file is not UTF-8"] : []),
    ...(s.rejected ? [`rejected by code: ${codes}`, ...(s.rejectedPath ? [`rejected rows: ${s.rejectedPath}`] : [])] : []),
  ].join("\n");
}

export interface ExportOptions {
  brand: string;
  events: boolean;
  from?: string;
  to?: string;
  format: ExportFormat;
  out?: string;
}

/** `hub export`: current state, or the events of [from, to] (Istanbul days, inclusive), streamed. */
export function exportToFile(db: Db, opts: ExportOptions): number {
  const brand = brandByCode(db, opts.brand);
  if (!brand) throw new CliError(`unknown brand ${opts.brand} (see \`hub brands\`)`);
  if (opts.format !== "csv" && opts.format !== "jsonl") throw new CliUsageError(`--format must be csv or jsonl, not ${opts.format}`);
  let range: { start: number; end: number } | null = null;
  if (!opts.events && (opts.from || opts.to)) throw new CliUsageError("--from and --to choose the days of --events; the current state has no dates (add --events)");
  if (opts.events) {
    if (!opts.from || !opts.to) throw new CliUsageError("--events needs --from YYYY-MM-DD and --to YYYY-MM-DD");
    const from = istanbulDayRange(opts.from);
    const to = istanbulDayRange(opts.to);
    if (!from) throw new CliUsageError(`--from ${opts.from} is not a date (YYYY-MM-DD)`);
    if (!to) throw new CliUsageError(`--to ${opts.to} is not a date (YYYY-MM-DD)`);
    if (from.start > to.start) throw new CliUsageError(`--from ${opts.from} is after --to ${opts.to}`);
    range = { start: from.start, end: to.end };
  }
  const reader = openReader(db);
  let fd = 1;
  if (opts.out) {
    try {
      fd = openSync(opts.out, "w", 0o600); // personal data: readable by its owner only
    } catch (err) {
      reader.close();
      throw new CliError(`cannot write the export to ${opts.out}: ${(err as Error).message} (--out chooses the file)`);
    }
    if (fstatSync(fd).isFile()) ownerOnly(fd);
  }
  let lines = 0;
  try {
    const it = range ? exportEvents(reader, brand.id, range.start, range.end, opts.format) : exportState(reader, brand.id, opts.format);
    let chunk = "";
    for (const line of it) {
      chunk += line;
      lines++;
      if (chunk.length > 256 * 1024) {
        writeAllSync(fd, chunk);
        chunk = "";
      }
    }
    if (chunk) writeAllSync(fd, chunk);
  } catch (err) {
    // The reader went away (`hub export | head`): say so, not a bare EPIPE.
    if ((err as NodeJS.ErrnoException).code === "EPIPE") throw new CliError("the output was closed before the export finished");
    throw err;
  } finally {
    if (fd !== 1) closeSync(fd);
    reader.close();
  }
  return opts.format === "csv" ? lines - 1 : lines;
}

export interface BackupResult {
  dir: string;
  files: string[];
  /** What could not be copied because it is not in a file here (HUB_SECRET, LINK_KEYS set in the environment). */
  notCopied: string[];
}

/**
 * A consistent copy of the hub's database (as of one moment, the WAL's committed frames included,
 * while the hub keeps writing; never migrated: a backup taken before an upgrade is the old schema), with the ledger signing key and the
 * hub secret beside it: the three a restore needs together (a database without its secret makes
 * every mailed link a 404; without its key, no new checkpoint). Into a new directory, mode 700, files
 * mode 600: they hold every address and the keys.
 */
export async function backupTo(config: Pick<Config, "DATABASE_PATH" | "LEDGER_KEY_PATH" | "HUB_SECRET_PATH" | "HUB_SECRET" | "LINK_KEYS" | "CALLBACK_SECRETS_KEY">, db: Db, dir: string): Promise<BackupResult> {
  if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0)) {
    throw new CliUsageError(`${resolve(dir)} exists and is not an empty directory: hub backup writes into a new (or empty) one`);
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  } catch (err) {
    throw new CliError(`cannot make the backup directory ${resolve(dir)}: ${(err as Error).message}`);
  }
  const files: string[] = [];
  const database = join(dir, "hub.db");
  // VACUUM INTO: one read transaction, so one consistent moment however busy the hub is (SQLite's
  // page-by-page backup restarted at every write of the hub and never finished under steady traffic).
  // Written under another name and renamed when whole: an interrupted backup leaves no hub.db.
  const partial = join(dir, "hub.db.partial");
  try {
    closeSync(openSync(partial, "w", 0o600));
    db.$client.prepare("VACUUM INTO ?").run(partial);
    renameSync(partial, database);
  } catch (err) {
    rmSync(partial, { force: true });
    throw new CliError(`cannot back the database up into ${resolve(dir)}: ${(err as Error).message}`);
  }
  files.push(database);
  const keep = (from: string, name: string) => {
    const to = join(dir, name);
    copyFileSync(from, to);
    chmodSync(to, 0o600);
    files.push(to);
  };
  if (existsSync(config.LEDGER_KEY_PATH)) keep(config.LEDGER_KEY_PATH, "ledger-key.json");
  if (!config.HUB_SECRET && existsSync(config.HUB_SECRET_PATH)) keep(config.HUB_SECRET_PATH, "hub-secret");
  const notCopied = [config.HUB_SECRET ? "HUB_SECRET" : null, config.LINK_KEYS ? "LINK_KEYS" : null, config.CALLBACK_SECRETS_KEY ? "CALLBACK_SECRETS_KEY" : null].filter(
    (v): v is string => v !== null,
  );
  return { dir: resolve(dir), files: files.map((f) => resolve(f)), notCopied };
}
