import { accessSync, chmodSync, closeSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { drizzle, type BetterSQLite3Database } from "drizzle-orm/better-sqlite3";
import { migrate } from "drizzle-orm/better-sqlite3/migrator";
import { readMigrationFiles } from "drizzle-orm/migrator";
import * as schema from "./schema";

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database };

export const migrationsFolder = resolve(dirname(fileURLToPath(import.meta.url)), "migrations");

/**
 * Opens the SQLite file in WAL mode. synchronous=NORMAL in WAL mode survives a process crash at any
 * point (a committed transaction is in the WAL before COMMIT returns); only an OS crash or power loss
 * can drop the last transactions. SQLITE_SYNCHRONOUS=FULL (src/config.ts) where that matters more than throughput.
 */
export function openDatabase(path: string, opts: { synchronous?: "NORMAL" | "FULL"; backgroundCheckpoints?: boolean } = {}): Db {
  if (path !== ":memory:") {
    mkdirSync(dirname(resolve(path)), { recursive: true });
    // Made readable by its owner only (it holds every address); SQLite gives its -wal and -shm files the same mode.
    if (!existsSync(path)) closeSync(openSync(path, "a", 0o600));
  }
  const sqlite = new Database(path);
  sqlite.pragma("journal_mode = WAL");
  const synchronous = opts.synchronous ?? "NORMAL";
  sqlite.pragma(`synchronous = ${synchronous}`);
  sqlite.pragma("foreign_keys = ON");
  // Several processes (web, worker, CLI) may share the file; wait for the writer instead of failing.
  sqlite.pragma("busy_timeout = 5000");
  // 64 MiB of page cache (SQLite's default is 2 MiB): the ledger's indexes are probed at random
  // (recipients, idempotency keys), and past a few hundred thousand rows 2 MiB means a disk read a probe.
  sqlite.pragma("cache_size = -65536");
  if (!sqlite.memory && opts.backgroundCheckpoints !== false) startCheckpointer(sqlite, synchronous);
  return drizzle(sqlite, { schema }) as Db;
}

/** WAL frames after which a writer checkpoints itself; SQLite's default, used while no checkpointer runs. */
const WAL_AUTOCHECKPOINT = 1000;
/** The writer's own threshold while the checkpointer runs: a backstop that keeps the WAL bounded (~40 MiB). */
const WAL_AUTOCHECKPOINT_BACKSTOP = 10_000;

/**
 * Moves WAL checkpoints off the event loop: a worker thread with its own connection
 * (db/checkpointer.mjs) copies committed frames into the database file every few milliseconds
 * while there are writes. Without it the connection that commits the 1000th frame does the copying
 * itself, in the middle of a webhook: with the receipts' random provider ids (every receipt dirties
 * its own index page) that was about half of a receipt's SQLite time, with pauses of 10–20 ms.
 * The writer keeps checkpointing itself only past WAL_AUTOCHECKPOINT_BACKSTOP frames (by then the
 * thread has copied all but the last few), which lets SQLite restart the WAL under steady writes.
 * Closing the connection stops the thread first.
 */
function startCheckpointer(sqlite: Database.Database, synchronous: string): void {
  const stopped = new SharedArrayBuffer(4);
  const worker = new Worker(new URL("./checkpointer.mjs", import.meta.url), {
    workerData: { path: sqlite.name, synchronous, minMs: 10, maxMs: 1000, stopped },
    // Plain JavaScript: no need for the TypeScript loader the process may run under.
    execArgv: [],
  });
  worker.unref();
  let running = true;
  // A thread that fails or ends on its own hands checkpointing back to the writer.
  const gone = () => {
    running = false;
    if (sqlite.open) sqlite.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT}`);
  };
  worker.on("error", gone);
  worker.on("exit", gone);
  sqlite.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_BACKSTOP}`);
  const close = sqlite.close.bind(sqlite);
  sqlite.close = () => {
    if (running) {
      // The thread's connection goes first, so this one, the last, checkpoints and removes the WAL
      // as SQLite does on a clean close. Bounded: a thread still starting takes a few milliseconds.
      worker.postMessage("stop");
      Atomics.wait(new Int32Array(stopped), 0, 0, 2000);
      void worker.terminate();
    }
    return close();
  };
}

/**
 * A read-only connection, for the commands that only read (verify, export, brands, deliveries): the
 * file is left as it is (a ledger being verified is evidence), and a backup or replica the user may
 * not write is read all the same. A WAL-mode file in a directory the user cannot write, without the
 * -shm file a reader shares with writers (a copied backup), cannot be read in place: it is read from
 * a private copy (mode 700 directory), removed when the connection closes or the process exits;
 * `copy: false` refuses instead (a command that will write the file anyway).
 */
