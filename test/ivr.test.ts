import twilio from "twilio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CallStateSealer, ivrChoices } from "../channels/ivr/state";
import * as prompts from "../channels/ivr/prompts";
import { MAX_TURNS } from "../channels/ivr/routes";
import { createApp, type App } from "../src/app";
import { createRuntime, type Runtime } from "../src/runtime";
import { FakeTwilio } from "./fakes/sms-providers";
import { authed, deletePrefix, tempDir, testConfig, waitFor } from "./helpers";
import { all, parseTwiml, sayTexts, twimlProblems, type El } from "./twiml";

const ACCOUNT_SID = `AC${"c3".repeat(16)}`;
const AUTH_TOKEN = "twilio-voice-test-token";
const BASE = "https://hub.example.com";
const SINGLE = "+908502220000"; // MIGROS only
const SHARED = "+908501110000"; // MIGROS and KOTON

const tmp = tempDir();
const fakeTwilio = new FakeTwilio(ACCOUNT_SID, AUTH_TOKEN);
let runtime: Runtime;
let app: App;

beforeAll(async () => {
  runtime = await createRuntime(
    testConfig(tmp.dir, {
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_API_BASE_URL: await fakeTwilio.start(),
      // Generous, so "kaydedildi" does not depend on how busy the machine is; the "pending" answer has its own test.
      IVR_APPLY_WAIT_MS: "10000",
      SWEEPER_GRACE_SECONDS: "1",
      SWEEPER_INTERVAL_SECONDS: "1",
    }),
  );
  runtime.startBackground();
  app = createApp(runtime.deps);
  for (const brand of [
    {
      code: "MIGROS",
      name: "Migros",
      brandCode: "654321",
      shortNames: ["MİGROS"],
      settings: { ivrSmsConfirmation: true },
      numbers: [
        { number: "3434", provider: "twilio", channels: ["sms"] },
        { number: "0850 222 00 00", provider: "twilio", channels: ["voice"] },
        { number: "0850 111 00 00", provider: "twilio", channels: ["voice"] },
      ],
    },
    { code: "KOTON", name: "Koton", brandCode: "777888", shortNames: ["KOTON"], numbers: [{ number: "0850 111 00 00", provider: "twilio", channels: ["voice"] }] },
  ]) {
    const res = await app.request("/api/v1/brands", authed(brand));
    expect(res.status, await res.clone().text()).toBe(201);
  }
});

afterAll(async () => {
  await runtime.close();
  await fakeTwilio.stop();
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

let seq = 0;
const newCallSid = () => `CA${(++seq).toString(16).padStart(32, "0")}`;
const newCaller = () => `+90532${String(2_000_000 + seq++).padStart(7, "0")}`;

interface Answer {
  status: number;
  xml: string;
  doc: El | null;
}

function signedPost(app: App, url: string, params: Record<string, string>, signature?: string | null): Promise<Response> {
  const sig = signature === undefined ? twilio.getExpectedTwilioSignature(AUTH_TOKEN, url, params) : signature;
  return Promise.resolve(
    app.request(url.slice(BASE.length), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...(sig === null ? {} : { "x-twilio-signature": sig }) },
      body: new URLSearchParams(params).toString(),
    }),
  );
}

/** One phone call driven through the webhooks as Twilio would: signed posts to each action URL the TwiML names. */
class Call {
  readonly sid = newCallSid();
  /** The action URL of the last <Gather>. */
  action: string | null = null;
  last: Answer | null = null;

  constructor(
    readonly from: string,
    readonly to = SINGLE,
    private readonly via: () => App = () => app,
  ) {}

  params(extra: Record<string, string> = {}): Record<string, string> {
    return { AccountSid: ACCOUNT_SID, CallSid: this.sid, From: this.from, Caller: this.from, To: this.to, Called: this.to, CallStatus: "in-progress", Direction: "inbound", ApiVersion: "2010-04-01", ...extra };
  }

  async post(url: string, extra: Record<string, string> = {}, signature?: string | null): Promise<Answer> {
    const res = await signedPost(this.via(), url, this.params(extra), signature);
    const xml = await res.text();
    const doc = res.status === 200 ? parseTwiml(xml) : null;
    if (doc) {
      expect(res.headers.get("content-type")).toMatch(/^text\/xml/);
      expect(twimlProblems(doc, BASE)).toEqual([]);
      const gathers = all(doc, "Gather");
      this.action = gathers.length ? gathers[0]!.attrs.action! : null;
    }
    this.last = { status: res.status, xml, doc };
    return this.last;
  }

  start() {
    return this.post(`${BASE}/voice/twilio`);
  }
  press(digits: string) {
    return this.post(this.requireAction(), { Digits: digits });
  }
  say(speech: string) {
    return this.post(this.requireAction(), { SpeechResult: speech, Confidence: "0.92" });
  }
  silence() {
    return this.post(this.requireAction());
  }
  private requireAction(): string {
    if (!this.action) throw new Error("the last answer has no <Gather>");
    return this.action;
  }
}

