import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { createApp } from "../src/app";
import { deletePrefix } from "../test/helpers";
import { loadConfig } from "../src/config";
import { createRuntime } from "../src/runtime";
import { BENCH_ADMIN, BENCH_BASE, benchEnv, pool, rate, type Scenario } from "./lib";

const BASE = BENCH_BASE;
const ADMIN = BENCH_ADMIN;
const BATCH = 10_000;

/** A hub without workers (the click is measured up to its durable receipt) and one brand. */
async function hub() {
  const dir = mkdtempSync(join(tmpdir(), "hub-bench-"));
  const prefix = `hubbench-link-${process.pid}-${Date.now()}`;
  const runtime = await createRuntime(
    loadConfig({
      ...benchEnv(dir, prefix),
      RUN_WORKERS: "false",
      // Every in-process request has the same (unknown) client IP.
      LINK_LIMIT_PER_IP_PER_MINUTE: "100000000",
    }),
  );
  const app = createApp(runtime.deps);
  const res = await app.request("/api/v1/brands", {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ code: "MIGROS", name: "Migros" }),
  });
  if (res.status !== 201) throw new Error(`brand: ${res.status} ${await res.text()}`);
  return {
    runtime,
    app,
    async close() {
      await runtime.close();
      await deletePrefix(prefix);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const issueRequest = (recipients: string[]) =>
  new Request(`${BASE}/api/v1/links`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ brand: "MIGROS", recipients }),
  });

const oneClick = (url: string) =>
  new Request(url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "content-length": "26" }, body: "List-Unsubscribe=One-Click" });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A bare Hono handler doing the least a link endpoint must: parse the form, check an HMAC, answer. */
function bareApp() {
  const key = randomBytes(32);
  return new Hono()
    .post("/r/:token", async (c) => {
      const form = new URLSearchParams(await c.req.text());
      createHmac("sha256", key).update(c.req.param("token")).digest();
      return form.get("List-Unsubscribe") === "One-Click" ? c.body(null, 200) : c.body("", 400);
    })
    .post("/api/v1/links", async (c) => {
      const { recipients } = (await c.req.json()) as { recipients: string[] };
      return c.json({ links: recipients.map(() => ({ url: `${BASE}/r/${randomBytes(21).toString("base64url")}` })) });
    });
}

async function issueBatch(app: { fetch: (r: Request) => Response | Promise<Response> }, offset: number): Promise<{ ms: number; urls: string[] }> {
  const recipients = Array.from({ length: BATCH }, (_, i) => `alici${offset + i}@example.com`);
  const t0 = performance.now();
  const res = await app.fetch(issueRequest(recipients));
  const body = (await res.json()) as { links: { url: string }[] };
  const ms = performance.now() - t0;
  if (res.status !== 200 || body.links.length !== BATCH) throw new Error(`issue answered ${res.status}`);
  return { ms, urls: body.links.map((l) => l.url) };
}

export const linkClick: Scenario = {
  name: "link-click",
  description: "RFC 8058 one-click POSTs to distinct rejection links answered after a durable receipt (token check, limit, receipt, enqueue), 32 in flight",
  async run() {
    const h = await hub();
    try {
      const bare = bareApp();
      const issued = await issueBatch(h.app, 0);
      const issuedMore = await issueBatch(h.app, BATCH);
      const urls = [...issued.urls, ...issuedMore.urls];
      const per = Math.floor(urls.length / 4);
      // Warm up, then three rounds each on fresh links; keep each side's median round.
      await pool(per, 32, async (i) => void (await (await h.app.fetch(oneClick(urls[i]!))).text()));
      await pool(per, 32, async (i) => void (await (await bare.fetch(oneClick(urls[i]!))).text()));
      const hubRounds: number[] = [];
      const bareRounds: number[] = [];
      for (let round = 1; round <= 3; round++) {
        const slice = urls.slice(round * per, (round + 1) * per);
        hubRounds.push(
          await pool(slice.length, 32, async (i) => {
            const res = await h.app.fetch(oneClick(slice[i]!));
            if (res.status !== 200) throw new Error(`one-click answered ${res.status}`);
            await res.text();
          }),
        );
        bareRounds.push(await pool(slice.length, 32, async (i) => void (await (await bare.fetch(oneClick(slice[i]!))).text())));
      }
      const receipts = (h.runtime.deps.db.$client.prepare("SELECT count(*) AS n FROM receipts WHERE channel = 'link'").get() as { n: number }).n;
      if (receipts !== per * 4) throw new Error(`expected ${per * 4} durable receipts, found ${receipts}`);
      return {
        value: rate(per, median(hubRounds)),
        unit: "clicks/s",
        baseline: { name: "bare Hono handler parsing the same form and computing one HMAC", value: rate(per, median(bareRounds)) },
        target: null,
        notes: `${receipts} durable receipts; issuance of a ${BATCH}-recipient batch: ${rate(BATCH, issued.ms)} links/s (new), ${rate(BATCH, issuedMore.ms)} links/s (second batch)`,
      };
    } finally {
      await h.close();
    }
  },
};

export const linkIssue: Scenario = {
  name: "link-issue",
  description: `POST /api/v1/links with ${BATCH} recipients (validation, one transaction of upserts, signing), new and again`,
  async run() {
    const h = await hub();
    try {
      const bare = bareApp();
      const rounds: number[] = [];
      const again: number[] = [];
      const bareRounds: number[] = [];
      for (let round = 0; round < 3; round++) {
        rounds.push((await issueBatch(h.app, round * BATCH)).ms);
        again.push((await issueBatch(h.app, round * BATCH)).ms);
        bareRounds.push((await issueBatch(bare, round * BATCH)).ms);
      }
      return {
        value: rate(BATCH, median(rounds)),
        unit: "links/s",
        baseline: { name: "bare Hono handler parsing the same JSON and answering random URLs", value: rate(BATCH, median(bareRounds)) },
        target: null,
        notes: `re-issuing the same ${BATCH} (same URLs): ${rate(BATCH, median(again))} links/s`,
      };
    } finally {
      await h.close();
    }
  },
};
