import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { drizzle, type BetterSQLite3Database } from "drizzle-orm/better-sqlite3";
import { migrate } from "drizzle-orm/better-sqlite3/migrator";
import * as schema from "./schema";

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database };

export const migrationsFolder = resolve(dirname(fileURLToPath(import.meta.url)), "migrations");

/**
 * Opens the SQLite file in WAL mode. synchronous=NORMAL in WAL mode survives a process crash at any
 * point (a committed transaction is in the WAL before COMMIT returns); only an OS crash or power loss
 * can drop the last transactions. Set SQLITE_SYNCHRONOUS=FULL where that matters more than throughput.
 */
export function openDatabase(path: string, opts: { synchronous?: "NORMAL" | "FULL" } = {}): Db {
  if (path !== ":memory:") mkdirSync(dirname(resolve(path)), { recursive: true });
  const sqlite = new Database(path);
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma(`synchronous = ${opts.synchronous ?? "NORMAL"}`);
  sqlite.pragma("foreign_keys = ON");
  // Several processes (web, worker, CLI) may share the file; wait for the writer instead of failing.
  sqlite.pragma("busy_timeout = 5000");
  // 64 MiB of page cache (SQLite's default is 2 MiB): the ledger's indexes are probed at random
  // (recipients, idempotency keys), and past a few hundred thousand rows 2 MiB means a disk read a probe.
  sqlite.pragma("cache_size = -65536");
  return drizzle(sqlite, { schema }) as Db;
}

export function runMigrations(db: Db): void {
  migrate(db, { migrationsFolder });
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