const db = () => runtime.deps.db.$client;
const receiptsOfCall = (sid: string) =>
  db().prepare("SELECT provider_ref AS ref, channel, status, from_address AS fromAddress, payload, result FROM receipts WHERE provider_ref LIKE ? ORDER BY id").all(`${sid}:%`) as {
    ref: string;
    channel: string;
    status: string;
    fromAddress: string | null;
    payload: string;
    result: string | null;
  }[];
const eventsOf = (recipient: string) =>
  db()
    .prepare("SELECT b.code AS brand, e.type, e.status, e.source, e.effect, e.origin, e.recipient_type AS recipientType FROM consent_events e JOIN brands b ON b.id = e.brand_id WHERE recipient = ? ORDER BY e.id")
    .all(recipient) as { brand: string; type: string; status: string; source: string; effect: string; origin: string; recipientType: string }[];
const event = (brand: string, type: string, status: string, effect: string) => ({ brand, type, status, source: "HS_CAGRI_MERKEZI", effect, origin: "ivr", recipientType: "BIREYSEL" });

const gatherOf = (a: Answer) => all(a.doc!, "Gather")[0]!;
const isHangup = (a: Answer) => all(a.doc!, "Hangup").length === 1 && all(a.doc!, "Gather").length === 0;
const stepOf = (a: Answer) => new URL(gatherOf(a).attrs.action!).pathname.split("/").pop();
const text = (a: Answer) => sayTexts(a.doc!).join(" ");

/** A whole call on the one-brand number: menu key (or words), confirm with 1; returns the final answer. */
async function callAndChoose(from: string, choose: (c: Call) => Promise<Answer>): Promise<{ call: Call; final: Answer }> {
  const call = new Call(from);
  await call.start();
  const confirm = await choose(call);
  expect(stepOf(confirm)).toBe("confirm");
  const final = await call.press("1");
  return { call, final };
}

describe("IVR entry", () => {
  it("a one-brand number greets with the brand in Turkish and gathers keys and speech in tr-TR with the menu hints", async () => {
    const call = new Call(newCaller());
    const a = await call.start();
    expect(a.status).toBe(200);
    const g = gatherOf(a);
    expect(g.attrs).toMatchObject({ input: "dtmf speech", language: "tr-TR", numDigits: "1", method: "POST", actionOnEmptyResult: "true" });
    expect(g.attrs.hints!.split(", ")).toEqual(expect.arrayContaining(["ret", "reddet", "onay", "evet", "hayır", "tekrar"]));
    expect(stepOf(a)).toBe("menu");
    const says = all(a.doc!, "Say");
    expect(says[0]!.attrs).toEqual({ language: "tr-TR", voice: "Polly.Filiz" });
    expect(says[0]!.text).toContain("MİGROS");
    expect(says.map((s) => s.text).join(" ")).toContain("izin vermek için 4");
    // The English hint is spoken by an English voice.
    expect(says.find((s) => s.text.includes("For English"))!.attrs).toEqual({ language: "en-US", voice: "Polly.Joanna" });
  });

  it("an unknown or SMS-only number is told the line is not in service and hung up, with nothing recorded", async () => {
    for (const to of ["+908509990000", "3434"]) {
      const call = new Call(newCaller(), to);
      const a = await call.start();
      expect(isHangup(a)).toBe(true);
      expect(text(a)).toContain("hizmet vermiyor");
      expect(text(a)).toContain("not in service");
      expect(receiptsOfCall(call.sid)).toEqual([]);
    }
  });
});

