import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import twilio from "twilio";
import { CallStateSealer } from "../channels/ivr/state";
import { createApp } from "../src/app";
import { deletePrefix } from "../test/helpers";
import { loadConfig } from "../src/config";
import { createRuntime } from "../src/runtime";
import { BENCH_ADMIN, BENCH_BASE, benchEnv, pool, rate, type Scenario } from "./lib";

const ACCOUNT_SID = `AC${"e4".repeat(16)}`;
const AUTH_TOKEN = "bench-voice-token";
const BASE = BENCH_BASE;
const ADMIN = BENCH_ADMIN;
const NUMBER = "+908502220000";

/** A bare handler answering a TwiML Gather of the same size: form parsing and the XML, nothing else. */
function bareApp(sample: string) {
  return new Hono().post("/voice/twilio/menu", async (c) => {
    const form = new URLSearchParams(await c.req.text());
    return c.body(sample.replace("CALLSID", form.get("CallSid") ?? ""), 200, { "content-type": "text/xml; charset=utf-8" });
  });
}

export const ivrStep: Scenario = {
  name: "ivr-step",
  description: "signed Twilio voice webhooks answering the main menu (key 1) with the confirmation TwiML: signature, state token open + seal, TwiML, 32 in flight",
  async run() {
    const dir = mkdtempSync(join(tmpdir(), "hub-bench-"));
    const prefix = `hubbench-${process.pid}-${Date.now()}`;
    const runtime = await createRuntime(
      loadConfig({
        ...benchEnv(dir, prefix),
        TWILIO_ACCOUNT_SID: ACCOUNT_SID,
        TWILIO_AUTH_TOKEN: AUTH_TOKEN,
        RUN_WORKERS: "false",
      }),
    );
    try {
      const app = createApp(runtime.deps);
      const res = await app.request("/api/v1/brands", {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify({ code: "MIGROS", name: "Migros", shortNames: ["MİGROS"], numbers: [{ number: NUMBER, provider: "twilio", channels: ["voice"] }] }),
      });
      if (res.status !== 201) throw new Error(`brand: ${res.status} ${await res.text()}`);
      const brandId = (runtime.deps.db.$client.prepare("SELECT id FROM brands WHERE code = 'MIGROS'").get() as { id: number }).id;
      const sealer = new CallStateSealer(runtime.deps.secrets.derive("ivr-state"), 1800, () => Date.now());

      const total = 3000 * Number(process.env.BENCH_SCALE ?? 1);
      const rounds = 3;
      // Each call's menu step as Twilio would post it, prepared before timing (Twilio signs, not us).
      const prepared: { url: string; body: string; signature: string }[] = [];
      for (let i = 0; i < total * rounds + 500; i++) {
        const sid = `CA${i.toString(16).padStart(32, "0")}`;
        const token = await sealer.seal(sid, { step: "menu", lang: "tr", brand: brandId, retries: 0 });
        const url = `${BASE}/voice/twilio/menu?s=${encodeURIComponent(token)}`;
        const params = { AccountSid: ACCOUNT_SID, CallSid: sid, From: `+90532${String(i).padStart(7, "0")}`, To: NUMBER, Digits: "1", CallStatus: "in-progress" };
        prepared.push({ url, body: new URLSearchParams(params).toString(), signature: twilio.getExpectedTwilioSignature(AUTH_TOKEN, url, params) });
      }
      const request = (p: (typeof prepared)[number]) =>
        new Request(p.url, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", "content-length": String(Buffer.byteLength(p.body)), "x-twilio-signature": p.signature },
          body: p.body,
        });
      const sample = await (await app.fetch(request(prepared[0]!))).text();
      if (!sample.includes("<Gather")) throw new Error(`unexpected answer: ${sample}`);
      const bare = bareApp(sample.replace(/CA[0-9a-f]{32}/, "CALLSID"));

      const hubStep = async (i: number) => {
        const r = await app.fetch(request(prepared[i]!));
        if (r.status !== 200) throw new Error(`step answered ${r.status}: ${await r.text()}`);
        await r.text();
      };
      const bareStep = async (i: number) => void (await (await bare.fetch(request(prepared[i]!))).text());
      await pool(500, 32, async (i) => hubStep(total * rounds + i));
      await pool(500, 32, async (i) => bareStep(total * rounds + i));
      const hubRounds: number[] = [];
      const bareRounds: number[] = [];
      for (let round = 0; round < rounds; round++) {
        hubRounds.push(await pool(total, 32, (i) => hubStep(round * total + i)));
        bareRounds.push(await pool(total, 32, (i) => bareStep(round * total + i)));
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      return {
        value: rate(total, median(hubRounds)),
        unit: "menu steps/s",
        baseline: { name: "bare Hono handler parsing the form and answering a TwiML Gather of the same size", value: rate(total, median(bareRounds)) },
        target: null,
      };
    } finally {
      await runtime.close();
      await deletePrefix(prefix);
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
