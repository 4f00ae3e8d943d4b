import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../src/app";
import { exportState } from "../src/export";
import { formatIysDate, parseIysDate } from "../src/domain/time";
import { iysPullBrands, iysPullCursor, pullIysChanges, type IysPullBrand, type IysPullDeps } from "../src/iys-pull";
import { createRuntime, type Runtime } from "../src/runtime";
import { FakeIys } from "./fakes/iys";
import { WebhookReceiver } from "./fakes/webhook-receiver";
import { ADMIN_KEY, authed, databaseBytes, deletePrefix, tempDir, testConfig, waitFor } from "./helpers";

/**
 * Recipients' own movements on İYS (e-Devlet, İYS's site and app, 3338) pulled into the ledger:
 * real Redis, SQLite, workers and callbacks, a fake İYS over HTTP speaking its pull protocol.
 */
const tmp = tempDir();
const iys = new FakeIys();
const receiver = new WebhookReceiver();
let runtime: Runtime;
let app: App;
let deps: IysPullDeps;

beforeAll(async () => {
  const url = await iys.start();
  await receiver.start();
  runtime = await createRuntime(
    // A report İYS could not take is tried again 50 ms later (doubled each time) instead of 30 s.
    testConfig(tmp.dir, { IYS_API_BASE_URL: url, IYS_USERNAME: "api@hs.example", IYS_PASSWORD: "secret", CALLBACK_ALLOW_PRIVATE: "true", IYS_RETRY_BASE_SECONDS: "0.05" }),
  );
  runtime.startBackground();
  app = createApp(runtime.deps);
  deps = { ...runtime.deps, iys: runtime.iys, enqueueOutbox: runtime.deps.jobs.enqueueOutbox };
});