describe("IVR menu by keypad", () => {
  it.each([
    ["1", "refuses calls", [["ARAMA", "RET"]], "ticari aramalar reddedildi"],
    ["2", "refuses SMS", [["MESAJ", "RET"]], "ticari SMS mesajları reddedildi"],
    ["3", "refuses both", [["ARAMA", "RET"], ["MESAJ", "RET"]], "ticari aramalar ve SMS mesajları reddedildi"],
  ])("key %s %s: one receipt, HS_CAGRI_MERKEZI suppressions for the caller, and the final prompt says it was recorded", async (key, _, expected, spoken) => {
    const from = newCaller();
    const { call, final } = await callAndChoose(from, (c) => c.press(key));
    expect(isHangup(final)).toBe(true);
    expect(text(final)).toContain("Talebiniz kaydedildi");
    expect(text(final)).toContain(spoken);
    expect(eventsOf(from)).toEqual(expected.map(([type, status]) => event("MIGROS", type!, status!, "suppression")));
    const receipts = receiptsOfCall(call.sid);
    expect(receipts.map((r) => [r.ref, r.channel, r.status, r.fromAddress])).toEqual([[`${call.sid}:confirm`, "voice", "applied", from]]);
    expect(JSON.parse(receipts[0]!.payload)).toMatchObject({ types: expected.map(([t]) => t), status: "RET", keyed: false });
    expect(db().prepare("SELECT body FROM receipts WHERE provider_ref = ?").pluck().get(`${call.sid}:confirm`)).toBe(`menu: key ${key}; confirm: key 1`);
  });

  it("key 4 gives consent for calls and SMS: İYS movements with HS_CAGRI_MERKEZI", async () => {
    const from = newCaller();
    const { final } = await callAndChoose(from, (c) => c.press("4"));
    expect(text(final)).toContain("ticari aramalara ve SMS mesajlarına izin verildi");
    expect(eventsOf(from)).toEqual([event("MIGROS", "ARAMA", "ONAY", "movement"), event("MIGROS", "MESAJ", "ONAY", "movement")]);
  });

  it("key 3 refuses consents given earlier elsewhere: RET movements for both channels", async () => {
    const from = newCaller();
    const consentDate = new Date(Date.now() - 3_600_000).toISOString();
    for (const type of ["ARAMA", "MESAJ"]) {
      const res = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient: from, type, status: "ONAY", source: "HS_WEB", consentDate }));
      expect(res.status, await res.clone().text()).toBe(201);
    }
    const { final } = await callAndChoose(from, (c) => c.press("3"));
    expect(text(final)).toContain("ticari aramalar ve SMS mesajları reddedildi");
    expect(eventsOf(from).slice(2)).toEqual([event("MIGROS", "ARAMA", "RET", "movement"), event("MIGROS", "MESAJ", "RET", "movement")]);
  });

  it("a number detached from the brand mid-call still takes the caller's refusal; a new call is told the line is not in service", async () => {
    const line = "0850 444 00 00";
    const created = await app.request("/api/v1/brands", authed({ code: "DETV", name: "Detv", shortNames: ["DETV"], numbers: [{ number: line, provider: "twilio", channels: ["voice"] }] }));
    expect(created.status, await created.clone().text()).toBe(201);
    const from = newCaller();
    const call = new Call(from, "+908504440000");
    expect(stepOf(await call.start())).toBe("menu");
    expect(stepOf(await call.press("2"))).toBe("confirm");
    const detached = await app.request("/api/v1/brands/DETV", authed({ removeNumbers: [line] }, "PATCH"));
    expect(detached.status, await detached.clone().text()).toBe(200);
    const final = await call.press("1");
    expect(text(final)).toContain("Talebiniz kaydedildi");
    expect(eventsOf(from)).toEqual([event("DETV", "MESAJ", "RET", "suppression")]);
    const next = new Call(newCaller(), "+908504440000");
    const a = await next.start();
    expect(isHangup(a)).toBe(true);
    expect(text(a)).toContain("hizmet vermiyor");
  });

  it("the same choice again (İYS H174) is confirmed as already in effect, with no new event", async () => {
    const from = newCaller();
    await callAndChoose(from, (c) => c.press("4"));
    const again = await callAndChoose(from, (c) => c.press("4"));
    expect(text(again.final)).toContain("zaten geçerliydi");
    expect(eventsOf(from)).toHaveLength(2);
    expect(JSON.parse(receiptsOfCall(again.call.sid)[0]!.result!)).toMatchObject({ outcome: "unchanged" });
  });

  it("a fixed line choosing consent or refusal for both hears only what took effect: calls (SMS needs a mobile, H464)", async () => {
    const from = "+902122229876";
    const consent = await callAndChoose(from, (c) => c.press("4"));
    expect(text(consent.final)).toContain("Talebiniz kaydedildi: MİGROS için yalnızca ticari aramalara izin verildi.");
    expect(eventsOf(from)).toEqual([event("MIGROS", "ARAMA", "ONAY", "movement")]);
    expect(JSON.parse(receiptsOfCall(consent.call.sid)[0]!.result!)).toMatchObject({ outcome: "recorded", types: ["ARAMA"] });
    const refusal = await callAndChoose(from, (c) => c.press("3"));
    expect(text(refusal.final)).toContain("Talebiniz kaydedildi: MİGROS için ticari aramalar reddedildi.");
    expect(eventsOf(from).map((e) => `${e.type}:${e.status}`)).toEqual(["ARAMA:ONAY", "ARAMA:RET"]);
  });

  it("a refusal the rules reject entirely (SMS for a fixed line, H464) is answered as not processed", async () => {
    const from = "+902122223344";
    const { call, final } = await callAndChoose(from, (c) => c.press("2"));
    expect(text(final)).toContain("Talebiniz işlenemedi");
    expect(eventsOf(from)).toEqual([]);
    expect(JSON.parse(receiptsOfCall(call.sid)[0]!.result!)).toMatchObject({ outcome: "rejected" });
  });

  it("0 repeats the menu without counting as a failed attempt, and 2 at the confirmation cancels with nothing recorded", async () => {
    const from = newCaller();
    const call = new Call(from);
    await call.start();
    for (let i = 0; i < 3; i++) {
      const a = await call.press("0");
      expect(stepOf(a)).toBe("menu");
      expect(text(a)).not.toContain("Geçersiz");
    }
    await call.press("1");
    const end = await call.press("2");
    expect(isHangup(end)).toBe(true);
    expect(text(end)).toContain("iptal edildi");
    expect(receiptsOfCall(call.sid)).toEqual([]);
    expect(eventsOf(from)).toEqual([]);
  });

  it("9 switches to English: en-US prompts and speech, and the final prompt in English", async () => {
    const from = newCaller();
    const call = new Call(from);
    await call.start();
    const menu = await call.press("9");
    expect(gatherOf(menu).attrs.language).toBe("en-US");
    expect(all(menu.doc!, "Say")[0]!.attrs).toEqual({ language: "en-US", voice: "Polly.Joanna" });
    expect(text(menu)).toContain("To refuse commercial calls, press 1");
    const confirm = await call.press("1");
    expect(text(confirm)).toContain("To confirm, press 1");
    const final = await call.press("1");
    expect(text(final)).toContain("Your request has been recorded");
    expect(all(final.doc!, "Say")[0]!.attrs.language).toBe("en-US");
    expect(eventsOf(from)).toEqual([event("MIGROS", "ARAMA", "RET", "suppression")]);
  });

  it("an enabled brand also confirms the call by SMS from its SMS number", async () => {
    const from = newCaller();
    await callAndChoose(from, (c) => c.press("3"));
    const sms = (await waitFor(() => fakeTwilio.sent.find((s) => s.to === from)))!;
    expect(sms.from).toBe("3434");
    expect(sms.text).toContain("reddettiniz");
  });
});

