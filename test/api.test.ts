import { copyFileSync, renameSync } from "node:fs";
import Database from "better-sqlite3";
import twilio from "twilio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../src/app";
import { IYS_EPOCH } from "../src/domain/consent-rules";
import { formatIysDate } from "../src/domain/time";
import { createRuntime, type Runtime } from "../src/runtime";
import { FakeIys } from "./fakes/iys";
import { ADMIN_KEY, authed, deletePrefix, tempDir, testConfig, waitFor } from "./helpers";

const tmp = tempDir();
const iys = new FakeIys();
let runtime: Runtime;
let app: App;

beforeAll(async () => {
  const iysUrl = await iys.start();
  const config = testConfig(tmp.dir, { IYS_API_BASE_URL: iysUrl, IYS_USERNAME: "api@hs.example", IYS_PASSWORD: "secret" });
  runtime = await createRuntime(config);
  runtime.startBackground();
  app = createApp(runtime.deps);
  const res = await app.request(
    "/api/v1/brands",
    authed({
      code: "migros",
      name: "Migros",
      iysCode: "654321",
      brandCode: "654322",
      shortNames: ["MİGROS", "MMM"],
      numbers: [{ number: "3434", provider: "twilio", channels: ["sms"] }],
    }),
  );
  expect(res.status).toBe(201);
});

afterAll(async () => {
  await runtime.close();
  await iys.stop();
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

const minutesAgo = (m: number) => formatIysDate(new Date(Date.now() - m * 60_000));

describe("health", () => {
  it("the bare origin points to the docs, the health checks and the dashboard", async () => {
    const res = await app.request("/");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ docs: "/api/docs", health: "/healthz", admin: "/admin" });
  });

  it("healthz answers 200 while the process is up", async () => {
    expect((await app.request("/healthz")).status).toBe(200);
  });

  it("readyz answers 200 when SQLite and Redis are reachable", async () => {
    const res = await app.request("/readyz");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ checks: { database: "ok", redis: "ok" } });
  });

  it("a write the database cannot take now (its lock held by another process past busy_timeout) is a 503 with Retry-After that records nothing, not a 500", async () => {
    const other = new Database(runtime.deps.config.DATABASE_PATH);
    const recipient = "+905327770001";
    other.exec("BEGIN EXCLUSIVE");
    let res: Response;
    try {
      res = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: minutesAgo(5) }));
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
    expect([res.status, res.headers.get("retry-after")]).toEqual([503, "5"]);
    expect((await res.json()).error).toMatchObject({ code: "unavailable", message: expect.stringMatching(/^the hub's database is busy \(its write lock held past 5 s\): the request was not completed; try again/) });
    expect(runtime.deps.db.$client.prepare("SELECT count(*) AS n FROM consent_events WHERE recipient = ?").get(recipient)).toEqual({ n: 0 });
  }, 20_000);

  it("readyz answers 503 when the database file was removed or replaced under the running hub (its writes would be lost at the stop)", async () => {
    const dir = tempDir();
    const own = await createRuntime(testConfig(dir.dir));
    try {
      const ownApp = createApp(own.deps);
      const path = own.deps.config.DATABASE_PATH;
      expect((await ownApp.request("/readyz")).status).toBe(200);
      renameSync(path, `${path}.moved`);
      const gone = await ownApp.request("/readyz");
      expect([gone.status, (await gone.json()).checks.database]).toEqual([503, expect.stringMatching(/^the database file at DATABASE_PATH was removed while the hub runs/)]);
      copyFileSync(`${path}.moved`, path);
      expect((await (await ownApp.request("/readyz")).json()).checks.database).toMatch(/was replaced while the hub runs/);
      renameSync(`${path}.moved`, path);
      expect((await ownApp.request("/readyz")).status).toBe(200);
    } finally {
      await own.close();
      await deletePrefix(own.deps.config.QUEUE_PREFIX);
      dir.cleanup();
    }
  });

  it("readyz stays 200 but says degraded when Redis is unreachable (intake is durable in SQLite), and a webhook is still taken", async () => {
    const dir = tempDir();
    const token = "redis-down-token";
    const down = await createRuntime(testConfig(dir.dir, { REDIS_URL: "redis://127.0.0.1:1", TWILIO_ACCOUNT_SID: `AC${"0".repeat(32)}`, TWILIO_AUTH_TOKEN: token }));
    try {
      const downApp = createApp(down.deps);
      const res = await downApp.request("/readyz");
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: "degraded", checks: { database: "ok", redis: "unreachable" } });
      // What the 200 promises: a refusal sent now is kept (the sweeper queues it once Redis is back).
      const brand = await downApp.request("/api/v1/brands", authed({ code: "REDISDOWN", name: "Redis Down", numbers: [{ number: "4545", provider: "twilio" }] }));
      expect(brand.status).toBe(201);
      const params = { From: "+905321112233", To: "4545", Body: "RET REDISDOWN", MessageSid: `SM${"d".repeat(32)}` };
      const sms = await downApp.request("https://hub.example.com/sms/twilio", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": twilio.getExpectedTwilioSignature(token, "https://hub.example.com/sms/twilio", params) },
        body: new URLSearchParams(params).toString(),
      });
      expect(sms.status).toBe(200);
      expect(down.deps.db.$client.prepare("SELECT status FROM receipts WHERE provider_ref = ?").pluck().get(`SM${"d".repeat(32)}`)).toBe("received");
      // What an operator alerts on instead of the probe.
      expect((await down.deps.metrics!.exposition()).body).toMatch(/^redis_up 0$/m);
    } finally {
      await down.close();
      dir.cleanup();
    }
  });
});