afterAll(async () => {
  await runtime.close();
  await iys.stop();
  await receiver.stop();
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

const db = () => runtime.deps.db.$client;
let brandSeq = 0;
async function newBrand(): Promise<IysPullBrand> {
  const n = ++brandSeq;
  const code = `PULL${n}`;
  const res = await app.request("/api/v1/brands", authed({ code, name: `Pull ${n}`, iysCode: `8000${n}`, brandCode: `9000${n}`, shortNames: [code], numbers: [] }));
  expect(res.status, await res.clone().text()).toBe(201);
  return iysPullBrands(runtime.deps.db).find((b) => b.code === code)!;
}
let phoneSeq = 0;
const newPhone = () => `+90532${String(4_000_000 + ++phoneSeq).padStart(7, "0")}`;
/** The follow row of an event, once it has ended with `status`. */
const followEnded = (eventId: number, status: string) =>
  waitFor(() => {
    const r = db().prepare(`SELECT status, last_error AS lastError FROM outbox WHERE kind = 'iys_follow' AND event_id = ?`).get(eventId) as { status: string; lastError: string } | undefined;
    if (r?.status !== status) throw new Error(`follow ${r?.status}`);
    return r;
  });
const minutesAgo = (m: number) => formatIysDate(new Date(Date.now() - m * 60_000));
const events = (brandId: number) =>
  db().prepare(`SELECT id, recipient, status, source, origin, effect FROM consent_events WHERE brand_id = ? ORDER BY id`).all(brandId) as {
    id: number;
    recipient: string;
    status: string;
    source: string;
    origin: string;
    effect: string;
  }[];
const stateOf = (brandId: number, recipient: string) =>
  db().prepare(`SELECT status, source, in_iys AS inIys FROM consent_state WHERE brand_id = ? AND recipient = ? AND type = 'MESAJ'`).get(brandId, recipient) as
    | { status: string; source: string; inIys: number }
    | undefined;

describe("pulling recipients' movements from İYS", () => {
  it("a refusal made on İYS reaches the ledger, the pre-send check and the brand's subscriptions; it is not reported back, and İYS's day file has it", async () => {
    const brand = await newBrand();
    const phone = newPhone();
    const consent = await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: phone, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: minutesAgo(30) }));
    expect(consent.status).toBe(201);
    await waitFor(() => iys.writes.some((w) => w.body.recipient === phone) || undefined);
    const sub = await app.request("/api/v1/subscriptions", authed({ url: `${receiver.base}/pull-1`, brands: [brand.code] }));
    expect(sub.status).toBe(201);
    const check = async () =>
      (await (await app.request("/api/v1/check", authed({ brand: brand.code, type: "MESAJ", recipients: [phone] }))).json()) as {
        allowed: string[];
        denied: { recipient: string; reason: string }[];
      };
    expect((await check()).allowed).toEqual([phone]);

    // The recipient refuses on e-Devlet; İYS lists it with the name it knows (personal data the hub does not keep).
    const onIys = iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: phone, type: "MESAJ", status: "RET", source: "IYS_WEB", citizenName: "Ayşe Pullanmaz" });
    const summary = await pullIysChanges(deps, brand);
    expect(summary).toMatchObject({ pages: 1, listed: 1, recorded: 1, unchanged: 0, refused: {} });
    expect(iys.changeQueries.at(-1)!.get("source")).toBe("IYS");

    expect(await check()).toEqual({ allowed: [], denied: [{ recipient: phone, reason: "refused" }] });
    expect(events(brand.id).map((e) => [e.status, e.source, e.origin, e.effect])).toEqual([
      ["ONAY", "HS_WEB", "api", "movement"],
      ["RET", "IYS_WEB", "iys", "movement"],
    ]);
    const ret = events(brand.id)[1]!;
    await waitFor(() => receiver.at("/pull-1").length === 1 || undefined);
    const delivered = JSON.parse(receiver.at("/pull-1")[0]!.body) as { type: string; data: Record<string, unknown> };
    expect(delivered).toMatchObject({ type: "consent.changed", data: { brand: brand.code, recipient: phone, status: "RET", source: "IYS_WEB", eventId: ret.id } });

    // Never sent back to İYS (it is İYS's own), and in the day's file under İYS's transactionId.
    await new Promise((r) => setTimeout(r, 300));
    expect(iys.writes.filter((w) => w.body.recipient === phone).map((w) => w.body.status)).toEqual(["ONAY"]);
    expect(db().prepare(`SELECT count(*) AS n FROM outbox WHERE event_id = ? AND kind LIKE 'iys_%'`).get(ret.id)).toEqual({ n: 0 });
    const today = formatIysDate(new Date()).slice(0, 10);
    const file = await (await app.request(`/api/v1/reports/daily?brand=${brand.code}&date=${today}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    expect(file.split("\n")).toContain(`${onIys.creationDate},${onIys.transactionId},${phone},BIREYSEL,MESAJ,RET,${onIys.consentDate},IYS_WEB`);

    // The name İYS gave is nowhere in the database.
    const bytes = databaseBytes(runtime.deps.config.DATABASE_PATH);
    expect(bytes.includes(Buffer.from(onIys.transactionId as string))).toBe(true);
    expect(bytes.includes(Buffer.from("Pullanmaz"))).toBe(false);
  });

  it("a movement İYS refuses for holding a newer record (H178) makes the hub take İYS's record; the pull later lists it as the same event", async () => {
    const brand = await newBrand();
    const phone = newPhone();
    const sub = await app.request("/api/v1/subscriptions", authed({ url: `${receiver.base}/h178`, brands: [brand.code] }));
    expect(sub.status).toBe(201);
    // The recipient refused on İYS ten minutes ago; the pull has not run since. The provider then
    // records a consent collected half an hour ago: the hub takes it (it knows of nothing newer).
    const onIys = iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: phone, type: "MESAJ", status: "RET", source: "IYS_MOBIL", consentDate: minutesAgo(10) });
    iys.failStatusNext = 2; // İYS's status query fails twice: asked again later, the refused write is not sent again.
    const consent = await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: phone, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: minutesAgo(30) }));
    expect(consent.status).toBe(201);
    const onay = events(brand.id)[0]!;

    const rows = await waitFor(() => {
      const rs = db().prepare(`SELECT kind, status, attempts, last_error AS lastError, result FROM outbox WHERE event_id = ? AND kind LIKE 'iys_%' ORDER BY id`).all(onay.id) as {
        kind: string;
        status: string;
        attempts: number;
        lastError: string | null;
        result: string | null;
      }[];
      if (rs.length !== 2 || rs[1]!.status !== "done") throw new Error(`rows ${JSON.stringify(rs)}`);
      return rs;
    });
    expect(iys.failStatusNext).toBe(0);
    expect(iys.writes.filter((w) => w.body.recipient === phone).map((w) => w.body.status)).toEqual(["ONAY"]);
    const ret = events(brand.id)[1]!;
    expect(rows.map((r) => [r.kind, r.status])).toEqual([
      ["iys_report", "failed"],
      ["iys_follow", "done"],
    ]);
    expect(rows[0]!.lastError).toBe("İYS refused the movement: H178: Sistemdeki iznin tarihinden önceki tarihli izinlerle güncelleme yapılamaz.; İYS's record is taken by an iys_follow row");
    expect(rows[1]!.attempts).toBe(3);
    expect(JSON.parse(rows[1]!.result!)).toEqual({ held: { status: "RET", consentDate: onIys.consentDate, source: "IYS_MOBIL" }, outcome: "recorded", eventId: ret.id });
    expect(JSON.stringify(rows)).not.toContain(phone);
    expect(events(brand.id).map((e) => [e.status, e.source, e.origin, e.effect])).toEqual([
      ["ONAY", "HS_WEB", "api", "movement"],
      ["RET", "IYS_MOBIL", "iys", "movement"],
    ]);
    const check = (await (await app.request("/api/v1/check", authed({ brand: brand.code, type: "MESAJ", recipients: [phone] }))).json()) as unknown;
    expect(check).toEqual({ allowed: [], denied: [{ recipient: phone, reason: "refused" }] });
    await waitFor(() => receiver.at("/h178").some((d) => (JSON.parse(d.body) as { data: { eventId: number } }).data.eventId === ret.id) || undefined);

    // The pull lists the recipient's refusal: the same event, not a second one; İYS's day file has it once.
    const summary = await pullIysChanges(deps, brand);
    expect(summary).toMatchObject({ listed: 1, recorded: 0, unchanged: 1 });
    expect(events(brand.id)).toHaveLength(2);
    const today = formatIysDate(new Date()).slice(0, 10);
    const file = await (await app.request(`/api/v1/reports/daily?brand=${brand.code}&date=${today}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    expect(file.split("\n").filter((l) => l.includes(phone))).toEqual([`${onIys.creationDate},${onIys.transactionId},${phone},BIREYSEL,MESAJ,RET,${onIys.consentDate},IYS_MOBIL`]);
  });

  it("a refusal İYS refuses for a consent it holds from the same second is kept, never overridden: the follow ends failed saying İYS must be told", async () => {
    const brand = await newBrand();
    const phone = newPhone();
    const consent = await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: phone, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: minutesAgo(30) }));
    expect(consent.status).toBe(201);
    await waitFor(() => iys.writes.some((w) => w.body.recipient === phone) || undefined);
    // Another of the provider's systems wrote a consent dated the very second the recipient then refuses at.
    const at = minutesAgo(10);
    iys.providerMovement(brand.iysCode, brand.brandCode, { recipient: phone, type: "MESAJ", status: "ONAY", source: "HS_FIZIKSEL_ORTAM", consentDate: at });
    const ret = await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: phone, type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: at }));
    expect(ret.status).toBe(201);
    const refusal = events(brand.id).at(-1)!;
    const follow = await followEnded(refusal.id, "failed");
    expect(follow.lastError).toBe(
      `İYS holds ONAY dated ${at} (HS_FIZIKSEL_ORTAM), not newer than the hub's refusal: the refusal stands here, but İYS still holds the consent; record the refusal on İYS by hand`,
    );
    expect(stateOf(brand.id, phone)).toMatchObject({ status: "RET" });
    expect(events(brand.id)).toHaveLength(2);
  });

  it("a refusal too old for İYS (H467) over a consent İYS holds: the hub asks İYS, which still holds it, and the follow ends failed saying İYS must be told", async () => {
    const brand = await newBrand();
    const phone = newPhone();
    const yearAgo = formatIysDate(new Date(Date.now() - 365 * 86_400_000));
    // The provider's base, on İYS and registered with the hub as such.
    iys.providerMovement(brand.iysCode, brand.brandCode, { recipient: phone, type: "MESAJ", status: "ONAY", source: "HS_FIZIKSEL_ORTAM", consentDate: yearAgo });
    const loaded = await app.request(`/api/v1/imports?brand=${brand.code}&registered=true`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "text/csv" },
      body: `type,recipient,status,source,consentDate,recipientType\nMESAJ,${phone},ONAY,HS_FIZIKSEL_ORTAM,${yearAgo},BIREYSEL\n`,
    });
    expect(loaded.status, await loaded.clone().text()).toBe(200);
    // A refusal collected ten days ago, entered now: İYS would refuse it (H467).
    const ret = await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: phone, type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: minutesAgo(10 * 24 * 60) }));
    expect(ret.status).toBe(201);
    expect(((await ret.json()) as { iys: { code?: string } }).iys.code).toBe("H467");
    const refusal = events(brand.id).at(-1)!;
    expect(refusal).toMatchObject({ status: "RET", effect: "suppression" });
    const follow = await followEnded(refusal.id, "failed");
    expect(follow.lastError).toBe(
      `İYS holds ONAY dated ${yearAgo} (HS_FIZIKSEL_ORTAM), not newer than the hub's refusal: the refusal stands here, but İYS still holds the consent; record the refusal on İYS by hand`,
    );
    // Nothing was written to İYS: it would refuse the refusal, and the consent is İYS's already.
    expect(iys.writes.filter((w) => w.body.recipient === phone)).toEqual([]);
    expect(stateOf(brand.id, phone)).toMatchObject({ status: "RET" });
  });

  it("the provider's own movements on İYS (source HS): the hub's reports are recognised, not taken twice; a refusal typed into İYS's panel reaches the ledger", async () => {
    const brand = await newBrand();
    const [phone, other, moved] = [newPhone(), newPhone(), newPhone()];
    for (const p of [phone, other, moved]) {
      const res = await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: p, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: minutesAgo(30) }));
      expect(res.status).toBe(201);
    }
    // One the hub has moved on from since: its older report listed back is the hub's, not a movement refused as older.
    await waitFor(() => iys.writes.some((w) => w.body.recipient === moved) || undefined);
    const ret = await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: moved, type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: minutesAgo(20) }));
    expect(ret.status).toBe(201);
    await waitFor(() => iys.writes.filter((w) => [phone, other, moved].includes(String(w.body.recipient))).length === 4 || undefined);
    // The provider's call centre types the recipient's refusal into İYS's web panel.
    const typed = iys.providerMovement(brand.iysCode, brand.brandCode, { recipient: phone, type: "MESAJ", status: "RET", source: "HS_CAGRI_MERKEZI", consentDate: minutesAgo(5) });

    const summary = await pullIysChanges(deps, brand, { source: "HS" });
    expect(summary).toMatchObject({ source: "HS", pages: 1, listed: 5, recorded: 1, unchanged: 4, refused: {} });
    expect(iys.changeQueries.at(-1)!.get("source")).toBe("HS");
    const who = (r: string) => (r === phone ? "phone" : r === other ? "other" : "moved");
    expect(events(brand.id).map((e) => [who(e.recipient), e.status, e.source, e.origin])).toEqual([
      ["phone", "ONAY", "HS_WEB", "api"],
      ["other", "ONAY", "HS_WEB", "api"],
      ["moved", "ONAY", "HS_WEB", "api"],
      ["moved", "RET", "HS_WEB", "api"],
      ["phone", "RET", "HS_CAGRI_MERKEZI", "iys"],
    ]);
    const check = (await (await app.request("/api/v1/check", authed({ brand: brand.code, type: "MESAJ", recipients: [phone, other] }))).json()) as unknown;
    expect(check).toEqual({ allowed: [other], denied: [{ recipient: phone, reason: "refused" }] });
    // Its own pointer: the recipients' pull has not moved.
    expect(iysPullCursor(runtime.deps.db, brand.id, "HS")).toMatchObject({ after: summary.after, movements: 5, lastError: null });
    expect(iysPullCursor(runtime.deps.db, brand.id)).toMatchObject({ after: null, movements: 0 });
    const shown = (await (await app.request(`/api/v1/brands/${brand.code}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as Record<string, unknown>;
    expect(shown).toMatchObject({ iysPull: null, iysPullOwn: { after: summary.after, movements: 5, lastError: null } });

    // Listed again from the start: nothing new.
    db().prepare(`UPDATE iys_pull_cursors SET hs_after = NULL WHERE brand_id = ?`).run(brand.id);
    expect(await pullIysChanges(deps, brand, { source: "HS" })).toMatchObject({ listed: 5, recorded: 0, unchanged: 5, refused: {} });
    expect(events(brand.id)).toHaveLength(5);
    // İYS's day file: each movement once, the one typed into the panel under İYS's id.
    const today = formatIysDate(new Date()).slice(0, 10);
    const file = await (await app.request(`/api/v1/reports/daily?brand=${brand.code}&date=${today}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    const lines = file.split("\n").filter((l) => [phone, other, moved].some((p) => l.includes(p)));
    expect(lines).toHaveLength(5);
    expect(lines).toContain(`${typed.creationDate},${typed.transactionId},${phone},BIREYSEL,MESAJ,RET,${typed.consentDate},HS_CAGRI_MERKEZI`);
  });

  it("movements İYS lists that the hub takes no event for (the status it held, an older date) are still in İYS's day file, once each", async () => {
    const brand = await newBrand();
    const [same, older] = [newPhone(), newPhone()];
    for (const [phone, status, ago] of [[same, "ONAY", 30], [same, "RET", 20], [older, "ONAY", 10]] as const) {
      const res = await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: phone, type: "MESAJ", status, source: "HS_WEB", consentDate: minutesAgo(ago) }));
      expect(res.status).toBe(201);
    }
    const eventsBefore = events(brand.id).length;
    // The recipient refuses on İYS too (the hub holds RET already), and a refusal dated before the hub's consent.
    const again = iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: same, type: "MESAJ", status: "RET", source: "IYS_KISAMESAJ" });
    const stale = iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: older, type: "MESAJ", status: "RET", source: "IYS_WEB", consentDate: minutesAgo(15) });
    expect(await pullIysChanges(deps, brand)).toMatchObject({ listed: 2, recorded: 0, unchanged: 1, refused: { H178: 1 } });
    expect(events(brand.id)).toHaveLength(eventsBefore);
    const today = formatIysDate(new Date()).slice(0, 10);
    const day = async () => (await (await app.request(`/api/v1/reports/daily?brand=${brand.code}&date=${today}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text()).split("\n");
    const file = await day();
    expect(file).toContain(`${again.creationDate},${again.transactionId},${same},BIREYSEL,MESAJ,RET,${again.consentDate},IYS_KISAMESAJ`);
    expect(file).toContain(`${stale.creationDate},${stale.transactionId},${older},BIREYSEL,MESAJ,RET,${stale.consentDate},IYS_WEB`);
    // Listed again from the start: still once each.
    db().prepare(`UPDATE iys_pull_cursors SET after = NULL WHERE brand_id = ?`).run(brand.id);
    await pullIysChanges(deps, brand);
    expect((await day()).filter((l) => l.includes(String(again.transactionId)) || l.includes(String(stale.transactionId)))).toHaveLength(2);
  });

  it("a refusal the hub kept to itself (it knew of no consent) goes to İYS when İYS holds an older consent: asked at once, or learnt from the pull", async () => {
    const brand = await newBrand();
    const [asked, pulled] = [newPhone(), newPhone()];
    const sub = await app.request("/api/v1/subscriptions", authed({ url: `${receiver.base}/kept`, brands: [brand.code] }));
    expect(sub.status).toBe(201);
    const report = (p: string) => iys.writes.filter((w) => w.body.recipient === p).map((w) => [w.body.status, w.body.consentDate]);
    const history = (p: string) => events(brand.id).filter((e) => e.recipient === p).map((e) => [e.status, e.origin, e.effect]);
    const followOf = (p: string) =>
      db().prepare(`SELECT status, result FROM outbox WHERE kind = 'iys_follow' AND event_id = ?`).get(events(brand.id).find((e) => e.recipient === p)!.id) as { status: string; result: string } | undefined;

    // Another of the provider's systems wrote a consent to İYS an hour ago; the hub never heard of it.
    iys.providerMovement(brand.iysCode, brand.brandCode, { recipient: asked, type: "MESAJ", status: "ONAY", source: "HS_FIZIKSEL_ORTAM", consentDate: minutesAgo(60) });
    const refusedAt = minutesAgo(10);
    const ret = await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: asked, type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: refusedAt }));
    expect(ret.status).toBe(201);
    // Kept as a local suppression, then İYS is asked: it holds an older ONAY, so the refusal itself is reported.
    await waitFor(() => report(asked).length === 1 || undefined);
    expect(report(asked)).toEqual([["RET", refusedAt]]);
    expect(history(asked)).toEqual([["RET", "api", "suppression"]]);
    expect(followOf(asked)!.status).toBe("done");
    expect(JSON.parse(followOf(asked)!.result)).toMatchObject({ held: { status: "ONAY", source: "HS_FIZIKSEL_ORTAM" }, outcome: "refusal_reported" });
    const suppression = events(brand.id).find((e) => e.recipient === asked)!;
    const reported = await waitFor(() => {
      const r = db().prepare(`SELECT status, result FROM outbox WHERE kind = 'iys_report' AND event_id = ?`).get(suppression.id) as { status: string; result: string } | undefined;
      if (r?.status !== "done") throw new Error(`report ${r?.status}`);
      return r;
    });
    const { transactionId } = JSON.parse(reported.result) as { transactionId: string };
    // İYS holds the refusal now: the API says so (the event stays a suppression, the ledger unchanged).
    const shownState = async (p: string) =>
      ((await (await app.request(`/api/v1/consents?brand=${brand.code}&recipient=${p}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as { consents: { status: string; inIys: boolean }[] }).consents;
    expect(await shownState(asked)).toEqual([expect.objectContaining({ status: "RET", inIys: true })]);
    // In İYS's day file under İYS's id; the subscription heard of the refusal once.
    const today = formatIysDate(new Date()).slice(0, 10);
    const file = await (await app.request(`/api/v1/reports/daily?brand=${brand.code}&date=${today}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    expect(file.split("\n").filter((l) => l.includes(asked) && l.includes(",RET,"))).toEqual([expect.stringContaining(`,${transactionId},${asked},BIREYSEL,MESAJ,RET,${refusedAt},HS_WEB`)]);
    await waitFor(() => receiver.at("/kept").some((d) => d.body.includes(asked)));
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.at("/kept").filter((d) => d.body.includes(asked))).toHaveLength(1);

    // A consent İYS takes from elsewhere between the question and the refusal's report, newer than
    // the refusal: İYS refuses the report (H178), and a new follow takes İYS's newer consent.
    const between = newPhone();
    iys.providerMovement(brand.iysCode, brand.brandCode, { recipient: between, type: "MESAJ", status: "ONAY", source: "HS_FIZIKSEL_ORTAM", consentDate: minutesAgo(60) });
    iys.afterStatusQuery = () => {
      iys.afterStatusQuery = undefined;
      iys.providerMovement(brand.iysCode, brand.brandCode, { recipient: between, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: minutesAgo(5) });
    };
    expect((await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: between, type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: refusedAt }))).status).toBe(201);
    const suppressed = events(brand.id).find((e) => e.recipient === between)!;
    const follows = await waitFor(() => {
      const rs = db().prepare(`SELECT status, result FROM outbox WHERE kind = 'iys_follow' AND event_id = ? ORDER BY id`).all(suppressed.id) as { status: string; result: string }[];
      if (rs.length !== 2 || rs[1]!.status !== "done") throw new Error(JSON.stringify(rs));
      return rs;
    });
    expect(JSON.parse(follows[0]!.result)).toMatchObject({ outcome: "refusal_reported" });
    expect(JSON.parse(follows[1]!.result)).toMatchObject({ held: { status: "ONAY", source: "HS_WEB" }, outcome: "recorded" });
    expect(history(between)).toEqual([
      ["RET", "api", "suppression"],
      ["ONAY", "iys", "movement"],
    ]);

    // İYS held nothing when this refusal came; the older consent written elsewhere reaches İYS after.
    const late = await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: pulled, type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: refusedAt }));
    expect(late.status).toBe(201);
    await waitFor(() => followOf(pulled)?.status === "done" || undefined);
    expect(JSON.parse(followOf(pulled)!.result)).toEqual({ held: null });
    expect(await shownState(pulled)).toEqual([expect.objectContaining({ status: "RET", inIys: false })]);
    iys.providerMovement(brand.iysCode, brand.brandCode, { recipient: pulled, type: "MESAJ", status: "ONAY", source: "HS_FIZIKSEL_ORTAM", consentDate: minutesAgo(60) });
    const summary = await pullIysChanges(deps, brand, { source: "HS" });
    // Listed: the consents written elsewhere and the refusal reported above (the hub's own); only the
    // last consent's refusal is new to İYS.
    expect(summary).toMatchObject({ listed: 5, recorded: 0, unchanged: 5, refused: {} });
    await waitFor(() => report(pulled).length === 1 || undefined);
    expect(report(pulled)).toEqual([["RET", refusedAt]]);
    expect(history(pulled)).toEqual([["RET", "api", "suppression"]]);
    await waitFor(() => db().prepare(`SELECT 1 FROM outbox WHERE kind = 'iys_report' AND status = 'done' AND event_id = ?`).get(events(brand.id).find((e) => e.recipient === pulled)!.id) ?? undefined);
    expect(await shownState(pulled)).toEqual([expect.objectContaining({ status: "RET", inIys: true })]);
    // Listed again: nothing more (no second report of the refusal; the pull takes nothing twice).
    db().prepare(`UPDATE iys_pull_cursors SET hs_after = NULL WHERE brand_id = ?`).run(brand.id);
    expect(await pullIysChanges(deps, brand, { source: "HS" })).toMatchObject({ recorded: 0 });
    await new Promise((r) => setTimeout(r, 300));
    expect(report(pulled)).toHaveLength(1);
    expect(events(brand.id)).toHaveLength(4);
  });

  it("pages of 1000 behind İYS's pointer: 2 500 movements taken once; the next pull asks from the pointer; a pointer set back applies none twice", async () => {
    const brand = await newBrand();
    const phones = Array.from({ length: 2500 }, newPhone);
    for (const p of phones) iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: p, type: "MESAJ", status: "ONAY", source: "IYS_WEB_YENI", consentDate: minutesAgo(90) });
    const queries = iys.changeQueries.length;

    const first = await pullIysChanges(deps, brand);
    expect(first).toMatchObject({ pages: 3, listed: 2500, recorded: 2500, unchanged: 0, refused: {} });
    const asked = iys.changeQueries.slice(queries).map((q) => q.get("after"));
    expect(asked).toHaveLength(3);
    expect(asked[0]).toBeNull();
    expect(asked[1]).toMatch(/^\d+_[0-9a-f]{64}$/);
    expect(iysPullCursor(runtime.deps.db, brand.id)).toMatchObject({ after: first.after, movements: 2500, lastError: null });
    expect(events(brand.id)).toHaveLength(2500);
    expect(stateOf(brand.id, phones[2499]!)).toEqual({ status: "ONAY", source: "IYS_WEB_YENI", inIys: 1 });

    const second = await pullIysChanges(deps, brand);
    expect(second).toMatchObject({ pages: 1, listed: 0, recorded: 0, after: first.after });
    expect(iys.changeQueries.at(-1)!.get("after")).toBe(first.after);

    // Listed again from the start (a pointer lost or set back by hand): each is the same event.
    db().prepare(`UPDATE iys_pull_cursors SET after = NULL WHERE brand_id = ?`).run(brand.id);
    const again = await pullIysChanges(deps, brand);
    expect(again).toMatchObject({ listed: 2500, recorded: 0, unchanged: 2500 });
    expect(events(brand.id)).toHaveLength(2500);
  });

  it("İYS's rules hold: an older movement than the hub's is refused (H178); a refusal for an address the hub never had is İYS's movement, not a suppression", async () => {
    const brand = await newBrand();
    const newer = newPhone();
    const unknown = newPhone();
    expect((await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: newer, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: minutesAgo(10) }))).status).toBe(201);
    iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: newer, type: "MESAJ", status: "RET", source: "IYS_MOBIL", consentDate: minutesAgo(120) });
    iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: unknown, type: "MESAJ", status: "RET", source: "IYS_3338" });
    iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: "not-an-address", type: "MESAJ", status: "RET", source: "IYS_WEB" });

    const summary = await pullIysChanges(deps, brand);
    expect(summary).toMatchObject({ listed: 3, recorded: 1, refused: { H178: 1, H122: 1 } });
    expect(stateOf(brand.id, newer)).toMatchObject({ status: "ONAY", source: "HS_WEB" });
    expect(stateOf(brand.id, unknown)).toEqual({ status: "RET", source: "IYS_3338", inIys: 1 });
    // The refused ones are behind the pointer: not listed again.
    expect(await pullIysChanges(deps, brand)).toMatchObject({ listed: 0 });
  });

  it("a refusal İYS lists under a source the hub does not know yet, or without its transactionId, is still honoured; what cannot be taken is counted by its code", async () => {
    const brand = await newBrand();
    const [named, keyless] = [newPhone(), newPhone()];
    for (const p of [named, keyless]) {
      expect((await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: p, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: minutesAgo(150) }))).status).toBe(201);
    }
    // İYS adds sources of its own now and then (IYS_AHS_HAT_KAPATMA came in 2.2.4).
    iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: named, type: "MESAJ", status: "RET", source: "IYS_E_DEVLET_YENI" });
    iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: keyless, type: "MESAJ", status: "RET", source: "IYS_WEB", transactionId: null });
    iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: newPhone(), type: "MESAJ", status: "RET", source: "HS_NOT_A_SOURCE" });

    expect(await pullIysChanges(deps, brand)).toMatchObject({ listed: 3, recorded: 2, refused: { H119: 1 } });
    expect(stateOf(brand.id, named)).toEqual({ status: "RET", source: "IYS_E_DEVLET_YENI", inIys: 1 });
    expect(stateOf(brand.id, keyless)).toEqual({ status: "RET", source: "IYS_WEB", inIys: 1 });
    const check = (await (await app.request("/api/v1/check", authed({ brand: brand.code, type: "MESAJ", recipients: [named, keyless] }))).json()) as { allowed: string[] };
    expect(check.allowed).toEqual([]);
    // Listed again, the keyless one is recognised by its content.
    db().prepare(`UPDATE iys_pull_cursors SET after = NULL WHERE brand_id = ?`).run(brand.id);
    expect(await pullIysChanges(deps, brand)).toMatchObject({ listed: 3, recorded: 0, unchanged: 2 });
  });

  it("a refusal the hub kept as a local suppression becomes İYS's movement once the recipient refuses on İYS too: held by İYS and in İYS's day file", async () => {
    const brand = await newBrand();
    const phone = newPhone();
    // A RET for an address İYS has no record of: a suppression, never reported (İYS would answer H175).
    expect((await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: phone, type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: minutesAgo(30) }))).status).toBe(201);
    expect(stateOf(brand.id, phone)).toEqual({ status: "RET", source: "HS_WEB", inIys: 0 });

    const onIys = iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: phone, type: "MESAJ", status: "RET", source: "IYS_KISAMESAJ" });
    expect(await pullIysChanges(deps, brand)).toMatchObject({ listed: 1, recorded: 1, unchanged: 0 });
    expect(stateOf(brand.id, phone)).toEqual({ status: "RET", source: "IYS_KISAMESAJ", inIys: 1 });
    expect(events(brand.id).map((e) => [e.status, e.origin, e.effect])).toEqual([
      ["RET", "api", "suppression"],
      ["RET", "iys", "movement"],
    ]);
    const today = formatIysDate(new Date()).slice(0, 10);
    const file = await (await app.request(`/api/v1/reports/daily?brand=${brand.code}&date=${today}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    expect(file.split("\n")).toContain(`${onIys.creationDate},${onIys.transactionId},${phone},BIREYSEL,MESAJ,RET,${onIys.consentDate},IYS_KISAMESAJ`);
    // Once İYS holds it, the same status again is nothing new.
    iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: phone, type: "MESAJ", status: "RET", source: "IYS_WEB" });
    expect(await pullIysChanges(deps, brand)).toMatchObject({ listed: 1, recorded: 0, unchanged: 1 });
  });

  it("the provider's movements İYS lists (source HS): an HS_KARAR refusal of a record the hub never had is İYS's and taken; a consent İYS holds as +9005… is refused, saying why", async () => {
    const brand = await newBrand();
    const [karar, trunk] = [newPhone(), newPhone()];
    iys.providerMovement(brand.iysCode, brand.brandCode, { recipient: karar, recipientType: "TACIR", type: "ARAMA", status: "RET", source: "HS_KARAR", consentDate: minutesAgo(90) });
    iys.providerMovement(brand.iysCode, brand.brandCode, { recipient: `+900${trunk.slice(3)}`, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: minutesAgo(90) });
    expect(await pullIysChanges(deps, brand, { source: "HS" })).toMatchObject({ listed: 2, recorded: 1, refused: { H121: 1 } });
    expect(db().prepare("SELECT status, source, in_iys AS inIys FROM consent_state WHERE brand_id = ? AND recipient = ? AND recipient_type = 'TACIR' AND type = 'ARAMA'").get(brand.id, karar)).toEqual({ status: "RET", source: "HS_KARAR", inIys: 1 });
    expect(stateOf(brand.id, trunk)).toBeUndefined();
  });

  it("a pull that read the brand before its İYS codes changed applies nothing of the old İYS brand's page and keeps no pointer", async () => {
    const brand = await newBrand();
    iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: newPhone(), type: "MESAJ", status: "RET", source: "IYS_WEB" });
    const stale = { ...brand };
    expect((await app.request(`/api/v1/brands/${brand.code}`, authed({ brandCode: `7${brand.brandCode}` }, "PATCH"))).status).toBe(200);
    expect(await pullIysChanges(deps, stale)).toMatchObject({ listed: 1, recorded: 0, overtaken: true });
    expect(events(brand.id)).toEqual([]);
    expect(iysPullCursor(runtime.deps.db, brand.id)).toBeNull();
  });

  it("a state export holding İYS's refusals loads into another brand (another hub) as İYS's refusals, never reported; İYS's consents are refused there, saying why", async () => {
    const from = await newBrand();
    const to = await newBrand();
    const [refused, consented] = [newPhone(), newPhone()];
    iys.recipientMovement(from.iysCode, from.brandCode, { recipient: refused, type: "MESAJ", status: "RET", source: "IYS_WEB" });
    iys.recipientMovement(from.iysCode, from.brandCode, { recipient: consented, type: "MESAJ", status: "ONAY", source: "IYS_WEB_YENI" });
    expect(await pullIysChanges(deps, from)).toMatchObject({ recorded: 2 });
    const csv = [...exportState(db(), from.id, "csv")].join("");
    expect(csv).toContain(`${refused},RET,IYS_WEB,`);

    const res = await app.request(`/api/v1/imports?brand=${to.code}`, { method: "POST", headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "text/csv" }, body: csv });
    expect(res.status).toBe(200);
    const summary = (await res.json()) as { recorded: number; rejected: number; codes: Record<string, number>; rejectedUrl: string };
    expect(summary).toMatchObject({ recorded: 1, rejected: 1, codes: { H486: 1 } });
    expect(stateOf(to.id, refused)).toEqual({ status: "RET", source: "IYS_WEB", inIys: 1 });
    expect(stateOf(to.id, consented)).toBeUndefined();
    const rejected = await (await app.request(summary.rejectedUrl.replace(/^https?:\/\/[^/]+/, ""), { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    expect(rejected).toContain("İYS kaynaklı (IYS_*) onaylar dosyadan alınmaz");
    await new Promise((r) => setTimeout(r, 300));
    expect(db().prepare(`SELECT count(*) AS n FROM outbox o JOIN consent_events e ON e.id = o.event_id WHERE e.brand_id = ? AND o.kind LIKE 'iys_%'`).get(to.id)).toEqual({ n: 0 });
  });

  it("what İYS records as it does: a line closure dated like the consent it closes, a TACIR closure without a date, an ONAY and a RET in one second sharing a transactionId", async () => {
    const brand = await newBrand();
    const other = await newBrand();
    const closed = newPhone();
    const tacir = newPhone();
    const quick = newPhone();
    const date = minutesAgo(20);
    expect((await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: closed, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: date }))).status).toBe(201);
    expect((await app.request("/api/v1/consents", authed({ brand: brand.code, recipient: tacir, type: "MESAJ", status: "ONAY", recipientType: "TACIR" }))).status).toBe(201);
    // The operator closes the lines: İYS refuses for the brand, dated with the consent's own date (none for the TACIR record).
    iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: closed, type: "MESAJ", status: "RET", source: "IYS_AHS_HAT_KAPATMA", consentDate: date });
    iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: tacir, type: "MESAJ", status: "RET", recipientType: "TACIR", source: "IYS_AHS_HAT_KAPATMA", consentDate: null });
    // A consent and its refusal within one second: İYS gives both one transactionId (and lists the same id for another brand).
    const tx = "ab".repeat(32);
    iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: quick, type: "MESAJ", status: "ONAY", source: "IYS_WEB_YENI", consentDate: minutesAgo(2), transactionId: tx });
    iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: quick, type: "MESAJ", status: "RET", source: "IYS_WEB", consentDate: minutesAgo(2), transactionId: tx });
    iys.recipientMovement(other.iysCode, other.brandCode, { recipient: quick, type: "MESAJ", status: "ONAY", source: "IYS_WEB_YENI", transactionId: tx });

    expect(await pullIysChanges(deps, brand)).toMatchObject({ listed: 4, recorded: 4, unchanged: 0, refused: {} });
    expect(await pullIysChanges(deps, other)).toMatchObject({ listed: 1, recorded: 1 });
    expect(stateOf(brand.id, closed)).toMatchObject({ status: "RET", source: "IYS_AHS_HAT_KAPATMA" });
    expect(db().prepare(`SELECT status, consent_date AS consentDate FROM consent_state WHERE brand_id = ? AND recipient = ? AND recipient_type = 'TACIR'`).get(brand.id, tacir)).toEqual({ status: "RET", consentDate: null });
    expect(stateOf(brand.id, quick)).toMatchObject({ status: "RET" });
    expect(stateOf(other.id, quick)).toMatchObject({ status: "ONAY" });
  });

  it("a movement İYS registered just before midnight and pulled the next day is in its own day's file", async () => {
    const brand = await newBrand();
    const phone = newPhone();
    const today = formatIysDate(new Date()).slice(0, 10);
    const midnight = (parseIysDate(`${today} 00:00:00`) as { ok: true; date: Date }).date.getTime();
    const lateYesterday = midnight - 10 * 60_000;
    const item = iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: phone, type: "MESAJ", status: "RET", source: "IYS_3338", consentDate: formatIysDate(new Date(lateYesterday)) }, lateYesterday);
    expect(await pullIysChanges(deps, brand)).toMatchObject({ recorded: 1 });
    const yesterday = formatIysDate(new Date(lateYesterday)).slice(0, 10);
    const file = await (await app.request(`/api/v1/reports/daily?brand=${brand.code}&date=${yesterday}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    expect(file.split("\n")).toContain(`${item.creationDate},${item.transactionId},${phone},BIREYSEL,MESAJ,RET,${item.consentDate},IYS_3338`);
  });

  it("an answer that is not İYS's { after, list } is an error, not an empty page; new İYS codes on a brand start its pull afresh", async () => {
    const brand = await newBrand();
    iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: newPhone(), type: "MESAJ", status: "RET", source: "IYS_WEB" });
    iys.rawChangesNext.push("[]", JSON.stringify({ after: "1_x" }));
    expect(await pullIysChanges(deps, brand)).toMatchObject({ pages: 0, error: expect.stringMatching(/^bad_response/) });
    expect(await pullIysChanges(deps, brand)).toMatchObject({ pages: 0, error: expect.stringMatching(/^bad_response/) });
    expect(iysPullCursor(runtime.deps.db, brand.id)!.after).toBeNull();
    expect(await pullIysChanges(deps, brand)).toMatchObject({ recorded: 1 });
    expect(iysPullCursor(runtime.deps.db, brand.id)!.after).not.toBeNull();

    const patched = await app.request(`/api/v1/brands/${brand.code}`, authed({ brandCode: "99999" }, "PATCH"));
    expect(patched.status).toBe(200);
    expect(((await patched.json()) as { iysPull: unknown }).iysPull).toBeNull();
    const renamed = iysPullBrands(runtime.deps.db).find((b) => b.id === brand.id)!;
    await pullIysChanges(deps, renamed);
    expect(iys.changeQueries.at(-1)!.get("after")).toBeNull();
  });

  it("İYS failing keeps the pointer and says why; the next pull goes on from it", async () => {
    const brand = await newBrand();
    const a = newPhone();
    iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: a, type: "MESAJ", status: "ONAY", source: "IYS_WEB_YENI", consentDate: minutesAgo(5) });
    expect(await pullIysChanges(deps, brand)).toMatchObject({ recorded: 1 });
    const pointer = iysPullCursor(runtime.deps.db, brand.id)!.after;

    iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: a, type: "MESAJ", status: "RET", source: "IYS_WEB" });
    iys.failChangesNext.push({ status: 403, code: "H353", message: "brandCode, kullanıcı izinleriyle eşleştirilemiyor" });
    const failed = await pullIysChanges(deps, brand);
    expect(failed).toMatchObject({ pages: 0, recorded: 0, error: "H353: brandCode, kullanıcı izinleriyle eşleştirilemiyor" });
    expect(iysPullCursor(runtime.deps.db, brand.id)).toMatchObject({ after: pointer, lastError: "H353: brandCode, kullanıcı izinleriyle eşleştirilemiyor" });
    expect(stateOf(brand.id, a)!.status).toBe("ONAY");
    // Operators see it on the brand.
    const shown = (await (await app.request(`/api/v1/brands/${brand.code}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as { iysPull: unknown };
    expect(shown.iysPull).toEqual({ after: pointer, movements: 1, pulledAt: expect.stringMatching(/^\d{4}-/), lastError: "H353: brandCode, kullanıcı izinleriyle eşleştirilemiyor" });

    iys.failChangesNext.push({ status: 503, code: "ERR-SYS-0002", message: "Beklenmedik bir hata oluştu." });
    expect(await pullIysChanges(deps, brand)).toMatchObject({ error: "ERR-SYS-0002: Beklenmedik bir hata oluştu." });
    const resumed = await pullIysChanges(deps, brand);
    expect(resumed).toMatchObject({ recorded: 1 });
    expect(resumed.error).toBeUndefined();
    expect(iys.changeQueries.at(-1)!.get("after")).toBe(pointer);
    expect(iysPullCursor(runtime.deps.db, brand.id)!.lastError).toBeNull();
    expect(stateOf(brand.id, a)!.status).toBe("RET");
  });

  it("a pull İYS keeps refusing (403 H353) is tried again after twice as long each time, while the other brands are pulled every interval", async () => {
    const refused = await newBrand();
    const healthy = await newBrand();
    iys.refusedBrandCodes.add(refused.brandCode);
    // Unpaced: every brand of this file is pulled each tick, at İYS's 10 requests a second that would take seconds.
    const one = await createRuntime({ ...runtime.deps.config, IYS_PULL_INTERVAL_SECONDS: 1, IYS_MAX_REQUESTS_PER_SECOND: 1000 });
    try {
      one.startBackground();
      await new Promise((r) => setTimeout(r, 7500));
    } finally {
      await one.close();
      iys.refusedBrandCodes.delete(refused.brandCode);
    }
    // Every second for 7.5 s, two sources: 16 pulls each (fewer on a busy machine). Backing off
    // (after 1, 2, 4 s): at most 4 a source, whatever the machine.
    const healthyPulls = iys.changeQueriesOf.get(healthy.brandCode) ?? 0;
    const refusedPulls = iys.changeQueriesOf.get(refused.brandCode) ?? 0;
    expect(healthyPulls).toBeGreaterThanOrEqual(8);
    expect(refusedPulls).toBeGreaterThanOrEqual(4);
    expect(refusedPulls).toBeLessThanOrEqual(10);
    expect(iysPullCursor(runtime.deps.db, refused.id)?.lastError).toMatch(/^H353/);
  }, 30_000);

  it("the hub pulls on its own every IYS_PULL_INTERVAL_SECONDS; two processes sharing the ledger take each movement once", async () => {
    const brand = await newBrand();
    const config = { ...runtime.deps.config, IYS_PULL_INTERVAL_SECONDS: 1 };
    const [one, two] = [await createRuntime(config), await createRuntime(config)];
    try {
      one.startBackground();
      two.startBackground();
      const phones = Array.from({ length: 5 }, newPhone);
      for (const p of phones) iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: p, type: "MESAJ", status: "RET", source: "IYS_WEB" });
      await waitFor(() => events(brand.id).length === 5 || undefined, { timeoutMs: 20_000 });
      const more = newPhone();
      iys.recipientMovement(brand.iysCode, brand.brandCode, { recipient: more, type: "MESAJ", status: "RET", source: "IYS_CM" });
      await waitFor(() => stateOf(brand.id, more) ?? undefined, { timeoutMs: 20_000 });
      await new Promise((r) => setTimeout(r, 2500));
      expect(events(brand.id).map((e) => e.recipient).sort()).toEqual([...phones, more].sort());
    } finally {
      await one.close();
      await two.close();
    }
  });
});