describe("IVR menu by voice", () => {
  it.each([
    ["reddet", [["ARAMA", "RET"], ["MESAJ", "RET"]]],
    ["Hayır", [["ARAMA", "RET"], ["MESAJ", "RET"]]],
    ["aramaları reddediyorum", [["ARAMA", "RET"]]],
    ["SMS istemiyorum", [["MESAJ", "RET"]]],
    ["üç", [["ARAMA", "RET"], ["MESAJ", "RET"]]],
    ["evet", [["ARAMA", "ONAY"], ["MESAJ", "ONAY"]]],
    ["ONAY", [["ARAMA", "ONAY"], ["MESAJ", "ONAY"]]],
    ["Evet, mesaj gelsin", [["MESAJ", "ONAY"]]],
    ["aramalara onay veriyorum", [["ARAMA", "ONAY"]]],
    ["Bir daha asla aramayın", [["ARAMA", "RET"]]],
    ["Hiç istemiyorum!", [["ARAMA", "RET"], ["MESAJ", "RET"]]],
    ["Beni rahatsız etmeyin", [["ARAMA", "RET"], ["MESAJ", "RET"]]],
  ])("saying %j records the matching actions after a spoken confirmation", async (words, expected) => {
    const from = newCaller();
    const call = new Call(from);
    await call.start();
    expect(stepOf(await call.say(words))).toBe("confirm");
    const final = await call.say("evet");
    expect(text(final)).toContain("Talebiniz kaydedildi");
    const effect = expected[0]![1] === "ONAY" ? "movement" : "suppression";
    expect(eventsOf(from)).toEqual(expected.map(([type, status]) => event("MIGROS", type!, status!, effect)));
    // The receipt keeps what was said, the evidence of how the choice was given.
    const [receipt] = db().prepare("SELECT body FROM receipts WHERE provider_ref = ?").all(`${call.sid}:confirm`) as { body: string }[];
    expect(receipt!.body).toBe(`menu: ${JSON.stringify(words)}; confirm: "evet"`);
  });

  it.each(["onay vermiyorum", "kabul etmiyorum", "onay değil", "I don't consent", "I do not agree", "evet istemiyorum değil", "Kabul etmem.", "Onay vermem", "Kabul etmeyeceğim", "I won't consent"])(
    "a negated consent (%j) is not consent: asked again, nothing recorded",
    async (words) => {
      const from = newCaller();
      const call = new Call(from);
      await call.start();
      const again = await call.say(words);
      expect(stepOf(again)).toBe("menu");
      expect(sayTexts(again.doc!)[0]).toBe("Geçersiz seçim.");
      expect(eventsOf(from)).toEqual([]);
    },
  );

  it.each(["tamam değil", "evet yanlış", "onaylamıyorum", "Onaylamam", "Kabul edemem", "I won't confirm"])("a negated yes (%j) at the confirmation cancels", async (words) => {
    const from = newCaller();
    const call = new Call(from);
    await call.start();
    expect(stepOf(await call.say("evet"))).toBe("confirm");
    const end = await call.say(words);
    expect(text(end)).toContain("iptal edildi");
    expect(receiptsOfCall(call.sid)).toEqual([]);
    expect(eventsOf(from)).toEqual([]);
  });

  it("naming a language chooses it: 'Türkçe' keeps Turkish, 'English' switches, and 'English' again stays", async () => {
    const call = new Call(newCaller());
    await call.start();
    const tr = await call.say("Türkçe");
    expect(gatherOf(tr).attrs.language).toBe("tr-TR");
    const en = await call.say("English please");
    expect(gatherOf(en).attrs.language).toBe("en-US");
    const still = await call.say("english");
    expect(gatherOf(still).attrs.language).toBe("en-US");
    expect(gatherOf(await call.say("Turkish")).attrs.language).toBe("tr-TR");
  });

  it("confirming a consent, 'evet istemiyorum' cancels with nothing recorded; confirming a refusal, it agrees", async () => {
    const from = newCaller();
    const call = new Call(from);
    await call.start();
    await call.press("4");
    const end = await call.say("evet istemiyorum");
    expect(text(end)).toContain("iptal edildi");
    expect(receiptsOfCall(call.sid)).toEqual([]);
    const refusing = new Call(from);
    await refusing.start();
    await refusing.press("1");
    const done = await refusing.say("evet, istemiyorum");
    expect(text(done)).toContain("kaydedildi");
    expect(eventsOf(from).map((e) => `${e.type}:${e.status}`)).toEqual(["ARAMA:RET"]);
  });

  it("a confirmation answered again after another choice (a replayed menu step) is told what was recorded, not the new choice", async () => {
    const from = newCaller();
    const call = new Call(from);
    await call.start();
    const menuUrl = call.action!;
    await call.press("1");
    const first = await call.press("1");
    expect(text(first)).toContain("aramalar");
    await call.post(menuUrl, { Digits: "2" });
    const second = await call.press("1");
    expect(eventsOf(from).map((e) => `${e.type}:${e.status}`)).toEqual(["ARAMA:RET"]);
    expect(second.xml).toBe(first.xml);
  });

  it("saying 'tekrar' repeats the menu, and 'vazgeç' at the confirmation cancels", async () => {
    const call = new Call(newCaller());
    await call.start();
    const again = await call.say("tekrar");
    expect(stepOf(again)).toBe("menu");
    expect(text(again)).toContain("tekrar dinlemek için 0");
    await call.say("ret");
    const end = await call.say("vazgeç");
    expect(text(end)).toContain("iptal edildi");
    expect(receiptsOfCall(call.sid)).toEqual([]);
  });
});

