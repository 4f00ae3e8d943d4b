import { spawn } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { migrate } from "drizzle-orm/better-sqlite3/migrator";
import { afterAll, describe, expect, it } from "vitest";
import { migrationsFolder, openDatabase, runMigrations } from "../db/index";
import { brandsOfNumber, createBrand } from "../src/brands";
import { assertServerRoles, ConfigError, loadConfig } from "../src/config";
import { createApp } from "../src/app";
import { createRuntime } from "../src/runtime";
import { prepareSecrets } from "../src/secrets";
import { deletePrefix, REDIS_URL, tempDir, testConfig, uniquePrefix, waitFor } from "./helpers";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

/** ~1 MiB in one transaction: ~260 WAL frames, far below any writer's own checkpoint threshold. */
function writeAMegabyte(db: ReturnType<typeof openDatabase>) {
  const c = db.$client;
  c.exec("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)");
  const insert = c.prepare("INSERT INTO blobs (data) VALUES (?)");
  c.transaction(() => {
    for (let i = 0; i < 256; i++) insert.run(Buffer.alloc(4000, i));
  })();
}

describe("background WAL checkpoints", () => {
  it("copy committed frames into the database file without the writer checkpointing, and stop when the connection closes", async () => {
    const path = `${tmp.dir}/bg.db`;
    const db = openDatabase(path);
    // The writer only checkpoints itself as a backstop while the thread runs.
    expect(db.$client.pragma("wal_autocheckpoint", { simple: true })).toBe(10_000);
    const before = statSync(path).size;
    writeAMegabyte(db);
    // The pages reach the main file only through a checkpoint, which this connection did not run.
    await waitFor(() => statSync(path).size >= before + 1_000_000, { timeoutMs: 10_000, intervalMs: 20 });
    expect(db.$client.prepare("SELECT count(*) AS n FROM blobs").get()).toEqual({ n: 256 });
    db.$client.close();
    // The thread's connection closed first: this one, the last, checkpointed and removed the WAL.
    expect(existsSync(`${path}-wal`)).toBe(false);
    const reopened = openDatabase(path, { backgroundCheckpoints: false });
    expect(reopened.$client.prepare("SELECT count(*) AS n FROM blobs").get()).toEqual({ n: 256 });
    reopened.$client.close();
  });

  it("without the thread the WAL keeps the frames until the writer's own threshold", async () => {
    const path = `${tmp.dir}/fg.db`;
    const db = openDatabase(path, { backgroundCheckpoints: false });
    expect(db.$client.pragma("wal_autocheckpoint", { simple: true })).toBe(1000);
    const before = statSync(path).size;
    writeAMegabyte(db);
    await new Promise((r) => setTimeout(r, 300));
    expect(statSync(path).size).toBe(before);
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(1_000_000);
    db.$client.close();
  });
});

