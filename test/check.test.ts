import twilio from "twilio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../src/app";
import { CHECK_SQL, CHECK_TACIR_SQL } from "../src/check";
import { formatIysDate } from "../src/domain/time";
import { createRuntime, type Runtime } from "../src/runtime";
import { ADMIN_KEY, authed, deletePrefix, tempDir, testConfig } from "./helpers";

const AUTH_TOKEN = "twilio-check-token";
const tmp = tempDir();
let runtime: Runtime;
let app: App;

// No workers: what the check answers must not depend on a job having run.
beforeAll(async () => {
  runtime = await createRuntime(testConfig(tmp.dir, { TWILIO_ACCOUNT_SID: `AC${"c3".repeat(16)}`, TWILIO_AUTH_TOKEN: AUTH_TOKEN }));
  app = createApp(runtime.deps);
  const res = await app.request("/api/v1/brands", authed({ code: "MIGROS", name: "Migros", shortNames: ["MIGROS"], numbers: [{ number: "3434", provider: "twilio" }] }));
  expect(res.status).toBe(201);
  const consentDate = formatIysDate(new Date(Date.now() - 3_600_000));
  for (const [recipient, type, status] of [
    ["+905321110001", "MESAJ", "ONAY"],
    ["+905321110002", "MESAJ", "ONAY"],
    ["+905321110003", "MESAJ", "RET"],
    ["+905321110004", "ARAMA", "ONAY"],
    ["ayse@example.com", "EPOSTA", "ONAY"],
  ] as const) {
    const r = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient, type, status, source: "HS_WEB", consentDate }));
    expect(r.status, await r.clone().text()).toBe(201);
  }
});