describe("IVR on a number shared by two brands", () => {
  it("asks which brand first, listing them by key, and key 2 leads to KOTON's menu and a KOTON refusal", async () => {
    const from = newCaller();
    const call = new Call(from, SHARED);
    const first = await call.start();
    expect(stepOf(first)).toBe("brand");
    const g = gatherOf(first);
    expect(g.attrs).toMatchObject({ input: "dtmf speech", language: "tr-TR", finishOnKey: "#" });
    expect(g.attrs.numDigits).toBeUndefined();
    expect(g.attrs.hints).toBe("MİGROS, KOTON");
    expect(text(first)).toContain("MİGROS için 1, KOTON için 2");
    const menu = await call.press("2");
    expect(stepOf(menu)).toBe("menu");
    expect(text(menu)).toContain("KOTON ticari ileti izin hattına hoş geldiniz");
    await call.press("1");
    const final = await call.press("1");
    expect(text(final)).toContain("KOTON için ticari aramalar reddedildi");
    expect(eventsOf(from)).toEqual([event("KOTON", "ARAMA", "RET", "suppression")]);
  });

  it.each([
    ["the İYS brand number keyed in", { Digits: "654321" }, "MİGROS"],
    ["the name spoken with Turkish letters folded", { SpeechResult: "Mıgros lütfen" }, "MİGROS"],
    ["the other name spoken", { SpeechResult: "koton" }, "KOTON"],
  ])("picks the brand from %s", async (_, input, brand) => {
    const call = new Call(newCaller(), SHARED);
    await call.start();
    const menu = await call.post(call.action!, input);
    expect(stepOf(menu)).toBe("menu");
    expect(sayTexts(menu.doc!)[0]).toContain(`${brand} ticari ileti izin hattına hoş geldiniz`);
  });

  it.each(["*", "#", "*#", "**"])("only %j at the brand question is an invalid choice, not an error", async (digits) => {
    const call = new Call(newCaller(), SHARED);
    await call.start();
    const again = await call.post(call.action!, { Digits: digits });
    expect(again.status).toBe(200);
    expect(stepOf(again)).toBe("brand");
    expect(sayTexts(again.doc!)[0]).toBe("Geçersiz seçim.");
  });

  it("a brand that only texts from the number is not offered to its callers", async () => {
    // SINGLE answers calls for MIGROS; FLO sends SMS from it and takes no calls there.
    const flo = { code: "FLO", name: "Flo", shortNames: ["FLO"], numbers: [{ number: SINGLE, provider: "twilio", channels: ["sms"] }] };
    expect((await app.request("/api/v1/brands", authed(flo))).status).toBe(201);
    const from = newCaller();
    const call = new Call(from, SINGLE);
    const first = await call.start();
    expect(stepOf(first)).toBe("menu");
    expect(text(first)).toContain("MİGROS ticari ileti izin hattına hoş geldiniz");
    expect(text(first)).not.toContain("FLO");
  });

  it("an unknown brand key is repeated with 'Geçersiz seçim'", async () => {
    const call = new Call(newCaller(), SHARED);
    await call.start();
    const again = await call.press("5");
    expect(stepOf(again)).toBe("brand");
    expect(sayTexts(again.doc!)[0]).toBe("Geçersiz seçim.");
  });
});