describe("SQLITE_SYNCHRONOUS", () => {
  it("sets the hub's connection to FULL when asked, and refuses anything but NORMAL or FULL by name", async () => {
    const config = testConfig(`${tmp.dir}/full`, { SQLITE_SYNCHRONOUS: "FULL" });
    const runtime = await createRuntime(config);
    try {
      expect(runtime.deps.db.$client.pragma("synchronous", { simple: true })).toBe(2);
    } finally {
      await runtime.close();
      await deletePrefix(config.QUEUE_PREFIX);
    }
    const defaults = openDatabase(`${tmp.dir}/normal.db`);
    expect(defaults.$client.pragma("synchronous", { simple: true })).toBe(1);
    defaults.$client.close();
    expect(() => testConfig(tmp.dir, { SQLITE_SYNCHRONOUS: "OFF" })).toThrow(ConfigError);
    expect(() => testConfig(tmp.dir, { SQLITE_SYNCHRONOUS: "OFF" })).toThrow(/SQLITE_SYNCHRONOUS/);
  });

  it("production needs an https:// PUBLIC_BASE_URL (one-click links must be https)", () => {
    expect(() => loadConfig({ NODE_ENV: "production" })).toThrow(/PUBLIC_BASE_URL: required in production/);
    expect(() => loadConfig({ NODE_ENV: "production", PUBLIC_BASE_URL: "http://hub.example.com" })).toThrow(/PUBLIC_BASE_URL/);
    expect(loadConfig({ NODE_ENV: "production", PUBLIC_BASE_URL: "https://hub.example.com/" }).PUBLIC_BASE_URL).toBe("https://hub.example.com");
    expect(loadConfig({}).PUBLIC_BASE_URL).toBe("http://localhost:8787");
    // Links are the base plus a path: a query, a fragment or credentials would land inside every link.
    for (const bad of ["https://hub.example.com/iys?x=1", "https://hub.example.com/#top", "https://user:pw@hub.example.com"]) {
      expect(() => loadConfig({ PUBLIC_BASE_URL: bad }), bad).toThrow(/PUBLIC_BASE_URL: must be an origin, optionally with a path/);
    }
    expect(loadConfig({ PUBLIC_BASE_URL: "https://example.com/iys/" }).PUBLIC_BASE_URL).toBe("https://example.com/iys");
    // No URL at all is the configuration error naming it, not a TypeError from the check above.
    for (const bad of ["hub.example.com", "https://"]) expect(() => loadConfig({ PUBLIC_BASE_URL: bad }), bad).toThrow(/PUBLIC_BASE_URL: must be an http:\/\/ or https:\/\/ URL/);
  });

  it("a bad value names its variable: URLs without http(s), İYS without its password, files that cannot be read", async () => {
    expect(() => loadConfig({ PUBLIC_BASE_URL: "localhost:8787" })).toThrow(/PUBLIC_BASE_URL: must be an http:\/\/ or https:\/\/ URL/);
    expect(() => loadConfig({ IYS_API_BASE_URL: "http://iys.example", IYS_USERNAME: "u" })).toThrow(/IYS_PASSWORD: IYS_API_BASE_URL is set/);
    expect(loadConfig({ PORT: "" }).PORT).toBe(8787);
    // Set to nothing is unset, for every variable: a blank number took 0 (no İYS pull, endpoints disabled at once).
    const blank = loadConfig({ PORT: " ", IYS_PULL_INTERVAL_SECONDS: "", CALLBACK_DISABLE_AFTER_HOURS: " ", CHECKPOINT_INTERVAL_SECONDS: "" });
    const defaults = loadConfig({});
    expect([blank.PORT, blank.IYS_PULL_INTERVAL_SECONDS, blank.CALLBACK_DISABLE_AFTER_HOURS, blank.CHECKPOINT_INTERVAL_SECONDS]).toEqual([
      8787, defaults.IYS_PULL_INTERVAL_SECONDS, 120, defaults.CHECKPOINT_INTERVAL_SECONDS,
    ]);
    for (const [name, bad] of [["TWILIO_API_BASE_URL", "localhost:9999"], ["VONAGE_REST_BASE_URL", "ftp://x"]] as const) {
      expect(() => loadConfig({ [name]: bad }), name).toThrow(new RegExp(`${name}: must be an http:// or https:// URL`));
    }
    expect(loadConfig({ SQLITE_SYNCHRONOUS: "full" }).SQLITE_SYNCHRONOUS).toBe("FULL");
    await expect(createRuntime(testConfig(tmp.dir, { HOLIDAYS_PATH: `${tmp.dir}/no-such-holidays.json` }))).rejects.toThrow(/^HOLIDAYS_PATH .*no-such-holidays.json is not a readable JSON holiday table/);
    expect(() => loadConfig({ REDIS_URL: "redis://127.0.0.1:abc" })).toThrow(/REDIS_URL: is no valid URL/);
    expect(() => loadConfig({ REDIS_URL: "redis://127.0.0.1:6379/queues" })).toThrow(/REDIS_URL: its path is the database number/);
    expect(loadConfig({ REDIS_URL: "redis://127.0.0.1:6379/3" }).REDIS_URL).toBe("redis://127.0.0.1:6379/3");
    // A database this Redis does not have: ioredis only emits SELECT's error and stays in database 0.
    const noSuchDb = new URL(REDIS_URL);
    noSuchDb.pathname = "/99999";
    await expect(createRuntime(testConfig(tmp.dir, { REDIS_URL: noSuchDb.href }))).rejects.toThrow(/^REDIS_URL names database 99999, which this Redis refuses \(ERR DB index is out of range\)/);
    expect(() => loadConfig({ SMTP_URL: "smtp://" })).toThrow(/SMTP_URL: must name the SMTP server/);
    expect(() => loadConfig({ TWILIO_AUTH_TOKEN: "token-only" })).toThrow(/TWILIO_ACCOUNT_SID: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN go together/);
    expect(() => loadConfig({ TWILIO_ACCOUNT_SID: "AC123" })).toThrow(/TWILIO_ACCOUNT_SID: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN go together/);
    expect(() => loadConfig({ VONAGE_API_KEY: "key-only" })).toThrow(/VONAGE_API_SECRET: VONAGE_API_KEY and VONAGE_API_SECRET go together/);
    expect(() => loadConfig({ PUBLIC_BASE_URL: "https://hub.example.com//iys" })).toThrow(/PUBLIC_BASE_URL: .*empty path segment/);
    expect(loadConfig({ PUBLIC_BASE_URL: "https://hub.example.com/iys//" }).PUBLIC_BASE_URL).toBe("https://hub.example.com/iys");
    expect(() => assertServerRoles(loadConfig({ RUN_WEB: "false", RUN_WORKERS: "false" }))).toThrow(/RUN_WORKERS: RUN_WEB and RUN_WORKERS are both false/);
    await expect(createRuntime(testConfig(tmp.dir, { DATABASE_PATH: tmp.dir }))).rejects.toThrow(/^DATABASE_PATH .* cannot be opened: /);
    const unreadable = testConfig(tmp.dir, { HUB_SECRET: "", HUB_SECRET_PATH: tmp.dir });
    await expect(createRuntime(unreadable)).rejects.toThrow(/^HUB_SECRET_PATH .* cannot be read: EISDIR/);
    // Stopped before Redis is touched: no claim on the prefix, no queue keys left behind.
    const redis = new Redis(REDIS_URL);
    try {
      expect(await redis.keys(`${unreadable.QUEUE_PREFIX}:*`)).toEqual([]);
    } finally {
      await deletePrefix(unreadable.QUEUE_PREFIX);
      redis.disconnect();
    }
    writeFileSync(`${tmp.dir}/not-a-key.json`, "root:x:0:0\n");
    await expect(createRuntime(testConfig(tmp.dir, { LEDGER_KEY_PATH: `${tmp.dir}/not-a-key.json` }))).rejects.toThrow(/^LEDGER_KEY_PATH .*not-a-key.json is not a readable JSON key file/);
  });

  it("HUB_ADMIN_KEY and METRICS_TOKEN take 16 characters or more, HUB_SECRET 32, blanks around them are not part of them (a short admin key could be guessed)", () => {
    expect(() => loadConfig({ HUB_ADMIN_KEY: "change-me" })).toThrow(/HUB_ADMIN_KEY: at least 16 characters/);
    expect(() => loadConfig({ HUB_ADMIN_KEY: "  change-me      \n" })).toThrow(/HUB_ADMIN_KEY: at least 16 characters/);
    expect(() => loadConfig({ METRICS_TOKEN: "short" })).toThrow(/METRICS_TOKEN: at least 16 characters/);
    expect(() => loadConfig({ HUB_SECRET: "sixteen-chars-16" })).toThrow(/HUB_SECRET: at least 32 characters/);
    const c = loadConfig({ HUB_ADMIN_KEY: " admin-key-0123456789\n", METRICS_TOKEN: "metrics-token-0123456789 ", HUB_SECRET: "" });
    expect(c.HUB_ADMIN_KEY).toBe("admin-key-0123456789");
    expect(c.METRICS_TOKEN).toBe("metrics-token-0123456789");
    expect(c.HUB_SECRET).toBeUndefined();
  });

  it("MAIL_FROM is a bare address: with a display name every confirmation was refused by the SMTP server (501)", () => {
    expect(() => loadConfig({ MAIL_FROM: "Migros İYS <noreply@hub.example.com>" })).toThrow(/MAIL_FROM: must be a bare address/);
    expect(() => loadConfig({ MAIL_FROM: "noreply" })).toThrow(/MAIL_FROM/);
    expect(loadConfig({ MAIL_FROM: " noreply@hub.example.com " }).MAIL_FROM).toBe("noreply@hub.example.com");
    expect(loadConfig({ MAIL_FROM: "" }).MAIL_FROM).toBeUndefined();
  });
});