afterAll(async () => {
  await runtime.close();
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

const check = (body: unknown) => app.request("/api/v1/check", authed(body));

describe("pre-send check", () => {
  it("splits recipients by consent, giving addresses back as sent", async () => {
    const res = await check({ brand: "migros", type: "MESAJ", recipients: ["0532 111 00 01", "+905321110002", "905321110003", "5321110004", "not a number"] });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      allowed: ["0532 111 00 01", "+905321110002"],
      denied: [
        { recipient: "905321110003", reason: "refused" },
        { recipient: "5321110004", reason: "no_consent" },
        { recipient: "not a number", reason: "invalid_address", code: expect.stringMatching(/^H\d+$/) },
      ],
    });
  });

  it("answers per channel: a call consent does not allow SMS, an e-mail needs EPOSTA", async () => {
    const calls = await (await check({ brand: "MIGROS", type: "ARAMA", recipients: ["+905321110004", "+905321110001"] })).json();
    expect(calls).toEqual({ allowed: ["+905321110004"], denied: [{ recipient: "+905321110001", reason: "no_consent" }] });
    const mail = await (await check({ brand: "MIGROS", type: "EPOSTA", recipients: ["AYSE@example.com", "+905321110001"] })).json();
    expect(mail.allowed).toEqual(["AYSE@example.com"]);
    expect(mail.denied).toEqual([{ recipient: "+905321110001", reason: "invalid_address", code: "H464" }]);
  });

  it("a fixed line is an invalid address for SMS but may be called", async () => {
    const sms = await (await check({ brand: "MIGROS", type: "MESAJ", recipients: ["0212 555 11 22"] })).json();
    expect(sms.denied).toEqual([{ recipient: "0212 555 11 22", reason: "invalid_address", code: "H464" }]);
    const call = await (await check({ brand: "MIGROS", type: "ARAMA", recipients: ["0212 555 11 22"] })).json();
    expect(call.denied).toEqual([{ recipient: "0212 555 11 22", reason: "no_consent" }]);
  });

  it("TACIR recipients are allowed until they refuse", async () => {
    const res = await (await check({ brand: "MIGROS", type: "MESAJ", recipientType: "TACIR", recipients: ["+905329990001"] })).json();
    expect(res).toEqual({ allowed: ["+905329990001"], denied: [] });
  });

  it("a TACIR recipient who refused under BIREYSEL (a texted RET, a suppression) is refused; a later TACIR consent stands", async () => {
    const post = async (recipient: string, recipientType: string, status: string, minutesAgo: number) => {
      const consentDate = formatIysDate(new Date(Date.now() - minutesAgo * 60_000));
      const r = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient, type: "MESAJ", status, source: "HS_WEB", consentDate, recipientType }));
      expect(r.status, await r.clone().text()).toBe(201);
    };
    await post("+905329990101", "BIREYSEL", "ONAY", 50);
    await post("+905329990101", "BIREYSEL", "RET", 40); // refused: a movement
    await post("+905329990102", "BIREYSEL", "RET", 40); // refused: a bare suppression
    await post("+905329990103", "TACIR", "ONAY", 50);
    await post("+905329990103", "BIREYSEL", "RET", 40); // refused after the TACIR consent
    await post("+905329990104", "BIREYSEL", "RET", 40);
    await post("+905329990104", "TACIR", "ONAY", 30); // consented as TACIR after refusing
    await post("+905329990105", "BIREYSEL", "ONAY", 40);
    const recipients = ["+905329990101", "+905329990102", "+905329990103", "+905329990104", "+905329990105"];
    const res = await (await check({ brand: "MIGROS", type: "MESAJ", recipientType: "TACIR", recipients })).json();
    expect(res).toEqual({
      allowed: ["+905329990104", "+905329990105"],
      denied: ["+905329990101", "+905329990102", "+905329990103"].map((recipient) => ({ recipient, reason: "refused" })),
    });
    // The BIREYSEL answer is unchanged: a TACIR consent is not an individual's.
    const individual = await (await check({ brand: "MIGROS", type: "MESAJ", recipients: ["+905329990104", "+905329990105"] })).json();
    expect(individual).toEqual({ allowed: ["+905329990105"], denied: [{ recipient: "+905329990104", reason: "refused" }] });

    // The later by date decides, not the later recorded: a TACIR consent written after the BIREYSEL
    // refusal but dated before it (a registered base, a back-dated write), or undated, is older.
    await post("+905329990106", "BIREYSEL", "RET", 30);
    await post("+905329990106", "TACIR", "ONAY", 60);
    await post("+905329990107", "BIREYSEL", "RET", 30);
    const undated = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient: "+905329990107", type: "MESAJ", status: "ONAY", recipientType: "TACIR" }));
    expect(undated.status, await undated.clone().text()).toBe(201);
    // And a TACIR consent dated after a refusal written later (dated earlier) stands.
    await post("+905329990108", "TACIR", "ONAY", 20);
    await post("+905329990108", "BIREYSEL", "RET", 45);
    const byDate = await (await check({ brand: "MIGROS", type: "MESAJ", recipientType: "TACIR", recipients: ["+905329990106", "+905329990107", "+905329990108"] })).json();
    expect(byDate).toEqual({ allowed: ["+905329990108"], denied: ["+905329990106", "+905329990107"].map((recipient) => ({ recipient, reason: "refused" })) });

    // An undated TACIR refusal (a first record may be undated): a consent dated before the hub received
    // it came before it, and is refused (it passed, as nothing was dated to compare it with).
    const refusal = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient: "+905329990109", type: "MESAJ", status: "RET", recipientType: "TACIR" }));
    expect(refusal.status, await refusal.clone().text()).toBe(201);
    const before = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient: "+905329990109", type: "MESAJ", status: "ONAY", source: "HS_WEB", recipientType: "TACIR", consentDate: formatIysDate(new Date(Date.now() - 7_200_000)) }));
    expect(before.status).toBe(422);
    expect(JSON.stringify(await before.json())).toContain("H178");
    expect(await (await check({ brand: "MIGROS", type: "MESAJ", recipientType: "TACIR", recipients: ["+905329990109"] })).json()).toEqual({ allowed: [], denied: [{ recipient: "+905329990109", reason: "refused" }] });
  });

  it("an entry too long to be an address is denied on its own, not a 400 for the whole call", async () => {
    const long = `${"a".repeat(400)}@example.com`;
    const res = await check({ brand: "MIGROS", type: "MESAJ", recipients: ["+905321110001", long, "5".repeat(500)] });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      allowed: ["+905321110001"],
      denied: [
        { recipient: long, reason: "invalid_address", code: "H120" },
        { recipient: "5".repeat(500), reason: "invalid_address", code: "H122" },
      ],
    });
  });

  it("an invalid address carries the code İYS gives for that channel", async () => {
    const res = await (await check({ brand: "MIGROS", type: "ARAMA", recipients: ["ayse@example.com"] })).json();
    expect(res.denied).toEqual([{ recipient: "ayse@example.com", reason: "invalid_address", code: "H121" }]);
    const mesaj = await (await check({ brand: "MIGROS", type: "MESAJ", recipients: ["ayse@example.com"] })).json();
    expect(mesaj.denied).toEqual([{ recipient: "ayse@example.com", reason: "invalid_address", code: "H464" }]);
  });

  it("a RET texted a moment ago is honoured before any job has applied it", async () => {
    const from = "+905321110002";
    const params = { MessageSid: `SM${"d".repeat(32)}`, AccountSid: `AC${"c3".repeat(16)}`, From: from, To: "3434", Body: "RET MIGROS" };
    const sig = twilio.getExpectedTwilioSignature(AUTH_TOKEN, "https://hub.example.com/sms/twilio", params);
    const hook = await app.request("/sms/twilio", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": sig },
      body: new URLSearchParams(params).toString(),
    });
    expect(hook.status).toBe(200);
    const res = await (await check({ brand: "MIGROS", type: "MESAJ", recipients: [from] })).json();
    expect(res).toEqual({ allowed: [], denied: [{ recipient: from, reason: "refused" }] });
  });

  const textRet = async (from: string, sid: string) => {
    const params = { MessageSid: sid, AccountSid: `AC${"c3".repeat(16)}`, From: from, To: "3434", Body: "RET MIGROS" };
    const hook = await app.request("/sms/twilio", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": twilio.getExpectedTwilioSignature(AUTH_TOKEN, "https://hub.example.com/sms/twilio", params) },
      body: new URLSearchParams(params).toString(),
    });
    expect(hook.status).toBe(200);
  };
  const db = () => runtime.deps.db.$client;
  // A receipt row as the webhook writes it, straight into the table (a backlog, or a corrupt row).
  const pendingReceipt = (ref: string, from: string, payload: string, at: number) =>
    db()
      .prepare(`INSERT INTO receipts (channel, provider, provider_ref, number_id, from_address, to_address, body, payload, status, received_at) VALUES ('sms', 'twilio', ?, NULL, ?, '3434', 'x', ?, 'received', ?)`)
      .run(ref, from, payload, at);

  it("a pending receipt that cannot be applied neither hides a RET texted after it nor turns the check into a 500", async () => {
    const from = "+905321110005";
    const poison = Number(pendingReceipt(`SMpoison${Date.now()}`, "+905329999999", "{not json", Date.now()).lastInsertRowid);
    await textRet(from, `SM${"e".repeat(32)}`);
    const res = await check({ brand: "MIGROS", type: "MESAJ", recipients: [from] });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ allowed: [], denied: [{ recipient: from, reason: "refused" }] });
    expect(db().prepare("SELECT status FROM receipts WHERE id = ?").get(poison)).toEqual({ status: "received" });
    db().prepare("DELETE FROM receipts WHERE id = ?").run(poison);
  });

  it("behind a backlog of more than 10 000 receipts, the asked addresses' own refusals are applied first, whatever spelling the provider gave the sender", async () => {
    const from = "+905321110006";
    const now = Date.now();
    db().transaction(() => {
      for (let i = 0; i < 10_050; i++) pendingReceipt(`SMbacklog${now}-${i}`, `+90533${String(i).padStart(7, "0")}`, "{}", now);
    })();
    await textRet(from, `SM${"f".repeat(32)}`);
    // Vonage's msisdn comes without the +: the receipt keeps it as sent.
    await textRet("905321110007", `SM${"9".repeat(32)}`);
    const res = await check({ brand: "MIGROS", type: "MESAJ", recipients: [from, "+905321110007"] });
    expect(await res.json()).toEqual({ allowed: [], denied: [{ recipient: from, reason: "refused" }, { recipient: "+905321110007", reason: "refused" }] });
  }, 60_000);

  it("takes 100 000 recipients in one call (a body over 1 MiB) and refuses one more", async () => {
    const recipients = Array.from({ length: 100_000 }, (_, i) => `+90533${String(i).padStart(7, "0")}`);
    const res = await check({ brand: "MIGROS", type: "MESAJ", recipients });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.allowed).toEqual([]);
    expect(body.denied).toHaveLength(100_000);
    const over = await check({ brand: "MIGROS", type: "MESAJ", recipients: [...recipients, "+905330000000"] });
    expect(over.status).toBe(400);
    expect((await over.json()).error.field).toBe("recipients");
  });

  it("probes the state's primary key once per address, never scanning the brand's states", () => {
    const plan = (runtime.deps.db.$client.prepare(`EXPLAIN QUERY PLAN ${CHECK_SQL}`).all("[]", 1, "BIREYSEL", "MESAJ") as { detail: string }[]).map((r) => r.detail);
    const loops = plan.filter((d) => /^(SCAN|SEARCH) /.test(d));
    expect(loops).toHaveLength(2);
    expect(loops[0]).toMatch(/^SCAN j\b/);
    // The state table is keyed by its primary key alone (WITHOUT ROWID): the probe reads the row from the key's b-tree.
    expect(loops[1]).toMatch(/^SEARCH s USING PRIMARY KEY \(brand_id=\? AND recipient=\? AND recipient_type=\? AND type=\?\)/);
    const tacir = (runtime.deps.db.$client.prepare(`EXPLAIN QUERY PLAN ${CHECK_TACIR_SQL}`).all({ json: "[]", brand: 1, type: "MESAJ" }) as { detail: string }[]).map((r) => r.detail);
    const tacirLoops = tacir.filter((d) => /^(SCAN|SEARCH) /.test(d));
    expect(tacirLoops).toHaveLength(3);
    expect(tacirLoops[0]).toMatch(/^SCAN j\b/);
    for (const probe of tacirLoops.slice(1)) expect(probe).toMatch(/^SEARCH [sb] USING PRIMARY KEY \(brand_id=\? AND recipient=\? AND recipient_type=\? AND type=\?\)/);
  });

  it("bad input is a clear 4xx", async () => {
    expect((await check({ brand: "NOPE", type: "MESAJ", recipients: ["+905321110001"] })).status).toBe(404);
    const noType = await check({ brand: "MIGROS", recipients: ["+905321110001"] });
    expect(noType.status).toBe(400);
    expect((await noType.json()).error).toMatchObject({ code: "bad_request", field: "type" });
    expect((await check({ brand: "MIGROS", type: "MESAJ", recipients: [] })).status).toBe(400);
    const text = await app.request("/api/v1/check", { method: "POST", headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "text/plain" }, body: "x" });
    expect(text.status).toBe(415);
    const malformed = await app.request("/api/v1/check", { ...authed(), body: "{nope" });
    expect(malformed.status).toBe(400);
    expect((await app.request("/api/v1/check", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(401);
  });
});