describe("IVR with a withheld caller ID", () => {
  it("offers refusals only, and refuses a consent by key or by voice with nothing recorded", async () => {
    const call = new Call("anonymous");
    const menu = await call.start();
    expect(text(menu)).toContain("yalnızca ret talebi alınabilir");
    expect(text(menu)).not.toContain("izin vermek için 4");
    for (const attempt of [() => call.press("4"), () => call.say("evet")]) {
      const a = await attempt();
      expect(stepOf(a)).toBe("menu");
      expect(sayTexts(a.doc!)[0]).toContain("izin verilemez");
      // Said once: the menu after it does not repeat that only a refusal can be taken.
      expect(text(a).match(/yalnızca ret talebi alınabilir/g)).toHaveLength(1);
    }
    expect(receiptsOfCall(call.sid)).toEqual([]);
  });

  it("keys in a number for a refusal: it is read back, confirmed and recorded against that number", async () => {
    const call = new Call("+266696687");
    await call.start();
    const ask = await call.press("3");
    expect(stepOf(ask)).toBe("number");
    expect(gatherOf(ask).attrs).toMatchObject({ input: "dtmf", finishOnKey: "#" });
    const bad = await call.press("12345");
    expect(stepOf(bad)).toBe("number");
    expect(sayTexts(bad.doc!)[0]).toBe("Geçersiz seçim.");
    const confirm = await call.press("0532 999 11 22".replace(/ /g, ""));
    expect(stepOf(confirm)).toBe("confirm");
    expect(text(confirm)).toContain("0 5 3 2 9 9 9 1 1 2 2 numarasına");
    const final = await call.press("1");
    expect(text(final)).toContain("Talebiniz kaydedildi");
    expect(eventsOf("+905329991122")).toEqual([event("MIGROS", "ARAMA", "RET", "suppression"), event("MIGROS", "MESAJ", "RET", "suppression")]);
    const [receipt] = receiptsOfCall(call.sid);
    expect(receipt!.fromAddress).toBe("+905329991122");
    expect(JSON.parse(receipt!.payload)).toMatchObject({ keyed: true, status: "RET" });
    await waitFor(() => fakeTwilio.sent.some((m) => m.to === "+905329991122"));
    // Keyed in again (anyone may key in anyone's number): nothing changed, so it is not texted again.
    const again = new Call("+266696687");
    await again.start();
    await again.press("3");
    await again.press("05329991122");
    expect(text(await again.press("1"))).toContain("zaten geçerliydi");
    expect(db().prepare("SELECT count(*) FROM outbox o JOIN receipts r ON r.id = o.receipt_id WHERE o.kind = 'confirmation' AND r.provider_ref LIKE ?").pluck().get(`${again.sid}:%`)).toBe(0);
    await new Promise((r) => setTimeout(r, 1500));
    expect(fakeTwilio.sent.filter((m) => m.to === "+905329991122")).toHaveLength(1);
    // The caller's own number is texted on an unchanged choice as before.
    const own = newCaller();
    await callAndChoose(own, (c) => c.press("2"));
    await callAndChoose(own, (c) => c.press("2"));
    await waitFor(() => fakeTwilio.sent.filter((m) => m.to === own).length === 2);
  });
});

describe("IVR no input and invalid input", () => {
  it("repeats and language switches do not keep a call going for ever: a goodbye after MAX_TURNS answers, nothing recorded", async () => {
    const call = new Call(newCaller());
    await call.start();
    for (let i = 0; i < MAX_TURNS; i++) expect(stepOf(await call.press(i % 2 ? "0" : "9"))).toBe("menu");
    const end = await call.press("0");
    expect(isHangup(end)).toBe(true);
    expect(receiptsOfCall(call.sid)).toEqual([]);
  });

  it("silence is repeated twice ('Sizi duyamadık'), then a polite goodbye and hang-up, nothing recorded", async () => {
    const call = new Call(newCaller());
    await call.start();
    for (let i = 0; i < 2; i++) {
      const a = await call.silence();
      expect(stepOf(a)).toBe("menu");
      expect(sayTexts(a.doc!)[0]).toBe("Sizi duyamadık.");
    }
    const end = await call.silence();
    expect(isHangup(end)).toBe(true);
    expect(text(end)).toContain("Dilediğiniz zaman yeniden arayabilirsiniz");
    expect(receiptsOfCall(call.sid)).toEqual([]);
  });

  it("invalid keys and unintelligible speech at the confirmation count together and end the call after two repeats", async () => {
    const call = new Call(newCaller());
    await call.start();
    await call.press("1");
    expect(sayTexts((await call.press("7")).doc!)[0]).toBe("Geçersiz seçim.");
    expect(sayTexts((await call.say("bilmiyorum")).doc!)[0]).toBe("Geçersiz seçim.");
    const end = await call.press("8");
    expect(isHangup(end)).toBe(true);
    expect(receiptsOfCall(call.sid)).toEqual([]);
  });
});