describe("a restore that left something out", () => {
  it("a database that is gone beside its ledger key, or a hub secret that is gone while links and endpoints made with it remain, stop the start and make nothing", async () => {
    const dir = tempDir();
    const config = testConfig(dir.dir, { HUB_SECRET: "", HUB_SECRET_PATH: join(dir.dir, "hub-secret") });
    try {
      const first = await createRuntime(config);
      const brand = createBrand(first.deps.db, { code: "LOST", name: "Lost", shortNames: ["LOST"], numbers: [] }, Date.now());
      first.deps.db.$client
        .prepare("INSERT INTO links (link_id, brand_id, recipient, recipient_type, type, created_at) VALUES ('00112233aabbccdd', ?, 'a@example.com', 'BIREYSEL', 'EPOSTA', ?)")
        .run(brand.id, Date.now());
      await first.close();

      // The secret file left out of the restore.
      renameSync(config.HUB_SECRET_PATH, `${config.HUB_SECRET_PATH}.away`);
      await expect(createRuntime(config)).rejects.toThrow(/^HUB_SECRET_PATH .*hub-secret does not exist \(and HUB_SECRET is unset\), while the database holds e-mail rejection links already sent, made with the hub secret: restore the file/);
      expect(existsSync(config.HUB_SECRET_PATH)).toBe(false);
      renameSync(`${config.HUB_SECRET_PATH}.away`, config.HUB_SECRET_PATH);
      await (await createRuntime(config)).close();

      // The database left out (or DATABASE_PATH mistyped): no new, empty ledger beside the key.
      for (const f of ["", "-wal", "-shm"]) rmSync(`${config.DATABASE_PATH}${f}`, { force: true });
      await expect(createRuntime(config)).rejects.toThrow(/^DATABASE_PATH .*hub\.db does not exist, while LEDGER_KEY_PATH .*ledger-key\.json holds a ledger signing key: the hub's database was lost or DATABASE_PATH is wrong/);
      expect(existsSync(config.DATABASE_PATH)).toBe(false);
    } finally {
      await deletePrefix(config.QUEUE_PREFIX);
      dir.cleanup();
    }
  });
});

describe("a hub secret made anew", () => {
  it("is written only once the start is through: one refused for Redis (another hub's prefix) leaves no secret file; the next start writes the one it runs with", async () => {
    const dir = tempDir();
    const prefix = uniquePrefix();
    const config = testConfig(dir.dir, { QUEUE_PREFIX: prefix, HUB_SECRET: "", HUB_SECRET_PATH: join(dir.dir, "hub-secret") });
    const redis = new Redis(REDIS_URL);
    try {
      await redis.set(`${prefix}:hub-id`, "another-hub", "EX", 60);
      await expect(createRuntime(config)).rejects.toThrow(/is another hub's/);
      expect(existsSync(config.HUB_SECRET_PATH)).toBe(false);
      await redis.del(`${prefix}:hub-id`);
      const rt = await createRuntime(config);
      const key = rt.deps.secrets.derive("test");
      await rt.close();
      expect(existsSync(config.HUB_SECRET_PATH)).toBe(true);
      expect(statSync(config.HUB_SECRET_PATH).mode & 0o777).toBe(0o600);
      // What the next start reads is what the first one ran with.
      expect(prepareSecrets(undefined, config.HUB_SECRET_PATH).secrets.derive("test").equals(key)).toBe(true);
    } finally {
      redis.disconnect();
      await deletePrefix(prefix);
      dir.cleanup();
    }
  });

  it("made by two processes at the same moment ends as one: the second to write takes the file the first wrote, and nothing is left beside it", () => {
    const dir = tempDir();
    const path = join(dir.dir, "sub", "hub-secret");
    try {
      const first = prepareSecrets(undefined, path);
      const second = prepareSecrets(undefined, path);
      // Each made its own (neither file existed yet).
      expect(first.secrets.derive("links").equals(second.secrets.derive("links"))).toBe(false);
      first.keep();
      const written = readFileSync(path, "utf8");
      second.keep();
      expect(readFileSync(path, "utf8")).toBe(written);
      // The second's keys (cached before) now come from the file's secret.
      expect(second.secrets.derive("links").equals(first.secrets.derive("links"))).toBe(true);
      expect(second.secrets.pseudonym("p", "905321234567")).toBe(first.secrets.pseudonym("p", "905321234567"));
      expect(readdirSync(join(dir.dir, "sub"))).toEqual(["hub-secret"]);
    } finally {
      dir.cleanup();
    }
  });
});

describe("QUEUE_PREFIX", () => {
  it("is claimed for its database: another hub's database on the same prefix stops the start; the same database (another process, a restart) starts", async () => {
    const a = tempDir();
    const b = tempDir();
    const prefix = uniquePrefix();
    try {
      const first = await createRuntime(testConfig(a.dir, { QUEUE_PREFIX: prefix }));
      const again = await createRuntime(testConfig(a.dir, { QUEUE_PREFIX: prefix })); // a second process of the same hub
      await again.close();
      // Taken over while this hub ran (its claim lapsed in a Redis outage, a failover lost it): /readyz says so.
      const keyOf = new Redis(REDIS_URL);
      const held = await keyOf.get(`${prefix}:hub-id`);
      await keyOf.set(`${prefix}:hub-id`, "another-hub", "EX", 60);
      const taken = await createApp(first.deps).request("/readyz");
      expect([taken.status, (await taken.json()).checks.queuePrefix]).toEqual([503, expect.stringMatching(new RegExp(`^QUEUE_PREFIX ${prefix} is another hub's on this Redis \\(its database's hub id another-hub;`))]);
      await keyOf.set(`${prefix}:hub-id`, held!, "EX", 60);
      keyOf.disconnect();
      expect((await createApp(first.deps).request("/readyz")).status).toBe(200);
      await expect(createRuntime(testConfig(b.dir, { QUEUE_PREFIX: prefix }))).rejects.toThrow(
        new RegExp(`^QUEUE_PREFIX ${prefix} is another hub's on this Redis \\(its database's hub id [0-9a-f-]{36}; this database's is [0-9a-f-]{36}\\): two hubs on one prefix take each other's jobs`),
      );
      await first.close();
      // Still its for a while: a hub stopped keeps its prefix (its jobs may wait in Redis) until the claim lapses.
      const key = `${prefix}:hub-id`;
      const redis = new Redis(REDIS_URL);
      try {
        const ttl = await redis.ttl(key);
        expect(ttl).toBeGreaterThan(120);
        expect(ttl).toBeLessThanOrEqual(180);
        await expect(createRuntime(testConfig(b.dir, { QUEUE_PREFIX: prefix }))).rejects.toThrow(/is another hub's/);
        await redis.expire(key, 1); // as if the minutes had passed
        await waitFor(async () => (await redis.exists(key)) === 0, { timeoutMs: 5000 });
      } finally {
        redis.disconnect();
      }
      await (await createRuntime(testConfig(b.dir, { QUEUE_PREFIX: prefix }))).close();
    } finally {
      await deletePrefix(prefix);
      a.cleanup();
      b.cleanup();
    }
  });
});

describe("a Redis that does not allow SELECT (a proxy, an ACL)", () => {
  it("database 0 is ready (PING, no SELECT); another database stops the start naming REDIS_URL", async () => {
    const port = 16000 + Math.floor(Math.random() * 4000);
    const redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--rename-command", "SELECT", ""], { stdio: "ignore" });
    const dir = tempDir();
    try {
      const zero = `redis://127.0.0.1:${port}`;
      await waitFor(async () => (await createRedisProbe(zero)) === "PONG", { timeoutMs: 10_000 });
      const runtime = await createRuntime(testConfig(dir.dir, { REDIS_URL: zero }));
      try {
        const ready = await createApp(runtime.deps).request("/readyz");
        expect([ready.status, await ready.json()]).toEqual([200, expect.objectContaining({ checks: { database: "ok", redis: "ok" } })]);
      } finally {
        await runtime.close();
      }
      await expect(createRuntime(testConfig(dir.dir, { REDIS_URL: `${zero}/2` }))).rejects.toThrow(/^REDIS_URL names database 2, which this Redis refuses \(ERR unknown command 'select'/);
    } finally {
      redis.kill();
      dir.cleanup();
    }
  }, 30_000);
});

async function createRedisProbe(url: string): Promise<string | null> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return await probe.ping();
  } catch {
    return null;
  } finally {
    probe.disconnect();
  }
}

describe("migrations", () => {
  it("another program's database is not migrated (nor is the server started on it), nor even switched to WAL; an empty file and the hub's own are", async () => {
    const other = openDatabase(`${tmp.dir}/crm.db`, { backgroundCheckpoints: false });
    other.$client.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, phone TEXT)");
    expect(() => runMigrations(other)).toThrow(/crm\.db \(DATABASE_PATH\) holds another program's tables \(customers\) and none of the hub's/);
    expect(other.$client.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table'").pluck().get()).toBe(1);
    other.$client.close();
    // A file in rollback-journal mode, as most programs keep theirs: the start refuses it before opening it for writing.
    const { default: Sqlite } = await import("better-sqlite3");
    const crm = new Sqlite(`${tmp.dir}/crm2.db`);
    crm.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, phone TEXT)");
    crm.close();
    await expect(createRuntime(testConfig(tmp.dir, { DATABASE_PATH: `${tmp.dir}/crm2.db` }))).rejects.toThrow(/holds another program's tables \(customers\)/);
    const after = new Sqlite(`${tmp.dir}/crm2.db`, { readonly: true });
    expect(after.pragma("journal_mode", { simple: true })).toBe("delete");
    after.close();
    expect(existsSync(`${tmp.dir}/crm2.db-wal`)).toBe(false);
    const fresh = openDatabase(`${tmp.dir}/fresh-hub.db`, { backgroundCheckpoints: false });
    // Made readable by its owner only: it holds every address.
    expect(statSync(`${tmp.dir}/fresh-hub.db`).mode & 0o777).toBe(0o600);
    runMigrations(fresh);
    runMigrations(fresh);
    expect(fresh.$client.prepare("SELECT count(*) FROM consent_events").pluck().get()).toBe(0);
    fresh.$client.close();
  });

  it("a database made before channels were kept per brand keeps every brand on all of its number's channels", () => {
    // The migrations up to 0010, as a hub of that time had them.
    const old = `${tmp.dir}/migrations-0010`;
    cpSync(migrationsFolder, old, { recursive: true });
    const journal = JSON.parse(readFileSync(`${old}/meta/_journal.json`, "utf8")) as { entries: { tag: string }[] };
    journal.entries = journal.entries.slice(0, journal.entries.findIndex((e) => e.tag.startsWith("0011_")));
    writeFileSync(`${old}/meta/_journal.json`, JSON.stringify(journal));
    const db = openDatabase(`${tmp.dir}/upgrade.db`, { backgroundCheckpoints: false });
    migrate(db, { migrationsFolder: old });
    const c = db.$client;
    c.exec(`INSERT INTO brands (id, code, name, created_at) VALUES (1, 'A', 'A', 0), (2, 'B', 'B', 0);
      INSERT INTO numbers (id, number, provider, channels, created_at) VALUES (1, '3434', 'twilio', '["sms","voice"]', 0), (2, '4545', 'twilio', '["sms"]', 0);
      INSERT INTO brand_numbers (number_id, brand_id, position) VALUES (1, 1, 0), (1, 2, 1), (2, 2, 0);`);
    expect(() => c.prepare("SELECT channels FROM brand_numbers").all()).toThrow(/no such column/);
    runMigrations(db);
    expect(c.prepare("SELECT number_id AS n, brand_id AS b, channels FROM brand_numbers ORDER BY 1, 2").all()).toEqual([
      { n: 1, b: 1, channels: '["sms","voice"]' },
      { n: 1, b: 2, channels: '["sms","voice"]' },
      { n: 2, b: 2, channels: '["sms"]' },
    ]);
    expect(brandsOfNumber(db, 1, "voice").map((b) => b.code)).toEqual(["A", "B"]);
    c.close();
  });
});

describe("callback retry schedule", () => {
  it("by default retries until past the endpoint's disabling, beyond a long weekend", () => {
    const c = loadConfig({});
    const total = c.CALLBACK_RETRY_SCHEDULE.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(c.CALLBACK_DISABLE_AFTER_HOURS * 3_600_000);
    expect(c.CALLBACK_RETRY_SCHEDULE.slice(0, 6)).toEqual([0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000]);
  });
});
