import { execFile, execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import Database from "better-sqlite3";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCheckpoint, loadOrCreateLedgerKey } from "../db/checkpoints";
import { openDatabase, runMigrations } from "../db/index";
import { Ledger } from "../db/ledger";
import { createBrand } from "../src/brands";
import { BusinessCalendar } from "../src/domain/calendar";
import { iysReportPlanner } from "../src/runtime";
import { deletePrefix, mobileOnay, tempDir, TestClock, uniquePrefix } from "./helpers";

const run = promisify(execFile);
const tmp = tempDir();
// Its own queue prefix: commands that start the hub's runtime (import) claim it in the shared Redis.
const env = { ...process.env, DATABASE_PATH: join(tmp.dir, "hub.db"), LEDGER_KEY_PATH: join(tmp.dir, "key.json"), QUEUE_PREFIX: uniquePrefix(), LOG_LEVEL: "warn" };

async function hub(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return hubWith(env, ...args);
}

async function hubWith(environment: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["bin/hub.mjs", ...args], { env: environment });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  const clock = new TestClock(Date.parse("2026-11-25T09:00:00Z"));
  const db = openDatabase(env.DATABASE_PATH);
  runMigrations(db);
  const ledger = new Ledger(db, { clock, calendar: new BusinessCalendar(), planners: [iysReportPlanner] });
  const brandId = createBrand(db, { code: "MIGROS", name: "Migros", shortNames: ["MIGROS"], numbers: [] }, clock.now().getTime()).id;
  for (let i = 0; i < 4; i++) {
    clock.advance(60_000);
    ledger.apply([mobileOnay(brandId, i, clock.now().getTime() - 1000)]);
  }
  await createCheckpoint(db, await loadOrCreateLedgerKey(env.LEDGER_KEY_PATH), clock);
  db.$client.close();
});
afterAll(async () => {
  await deletePrefix(env.QUEUE_PREFIX);
  tmp.cleanup();
});