describe("provider API security", () => {
  it("no auth key should return 401", async () => {
    const res = await app.request("/api/v1/brands");
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: "unauthorized" } });
  });

  it("a wrong auth key should return 401", async () => {
    const res = await app.request("/api/v1/brands", { headers: { authorization: `Bearer ${ADMIN_KEY}x` } });
    expect(res.status).toBe(401);
  });

  it("an unknown route is a JSON 404 with a request id", async () => {
    const res = await app.request("/nope", { headers: { "x-request-id": "req-123" } });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: "not_found", requestId: "req-123" } });
  });

  it("a served path asked with another method is a 405 naming the methods it takes", async () => {
    const check = await app.request("/api/v1/check", authed(undefined, "GET"));
    expect(check.status).toBe(405);
    expect(check.headers.get("allow")).toBe("POST");
    expect(await check.json()).toMatchObject({ error: { code: "method_not_allowed", message: "GET is not served at /api/v1/check; use POST" } });
    const brand = await app.request("/api/v1/brands/MIGROS", authed({}, "POST"));
    expect(brand.status).toBe(405);
    expect(brand.headers.get("allow")).toBe("GET, PATCH, HEAD");
    const webhook = await app.request("/sms/twilio");
    expect(webhook.status).toBe(405);
    expect(webhook.headers.get("allow")).toBe("POST");
    expect((await app.request("/api/v1/nope", authed(undefined, "GET"))).status).toBe(404);
    // A public path needs no key to be told its method; every other path still asks for the key first.
    for (const path of ["/api/v1/openapi.json", "/api/v1/ledger/public-key"]) {
      const res = await app.request(path, { method: "POST" });
      expect([res.status, res.headers.get("allow")], path).toEqual([405, "GET, HEAD"]);
    }
    expect((await app.request("/api/v1/check", { method: "GET" })).status).toBe(401);
    expect((await app.request("/api/v1/openapi.json")).status).toBe(200);
  });
});