describe("IVR retries and durability", () => {
  it("Twilio retrying the final step gets the same answer and changes nothing: one receipt, one event", async () => {
    const from = newCaller();
    const call = new Call(from);
    await call.start();
    await call.press("1");
    const confirmUrl = call.action!;
    const first = await call.post(confirmUrl, { Digits: "1" });
    const second = await call.post(confirmUrl, { Digits: "1" });
    expect(second.xml).toBe(first.xml);
    expect(receiptsOfCall(call.sid)).toHaveLength(1);
    expect(eventsOf(from)).toHaveLength(1);
  });

  it("the receipt is durable before the answer: without waiting, the caller hears 'alındı' and the job applies it afterwards", async () => {
    const noWait = createApp({ ...runtime.deps, config: { ...runtime.deps.config, IVR_APPLY_WAIT_MS: 0 } });
    const from = newCaller();
    const call = new Call(from, SINGLE, () => noWait);
    await call.start();
    await call.press("2");
    const final = await call.press("1");
    expect(text(final)).toContain("Talebiniz alındı, en kısa sürede uygulanacak");
    expect(receiptsOfCall(call.sid)).toHaveLength(1);
    await waitFor(() => receiptsOfCall(call.sid)[0]!.status === "applied");
    expect(eventsOf(from)).toEqual([event("MIGROS", "MESAJ", "RET", "suppression")]);
  });
});

describe("IVR security", () => {
  it("a wrong or missing signature is refused with 403 at every webhook, nothing stored", async () => {
    const call = new Call(newCaller());
    await call.start();
    await call.press("1");
    const confirmUrl = call.action!;
    for (const [url, extra] of [
      [`${BASE}/voice/twilio`, {}],
      [confirmUrl, { Digits: "1" }],
      [`${BASE}/voice/twilio/status`, { CallStatus: "completed" }],
    ] as const) {
      for (const sig of ["bm90LWEtc2lnbmF0dXJl", null]) {
        const a = await call.post(url, extra, sig);
        expect(a.status).toBe(403);
        expect(JSON.parse(a.xml).error.code).toBe("forbidden");
      }
    }
    // Signed for another URL (the entry) but posted to the confirmation.
    const params = call.params({ Digits: "1" });
    const res = await signedPost(app, confirmUrl, params, twilio.getExpectedTwilioSignature(AUTH_TOKEN, `${BASE}/voice/twilio`, params));
    expect(res.status).toBe(403);
    expect(receiptsOfCall(call.sid)).toEqual([]);
  });

  it("a tampered state token, one for another step, or none at all is refused with 403, nothing recorded", async () => {
    const call = new Call(newCaller());
    await call.start();
    await call.press("1");
    const url = new URL(call.action!);
    const token = url.searchParams.get("s")!;
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);
    const tampered = [flip(token, token.length - 5), flip(token, token.indexOf(".", token.indexOf(".") + 1) + 3)];
    for (const t of tampered) {
      const a = await call.post(`${BASE}/voice/twilio/confirm?s=${encodeURIComponent(t)}`, { Digits: "1" });
      expect(a.status).toBe(403);
    }
    const wrongStep = await call.post(`${BASE}/voice/twilio/menu?s=${encodeURIComponent(token)}`, { Digits: "1" });
    expect(wrongStep.status).toBe(403);
    expect(JSON.parse(wrongStep.xml).error.message).toContain("another step");
    expect((await call.post(`${BASE}/voice/twilio/confirm`, { Digits: "1" })).status).toBe(403);
    expect(receiptsOfCall(call.sid)).toEqual([]);
  });

  it("a state token replayed from another call is refused with 403, and the other call records nothing", async () => {
    const victim = new Call(newCaller());
    await victim.start();
    await victim.press("4");
    const stolen = victim.action!;
    const attacker = new Call(newCaller());
    await attacker.start();
    const a = await attacker.post(stolen, { Digits: "1" });
    expect(a.status).toBe(403);
    expect(JSON.parse(a.xml).error.message).toContain("another call");
    expect(receiptsOfCall(attacker.sid)).toEqual([]);
    expect(receiptsOfCall(victim.sid)).toEqual([]);
  });

  it("an expired state token is refused", async () => {
    let now = Date.UTC(2026, 10, 22, 10);
    const sealer = new CallStateSealer(runtime.deps.secrets.derive("ivr-state"), 60, () => now);
    const token = await sealer.seal(`CA${"d".repeat(32)}`, { step: "menu", lang: "tr", brand: 1, retries: 0 });
    expect((await sealer.open(token, `CA${"d".repeat(32)}`)).ok).toBe(true);
    now += 61_000;
    expect(await sealer.open(token, `CA${"d".repeat(32)}`)).toEqual({ ok: false, reason: "the call state token has expired" });
  });

  it("a malformed CallSid is a 400 naming the field", async () => {
    const res = await signedPost(app, `${BASE}/voice/twilio`, { CallSid: "nope", From: newCaller(), To: SINGLE });
    expect(res.status).toBe(400);
    expect((await res.json()).error.field).toBe("CallSid");
  });

  it("a body over 64 KiB is a 413 at every voice webhook, before its signature is read", async () => {
    for (const path of ["/voice/twilio", "/voice/twilio/menu", "/voice/twilio/status"]) {
      const res = await app.request(path, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": "bm90LWEtc2lnbmF0dXJl" },
        body: `CallSid=${"x".repeat(70_000)}`,
      });
      expect(res.status).toBe(413);
      expect((await res.json()).error).toMatchObject({ code: "payload_too_large", message: "a webhook body is at most 65536 bytes" });
    }
  });
});

