import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ConsentAction } from "../db/ledger";
import { createApp } from "../src/app";
import { deletePrefix, mobileOnay } from "../test/helpers";
import { createWebhookClient } from "../src/callbacks/http";
import { loadConfig } from "../src/config";
import { createRuntime } from "../src/runtime";
import { BENCH_ADMIN, BENCH_SECRET, rate, type Scenario } from "./lib";

const ADMIN = BENCH_ADMIN;
const RECEIVERS = 10;
const PARTNERS = 100;
const EVENTS = 200;

async function receivers(n: number): Promise<{ urls: string[]; count(): number; stop(): Promise<void> }> {
  let count = 0;
  const servers: Server[] = [];
  const urls: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        count++;
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    servers.push(s);
    urls.push(`http://127.0.0.1:${(s.address() as AddressInfo).port}`);
  }
  return {
    urls,
    count: () => count,
    async stop() {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    },
  };
}

/** Signed callback deliveries (ledger → outbox → queue → signed POST → log) vs bare POSTs to the same receivers. */
export const callbacksBench: Scenario = {
  name: "callbacks",
  description: `${EVENTS} consent changes fanned out to ${PARTNERS} partners of a brand on ${RECEIVERS} local endpoints, signed and logged`,
  async run() {
    const dir = mkdtempSync(join(tmpdir(), "hub-bench-"));
    const prefix = `hubbench-cb-${process.pid}-${Date.now()}`;
    const rx = await receivers(RECEIVERS);
    const config = loadConfig({
      DATABASE_PATH: join(dir, "hub.db"),
      LEDGER_KEY_PATH: join(dir, "key.json"),
      HUB_SECRET: BENCH_SECRET,
      QUEUE_PREFIX: prefix,
      HUB_ADMIN_KEY: ADMIN,
      LOG_LEVEL: "silent",
      CHECKPOINT_INTERVAL_SECONDS: "0",
      CALLBACK_ALLOW_PRIVATE: "true",
      REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    });
    const runtime = await createRuntime(config);
    try {
      const app = createApp(runtime.deps);
      const auth = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
      await app.request("/api/v1/brands", { method: "POST", headers: auth, body: JSON.stringify({ code: "BENCH", name: "Bench", shortNames: ["BENCH"] }) });
      for (let i = 0; i < PARTNERS; i++) {
        const res = await app.request("/api/v1/brands/BENCH/partners", {
          method: "POST",
          headers: auth,
          body: JSON.stringify({ retailerCode: String(10_000_000 + i), name: `Bayi ${i}`, url: `${rx.urls[i % RECEIVERS]}/p${i}` }),
        });
        if (res.status !== 201) throw new Error(`partner: ${res.status} ${await res.text()}`);
      }
      const brandId = (runtime.deps.db.$client.prepare("SELECT id FROM brands WHERE code = 'BENCH'").get() as { id: number }).id;
      runtime.startBackground();
      const consentDate = Date.now() - 3_600_000;
      const actions: ConsentAction[] = Array.from({ length: EVENTS }, (_, i) => mobileOnay(brandId, i, consentDate));
      const total = EVENTS * PARTNERS;
      const finished = runtime.deps.db.$client.prepare("SELECT count(*) AS n FROM outbox WHERE kind = 'callback' AND status != 'pending'");
      const t0 = performance.now();
      const { outbox } = runtime.deps.ledger.apply(actions);
      await runtime.deps.jobs.enqueueOutbox(outbox);
      for (;;) {
        if ((finished.get() as { n: number }).n >= total) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const subjectMs = performance.now() - t0;
      const ok = (runtime.deps.db.$client.prepare("SELECT count(*) AS n FROM deliveries WHERE ok = 1").get() as { n: number }).n;

      // Baseline: the same number of bare POSTs (same client, same concurrency as the callbacks worker).
      const client = createWebhookClient({ timeoutMs: 15_000, allowPrivate: true });
      const body = JSON.stringify({ type: "consent.changed", timestamp: new Date().toISOString(), data: { brand: "BENCH", recipient: "+905320000000", n: 0 } });
      let next = 0;
      const b0 = performance.now();
      await Promise.all(
        Array.from({ length: 32 * 4 }, async () => {
          while (next < total) {
            const i = next++;
            await client.post(`${rx.urls[i % RECEIVERS]}/p${i % PARTNERS}`, { "webhook-id": `x${i}` }, body);
          }
        }),
      );
      const baselineMs = performance.now() - b0;
      client.close();
      return {
        value: rate(total, subjectMs),
        unit: "deliveries/s",
        baseline: { name: "bare HTTP POSTs to the same endpoints (keep-alive, 128 in flight)", value: rate(total, baselineMs) },
        target: null,
        notes: `${ok}/${total} delivered ok; ${rx.count()} requests received`,
      };
    } finally {
      await runtime.close();
      await rx.stop();
      await deletePrefix(prefix);
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