describe("brands", () => {
  it("a brand is created with its numbers and listed", async () => {
    const res = await app.request("/api/v1/brands/MIGROS", authed(undefined, "GET"));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      code: "MIGROS",
      shortNames: ["MİGROS", "MMM"],
      numbers: [{ number: "3434", provider: "twilio", channels: ["sms"] }],
    });
  });

  it("a second brand may share a number", async () => {
    const res = await app.request(
      "/api/v1/brands",
      authed({ code: "KOTON", name: "Koton", shortNames: ["KOTON"], numbers: [{ number: "3434", provider: "twilio", channels: ["sms", "voice"] }] }),
    );
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ numbers: [{ number: "3434", channels: ["sms", "voice"] }] });
  });

  it("a brand answering to a name another brand on the same number uses is refused with 409", async () => {
    const res = await app.request(
      "/api/v1/brands",
      authed({ code: "MIGROSJET", name: "Migros Jet", shortNames: ["migros"], numbers: [{ number: "3434", provider: "twilio" }] }),
    );
    expect(res.status).toBe(409);
    expect((await res.json()).error.field).toBe("shortNames");
  });

  it("a duplicate brand code is a 409", async () => {
    const res = await app.request("/api/v1/brands", authed({ code: "MIGROS", name: "x" }));
    expect(res.status).toBe(409);
  });

  it("more than 3 short names is a 400 naming the field", async () => {
    const res = await app.request("/api/v1/brands", authed({ code: "AAA", name: "A", shortNames: ["a1", "a2", "a3", "a4"] }));
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatchObject({ code: "bad_request", field: "shortNames" });
  });

  it("a long number is stored in E.164", async () => {
    const res = await app.request(
      "/api/v1/brands",
      authed({ code: "BIM", name: "BİM", numbers: [{ number: "0532 000 00 01", provider: "vonage", channels: ["sms"] }] }),
    );
    expect(res.status).toBe(201);
    expect((await res.json()).numbers[0].number).toBe("+905320000001");
  });

  it("an invalid service number is a 400 naming it", async () => {
    const res = await app.request("/api/v1/brands", authed({ code: "CCC", name: "C", numbers: [{ number: "12", provider: "twilio" }] }));
    expect(res.status).toBe(400);
    expect((await res.json()).error.field).toMatch(/^numbers\[0\]/);
  });

  it("malformed JSON is a 400, not a 500", async () => {
    const res = await app.request("/api/v1/brands", { ...authed(), body: "{not json" });
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe("bad_request");
  });

  it("a body that is not JSON is a 415, whatever its parameters say; JSON with spaces or parameters in its Content-Type is JSON", async () => {
    const post = (type: string, body: string) => app.request("/api/v1/brands", { method: "POST", headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": type }, body });
    for (const type of ["text/plain", "text/plain; x=application/json", "application/jsonx", "application/json-seq", "application/vnd.v2+json", "application/json; charset="]) {
      const res = await post(type, JSON.stringify({ code: "CTYPE", name: "x" }));
      expect(res.status, type).toBe(415);
      expect((await res.json()).error, type).toMatchObject({ code: "unsupported_media_type", message: "Content-Type must be application/json" });
    }
    const spaced = await post("Application/JSON ; charset = utf-8", JSON.stringify({ code: "CTYPE", name: "Ctype", shortNames: ["CTYPE"], numbers: [] }));
    expect(spaced.status, await spaced.clone().text()).toBe(201);
    const vendor = await post("application/vnd.hub+json", JSON.stringify({ code: "CTYPE2", name: "Ctype", shortNames: ["CTYPE2"], numbers: [] }));
    expect(vendor.status, await vendor.clone().text()).toBe(201);
  });

  it("an oversize body is a 413", async () => {
    const res = await app.request("/api/v1/brands", authed({ code: "BIG", name: "x".repeat(2 * 1024 * 1024) }));
    expect(res.status).toBe(413);
  });
});

