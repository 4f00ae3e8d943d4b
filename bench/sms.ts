import { execFile, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { serve } from "@hono/node-server";
import { Queue, Worker } from "bullmq";
import { Hono } from "hono";
import { Redis } from "ioredis";
import twilio from "twilio";
import { createApp } from "../src/app";
import { deletePrefix } from "../test/helpers";
import { loadConfig } from "../src/config";
import { createRuntime } from "../src/runtime";
import { FakeTwilio } from "../test/fakes/sms-providers";
import { BENCH_ADMIN, BENCH_BASE, benchEnv, percentile, pool, rate, type Scenario } from "./lib";

const ACCOUNT_SID = `AC${"b2".repeat(16)}`;
const AUTH_TOKEN = "bench-token";
const BASE = BENCH_BASE;
const ADMIN = BENCH_ADMIN;

/** The fake Twilio in a child process; `sent(since)` reads what it accepted and when. */
async function externalFakeTwilio() {
  const child = spawn(process.execPath, ["--import", "tsx", "bench/fake-twilio-process.ts", ACCOUNT_SID, AUTH_TOKEN], { stdio: ["ignore", "pipe", "inherit"] });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = "";
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      if (buf.includes("\n")) resolve(buf.split("\n")[0]!);
    });
    child.once("exit", (code) => reject(new Error(`fake twilio exited ${code}`)));
  });
  const { api, stats } = JSON.parse(line) as { api: string; stats: string };
  return {
    api,
    async sent(since: number) {
      return (await (await fetch(`${stats}/?since=${since}`)).json()) as { total: number; sent: { to: string; at: number }[] };
    },
    stop() {
      child.kill();
    },
  };
}