describe("IVR call status callbacks", () => {
  it("completed, no-answer and failed are kept as audit receipts, once each however often Twilio retries, and never applied", async () => {
    const call = new Call(newCaller());
    for (const status of ["completed", "completed", "no-answer", "failed"]) {
      const a = await call.post(`${BASE}/voice/twilio/status`, { CallStatus: status, CallDuration: "42" });
      expect(a.status).toBe(204);
    }
    const rows = receiptsOfCall(call.sid);
    expect(rows.map((r) => [r.ref, r.channel, r.status])).toEqual([
      [`${call.sid}:status:completed`, "voice", "audit"],
      [`${call.sid}:status:no-answer`, "voice", "audit"],
      [`${call.sid}:status:failed`, "voice", "audit"],
    ]);
    expect(JSON.parse(rows[0]!.payload)).toMatchObject({ callStatus: "completed", callDuration: "42" });
    // The sweeper (1 s grace here) only picks up `received` receipts: these stay audit-only.
    await new Promise((r) => setTimeout(r, 2500));
    expect(receiptsOfCall(call.sid).map((r) => r.status)).toEqual(["audit", "audit", "audit"]);
    expect(eventsOf(call.from)).toEqual([]);
  });
});

describe("IVR prompts are valid TwiML", () => {
  const ctx: prompts.PromptContext = { baseUrl: BASE, timeoutSeconds: 6 };
  const token = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..iv.ct.tag";
  const retries: prompts.Retry[] = ["none", "empty", "invalid", "consent-withheld"];
  const choices = ivrChoices;
  const outcomes: prompts.Outcome[] = ["recorded", "unchanged", "rejected", "pending"];
  const rendered: [string, string][] = [];
  for (const lang of ["tr", "en"] as const) {
    for (const retry of retries) {
      rendered.push([`brand menu ${lang} ${retry}`, prompts.brandMenu(ctx, lang, token, [{ spokenName: "MİGROS" }, { spokenName: "KOTON" }], retry)]);
      for (const allowConsent of [true, false]) {
        rendered.push([`main menu ${lang} ${retry} consent=${allowConsent}`, prompts.mainMenu(ctx, lang, token, "MİGROS", { greet: true, allowConsent, retry })]);
      }
      rendered.push([`number ${lang} ${retry}`, prompts.numberPrompt(ctx, lang, token, retry)]);
      for (const choice of choices) rendered.push([`confirm ${lang} ${retry} ${choice}`, prompts.confirmPrompt(ctx, lang, token, "MİGROS", choice, retry === "none" ? undefined : "+905321234567", retry)]);
    }
    for (const choice of choices) for (const outcome of outcomes) rendered.push([`final ${lang} ${choice} ${outcome}`, prompts.finalPrompt(lang, "MİGROS", choice, outcome)]);
    rendered.push([`cancelled ${lang}`, prompts.cancelledPrompt(lang)], [`too many attempts ${lang}`, prompts.tooManyAttemptsPrompt(lang)]);
  }
  rendered.push(["unavailable", prompts.unavailablePrompt()]);

  it.each(rendered)("%s: known verbs and attributes, a Polly voice for its language, absolute actions under PUBLIC_BASE_URL", (_, xml) => {
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>')).toBe(true);
    const doc = parseTwiml(xml);
    expect(twimlProblems(doc, BASE)).toEqual([]);
    // Every prompt either waits for the caller (Gather with an action) or ends the call.
    const gathers = all(doc, "Gather");
    if (gathers.length) expect(new URL(gathers[0]!.attrs.action!).searchParams.get("s")).toBe(token);
    else expect(all(doc, "Hangup")).toHaveLength(1);
  });

  it("the checker itself refuses what Twilio would reject", () => {
    const bad = parseTwiml(
      '<Response><Gather input="keys" action="/relative" numDigits="0"><Hangup/></Gather><Say language="tr-TR" voice="Polly.Joanna">x</Say><Speak>x</Speak></Response>',
    );
    const problems = twimlProblems(bad, BASE);
    expect(problems).toEqual(
      expect.arrayContaining([
        "<Gather> input keys",
        "<Gather> numDigits 0",
        "<Gather> action /relative is not an absolute URL",
        "<Gather> may not contain <Hangup>",
        "<Say> voice Polly.Joanna does not speak tr-TR",
        "unknown element <Speak>",
      ]),
    );
  });
});