describe("consents", () => {
  it("a provider-collected ONAY is recorded, readable in any spelling, and reported to İYS once", async () => {
    const consentDate = minutesAgo(30);
    const body = { brand: "MIGROS", recipient: "0532 111 22 33", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate };
    const res = await app.request("/api/v1/consents", authed(body));
    expect(res.status).toBe(201);
    const created = await res.json();
    expect(created).toMatchObject({
      event: { brand: "MIGROS", recipient: "+905321112233", status: "ONAY", consentDate, origin: "api", effect: "movement" },
      consent: { status: "ONAY", inIys: true },
      iys: { reportable: true },
    });

    const read = await app.request(`/api/v1/consents?brand=migros&recipient=${encodeURIComponent("+90 (532) 111-22-33")}`, authed(undefined, "GET"));
    expect(read.status).toBe(200);
    const history = await read.json();
    expect(history.consents).toHaveLength(1);
    expect(history.events[0]).toMatchObject({ id: created.event.id, hash: created.event.hash });
    await waitFor(() => iys.writes.length >= 1);
    expect(iys.writes).toHaveLength(1);
    expect(iys.writes[0]).toMatchObject({
      iysCode: "654321",
      brandCode: "654322",
      body: { recipient: "+905321112233", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate, recipientType: "BIREYSEL" },
    });
    await waitFor(() => {
      const row = runtime.deps.db.$client.prepare("SELECT status FROM outbox WHERE event_id = ?").get(created.event.id) as { status: string };
      return row.status === "done";
    });

    // Typed into a URL without encoding its + (which a query string reads as a space): read as meant.
    const tagged = await app.request("/api/v1/consents", authed({ ...body, recipient: "ayse+kampanya@example.com", type: "EPOSTA" }));
    expect(tagged.status).toBe(201);
    for (const [typed, id] of [
      ["+905321112233", created.event.id],
      ["+90 532 111 22 33", created.event.id],
      // An encoded space is a space (trimmed), never a plus: the national number, not +5321112233.
      ["%205321112233", created.event.id],
      // Spaces form-encoded as + are read as spaces when the plus reading is no address.
      ["0532+111+22+33", created.event.id],
      ["ayse+kampanya@example.com", (await tagged.json()).event.id],
    ]) {
      const plain = await app.request(`/api/v1/consents?brand=MIGROS&recipient=${typed}`, authed(undefined, "GET"));
      expect(plain.status, typed).toBe(200);
      expect((await plain.json()).events[0], typed).toMatchObject({ id });
    }
  });

  it("a TACIR first record without source or consentDate is reported to İYS without them", async () => {
    const res = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient: "+905321112299", type: "ARAMA", status: "ONAY", recipientType: "TACIR" }));
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await res.json()).toMatchObject({ event: { effect: "movement", source: null }, consent: { inIys: true }, iys: { reportable: true } });
    const write = await waitFor(() => iys.writes.find((w) => w.body.recipient === "+905321112299"));
    expect(write!.body).toEqual({ recipient: "+905321112299", recipientType: "TACIR", type: "ARAMA", status: "ONAY" });
  });

  it("an identical re-submission returns the original result", async () => {
    const body = { brand: "MIGROS", recipient: "+905321112244", type: "ARAMA", status: "ONAY", source: "HS_FIZIKSEL_ORTAM", consentDate: minutesAgo(20) };
    const first = await app.request("/api/v1/consents", authed(body));
    const again = await app.request("/api/v1/consents", authed({ ...body, recipient: "05321112244" }));
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect((await again.json()).event).toEqual((await first.json()).event);
  });

  it("a re-submitted consent the provider has since refused itself answers with the RET state and no note blaming the recipient", async () => {
    const body = { brand: "MIGROS", recipient: "+905321112266", type: "ARAMA", status: "ONAY", source: "HS_FIZIKSEL_ORTAM", consentDate: minutesAgo(20) };
    expect((await app.request("/api/v1/consents", authed(body))).status).toBe(201);
    expect((await app.request("/api/v1/consents", authed({ ...body, status: "RET", source: "HS_WEB", consentDate: minutesAgo(10) }))).status).toBe(201);
    const again = await app.request("/api/v1/consents", authed(body));
    expect(again.status).toBe(200);
    const answer = (await again.json()) as { consent: { status: string }; iys: { note?: string } };
    expect(answer.consent.status).toBe("RET");
    expect(answer.iys.note).toBeUndefined();
  });

  it("a rule violation is a 422 whose error code is the İYS code", async () => {
    const future = formatIysDate(new Date(Date.now() + 3_600_000));
    const res = await app.request(
      "/api/v1/consents",
      authed({ brand: "MIGROS", recipient: "+905321112255", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: future }),
    );
    expect(res.status).toBe(422);
    expect((await res.json()).error).toMatchObject({ code: "H162", field: "consentDate" });
    // A BIREYSEL consent without its source or date: İYS's code, naming the field left out.
    for (const [left, code] of [["source", "H113"], ["consentDate", "H112"]] as const) {
      const body: Record<string, string> = { brand: "MIGROS", recipient: "+905321112256", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - 60_000)) };
      delete body[left];
      const missing = await app.request("/api/v1/consents", authed(body));
      expect(missing.status).toBe(422);
      expect((await missing.json()).error).toMatchObject({ code, field: left });
    }
  });

  it("the same status twice is a 422 H174", async () => {
    const body = { brand: "MIGROS", recipient: "+905321112266", type: "MESAJ", status: "ONAY", source: "HS_WEB" };
    expect((await app.request("/api/v1/consents", authed({ ...body, consentDate: minutesAgo(10) }))).status).toBe(201);
    const res = await app.request("/api/v1/consents", authed({ ...body, consentDate: minutesAgo(5) }));
    expect(res.status).toBe(422);
    expect((await res.json()).error.code).toBe("H174");
  });

  it("a RET for an address without consent is recorded as a suppression and not reported", async () => {
    const res = await app.request(
      "/api/v1/consents",
      authed({ brand: "MIGROS", recipient: "+905321112277", type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: minutesAgo(1) }),
    );
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ event: { effect: "suppression" }, iys: { reportable: false, code: "H175" } });
  });

  it("a RET collected more than 3 business days ago (H467 at İYS) is kept as a suppression: not reported, and refused by the check", async () => {
    const recipient = "+905321112278";
    const onay = await app.request(
      "/api/v1/consents",
      authed({ brand: "MIGROS", recipient, type: "MESAJ", status: "ONAY", source: "HS_2015", consentDate: formatIysDate(new Date(IYS_EPOCH)) }),
    );
    expect(onay.status, await onay.clone().text()).toBe(201);
    const res = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient, type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: minutesAgo(14 * 24 * 60) }));
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await res.json()).toMatchObject({ event: { effect: "suppression" }, consent: { status: "RET" }, iys: { reportable: false, code: "H467" } });
    const checked = await (await app.request("/api/v1/check", authed({ brand: "MIGROS", type: "MESAJ", recipients: [recipient] }))).json();
    expect(checked).toEqual({ allowed: [], denied: [{ recipient, reason: "refused" }] });
  });

  it("a replayed suppression answers the code it answered the first time, whatever came after", async () => {
    const recipient = "+905321112279";
    const ret = { brand: "MIGROS", recipient, type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: minutesAgo(5) };
    const first = await app.request("/api/v1/consents", authed(ret));
    expect(first.status).toBe(201);
    expect((await first.json()).iys).toMatchObject({ code: "H175" });
    const onay = await app.request("/api/v1/consents", authed({ ...ret, status: "ONAY", consentDate: minutesAgo(2) }));
    expect(onay.status).toBe(201);
    const replay = await app.request("/api/v1/consents", authed(ret));
    expect(replay.status).toBe(200);
    expect((await replay.json()).iys).toMatchObject({ code: "H175" });
  });

  it("a brand listing one number twice is a 400 naming the repeat; a Vonage number cannot take voice; a body that is not JSON is a 415", async () => {
    const twice = await app.request(
      "/api/v1/brands",
      authed({ code: "TWICE", name: "Twice", numbers: [{ number: "05321112233", provider: "twilio" }, { number: "+90 532 111 22 33", provider: "twilio" }] }),
    );
    expect(twice.status).toBe(400);
    expect((await twice.json()).error).toMatchObject({ code: "bad_request", field: "numbers[1].number" });
    const voice = await app.request("/api/v1/brands", authed({ code: "VOICE", name: "Voice", numbers: [{ number: "908505320001", provider: "vonage", channels: ["voice"] }] }));
    expect(voice.status).toBe(400);
    expect((await voice.json()).error.message).toMatch(/Twilio only/);
    const jsonx = await app.request("/api/v1/brands", { method: "POST", headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/jsonx" }, body: "{}" });
    expect(jsonx.status).toBe(415);
    expect((await jsonx.json()).error.code).toBe("unsupported_media_type");
  });

  it("a short name or code recipients could not text for the brand (no letters, a scope word) is a 400 naming it", async () => {
    for (const [body, field, message] of [
      [{ code: "BANG", name: "Bang", shortNames: ["!!"] }, "shortNames[0]", /"!!" has no letter or digit/],
      [{ code: "CALLS", name: "Calls", shortNames: ["CALLS", "Arama"] }, "shortNames[1]", /"Arama" is a scope word: "RET Arama" must keep meaning the calls of every brand/],
      [{ code: "TUMU", name: "Tümü" }, "code", /"TUMU" is a scope word/],
      [{ code: "KTNT", name: "Koton", shortNames: ["KOTON TÜMÜ"] }, "shortNames[0]", /"KOTON TÜMÜ" ends in the scope word "tumu"/],
    ] as const) {
      const res = await app.request("/api/v1/brands", authed({ numbers: [], ...body }));
      expect(res.status).toBe(400);
      const { error } = await res.json();
      expect(error.field).toBe(field);
      expect(error.message).toMatch(message);
    }
    const patch = await app.request("/api/v1/brands/MIGROS", authed({ shortNames: ["MIGROS", "Çağrı"] }, "PATCH"));
    expect(patch.status).toBe(400);
    expect((await patch.json()).error).toMatchObject({ field: "shortNames[1]", message: expect.stringMatching(/"Çağrı" is a scope word/) });
    // A name stored before a rule refused it is kept when the brand's names are sent back; a new one is checked.
    expect((await app.request("/api/v1/brands", authed({ code: "OLDNAME", name: "Old", shortNames: ["OLDNAME"], numbers: [] }))).status).toBe(201);
    runtime.deps.db.$client.prepare("UPDATE brands SET short_names = ? WHERE code = 'OLDNAME'").run(JSON.stringify(["OLDNAME", "OLD TÜMÜ"]));
    const resend = await app.request("/api/v1/brands/OLDNAME", authed({ name: "Old A.Ş.", shortNames: ["OLDNAME", "OLD TÜMÜ"] }, "PATCH"));
    expect(resend.status, await resend.clone().text()).toBe(200);
    const added = await app.request("/api/v1/brands/OLDNAME", authed({ shortNames: ["OLDNAME", "OLD TÜMÜ", "NEW ARAMA"] }, "PATCH"));
    expect(added.status).toBe(400);
    expect((await added.json()).error).toMatchObject({ field: "shortNames[2]", message: expect.stringMatching(/"NEW ARAMA" ends in the scope word "arama"/) });
  });

  it("a field the API does not know is a 400 naming it (a typo such as recipientTyp would leave BIREYSEL in force)", async () => {
    const consent = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient: "+905321112277", recipientTyp: "TACIR", type: "ARAMA", status: "ONAY" }));
    expect(consent.status).toBe(400);
    expect((await consent.json()).error).toMatchObject({ code: "bad_request", field: "recipientTyp", message: "recipientTyp: unknown field" });
    const check = await app.request("/api/v1/check", authed({ brand: "MIGROS", type: "MESAJ", recipients: ["+905321112277"], recipient_type: "TACIR" }));
    expect(check.status).toBe(400);
    expect((await check.json()).error).toMatchObject({ field: "recipient_type" });
    // Everywhere a default would stand in for the misspelt field: a subscription's brands ("*": every
    // brand's changes), a brand's short names and numbers, a number's channels, a partner's URL, a replay's scope.
    const refused: [string, Record<string, unknown>, string][] = [
      ["/api/v1/subscriptions", { url: "https://provider.example.com/hooks/typo", brand: ["MIGROS"] }, "brand"],
      ["/api/v1/brands", { code: "TYPOBRAND", name: "Typo", shortName: ["TYPO"] }, "shortName"],
      ["/api/v1/brands", { code: "TYPOBRAND", name: "Typo", numbers: [{ number: "7777", provider: "twilio", channel: ["voice"] }] }, "numbers[0].channel"],
      ["/api/v1/brands/MIGROS/partners", { retailerCode: "77778888", name: "Bayi", URL: "https://bayi.example.com/hook" }, "URL"],
    ];
    for (const [path, body, field] of refused) {
      const res = await app.request(path, authed(body));
      expect(res.status, path).toBe(400);
      expect((await res.json()).error, path).toMatchObject({ field, message: `${field}: unknown field` });
    }
    const partner = await app.request("/api/v1/brands/MIGROS/partners", authed({ retailerCode: "77778889", name: "Bayi" }));
    expect(partner.status, await partner.clone().text()).toBe(201);
    const replay = await app.request("/api/v1/brands/MIGROS/partners/77778889/replay", authed({ since: "2026-11-25T09:00:00Z", onlu: "all" }));
    expect(replay.status).toBe(400);
    expect((await replay.json()).error).toMatchObject({ field: "onlu" });
    expect(runtime.deps.db.$client.prepare("SELECT count(*) AS n FROM brands WHERE code = 'TYPOBRAND'").get()).toEqual({ n: 0 });
    expect(runtime.deps.db.$client.prepare("SELECT count(*) AS n FROM partners WHERE retailer_code = '77778888'").get()).toEqual({ n: 0 });
  });

  it("a number past a field's own limit is a 400 saying that limit, not the integer range", async () => {
    for (const [value, limit] of [[9223372036854775807, "<=3650"], [-1e308, ">=1"], [5000, "<=3650"]] as const) {
      const res = await app.request("/api/v1/brands/MIGROS", authed({ settings: { linkExpiryDays: value } }, "PATCH"));
      expect(res.status).toBe(400);
      const { error } = await res.json();
      expect(error.field).toBe("settings.linkExpiryDays");
      expect(error.message).toContain(limit);
      expect(error.message).not.toContain("9007199254740991");
    }
    const res = await app.request("/api/v1/subscriptions/ep_none/deliveries?limit=99999999999999999999", authed(undefined, "GET"));
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatchObject({ field: "limit", message: expect.stringContaining("<=1000") });
  });

  it("a number in a path or query is digits: 1e0, 0x1, a blank or a line break are refused, not read as another number", async () => {
    for (const id of ["1e0", "0x1", "%20", "1%0A", "+1"]) {
      const res = await app.request(`/api/v1/ledger/events/${id}/proof`, authed(undefined, "GET"));
      expect(res.status, id).toBe(400);
      expect((await res.json()).error, id).toMatchObject({ field: "id", message: "id: an event id, in digits" });
    }
    // A finished delivery (its endpoint gone: replaying it by its own id is a 409) is not reached by another spelling of its id.
    const n = (runtime.deps.db.$client
      .prepare("INSERT INTO outbox (kind, target, status, attempts, created_at, updated_at) VALUES ('callback', 'ep_gone/1', 'done', 1, 0, 0) RETURNING id")
      .get() as { id: number }).id;
    expect((await app.request(`/api/v1/deliveries/${n}/replay`, authed())).status).toBe(409);
    for (const id of [`${n}e0`, `0x${n.toString(16)}`, `%20${n}`, `${n}%0A`, `+${n}`]) {
      const replay = await app.request(`/api/v1/deliveries/${id}/replay`, authed());
      expect(replay.status, id).toBe(400);
      expect((await replay.json()).error, id).toMatchObject({ field: "outboxId", message: "outboxId: a delivery id, in digits" });
    }
    const res = await app.request("/api/v1/subscriptions/ep_none/deliveries?limit=0x10", authed(undefined, "GET"));
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatchObject({ field: "limit" });
  });

  it("a JSON string with an unpaired surrogate escape is a 400 naming its field; a paired one (an emoji) is text", async () => {
    const post = (path: string, text: string) =>
      app.request(path, { method: "POST", headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" }, body: text });
    const lone = await post("/api/v1/keys", String.raw`{"name":"a\udfffb","brands":["MIGROS"]}`);
    expect(lone.status).toBe(400);
    expect((await lone.json()).error).toMatchObject({ field: "name", message: expect.stringMatching(/^name: holds an unpaired UTF-16 surrogate/) });
    const nested = await post("/api/v1/brands", String.raw`{"code":"SURR","name":"S","settings":{"smsTemplates":{"x\ud800":"a"}}}`);
    expect(nested.status).toBe(400);
    expect((await nested.json()).error.field).toMatch(/^settings\.smsTemplates\.x/);
    // Nested ten thousand deep: still a 400 (a recursive walk overflowed the call stack: a 500).
    const deep = await post("/api/v1/keys", `{"name":${"[".repeat(10_000)}"\\ud800"${"]".repeat(10_000)},"brands":["MIGROS"]}`);
    expect(deep.status).toBe(400);
    expect((await deep.json()).error.field).toMatch(/^name(\[0\]){10000}$/);
    const pair = await post("/api/v1/keys", String.raw`{"name":"kampanya \ud83d\ude00","brands":["MIGROS"]}`);
    expect(pair.status).toBe(201);
    expect((await pair.json()).name).toBe("kampanya 😀");
    expect(runtime.deps.db.$client.prepare("SELECT count(*) AS n FROM api_keys WHERE name LIKE 'a%b'").get()).toEqual({ n: 0 });
    expect(runtime.deps.db.$client.prepare("SELECT count(*) AS n FROM brands WHERE code = 'SURR'").get()).toEqual({ n: 0 });
  });

  it("a value of the wrong kind where two kinds are taken says what is taken, not a bare \"Invalid input\"", async () => {
    const sub = await app.request("/api/v1/subscriptions", authed({ url: "https://provider.example.com/hooks", brands: null }));
    expect((await sub.json()).error).toMatchObject({ field: "brands", message: 'brands: a list of brand codes (["MIGROS"]), or "*" for every brand' });
    const consent = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient: "+905321112299", type: "MESAJ", status: "ONAY", retailerCode: true }));
    expect((await consent.json()).error).toMatchObject({ field: "retailerCode", message: "retailerCode: 8 digits" });
    const partner = await app.request("/api/v1/brands/MIGROS/partners", authed({ retailerCode: [1], name: "Bayi" }));
    expect((await partner.json()).error).toMatchObject({ field: "retailerCode", message: "retailerCode: 8 digits" });
  });

  it("an IYS_* source is a 400 naming source", async () => {
    const res = await app.request(
      "/api/v1/consents",
      authed({ brand: "MIGROS", recipient: "+905321112288", type: "MESAJ", status: "ONAY", source: "IYS_WEB", consentDate: minutesAgo(1) }),
    );
    expect(res.status).toBe(400);
    expect((await res.json()).error.field).toBe("source");
  });

  it("a bad date format is a 422 H158 naming consentDate", async () => {
    const res = await app.request(
      "/api/v1/consents",
      authed({ brand: "MIGROS", recipient: "+905321112299", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: "22/11/2026" }),
    );
    expect(res.status).toBe(422);
    expect((await res.json()).error).toMatchObject({ code: "H158", field: "consentDate" });
  });

  it("a Turkish-lettered e-mail is a 422 H120", async () => {
    const res = await app.request(
      "/api/v1/consents",
      authed({ brand: "MIGROS", recipient: "ayşe@example.com", type: "EPOSTA", status: "ONAY", source: "HS_WEB", consentDate: minutesAgo(1) }),
    );
    expect(res.status).toBe(422);
    expect((await res.json()).error.code).toBe("H120");
  });

  it("an unknown brand is a 404 naming brand", async () => {
    const res = await app.request(
      "/api/v1/consents",
      authed({ brand: "NOPE", recipient: "+905321112200", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: minutesAgo(1) }),
    );
    expect(res.status).toBe(404);
    expect((await res.json()).error.field).toBe("brand");
  });

  it("a missing field is a 400 naming it", async () => {
    const res = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient: "+905321112200", status: "ONAY" }));
    expect(res.status).toBe(400);
    expect((await res.json()).error.field).toBe("type");
  });
});