export function openDatabaseReadOnly(path: string, opts: { copy?: boolean } = {}): Db {
  let sqlite: Database.Database;
  try {
    sqlite = openReadOnly(path);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (opts.copy === false || (code !== "SQLITE_READONLY_DIRECTORY" && code !== "SQLITE_CANTOPEN" && code !== "SQLITE_READONLY")) throw err;
    try {
      accessSync(path, constants.R_OK);
    } catch {
      throw err;
    }
    const dir = mkdtempSync(join(tmpdir(), "hub-readonly-"));
    // It holds every address: gone when the process ends, however it ends but SIGKILL (the CLI turns
    // SIGINT, SIGTERM and SIGHUP into an exit while such a copy is open).
    const remove = () => rmSync(dir, { recursive: true, force: true });
    process.once("exit", remove);
    try {
      const copy = join(dir, basename(path));
      for (const suffix of ["", "-wal"]) {
        if (suffix && !existsSync(path + suffix)) continue;
        copyFileSync(path + suffix, copy + suffix);
        chmodSync(copy + suffix, 0o600);
      }
      sqlite = openReadOnly(copy);
    } catch (copyErr) {
      remove();
      process.off("exit", remove);
      throw copyErr;
    }
    const close = sqlite.close.bind(sqlite);
    sqlite.close = () => {
      const closed = close();
      remove();
      process.off("exit", remove);
      return closed;
    };
    privateCopies.add(sqlite);
  }
  return drizzle(sqlite, { schema }) as Db;
}

const privateCopies = new WeakSet<Database.Database>();

/** Whether the connection reads a private copy (openDatabaseReadOnly), removed when the process exits. */
export function readsPrivateCopy(db: Db): boolean {
  return privateCopies.has(db.$client);
}

function openReadOnly(path: string): Database.Database {
  const c = new Database(path, { readonly: true, fileMustExist: true });
  try {
    c.pragma("busy_timeout = 5000");
    c.pragma("cache_size = -65536");
    c.prepare("SELECT count(*) FROM sqlite_master").get(); // a WAL file that cannot be shared fails here, not at open
    return c;
  } catch (err) {
    c.close();
    throw err;
  }
}

/** How many of the hub's migrations the database lacks (drizzle's rule: those newer than the last applied). */
export function pendingMigrations(c: Database.Database): number {
  const kept = c.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '__drizzle_migrations'").get();
  const last = kept ? (c.prepare("SELECT max(created_at) FROM __drizzle_migrations").pluck().get() as number | string | null) : null;
  return readMigrationFiles({ migrationsFolder }).filter((m) => last === null || Number(last) < m.folderMillis).length;
}

export function runMigrations(db: Db): void {
  assertNoForeignTables(db.$client);
  migrate(db, { migrationsFolder });
}

/**
 * A database holding other tables and none of the hub's (another program's, a wrong DATABASE_PATH)
 * is left alone: migrating would add the hub's two dozen tables to it.
 */
function assertNoForeignTables(c: Database.Database): void {
  const tables = c.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).pluck().all() as string[];
  if (tables.length > 0 && !tables.includes("__drizzle_migrations") && !tables.includes("consent_events")) {
    const shown = tables.slice(0, 3).join(", ") + (tables.length > 3 ? ", …" : "");
    throw new Error(`${c.name} (DATABASE_PATH) holds another program's tables (${shown}) and none of the hub's: point DATABASE_PATH at the hub's database, or at a new file`);
  }
}

/**
 * The same check before the hub opens the file for writing, on a read-only connection: opening it
 * sets WAL mode, which SQLite stores in the file — another program's database would be changed
 * even though it is then refused. A file that does not exist yet passes.
 */
export function assertHubDatabaseFile(path: string): void {
  if (path === ":memory:" || !existsSync(path)) return;
  let c: Database.Database;
  try {
    c = new Database(path, { readonly: true, fileMustExist: true });
  } catch {
    return; // what cannot be opened read-only fails with its own message when opened for real
  }
  try {
    assertNoForeignTables(c);
  } finally {
    c.close();
  }
}

export { schema };

const statementCache = new WeakMap<Database.Database, Map<string, Database.Statement>>();

/** A prepared statement kept for the life of the connection: hot paths (jobs, webhooks) prepare once. */
export function stmt<P extends unknown[] = unknown[], R = unknown>(db: Db, sql: string): Database.Statement<P, R> {
  let cache = statementCache.get(db.$client);
  if (!cache) statementCache.set(db.$client, (cache = new Map()));
  let s = cache.get(sql);
  if (!s) cache.set(sql, (s = db.$client.prepare(sql)));
  return s as unknown as Database.Statement<P, R>;
}