async function hub(extra: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "hub-bench-"));
  const prefix = `hubbench-${process.pid}-${Date.now()}`;
  const fake = new FakeTwilio(ACCOUNT_SID, AUTH_TOKEN);
  const config = loadConfig({
    ...benchEnv(dir, prefix),
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_API_BASE_URL: await fake.start(),
    SMS_LIMIT_PER_SENDER_PER_HOUR: "1000",
    SMS_LIMIT_PER_NUMBER_PER_MINUTE: "1000000",
    ...extra,
  });
  const runtime = await createRuntime(config);
  const app = createApp(runtime.deps);
  const res = await app.request("/api/v1/brands", {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ code: "MIGROS", name: "Migros", shortNames: ["MIGROS"], numbers: [{ number: "3434", provider: "twilio" }] }),
  });
  if (res.status !== 201) throw new Error(`brand: ${res.status} ${await res.text()}`);
  return {
    runtime,
    app,
    fake,
    prefix,
    async close() {
      await runtime.close();
      await fake.stop();
      await deletePrefix(prefix);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Twilio's MessageSids are random: so are these (a counter's would append to the unique index in order). */
const messageSid = (i: number) => `SM${createHash("md5").update(String(i)).digest("hex")}`;

function signedRequest(i: number, path = "/sms/twilio"): Request {
  const sid = messageSid(i);
  const params = { MessageSid: sid, AccountSid: ACCOUNT_SID, From: `+90532${String(i).padStart(7, "0")}`, To: "3434", Body: "RET MIGROS" };
  const signature = twilio.getExpectedTwilioSignature(AUTH_TOKEN, `${BASE}${path}`, params);
  const body = new URLSearchParams(params).toString();
  // Twilio sends Content-Length, which lets the body limit check the header instead of the stream.
  return new Request(`${BASE}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "content-length": String(Buffer.byteLength(body)), "x-twilio-signature": signature },
    body,
  });
}

export const smsIngress: Scenario = {
  name: "sms-ingress",
  description: "signed Twilio webhooks answered by the hub (signature, limits, durable receipt, enqueue), 32 in flight",
  async run() {
    const h = await hub({ RUN_WORKERS: "false" });
    try {
      const total = 4000 * Number(process.env.BENCH_SCALE ?? 1);
      const bare = new Hono().post("/sms/twilio", async (c) => {
        const form = new URLSearchParams(await c.req.text());
        return c.body(`<Response/>${form.get("MessageSid")?.length ?? 0}`, 200, { "content-type": "text/xml" });
      });
      // Warm up both paths, then alternate them five times and keep each one's median round (this
      // machine is shared: single rounds of either side vary by ±10 %).
      await pool(500, 32, async (i) => void (await (await h.app.fetch(signedRequest(1_000_000 + i))).text()));
      await pool(500, 32, async (i) => void (await (await bare.fetch(signedRequest(i))).text()));
      const hubRounds: number[] = [];
      const bareRounds: number[] = [];
      for (let round = 0; round < 5; round++) {
        const offset = 2_000_000 + round * total;
        hubRounds.push(
          await pool(total, 32, async (i) => {
            const res = await h.app.fetch(signedRequest(offset + i));
            if (res.status !== 200) throw new Error(`webhook answered ${res.status}`);
            await res.text();
          }),
        );
        bareRounds.push(await pool(total, 32, async (i) => void (await (await bare.fetch(signedRequest(offset + i))).text())));
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const ms = median(hubRounds);
      const bareMs = median(bareRounds);
      return {
        value: rate(total, ms),
        unit: "webhooks/s",
        baseline: { name: "bare Hono handler parsing the same form", value: rate(total, bareMs) },
        target: 0.5,
      };
    } finally {
      await h.close();
    }
  },
};

/** Whether wrk (Debian's package) is installed: `wrk --version` prints its usage and exits 1. */
function hasWrk(): boolean {
  try {
    execFileSync("wrk", ["--version"], { stdio: "ignore" });
    return true;
  } catch (err) {
    return (err as { status?: number }).status === 1;
  }
}

/** Requests a second that wrk (one thread, `connections` kept alive) gets answered from `url` in `seconds`, posting `file`'s webhooks. */
function wrkRate(url: string, path: string, file: string, connections: number, seconds: number): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile(
      "wrk",
      ["-t1", `-c${connections}`, `-d${seconds}s`, "-s", fileURLToPath(new URL("./wrk-post.lua", import.meta.url)), url, "--", file, path],
      (err, stdout) => {
        if (err) return reject(err);
        if (/Non-2xx|Socket errors/.test(stdout)) return reject(new Error(`wrk saw failed requests:\n${stdout}`));
        const m = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
        if (!m) return reject(new Error(`wrk printed no rate:\n${stdout}`));
        resolve(Number(m[1]));
      },
    );
  });
}

export const smsIngressHttp: Scenario = {
  name: "sms-ingress-http",
  description:
    "signed Twilio webhooks over HTTP, served by @hono/node-server as npm start serves them, 32 keep-alive connections from wrk, vs the bare Hono handler served the same way",
  async run() {
    if (!hasWrk()) throw new Error("sms-ingress-http needs wrk (apt-get install wrk)");
    const h = await hub({ RUN_WORKERS: "false" });
    const dir = mkdtempSync(join(tmpdir(), "hub-bench-wrk-"));
    const listen = (fetch: (req: Request) => Response | Promise<Response>) =>
      new Promise<{ url: string; close(): Promise<void> }>((resolve) => {
        const server = serve({ fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) =>
          resolve({ url: `http://127.0.0.1:${info.port}`, close: () => new Promise((r) => server.close(() => r())) }),
        );
      });
    const bare = new Hono().post("/sms/twilio", async (c) => {
      const form = new URLSearchParams(await c.req.text());
      return c.body(`<Response/>${form.get("MessageSid")?.length ?? 0}`, 200, { "content-type": "text/xml" });
    });
    const hubServer = await listen(h.app.fetch);
    const bareServer = await listen(bare.fetch);
    try {
      const seconds = 3;
      // Each hub round's file holds more webhooks than a round can send, all with new MessageSids (a
      // repeated one would be answered as a retry); the bare handler keeps nothing and reuses one file.
      const perRound = 80_000;
      let next = 10_000_000;
      const file = () => {
        const lines: string[] = [];
        for (let k = 0; k < perRound; k++, next++) {
          const params = { MessageSid: messageSid(next), AccountSid: ACCOUNT_SID, From: `+90532${String(next % 10_000_000).padStart(7, "0")}`, To: "3434", Body: "RET MIGROS" };
          lines.push(`${twilio.getExpectedTwilioSignature(AUTH_TOKEN, `${BASE}/sms/twilio`, params)}\t${new URLSearchParams(params).toString()}`);
        }
        const path = join(dir, `round-${next}.txt`);
        writeFileSync(path, `${lines.join("\n")}\n`);
        return path;
      };
      const bareFile = file();
      const round = (server: { url: string }, s = seconds) => wrkRate(`${server.url}/sms/twilio`, "/sms/twilio", server === bareServer ? bareFile : file(), 32, s);
      await round(hubServer, 1);
      await round(bareServer, 1);
      const hubRates: number[] = [];
      const bareRates: number[] = [];
      for (let r = 0; r < 5; r++) {
        hubRates.push(await round(hubServer));
        bareRates.push(await round(bareServer));
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      return {
        value: Number(median(hubRates).toFixed(1)),
        unit: "webhooks/s",
        baseline: { name: "bare Hono handler parsing the same form, served the same way", value: Number(median(bareRates).toFixed(1)) },
        target: null,
        notes: `median of 5 rounds of ${seconds} s alternating with the baseline's; wrk -t1 -c32 on the same machine`,
      };
    } finally {
      await hubServer.close();
      await bareServer.close();
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

async function bullmqNoop(prefix: string, total: number, concurrency: number): Promise<number> {
  const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const queue = new Queue("noop", { connection: new Redis(url, { maxRetriesPerRequest: null }), prefix });
  let done = 0;
  let resolve!: () => void;
  const finished = new Promise<void>((r) => (resolve = r));
  const t0 = performance.now();
  const worker = new Worker("noop", async () => {}, { connection: new Redis(url, { maxRetriesPerRequest: null }), prefix, concurrency });
  worker.on("completed", () => {
    if (++done === total) resolve();
  });
  for (let i = 0; i < total; i += 500) {
    await queue.addBulk(Array.from({ length: Math.min(500, total - i) }, (_, k) => ({ name: "noop", data: { i: i + k } })));
  }
  await finished;
  const ms = performance.now() - t0;
  await worker.close();
  await queue.close();
  return ms;
}

export const smsE2e: Scenario = {
  name: "sms-e2e",
  description: "RET opt-outs from signed webhook to the confirmation received by a fake Twilio in another process (ledger, outbox, SDK send)",
  async run() {
    const provider = await externalFakeTwilio();
    const h = await hub({ TWILIO_API_BASE_URL: provider.api });
    try {
      h.runtime.startBackground();
      const waitAll = async (count: number) => {
        const deadline = Date.now() + 120_000;
        for (;;) {
          const { total } = await provider.sent(count);
          if (total >= count) return;
          if (Date.now() > deadline) throw new Error(`only ${total}/${count} confirmations arrived`);
          await new Promise((r) => setTimeout(r, 10));
        }
      };
      // Warm-up: the first opt-outs through a fresh process pay for compiling the whole path (JIT,
      // first SQLite pages, first connections) and ran at about half speed, while the baseline ran
      // afterwards on warm BullMQ code. Both sides now get a warm-up round of the same size first
      // (opt-outs here, no-op jobs before the baseline's measured round).
      const total = process.env.BENCH_PACED_ONLY ? 0 : 2000 * Number(process.env.BENCH_SCALE ?? 1);
      const warmup = total;
      await pool(warmup, 32, async (i) => void (await (await h.app.fetch(signedRequest(3_000_000 + i))).text()));
      await waitAll(warmup);
      // Throughput: as fast as the webhooks are answered, in three rounds alternating with the
      // baseline's no-op rounds; each side's median round counts (single rounds of either vary by
      // ±20 % on this shared machine).
      const ROUNDS = 3;
      await bullmqNoop(`${h.prefix}-noop`, warmup, 8);
      const rounds: number[] = [];
      const noopRounds: number[] = [];
      let done = warmup;
      for (let round = 0; round < ROUNDS; round++) {
        const t0 = performance.now();
        await pool(total, 32, async (i) => void (await (await h.app.fetch(signedRequest(round * total + i))).text()));
        done += total;
        await waitAll(done);
        rounds.push(performance.now() - t0);
        noopRounds.push(await bullmqNoop(`${h.prefix}-noop`, total, 8));
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const ms = median(rounds);
      const noopMs = median(noopRounds);

      // Latency at a steady 500 opt-outs/s for 4 s: webhook posted → confirmation at the provider.
      const paced = 2000;
      const sentAt = new Map<string, number>();
      const start = performance.now();
      const inflight: Promise<unknown>[] = [];
      for (let i = 0; i < paced; i++) {
        const wait = start + i * 2 - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const n = 5_000_000 + i;
        sentAt.set(`+90532${String(n).padStart(7, "0")}`, Date.now());
        inflight.push(Promise.resolve(h.app.fetch(signedRequest(n))).then((r) => r.text()));
      }
      await Promise.all(inflight);
      await waitAll(done + paced);
      const latencies = (await provider.sent(done)).sent
        .map((s) => s.at - (sentAt.get(s.to) ?? Number.NaN))
        .filter((x) => Number.isFinite(x))
        .sort((a, b) => a - b);
      if (process.env.BENCH_DEBUG) {
        const db = h.runtime.deps.db.$client;
        const q = (sql: string) => (db.prepare(sql).all() as { d: number }[]).map((r) => r.d).sort((a, b) => a - b);
        const apply = q("SELECT applied_at - received_at AS d FROM receipts ORDER BY id DESC LIMIT 2000");
        const send = q("SELECT o.updated_at - o.created_at AS d FROM outbox o ORDER BY id DESC LIMIT 2000");
        console.error("apply p50/p99", percentile(apply, 50), percentile(apply, 99), "send p50/p99", percentile(send, 50), percentile(send, 99));
      }
      await deletePrefix(`${h.prefix}-noop`);
      return {
        value: rate(total, ms),
        unit: "opt-outs/s",
        baseline: { name: "BullMQ no-op jobs on the same Redis", value: rate(total, noopMs) },
        target: 0.25,
        p50_ms: percentile(latencies, 50),
        p99_ms: percentile(latencies, 99),
        notes: `latency at a steady 500 opt-outs/s (${latencies.length} samples); throughput with 32 webhooks in flight, median of ${ROUNDS} rounds alternating with the baseline's, after a warm-up round of ${warmup} (the no-op baseline gets one too)`,
      };
    } finally {
      await h.close();
      provider.stop();
    }
  },
};