describe("hub CLI", () => {
  it("verify exits 0 on an intact ledger and 1 naming the first altered event", async () => {
    const ok = await hub("verify");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/ledger intact: 4 events, 1 signed checkpoint,/);

    // Altered in a copy: the other tests need the ledger whole.
    const tampered = { ...env, DATABASE_PATH: join(tmp.dir, "tampered.db") };
    copyFileSync(env.DATABASE_PATH, tampered.DATABASE_PATH);
    const db = openDatabase(tampered.DATABASE_PATH);
    // One byte: the last digit of event 2's recipient.
    db.$client.prepare("UPDATE consent_events SET recipient = '+905320000009' WHERE id = 2").run();
    db.$client.close();

    const bad = await hubWith(tampered, "verify");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("first bad event #2");
    const json = JSON.parse((await hubWith(tampered, "verify", "--json")).stdout) as { ok: boolean; firstBadEventId: number };
    expect(json).toMatchObject({ ok: false, firstBadEventId: 2 });
  }, 60_000);

  it("verify, export, brands and deliveries read a backup their user may not write, leaving it byte for byte; one lacking a migration says to migrate a copy", async () => {
    const dir = join(tmp.dir, "readonly-backup");
    mkdirSync(dir);
    const file = join(dir, "hub.db");
    const stale = join(dir, "stale.db");
    copyFileSync(env.DATABASE_PATH, file); // closed cleanly by its last user: no WAL beside it
    copyFileSync(env.DATABASE_PATH, stale);
    copyFileSync(env.LEDGER_KEY_PATH, join(dir, "key.json"));
    const older = new Database(stale); // as written by the previous version of the hub
    older.prepare("DELETE FROM __drizzle_migrations WHERE created_at = (SELECT max(created_at) FROM __drizzle_migrations)").run();
    older.close();
    for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o444);
    chmodSync(dir, 0o555);
    // Root may write whatever the modes say: for root the backup is seen through a read-only bind mount.
    const root = process.getuid?.() === 0;
    const seen = root ? join(tmp.dir, "readonly-mount") : dir;
    if (root) {
      mkdirSync(seen);
      execFileSync("mount", ["--bind", dir, seen]);
      execFileSync("mount", ["-o", "remount,bind,ro", seen]);
    }
    const digest = () => createHash("sha256").update(readFileSync(file)).digest("hex");
    const before = digest();
    // The private copy read in place of a file SQLite cannot share from there goes under TMPDIR, and is removed.
    const tmpdir = join(tmp.dir, "tmpdir");
    mkdirSync(tmpdir);
    const backup = { ...env, DATABASE_PATH: join(seen, "hub.db"), LEDGER_KEY_PATH: join(seen, "key.json"), TMPDIR: tmpdir };
    try {
      const verify = await hubWith(backup, "verify");
      expect([verify.code, verify.stdout, verify.stderr]).toEqual([0, expect.stringMatching(/^ledger intact: 4 events, 1 signed checkpoint,/), ""]);
      const exported = await hubWith(backup, "export", "--brand", "MIGROS");
      expect([exported.code, exported.stdout.trim().split("\n").length]).toEqual([0, 5]);
      const brands = await hubWith(backup, "brands");
      expect([brands.code, brands.stdout]).toEqual([0, expect.stringMatching(/^MIGROS\tMigros\t/)]);
      expect((await hubWith(backup, "deliveries")).stdout).toBe("no deliveries\n");
      expect(readdirSync(dir).sort()).toEqual(["hub.db", "key.json", "stale.db"]);
      expect(digest()).toBe(before);
      expect(readdirSync(tmpdir).filter((f) => f.startsWith("hub-"))).toEqual([]);
      const old = await hubWith({ ...backup, DATABASE_PATH: join(seen, "stale.db") }, "verify");
      expect([old.code, old.stderr]).toEqual([1, expect.stringMatching(/lacks 1 migration of this version of the hub, which must be written into it first: run `hub migrate` where it can be written/)]);
      expect(readdirSync(tmpdir).filter((f) => f.startsWith("hub-"))).toEqual([]);
      // A command that writes makes no copy: it says it cannot write there.
      const checkpoint = await hubWith(backup, "checkpoint");
      expect([checkpoint.code, checkpoint.stderr]).toEqual([1, expect.stringMatching(/^hub: cannot open .*hub\.db \(DATABASE_PATH\): (.*readonly|unable to open database file)/)]);
      expect(readdirSync(tmpdir).filter((f) => f.startsWith("hub-"))).toEqual([]);
    } finally {
      if (root) execFileSync("umount", [seen]);
      chmodSync(dir, 0o755);
    }
  }, 60_000);

  it("verify --public-key checks the signatures with the public JWK set alone (no signing key at hand), and names a key that verifies none", async () => {
    const { d: _d, ...pub } = JSON.parse(readFileSync(env.LEDGER_KEY_PATH, "utf8")) as Record<string, string>;
    const jwks = join(tmp.dir, "public-jwks.json");
    writeFileSync(jwks, JSON.stringify({ keys: [{ ...pub, alg: "EdDSA", use: "sig" }] }));
    const auditor = { ...env, LEDGER_KEY_PATH: join(tmp.dir, "no-such-key.json") };
    const ok = await hubWith(auditor, "verify", "--public-key", jwks);
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringMatching(/^ledger intact: 4 events, 1 signed checkpoint,/)]);
    const json = JSON.parse((await hubWith(auditor, "verify", "--public-key", jwks, "--json")).stdout) as { ok: boolean; signaturesVerified: number };
    expect(json).toMatchObject({ ok: true, signaturesVerified: 1 });
    // Another hub's key: every checkpoint unverified, said as a wrong key.
    const other = join(tmp.dir, "other-jwks.json");
    writeFileSync(other, JSON.stringify({ keys: [{ ...pub, x: Buffer.alloc(32, 7).toString("base64url"), kid: "other" }] }));
    const wrong = await hubWith(auditor, "verify", "--public-key", other);
    expect([wrong.code, wrong.stderr]).toEqual([1, expect.stringMatching(/^WRONG KEY: --public-key .*other-jwks\.json holds key other, which verifies none of the 1 checkpoint/)]);
    const notAKey = await hubWith(auditor, "verify", "--public-key", join(tmp.dir, "hub.db"));
    expect([notAKey.code, notAKey.stderr]).toEqual([1, expect.stringMatching(/--public-key .*hub\.db is not a readable JSON file/)]);
  }, 60_000);

  it("backup copies a database being written (its WAL's commits too) with its key and secret into a new private directory, which verify finds intact", async () => {
    const live = { ...env, DATABASE_PATH: join(tmp.dir, "live.db"), HUB_SECRET_PATH: join(tmp.dir, "live-secret") };
    copyFileSync(env.DATABASE_PATH, live.DATABASE_PATH);
    writeFileSync(live.HUB_SECRET_PATH, `${randomBytes(32).toString("base64url")}\n`, { mode: 0o600 });
    // A writer keeps the database open, its last commit in the WAL (no checkpoint thread to move it).
    const writer = openDatabase(live.DATABASE_PATH, { backgroundCheckpoints: false });
    try {
      writer.$client.pragma("wal_autocheckpoint = 0");
      const clock = new TestClock(Date.parse("2026-11-25T10:00:00Z"));
      new Ledger(writer, { clock, calendar: new BusinessCalendar(), planners: [iysReportPlanner] }).apply([mobileOnay(1, 99, clock.now().getTime() - 1000)]);
      expect(statSync(`${live.DATABASE_PATH}-wal`).size).toBeGreaterThan(0);
      // As written by the hub's previous version, still running: the backup must not migrate it.
      const migrations = () => writer.$client.prepare("SELECT count(*) FROM __drizzle_migrations").pluck().get() as number;
      // (The last migration, 0028, dropped consent_events.prev_hash: undone by hand.)
      writer.$client.exec("DELETE FROM __drizzle_migrations WHERE created_at = (SELECT max(created_at) FROM __drizzle_migrations); ALTER TABLE consent_events ADD COLUMN prev_hash text");
      const before = migrations();
      const dir = join(tmp.dir, "backup-1");
      const done = await hubWith(live, "backup", dir);
      expect([done.code, done.stdout]).toEqual([0, expect.stringContaining(`backed up to ${dir}:`)]);
      expect(readdirSync(dir).sort()).toEqual(["hub-secret", "hub.db", "ledger-key.json"]);
      expect(migrations()).toBe(before);
      expect((statSync(dir).mode & 0o777).toString(8)).toBe("700");
      for (const f of readdirSync(dir)) expect((statSync(join(dir, f)).mode & 0o777).toString(8), f).toBe("600");
      expect(readFileSync(join(dir, "hub-secret"), "utf8")).toBe(readFileSync(live.HUB_SECRET_PATH, "utf8"));
      const verified = await hubWith({ ...env, DATABASE_PATH: join(dir, "hub.db"), LEDGER_KEY_PATH: join(dir, "ledger-key.json") }, "verify");
      expect([verified.code, verified.stdout], verified.stderr).toEqual([0, expect.stringMatching(/^ledger intact: 5 events, 1 signed checkpoint,/)]);
      const again = await hubWith(live, "backup", dir);
      expect([again.code, again.stderr]).toEqual([2, expect.stringContaining("exists and is not an empty directory")]);
    } finally {
      writer.$client.close();
    }
  }, 60_000);

  it("migrate makes no database beside an existing ledger key (a lost database, a wrong path) unless told --new-ledger", async () => {
    const fresh = { ...env, DATABASE_PATH: join(tmp.dir, "provisioned", "hub.db") };
    const refused = await hubWith(fresh, "migrate");
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringMatching(/does not exist, while LEDGER_KEY_PATH .*key\.json holds a ledger signing key: .*run `hub migrate --new-ledger` first/)]);
    expect(existsSync(fresh.DATABASE_PATH)).toBe(false);
    const made = await hubWith(fresh, "migrate", "--new-ledger");
    expect([made.code, existsSync(fresh.DATABASE_PATH)]).toEqual([0, true]);
  }, 60_000);

  it("help asked for after a command is the usage, exit 0 (not an unknown option)", async () => {
    for (const help of [["import", "--help"], ["export", "-h"]]) {
      const res = await hub(...help);
      expect([res.code, res.stdout.includes("export --brand CODE")], help.join(" ")).toEqual([0, true]);
    }
  });

  it.each([
    [["export", "--brand", "MIGROS", "--events", "--from", "2026-11-25", "--to", "2026-11-24"], "is after --to"],
    [["export", "--brand", "MIGROS", "--from", "2026-11-24", "--to", "2026-11-25"], "add --events"],
    [["export", "--brand", "MIGROS", "--format", "xml"], "--format must be csv or jsonl"],
    [["import", "consents.csv"], "usage: hub import"],
    [["export", "--brand", "MIGROS", "--bogus"], "Unknown option"],
    [["export", "--brand", "MIGROS", "--out", ""], "--out needs a file name"],
    [["deliveries", "--limit", "99999999999999999999"], "--limit 99999999999999999999: a whole number from 1 to 10000"],
    [["deliveries", "--limit", "0x10"], "--limit 0x10: a whole number"],
    [["export", "--brand", "MIGROS", "state.csv"], "hub export takes no arguments, not state.csv (the file to write is --out FILE)"],
    [["import", "--brand", "MIGROS", "x.csv", "--out", "y.csv"], "hub import takes --brand, --rejected, --registered, --json, not --out"],
    [["verify", "--brand", "MIGROS"], "hub verify takes --json, --public-key, not --brand"],
    [["checkpoint", "--json"], "hub checkpoint takes no options, not --json"],
  ])("%j is a usage error: exit 2 naming what is wrong", async (args, message) => {
    const res = await hub(...args);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(message);
  }, 30_000);

  it("verify without the signing key says the key is missing (and makes none) instead of calling the ledger tampered", async () => {
    const missing = join(tmp.dir, "no-such-key.json");
    const res = await hubWith({ ...env, LEDGER_KEY_PATH: missing }, "verify");
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("does not exist");
    expect(res.stdout + res.stderr).not.toMatch(/TAMPERED/);
    expect(existsSync(missing)).toBe(false);
  }, 30_000);

  it("verify of a 0-byte file or an emptied ledger beside its key fails, creating nothing (it ran the migrations and called it intact)", async () => {
    const empty = join(tmp.dir, "zero.db");
    writeFileSync(empty, "");
    const zero = await hubWith({ ...env, DATABASE_PATH: empty }, "verify");
    expect(zero.code).toBe(1);
    expect(zero.stderr).toContain(`NO LEDGER: ${empty} (DATABASE_PATH) holds none of the hub's ledger tables`);
    expect(zero.stdout).not.toContain("ledger intact");
    expect(statSync(empty).size).toBe(0);

    const emptied = join(tmp.dir, "emptied.db");
    copyFileSync(env.DATABASE_PATH, emptied);
    const db = openDatabase(emptied);
    db.$client.exec("DELETE FROM consent_state; DELETE FROM outbox; DELETE FROM consent_events; DELETE FROM ledger_checkpoints;");
    db.$client.close();
    const res = await hubWith({ ...env, DATABASE_PATH: emptied }, "verify");
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("LEDGER EMPTY: no event and no signed checkpoint, while the ledger signing key exists");
    const json = JSON.parse((await hubWith({ ...env, DATABASE_PATH: emptied }, "verify", "--json")).stdout) as { ok: boolean };
    expect(json.ok).toBe(false);
    // Without a key beside it (a hub never started): empty, and nothing made.
    const noKey = join(tmp.dir, "never.json");
    const fresh = await hubWith({ ...env, DATABASE_PATH: emptied, LEDGER_KEY_PATH: noKey }, "verify");
    expect(fresh.code).toBe(0);
    expect(fresh.stdout).toMatch(/ledger intact: 0 events, 0 signed checkpoints, head \(empty\)/);
    expect(existsSync(noKey)).toBe(false);
  }, 60_000);

  it("--out or --rejected naming the hub's own files (database, its WAL, ledger key, hub secret) is a usage error that leaves them whole; two files to import are one too many", async () => {
    const csv = join(tmp.dir, "one.csv");
    writeFileSync(csv, "recipient,type,status,source,consentDate\n");
    const secret = join(tmp.dir, "hub-secret");
    writeFileSync(secret, `${randomBytes(32).toString("base64url")}\n`);
    const withSecret = { ...env, HUB_SECRET_PATH: secret };
    const digest = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
    const before = [env.DATABASE_PATH, env.LEDGER_KEY_PATH, secret].map(digest);
    for (const [args, message] of [
      [["export", "--brand", "MIGROS", "--out", env.DATABASE_PATH], `--out ${env.DATABASE_PATH} is the hub's database (DATABASE_PATH)`],
      [["export", "--brand", "MIGROS", "--out", join(tmp.dir, ".", "key.json")], "is the ledger signing key (LEDGER_KEY_PATH)"],
      [["import", "--brand", "MIGROS", csv, "--rejected", secret], `--rejected ${secret} is the hub secret (HUB_SECRET_PATH)`],
      [["import", "--brand", "MIGROS", csv, join(tmp.dir, "two.csv")], "hub import takes one file, not 2"],
    ] as const) {
      const res = await hubWith(withSecret, ...args);
      expect(res.code, `${args.join(" ")}: ${res.stderr}`).toBe(2);
      expect(res.stderr).toContain(message);
    }
    expect([env.DATABASE_PATH, env.LEDGER_KEY_PATH, secret].map(digest)).toEqual(before);
  }, 60_000);

  it("a replaced signing key stops checkpoint (and so the hub's start) naming both keys; verify names the signer", async () => {
    const other = join(tmp.dir, "other-key.json");
    const replaced = await loadOrCreateLedgerKey(other);
    const res = await hubWith({ ...env, LEDGER_KEY_PATH: other }, "checkpoint");
    expect(res.code).toBe(1);
    const original = await loadOrCreateLedgerKey(env.LEDGER_KEY_PATH, undefined, { create: false });
    expect(res.stderr).toContain(`LEDGER_KEY_PATH ${other} holds key ${replaced.kid}, but checkpoint #1 was signed by key ${original.kid}`);
    // Verify says the key is another one (every signature failing is no sign of tampering), nothing verified.
    const verify = await hubWith({ ...env, LEDGER_KEY_PATH: other }, "verify");
    expect(verify.code).toBe(1);
    expect(verify.stderr).toContain(`WRONG KEY: LEDGER_KEY_PATH ${other} holds key ${replaced.kid}, which verifies none of the 1 checkpoint (signed by ${original.kid})`);
    expect(verify.stderr).not.toContain("TAMPERED");
    // With the wrong key and an altered event, the event is what is said (the chain needs no key).
    const altered = join(tmp.dir, "altered-wrong-key.db");
    copyFileSync(env.DATABASE_PATH, altered);
    const db = openDatabase(altered, { backgroundCheckpoints: false });
    db.$client.prepare("UPDATE consent_events SET source = 'HS_ATM' WHERE id = 3").run();
    db.$client.close();
    const both = await hubWith({ ...env, DATABASE_PATH: altered, LEDGER_KEY_PATH: other }, "verify");
    expect(both.code).toBe(1);
    expect(both.stderr).toContain("LEDGER TAMPERED: first bad event #");
    expect(both.stderr).not.toContain("WRONG KEY");
  }, 60_000);

  it("a command other than migrate on a database that does not exist fails naming DATABASE_PATH, and creates nothing", async () => {
    const missing = join(tmp.dir, "nowhere", "hub.db");
    const key = join(tmp.dir, "nowhere", "key.json");
    for (const args of [["verify"], ["brands"], ["export", "--brand", "MIGROS"], ["deliveries"]]) {
      const r = await hubWith({ ...env, DATABASE_PATH: missing, LEDGER_KEY_PATH: key }, ...args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toContain(`no database at ${missing} (DATABASE_PATH)`);
      expect(r.stdout).not.toContain("ledger intact");
    }
    expect(existsSync(missing)).toBe(false);
    expect(existsSync(key)).toBe(false);
    expect((await hubWith({ ...env, DATABASE_PATH: missing, LEDGER_KEY_PATH: key }, "migrate")).code).toBe(0);
    expect(existsSync(missing)).toBe(true);
  });

  it("an unknown command exits 2 with the usage, with or without a database", async () => {
    const res = await hub("frobnicate");
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("Usage: hub <command>");
    const none = await hubWith({ ...env, DATABASE_PATH: join(tmp.dir, "nowhere", "hub.db") }, "version");
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("unknown command: version");
  }, 30_000);

  it("a 0-byte file or another program's database is no hub database: every command refuses it, adding no table and making no key", async () => {
    const foreign = join(tmp.dir, "customers.db");
    const other = openDatabase(foreign, { backgroundCheckpoints: false });
    other.$client.exec("CREATE TABLE customers (name TEXT)");
    other.$client.close();
    const zero = join(tmp.dir, "zero-byte.db");
    writeFileSync(zero, "");
    const csv = join(tmp.dir, "foreign.csv");
    writeFileSync(csv, "type,recipient,status,source,consentDate\n");
    const key = join(tmp.dir, "foreign-key.json");
    for (const path of [foreign, zero]) {
      for (const args of [["checkpoint"], ["brands"], ["deliveries"], ["export", "--brand", "MIGROS"], ["import", "--brand", "MIGROS", csv]]) {
        const r = await hubWith({ ...env, DATABASE_PATH: path, LEDGER_KEY_PATH: key }, ...args);
        expect(r.code, `${path} ${args.join(" ")}`).toBe(1);
        expect(r.stderr).toContain(`${path} (DATABASE_PATH) is not the hub's database`);
      }
    }
    const after = openDatabase(foreign, { backgroundCheckpoints: false });
    expect(after.$client.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all()).toEqual(["customers"]);
    after.$client.close();
    expect(statSync(zero).size).toBe(0);
    expect(existsSync(key)).toBe(false);
  }, 120_000);

  it("export --out a directory or into one that does not exist says it cannot write there (exit 1), naming --out", async () => {
    for (const out of [tmp.dir, join(tmp.dir, "no-such-dir", "state.csv")]) {
      const res = await hub("export", "--brand", "MIGROS", "--out", out);
      expect(res.code, out).toBe(1);
      expect(res.stderr).toMatch(new RegExp(`^hub: cannot write the export to ${out.replaceAll("/", "\\/")}: E[A-Z]+.* \\(--out chooses the file\\)`));
    }
    const ok = await hub("export", "--brand", "MIGROS", "--out", join(tmp.dir, "state.csv"));
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toContain(`exported 4 rows to ${join(tmp.dir, "state.csv")}`);
    // A file that cannot be read is named by its resolved path (npm run takes relative paths from the checkout's root).
    const missing = await hub("import", "--brand", "MIGROS", "no-such-file.csv");
    expect(missing.stderr).toContain(`cannot read ${join(process.cwd(), "no-such-file.csv")}: ENOENT`);
    // Addresses: the file it makes is its owner's alone, whatever the umask; so is one that was there, readable by all.
    expect(statSync(join(tmp.dir, "state.csv")).mode & 0o777).toBe(0o600);
    writeFileSync(join(tmp.dir, "open.csv"), "old\n", { mode: 0o644 });
    expect((await hub("export", "--brand", "MIGROS", "--out", join(tmp.dir, "open.csv"))).code).toBe(0);
    expect(statSync(join(tmp.dir, "open.csv")).mode & 0o777).toBe(0o600);
  }, 60_000);

  it("checkpoint on a ledger with no events signs nothing and makes no key (verify would then call the ledger emptied)", async () => {
    const fresh = { ...env, DATABASE_PATH: join(tmp.dir, "fresh.db"), LEDGER_KEY_PATH: join(tmp.dir, "fresh-key.json") };
    expect((await hubWith(fresh, "migrate")).code).toBe(0);
    const cp = await hubWith(fresh, "checkpoint");
    expect(cp.code).toBe(0);
    expect(cp.stdout).toContain("nothing to sign: the ledger has no events yet");
    expect(existsSync(fresh.LEDGER_KEY_PATH)).toBe(false);
    const verify = await hubWith(fresh, "verify");
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain("ledger intact: 0 events");
  }, 60_000);
  it("export into a pipe whose reader is slow writes every row (partial writes and EAGAIN are retried), and says so when the reader goes away", async () => {
    const db = openDatabase(env.DATABASE_PATH);
    const clock = new TestClock(Date.now());
    const ledger = new Ledger(db, { clock, calendar: new BusinessCalendar() });
    const brandId = createBrand(db, { code: "PIPED", name: "Piped", shortNames: ["PIPED"], numbers: [] }, clock.now().getTime()).id;
    const rows = 30_000; // ~2 MiB of CSV: many times a pipe's 64 KiB buffer
    for (let k = 0; k < rows; k += 5000) {
      ledger.apply(Array.from({ length: 5000 }, (_, i) => mobileOnay(brandId, k + i, clock.now().getTime() - 60_000)));
    }
    db.$client.close();
    const shell = (script: string) =>
      run("bash", ["-c", `set -o pipefail; ${script}`], { env, maxBuffer: 64 * 1024 * 1024 }).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    const cli = `"${process.execPath}" bin/hub.mjs export --brand PIPED`;
    const slow = await shell(`${cli} | (sleep 2; wc -l)`);
    expect(slow.stderr).toBe("");
    expect(slow.code).toBe(0);
    expect(Number(slow.stdout.trim())).toBe(rows + 1);
    const closed = await shell(`${cli} | head -c 100 > /dev/null`);
    expect(closed.code).toBe(1);
    expect(closed.stderr).toContain("the output was closed before the export finished");
  }, 60_000);
});
