import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ConsentAction } from "../db/ledger";
import { createApp } from "../src/app";
import { deletePrefix } from "../test/helpers";
import { loadConfig } from "../src/config";
import { createRuntime } from "../src/runtime";
import { BENCH_ADMIN, BENCH_SECRET, rate, type Scenario } from "./lib";

const ADMIN = BENCH_ADMIN;
const phone = (i: number) => `+90532${String(i).padStart(7, "0")}`;

/** 10 checks of 100 000 recipients against a 1 000 000-consent ledger, vs a raw point-lookup loop over the same addresses. */
export const check1m: Scenario = {
  name: "check-1m",
  description: "1 000 000-recipient pre-send check (10 HTTP calls of 100 000) against a 1 000 000-consent ledger",
  async run() {
    const dir = mkdtempSync(join(tmpdir(), "hub-bench-"));
    const prefix = `hubbench-check-${process.pid}`;
    const runtime = await createRuntime(
      loadConfig({
        DATABASE_PATH: join(dir, "hub.db"),
        LEDGER_KEY_PATH: join(dir, "key.json"),
        HUB_SECRET: BENCH_SECRET,
        QUEUE_PREFIX: prefix,
        HUB_ADMIN_KEY: ADMIN,
        LOG_LEVEL: "silent",
        CHECKPOINT_INTERVAL_SECONDS: "0",
        REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
      }),
    );
    try {
      const app = createApp(runtime.deps);
      const headers = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
      const created = await app.request("/api/v1/brands", { method: "POST", headers, body: JSON.stringify({ code: "BENCH", name: "Bench" }) });
      if (created.status !== 201) throw new Error(`brand: ${created.status}`);
      const brandId = (runtime.deps.db.$client.prepare("SELECT id FROM brands WHERE code = 'BENCH'").get() as { id: number }).id;
      const total = 1_000_000 * Number(process.env.BENCH_SCALE ?? 1);
      const consentDate = Date.now() - 3_600_000;
      // The ledger: every third address refused, the rest consented (through Ledger.apply, hash chain and all).
      for (let i = 0; i < total; i += 5000) {
        const actions: ConsentAction[] = [];
        for (let k = i; k < Math.min(total, i + 5000); k++) {
          actions.push({ brandId, recipient: phone(k), recipientKind: "phone", phoneKind: "mobile", recipientType: "BIREYSEL", type: "MESAJ", status: k % 3 === 0 ? "RET" : "ONAY", source: "HS_WEB", consentDate, origin: "import" });
        }
        runtime.deps.ledger.apply(actions);
      }
      // Asked about addresses half of which the ledger knows, spelled as providers send them.
      const asked = (k: number) => (k % 2 === 0 ? phone(k) : `0532 ${String(k + total).padStart(7, "0").replace(/^(\d{3})(\d{2})(\d{2})$/, "$1 $2 $3")}`);
      const calls = 10;
      const per = total / calls;
      // The client's own work stays off the clock: the request bodies are made before it starts
      // (half a second here: a regex a spelled number), the answers parsed after it stops. The clock
      // covers what the hub does for each call (HTTP, JSON in and out, normalisation, the query) and
      // reading its answer whole.
      const bodies = Array.from({ length: calls }, (_, c) =>
        JSON.stringify({ brand: "BENCH", type: "MESAJ", recipients: Array.from({ length: per }, (_, k) => asked(c * per + k)) }),
      );
      const answers: string[] = [];
      const t0 = performance.now();
      for (const body of bodies) {
        const res = await app.request("/api/v1/check", { method: "POST", headers, body });
        const text = await res.text();
        if (res.status !== 200) throw new Error(`check: ${res.status} ${text}`);
        answers.push(text);
      }
      const ms = performance.now() - t0;
      const allowed = answers.reduce((n, a) => n + (JSON.parse(a) as { allowed: string[] }).allowed.length, 0);
      if (allowed === 0) throw new Error("no recipient allowed: the scenario is broken");

      const lookup = runtime.deps.db.$client.prepare("SELECT status FROM consent_state WHERE brand_id = ? AND recipient = ? AND recipient_type = ? AND type = ?");
      const b0 = performance.now();
      let found = 0;
      for (let k = 0; k < total; k++) if (lookup.get(brandId, k % 2 === 0 ? phone(k) : phone(k + total), "BIREYSEL", "MESAJ")) found++;
      const baseMs = performance.now() - b0;
      if (found === 0) throw new Error("raw loop found nothing");
      return {
        value: rate(total, ms),
        unit: "recipients/s",
        baseline: { name: "raw SQLite point-lookup loop over the same (normalised) addresses", value: rate(total, baseMs) },
        target: 1,
        notes: `${calls} HTTP calls of ${per} recipients (JSON in and out, normalisation, one snapshot; request bodies made before the clock, answers parsed after it); ${allowed} allowed`,
      };
    } finally {
      await runtime.close();
      await deletePrefix(prefix);
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
