import { simpleParser, type ParsedMail } from "mailparser";
import { SMTPServer } from "smtp-server";
import { execFile } from "node:child_process";
import type { AddressInfo } from "node:net";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { linkKeyring, signLinkToken, TOKEN_LENGTH, verifyLinkToken } from "../channels/link/token";
import { maskEmail } from "../channels/link/issue";
import type { Clock } from "../src/domain/time";
import { createMailer } from "../channels/email/mailer";
import { smtpOutcomeUnknown } from "../jobs/email-confirmation.handler";
import { createApp, type App } from "../src/app";
import { formatIysDate } from "../src/domain/time";
import { createRuntime, type Runtime } from "../src/runtime";
import { ADMIN_KEY, authed, deletePrefix, tempDir, testConfig, waitFor } from "./helpers";

const KEY_OLD = "1:old-link-secret-0123456789";
const KEY_NEW = "2:new-link-secret-0123456789";

/** A real SMTP server on localhost; every message is parsed with mailparser. */
class FakeSmtp {
  readonly mails: ParsedMail[] = [];
  readonly envelopes: { from: string; to: string[] }[] = [];
  private server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData: (stream, session, callback) => {
      simpleParser(stream)
        .then((mail) => {
          this.mails.push(mail);
          this.envelopes.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
            to: session.envelope.rcptTo.map((r) => r.address),
          });
          callback();
        })
        .catch(callback);
    },
  });
  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `smtp://127.0.0.1:${(this.server.server.address() as AddressInfo).port}`;
  }
  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
  to(address: string) {
    return this.mails.filter((m) => this.envelopes[this.mails.indexOf(m)]!.to.includes(address));
  }
}

const tmp = tempDir();
const smtp = new FakeSmtp();
let runtime: Runtime;
let app: App;

beforeAll(async () => {
  runtime = await createRuntime(
    testConfig(tmp.dir, {
      SMTP_URL: await smtp.start(),
      MAIL_FROM: "iletisim@hub.example.com",
      LINK_KEYS: KEY_OLD,
      SWEEPER_GRACE_SECONDS: "1",
      SWEEPER_INTERVAL_SECONDS: "1",
    }),
  );
  runtime.startBackground();
  app = createApp(runtime.deps);
  for (const brand of [
    { code: "MIGROS", name: "Migros", shortNames: ["MIGROS"] },
    { code: "KOTON", name: "Koton & Co", shortNames: ["KOTON"], settings: { linkExpiryDays: 1 } },
  ]) {
    const res = await app.request("/api/v1/brands", authed(brand));
    expect(res.status, await res.clone().text()).toBe(201);
  }
});

afterAll(async () => {
  await runtime.close();
  await smtp.stop();
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

const db = () => runtime.deps.db.$client;
/** Everything a click could write: receipts, ledger events, outbox rows. */
const footprint = () =>
  db().prepare("SELECT (SELECT count(*) FROM receipts) AS receipts, (SELECT count(*) FROM consent_events) AS events, (SELECT count(*) FROM outbox) AS outbox").get() as {
    receipts: number;
    events: number;
    outbox: number;
  };
const eventsOf = (recipient: string) =>
  db()
    .prepare("SELECT b.code AS brand, e.type, e.status, e.source, e.origin, e.effect, e.receipt_id AS receiptId FROM consent_events e JOIN brands b ON b.id = e.brand_id WHERE recipient = ? ORDER BY e.id")
    .all(recipient) as { brand: string; type: string; status: string; source: string; origin: string; effect: string; receiptId: number }[];
const receiptsOf = (recipient: string) =>
  db().prepare("SELECT id, channel, provider, status FROM receipts WHERE from_address = ? ORDER BY id").all(recipient) as { id: number; status: string }[];
const outboxOf = (recipient: string) =>
  db()
    .prepare("SELECT o.kind, o.status, o.last_error AS lastError FROM outbox o JOIN receipts r ON r.id = o.receipt_id WHERE r.from_address = ? ORDER BY o.id")
    .all(recipient) as { kind: string; status: string; lastError: string | null }[];

let seq = 0;
const newAddress = () => `Alici.${++seq}+kampanya@Example.com`;

async function issue(recipient: string, brand = "MIGROS") {
  const res = await app.request("/api/v1/links", authed({ brand, recipient }));
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as { url: string; headers: Record<string, string>; expiresAt: string | null };
}

const pathOf = (url: string) => new URL(url).pathname;
const oneClick = (path: string, a: App = app) =>
  a.request(path, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "List-Unsubscribe=One-Click" });
const button = (path: string, lang = "tr") =>
  app.request(path, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `action=RET&lang=${lang}` });

/**
 * RFC 8058 section 3.1: one `List-Unsubscribe` with an HTTPS URI in angle brackets, and a
 * `List-Unsubscribe-Post` whose value is exactly `List-Unsubscribe=One-Click`.
 */
function oneClickUri(headers: Record<string, string>): string | null {
  const post = headers["List-Unsubscribe-Post"];
  const list = headers["List-Unsubscribe"];
  if (post !== "List-Unsubscribe=One-Click" || !list) return null;
  const uris = [...list.matchAll(/<([^>]+)>/g)].map((m) => m[1]!);
  return uris.find((u) => new URL(u).protocol === "https:") ?? null;
}

function expectPageHeaders(res: Response) {
  expect(res.headers.get("cache-control")).toBe("no-store");
  expect(res.headers.get("referrer-policy")).toBe("no-referrer");
  expect(res.headers.get("x-robots-tag")).toContain("noindex");
  expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  const csp = res.headers.get("content-security-policy") ?? "";
  for (const d of ["default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"]) expect(csp).toContain(d);
  expect(csp).not.toContain("unsafe-inline");
  expect(csp).not.toContain("script-src");
}

describe("link tokens", () => {
  const derive = () => Buffer.alloc(32, 7);
  const id = Buffer.from("0123456789abcdef", "hex");

  it("a token is 28 URL-safe characters and verifies back to its link id", () => {
    const ring = linkKeyring(KEY_OLD, derive);
    const token = signLinkToken(ring, id);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(token.length).toBe(TOKEN_LENGTH);
    expect(`/r/${token}`.length).toBeLessThanOrEqual(40);
    expect(verifyLinkToken(ring, token)?.toString("hex")).toBe("0123456789abcdef");
  });

  it("a token with any character changed, cut short, lengthened or signed by an unlisted key does not verify", () => {
    const ring = linkKeyring(KEY_OLD, derive);
    const token = signLinkToken(ring, id);
    for (let i = 0; i < token.length; i++) {
      const ch = token[i] === "A" ? "B" : "A";
      expect(verifyLinkToken(ring, token.slice(0, i) + ch + token.slice(i + 1)), `position ${i}`).toBeNull();
    }
    expect(verifyLinkToken(ring, token.slice(0, -1))).toBeNull();
    expect(verifyLinkToken(ring, `${token}A`)).toBeNull();
    expect(verifyLinkToken(linkKeyring(KEY_NEW, derive), token)).toBeNull();
    expect(verifyLinkToken(linkKeyring("1:another-secret-0123456789", derive), token)).toBeNull();
  });

  it("after rotation the new key signs and the old key still verifies while it is listed", () => {
    const old = signLinkToken(linkKeyring(KEY_OLD, derive), id);
    const rotated = linkKeyring(`${KEY_NEW},${KEY_OLD}`, derive);
    expect(verifyLinkToken(rotated, old)?.toString("hex")).toBe("0123456789abcdef");
    const fresh = signLinkToken(rotated, id);
    expect(fresh).not.toBe(old);
    expect(verifyLinkToken(linkKeyring(KEY_OLD, derive), fresh)).toBeNull();
  });

  it("links signed by the derived default key still verify once LINK_KEYS is set, unless LINK_KEYS gives kid 1 a key of its own", () => {
    const mailed = signLinkToken(linkKeyring(undefined, derive), id);
    const configured = linkKeyring(KEY_NEW, derive);
    expect(verifyLinkToken(configured, mailed)?.toString("hex")).toBe("0123456789abcdef");
    expect(signLinkToken(configured, id)).toBe(signLinkToken(linkKeyring(KEY_NEW, () => Buffer.alloc(32, 9)), id));
    expect(verifyLinkToken(linkKeyring(`${KEY_NEW},${KEY_OLD}`, derive), mailed)).toBeNull();
  });

  it("LINK_KEYS with a repeated key id or a key id above 255 is refused", () => {
    expect(() => linkKeyring(`${KEY_OLD},${KEY_OLD}`, derive)).toThrow(/listed twice/);
    expect(() => linkKeyring("300:some-long-secret-0123456789", derive)).toThrow(/1–255/);
  });

  it("masking keeps the first letter of the mailbox and of the domain, and the top-level domain", () => {
    expect(maskEmail("ali.veli+x@example.com")).toBe("a***@e***.com");
    expect(maskEmail("z@mail.example.com.tr")).toBe("z***@m***.tr");
  });
});

describe("issuing links", () => {
  it("issuing the same address twice gives the same short URL with RFC 8058 one-click headers, and the URL does not contain the address", async () => {
    const a = await issue("Ayse.Yilmaz@Example.com");
    const b = await issue("  ayse.yilmaz@example.com ");
    expect(b.url).toBe(a.url);
    expect(a.url.startsWith("https://hub.example.com/r/")).toBe(true);
    expect(pathOf(a.url).length).toBeLessThanOrEqual(40);
    expect(oneClickUri(a.headers)).toBe(a.url);
    expect(a.headers["List-Unsubscribe"]).toBe(`<${a.url}>`);
    expect(a.expiresAt).toBeNull();
    const token = pathOf(a.url).slice(3);
    expect(Buffer.from(token, "base64url").toString("latin1")).not.toContain("ayse");
    expect(a.url.toLowerCase()).not.toContain("ayse");
  });

  it("the same address gets a different link for another brand", async () => {
    const a = await issue("fatma@example.com", "MIGROS");
    const b = await issue("fatma@example.com", "KOTON");
    expect(a.url).not.toBe(b.url);
    expect(b.expiresAt).not.toBeNull();
  });

  it("a batch is answered in input order, each invalid address with its İYS code in its place", async () => {
    const recipients = ["b1@example.com", "çiğdem@example.com", "not-an-address", "B1@EXAMPLE.COM", "b2@example.com"];
    const res = await app.request("/api/v1/links", authed({ brand: "MIGROS", recipients }));
    expect(res.status).toBe(200);
    const { links } = (await res.json()) as { links: ({ url: string } | { error: { code: string } })[] };
    expect(links).toHaveLength(5);
    expect(links[1]).toEqual({ error: { code: "H120", message: expect.any(String) } });
    expect(links[2]).toMatchObject({ error: { code: "H120" } });
    const url = (i: number) => (links[i] as { url: string }).url;
    expect(url(0)).toBe(url(3));
    expect(url(0)).not.toBe(url(4));
    expect(url(0)).toBe((await issue("b1@example.com")).url);
  });

  it("10 000 recipients in one call get 10 000 distinct links", async () => {
    const recipients = Array.from({ length: 10_000 }, (_, i) => `bulk${i}@example.com`);
    const res = await app.request("/api/v1/links", authed({ brand: "MIGROS", recipients }));
    expect(res.status).toBe(200);
    const { links } = (await res.json()) as { links: { url: string }[] };
    expect(new Set(links.map((l) => l.url)).size).toBe(10_000);
  });

  it("bad requests are 4xx naming what is wrong: an invalid single address (H120), an unknown brand, too many recipients, no API key", async () => {
    const bad = await app.request("/api/v1/links", authed({ brand: "MIGROS", recipient: "ömer@example.com" }));
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("H120");
    const unknown = await app.request("/api/v1/links", authed({ brand: "NOPE", recipient: "a1@example.com" }));
    expect(unknown.status).toBe(404);
    const many = await app.request("/api/v1/links", authed({ brand: "MIGROS", recipients: Array.from({ length: 10_001 }, (_, i) => `m${i}@x.co`) }));
    expect(many.status).toBe(400);
    expect(((await many.json()) as { error: { message: string } }).error.message).toContain("at most 10000");
    const anon = await app.request("/api/v1/links", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(anon.status).toBe(401);
  });
});

describe("hub link", () => {
  it("prints the same link and headers the API issues for the address, and names an invalid address with H120", async () => {
    const { url } = await issue("cli.user@example.com");
    const c = runtime.deps.config;
    const env = { ...process.env, DATABASE_PATH: c.DATABASE_PATH, LEDGER_KEY_PATH: c.LEDGER_KEY_PATH, HUB_SECRET: "test-hub-secret-0123456789abcdefghij", LINK_KEYS: KEY_OLD, PUBLIC_BASE_URL: c.PUBLIC_BASE_URL, LOG_LEVEL: "warn" };
    const { stdout } = await promisify(execFile)(process.execPath, ["bin/hub.mjs", "link", "--brand", "migros", "CLI.User@example.com"], { env });
    expect(stdout.split("\n").slice(0, 5)).toEqual(["CLI.User@example.com", url, `List-Unsubscribe: <${url}>`, "List-Unsubscribe-Post: List-Unsubscribe=One-Click", ""]);
    const bad = await promisify(execFile)(process.execPath, ["bin/hub.mjs", "link", "--brand", "MIGROS", "çağrı@example.com"], { env }).catch((e: { code: number; stderr: string }) => e);
    expect(bad).toMatchObject({ code: 1, stderr: expect.stringContaining("H120") });
    // Without the hub's secret it signs nothing (a secret made up here would sign links the hub refuses).
    const missing = join(tmp.dir, "elsewhere", "hub-secret");
    const { HUB_SECRET: _s, LINK_KEYS: _k, ...unkeyed } = env;
    const orphan = await promisify(execFile)(process.execPath, ["bin/hub.mjs", "link", "--brand", "MIGROS", "cli.user@example.com"], { env: { ...unkeyed, HUB_SECRET_PATH: missing } }).catch((e: { code: number; stdout: string; stderr: string }) => e);
    expect(orphan).toMatchObject({ code: 1, stdout: "", stderr: expect.stringContaining("HUB_SECRET_PATH") });
    expect(existsSync(missing)).toBe(false);
  });
});

describe("GET never changes anything", () => {
  it("GET shows a Turkish page naming the brand with the address masked, one POST form, and strict headers", async () => {
    const { url } = await issue("mehmet.kaya@example.com");
    const before = footprint();
    const res = await app.request(pathOf(url));
    expect(res.status).toBe(200);
    expectPageHeaders(res);
    const body = await res.text();
    expect(body).toContain('<html lang="tr">');
    expect(body).toContain("Migros");
    expect(body).toContain("m***@e***.com");
    expect(body).not.toContain("mehmet");
    expect(body.match(/<form/g)).toHaveLength(1);
    expect(body).toContain('<form method="post">');
    expect(body).toContain('href="?lang=en"');
    expect(footprint()).toEqual(before);

    const en = await (await app.request(`${pathOf(url)}?lang=en`)).text();
    expect(en).toContain('<html lang="en">');
    expect(en).toContain("Refuse e-mail messages");
  });

  it("the brand name is escaped in the page", async () => {
    const { url } = await issue("escape@example.com", "KOTON");
    const body = await (await app.request(pathOf(url))).text();
    expect(body).toContain("Koton &amp; Co");
    expect(body).not.toContain("Koton & Co");
  });

  it("scanners (HEAD, scanner user agents, prefetch, GET with a query) record nothing", async () => {
    const address = newAddress();
    const { url } = await issue(address);
    const path = pathOf(url);
    const before = footprint();
    const head = await app.request(path, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    expect(head.headers.get("cache-control")).toBe("no-store");
    for (const headers of <Record<string, string>[]>[
      { "user-agent": "Mozilla/5.0 (compatible; Microsoft Office Protocol Discovery) SafeLinks" },
      { "user-agent": "Barracuda Sentinel (EE)" },
      { "user-agent": "Proofpoint URL Defense" },
      { "user-agent": "Mimecast Safe Links" },
      { purpose: "prefetch" },
      { "sec-purpose": "prefetch;prerender" },
      { "x-moz": "prefetch" },
    ]) {
      expect((await app.request(path, { headers })).status).toBe(200);
    }
    expect((await app.request(`${path}?List-Unsubscribe=One-Click&action=RET`)).status).toBe(200);
    // Other methods are told which ones the link takes, not that it does not exist.
    for (const method of ["PUT", "DELETE", "PATCH"]) {
      const other = await app.request(path, { method });
      expect(other.status, method).toBe(405);
      expect(other.headers.get("allow")).toBe("GET, HEAD, POST");
    }
    expect((await app.request(path, { method: "OPTIONS" })).status).toBe(204);
    await new Promise((r) => setTimeout(r, 200));
    expect(footprint()).toEqual(before);
    expect(eventsOf(address.toLowerCase())).toEqual([]);
  });

  it("forged, truncated, lengthened and unknown tokens are 404 pages without detail, and record nothing", async () => {
    const { url } = await issue(newAddress());
    const token = pathOf(url).slice(3);
    const forged = token.slice(0, 10) + (token[10] === "x" ? "y" : "x") + token.slice(11);
    const before = footprint();
    for (const path of [`/r/${forged}`, `/r/${token.slice(0, -2)}`, `/r/${token}AA`, "/r/abc", "/r/", `/r/${token}/x`]) {
      for (const init of [{}, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "List-Unsubscribe=One-Click" }]) {
        const res = await app.request(path, init);
        expect(res.status, path).toBe(404);
        expectPageHeaders(res);
        const body = await res.text();
        expect(body).toContain("Bağlantı bulunamadı");
        expect(body).not.toMatch(/signature|kid|imza|expired/i);
      }
    }
    expect(footprint()).toEqual(before);
  });
});

describe("POST records the RET", () => {
  it("the RFC 8058 one-click POST answers 200 with an empty body, records RET EPOSTA HS_EPOSTA, and a Turkish confirmation arrives by SMTP", async () => {
    const address = newAddress();
    const normal = address.toLowerCase();
    const { headers } = await issue(address);
    const target = oneClickUri(headers)!;
    const res = await oneClick(pathOf(target));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
    expectPageHeaders(res);
    // The receipt is durable before the answer.
    expect(receiptsOf(normal)).toHaveLength(1);

    await waitFor(() => eventsOf(normal).length === 1);
    expect(eventsOf(normal)).toEqual([
      { brand: "MIGROS", type: "EPOSTA", status: "RET", source: "HS_EPOSTA", origin: "link", effect: "suppression", receiptId: receiptsOf(normal)[0]!.id },
    ]);
    const state = (await (await app.request(`/api/v1/consents?brand=MIGROS&recipient=${encodeURIComponent(normal)}`, authed(undefined, "GET"))).json()) as {
      consents: { type: string; status: string }[];
    };
    expect(state.consents).toMatchObject([{ type: "EPOSTA", status: "RET" }]);

    const mail = await waitFor(() => smtp.to(normal)[0]);
    expect(mail!.subject).toBe("Migros: e-posta ret talebiniz kaydedildi");
    expect(mail!.from?.value[0]).toEqual({ name: "Migros", address: "iletisim@hub.example.com" });
    expect(mail!.headers.get("auto-submitted")).toBe("auto-replied");
    expect(mail!.headers.get("list-unsubscribe")).toBeUndefined();
    expect(mail!.text).toContain("Migros markasından e-posta ile ticari elektronik ileti almayı reddettiğiniz (RET) kaydedildi.");
    expect(mail!.text).toContain("ticari ileti içermez");
    expect(mail!.text).not.toMatch(/https?:\/\//);
    await waitFor(() => outboxOf(normal).find((o) => o.kind === "email_confirmation")?.status === "done");
  });

  it("the button's form POST answers the Turkish result page (kaydedildi) and records the RET", async () => {
    const address = newAddress();
    const { url } = await issue(address);
    const res = await button(pathOf(url));
    expect(res.status).toBe(200);
    expectPageHeaders(res);
    const body = await res.text();
    expect(body).toContain("Kaydedildi");
    expect(body).toContain("Migros markasından e-posta ile ticari ileti almayı reddettiğiniz kaydedildi.");
    await waitFor(() => eventsOf(address.toLowerCase()).length === 1);
    const en = await (await button(pathOf(url), "en")).text();
    expect(en).toContain("Recorded");
  });

  it("a one-click POST sent as multipart/form-data records the RET too", async () => {
    const address = newAddress();
    const form = new FormData();
    form.set("List-Unsubscribe", "One-Click");
    const res = await app.request(pathOf((await issue(address)).url), { method: "POST", body: form });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
    await waitFor(() => eventsOf(address.toLowerCase()).length === 1);
  });

  it.each([
    ["no Content-Type", null, "List-Unsubscribe=One-Click"],
    ["text/plain", "text/plain", "List-Unsubscribe=One-Click"],
    ["a trailing CRLF", "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click\r\n"],
    ["another case", "application/x-www-form-urlencoded", "list-unsubscribe=one-click"],
    ["multipart without its boundary", "multipart/form-data", "List-Unsubscribe=One-Click"],
    ["multipart without the leading --", "multipart/form-data; boundary=XYZ", 'XYZ\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\nXYZ--\r\n'],
    ["multipart with bare LF lines", "multipart/form-data; boundary=XYZ", '--XYZ\nContent-Disposition: form-data; name="List-Unsubscribe"\n\nOne-Click\n--XYZ--\n'],
  ])("a one-click POST with %s records the RET (a mailbox provider neither retries nor shows the failure)", async (_what, type, body) => {
    const address = newAddress();
    // Bytes: a string body would be given a text/plain Content-Type.
    const request = new Request(`http://localhost${pathOf((await issue(address)).url)}`, { method: "POST", headers: type ? { "content-type": type } : {}, body: new TextEncoder().encode(body) });
    expect(request.headers.get("content-type")).toBe(type);
    const res = await app.request(request);
    expect(res.status).toBe(200);
    await waitFor(() => eventsOf(address.toLowerCase()).length === 1);
  });

  it.each([
    ["multipart/form-data; boundary=xyz", "garbage"],
    ["text/plain", "List-Unsubscribe=One-Clicked"],
    ["application/x-www-form-urlencoded", "List-Unsubscribe=One-Click%20No"],
    ["application/x-www-form-urlencoded", "List-Unsubscribe=One-Click."],
    ["application/json", '"List-Unsubscribe=One-Click"'],
  ])("a POST declared %j with a body that is not one answers the 400 page, records nothing", async (type, body) => {
    const address = newAddress();
    const res = await app.request(pathOf((await issue(address)).url), { method: "POST", headers: { "content-type": type }, body });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(receiptsOf(address.toLowerCase())).toEqual([]);
  });

  it("repeated clicks are one receipt, one RET and one confirmation", async () => {
    const address = newAddress();
    const normal = address.toLowerCase();
    const path = pathOf((await issue(address)).url);
    const answers = await Promise.all([oneClick(path), oneClick(path), button(path), oneClick(path)]);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    await waitFor(() => eventsOf(normal).length === 1 && smtp.to(normal).length === 1);
    await oneClick(path);
    await new Promise((r) => setTimeout(r, 300));
    expect(receiptsOf(normal)).toHaveLength(1);
    expect(eventsOf(normal)).toHaveLength(1);
    expect(smtp.to(normal)).toHaveLength(1);
  });

  it("a click after a later re-consent refuses again: a consent movement, then RET, then ONAY, then RET", async () => {
    const address = newAddress();
    const normal = address.toLowerCase();
    const consent = (minutesAgo: number) =>
      app.request(
        "/api/v1/consents",
        authed({ brand: "MIGROS", recipient: address, type: "EPOSTA", status: "ONAY", source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - minutesAgo * 60_000)) }),
      );
    expect((await consent(30)).status).toBe(201);
    const path = pathOf((await issue(address)).url);
    await oneClick(path);
    await waitFor(() => eventsOf(normal).length === 2);
    // İYS dates have seconds: the re-consent must be dated after the refusal.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await consent(0)).status).toBe(201);
    await new Promise((r) => setTimeout(r, 1100));
    await oneClick(path);
    await waitFor(() => eventsOf(normal).length === 4).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify({ events: eventsOf(normal), receipts: db().prepare("SELECT provider_ref, status, result FROM receipts WHERE from_address = ?").all(normal) })}`);
    });
    expect(eventsOf(normal).map((e) => `${e.status}/${e.origin}/${e.effect}`)).toEqual(["ONAY/api/movement", "RET/link/movement", "ONAY/api/movement", "RET/link/movement"]);
    expect(receiptsOf(normal)).toHaveLength(2);
  });

  it("a click after the address's TACIR consent was given again refuses it again (a click refuses TACIR too)", async () => {
    const address = newAddress();
    const normal = address.toLowerCase();
    const tacir = (minutesAgo: number) =>
      app.request(
        "/api/v1/consents",
        authed({ brand: "MIGROS", recipient: address, recipientType: "TACIR", type: "EPOSTA", status: "ONAY", source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - minutesAgo * 60_000)) }),
      );
    const allowedAsTacir = async () =>
      ((await (await app.request("/api/v1/check", authed({ brand: "MIGROS", type: "EPOSTA", recipientType: "TACIR", recipients: [address] }))).json()) as { allowed: string[] }).allowed;
    expect((await tacir(30)).status).toBe(201);
    const path = pathOf((await issue(address)).url);
    await oneClick(path);
    await waitFor(async () => (await allowedAsTacir()).length === 0);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await tacir(0)).status).toBe(201);
    expect(await allowedAsTacir()).toEqual([address]);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await button(path)).status).toBe(200);
    await waitFor(async () => (await allowedAsTacir()).length === 0, { timeoutMs: 15_000 });
    expect(receiptsOf(normal)).toHaveLength(2);
  });

  it("a click on a link issued for TACIR refuses the address's BIREYSEL consent too (the recipient cannot say which record it means)", async () => {
    const address = newAddress();
    const consent = await app.request(
      "/api/v1/consents",
      authed({ brand: "MIGROS", recipient: address, type: "EPOSTA", status: "ONAY", source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - 30 * 60_000)) }),
    );
    expect(consent.status).toBe(201);
    const res = await app.request("/api/v1/links", authed({ brand: "MIGROS", recipient: address, recipientType: "TACIR" }));
    expect(res.status, await res.clone().text()).toBe(200);
    await oneClick(pathOf(((await res.json()) as { url: string }).url));
    const allowed = async (recipientType: string) =>
      ((await (await app.request("/api/v1/check", authed({ brand: "MIGROS", type: "EPOSTA", recipientType, recipients: [address] }))).json()) as { allowed: string[] }).allowed;
    await waitFor(async () => (await allowed("BIREYSEL")).length === 0);
    expect(await allowed("TACIR")).toEqual([]);
    const events = db().prepare("SELECT recipient_type AS t, status, effect FROM consent_events WHERE recipient = ? ORDER BY id").all(address.toLowerCase());
    expect(events).toEqual([
      { t: "BIREYSEL", status: "ONAY", effect: "movement" },
      { t: "TACIR", status: "RET", effect: "suppression" },
      { t: "BIREYSEL", status: "RET", effect: "movement" },
    ]);
  });

  it("a BIREYSEL consent dated before a TACIR click but written after it (a late import, a back-dated API write) is refused by the click too; one dated after it stands", async () => {
    const address = newAddress();
    const res = await app.request("/api/v1/links", authed({ brand: "MIGROS", recipient: address, recipientType: "TACIR" }));
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await oneClick(pathOf(((await res.json()) as { url: string }).url))).status).toBe(200);
    const events = () => db().prepare("SELECT recipient_type AS t, status, origin FROM consent_events WHERE recipient = ? ORDER BY id").all(address.toLowerCase());
    await waitFor(() => events().length === 1);
    const write = (minutesAgo: number) =>
      app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient: address, type: "EPOSTA", status: "ONAY", source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - minutesAgo * 60_000)) }));
    const backDated = await write(30);
    expect(backDated.status).toBe(201);
    const answer = (await backDated.json()) as { event: { status: string }; consent: { status: string }; iys: { note?: string } };
    expect(answer.event.status).toBe("ONAY");
    expect(answer.consent.status).toBe("RET");
    expect(answer.iys.note).toMatch(/the recipient refused on an SMS, call or link after this consent's date/);
    const allowed = async () =>
      ((await (await app.request("/api/v1/check", authed({ brand: "MIGROS", type: "EPOSTA", recipients: [address] }))).json()) as { allowed: string[] }).allowed;
    expect(await allowed()).toEqual([]);
    expect(events()).toEqual([
      { t: "TACIR", status: "RET", origin: "link" },
      { t: "BIREYSEL", status: "ONAY", origin: "api" },
      { t: "BIREYSEL", status: "RET", origin: "link" },
    ]);
    // Given again after the click: a new consent.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await write(0)).status).toBe(201);
    expect(await allowed()).toEqual([address]);
  });

  it("an undated TACIR consent written after a BIREYSEL click counts as older than the click and is refused by it (it undid the refusal)", async () => {
    const address = newAddress();
    const res = await app.request("/api/v1/links", authed({ brand: "MIGROS", recipient: address }));
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await oneClick(pathOf(((await res.json()) as { url: string }).url))).status).toBe(200);
    const events = () => db().prepare("SELECT recipient_type AS t, status, origin FROM consent_events WHERE recipient = ? ORDER BY id").all(address.toLowerCase());
    await waitFor(() => events().length === 1);
    const allowed = async () =>
      ((await (await app.request("/api/v1/check", authed({ brand: "MIGROS", type: "EPOSTA", recipientType: "TACIR", recipients: [address] }))).json()) as { allowed: string[] }).allowed;
    expect(await allowed()).toEqual([]);
    const undated = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient: address, recipientType: "TACIR", type: "EPOSTA", status: "ONAY", source: "HS_WEB" }));
    expect(undated.status, await undated.clone().text()).toBe(201);
    const answer = (await undated.json()) as { event: { status: string; consentDate: string | null }; consent: { status: string }; iys: { note?: string } };
    expect(answer.event).toMatchObject({ status: "ONAY", consentDate: null });
    expect(answer.consent.status).toBe("RET");
    expect(answer.iys.note).toMatch(/an undated consent counts as older than any refusal/);
    expect(await allowed()).toEqual([]);
    expect(events()).toEqual([
      { t: "BIREYSEL", status: "RET", origin: "link" },
      { t: "TACIR", status: "ONAY", origin: "api" },
      { t: "TACIR", status: "RET", origin: "link" },
    ]);
  });

  it("a POST without the one-click body or the button's field is a 400 page and records nothing", async () => {
    const path = pathOf((await issue(newAddress())).url);
    const before = footprint();
    for (const init of [
      { method: "POST" },
      { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "List-Unsubscribe=Yes" },
      { method: "POST", headers: { "content-type": "application/json" }, body: '{"List-Unsubscribe":"One-Click"}' },
    ]) {
      const res = await app.request(path, init);
      expect(res.status).toBe(400);
      expectPageHeaders(res);
    }
    expect(footprint()).toEqual(before);
  });

  it("a body over 4 KiB is a 413 page with the page headers, however large (a 2 MiB one was the app's JSON 413 without them), and records nothing", async () => {
    const path = pathOf((await issue(newAddress())).url);
    const before = footprint();
    for (const size of [5_000, 2 * 1024 * 1024]) {
      const res = await app.request(path, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `List-Unsubscribe=One-Click&x=${"y".repeat(size)}` });
      expect(res.status).toBe(413);
      expect(res.headers.get("content-type")).toMatch(/^text\/html/);
      expectPageHeaders(res);
    }
    expect(footprint()).toEqual(before);
  });
});

describe("keys, expiry and limits", () => {
  it("a link keeps working after rotation while its key id is listed, and is a 404 once the key id is removed", async () => {
    const address = newAddress();
    const path = pathOf((await issue(address)).url);
    const rotated = createApp({ ...runtime.deps, config: { ...runtime.deps.config, LINK_KEYS: `${KEY_NEW},${KEY_OLD}` } });
    const rekeyed = createApp({ ...runtime.deps, config: { ...runtime.deps.config, LINK_KEYS: KEY_NEW } });
    expect((await rotated.request(path)).status).toBe(200);
    expect((await rekeyed.request(path)).status).toBe(404);
    expect((await oneClick(path, rekeyed)).status).toBe(404);
    expect(receiptsOf(address.toLowerCase())).toHaveLength(0);
    expect((await oneClick(path, rotated)).status).toBe(200);
    await waitFor(() => eventsOf(address.toLowerCase()).length === 1);
    // Re-issued under the new key: a new URL that the old keyring does not accept.
    const res = await rotated.request("/api/v1/links", authed({ brand: "MIGROS", recipient: address }));
    const fresh = pathOf(((await res.json()) as { url: string }).url);
    expect(fresh).not.toBe(path);
    expect((await rotated.request(fresh)).status).toBe(200);
    expect((await app.request(fresh)).status).toBe(404);
  });

  it("a link of a brand with linkExpiryDays is a 410 page after the expiry and records nothing; issuing it again renews the same URL", async () => {
    const address = newAddress();
    const first = await issue(address, "KOTON");
    const path = pathOf(first.url);
    const later = (days: number) => createApp({ ...runtime.deps, clock: { now: () => new Date(Date.now() + days * 86_400_000) } });
    expect((await later(0.5).request(path)).status).toBe(200);
    const expired = later(2);
    const before = footprint();
    const res = await expired.request(path);
    expect(res.status).toBe(410);
    const page = await res.text();
    expect(page).toContain("süresi dolmuş");
    // The recipient is told where a refusal is still possible.
    expect(page).toContain('href="https://iys.org.tr"');
    expect(page).toContain("ret bildirebilirsiniz");
    expect((await oneClick(path, expired)).status).toBe(410);
    expect(footprint()).toEqual(before);
    const again = await expired.request("/api/v1/links", authed({ brand: "KOTON", recipient: address }));
    const renewed = (await again.json()) as { url: string; expiresAt: string };
    expect(renewed.url).toBe(first.url);
    expect(new Date(renewed.expiresAt).getTime()).toBeGreaterThan(new Date(first.expiresAt!).getTime());
    expect((await expired.request(path)).status).toBe(200);
  });

  it("issuing again never brings an expiry forward: links already mailed keep theirs when the brand's expiry is shortened or first set", async () => {
    const create = await app.request("/api/v1/brands", authed({ code: "LONGLINK", name: "Long", shortNames: ["LONGLINK"], numbers: [], settings: { linkExpiryDays: 30 } }));
    expect(create.status, await create.clone().text()).toBe(201);
    const mailed = newAddress();
    const first = await issue(mailed, "LONGLINK");
    const patch = (settings: Record<string, unknown>) =>
      app.request("/api/v1/brands/LONGLINK", { method: "PATCH", headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" }, body: JSON.stringify({ settings }) });
    expect((await patch({ linkExpiryDays: 1 })).status).toBe(200);
    const again = await issue(mailed, "LONGLINK");
    expect(again).toMatchObject({ url: first.url, expiresAt: first.expiresAt });
    // A new address gets the brand's new expiry.
    const fresh = await issue(newAddress(), "LONGLINK");
    expect(new Date(fresh.expiresAt!).getTime() - Date.now()).toBeLessThan(2 * 86_400_000);
    // A link issued with no expiry keeps none.
    expect((await patch({})).status).toBe(200);
    const open = newAddress();
    expect((await issue(open, "LONGLINK")).expiresAt).toBeNull();
    expect((await patch({ linkExpiryDays: 1 })).status).toBe(200);
    expect((await issue(open, "LONGLINK")).expiresAt).toBeNull();
  });

  it("over the per-IP limit /r answers a 429 page; another IP is not limited", async () => {
    const limited = createApp({
      ...runtime.deps,
      clock: pinnedClock(runtime.deps.clock),
      config: { ...runtime.deps.config, LINK_LIMIT_PER_IP_PER_MINUTE: 3, LINK_CLIENT_IP_HEADER: "x-forwarded-for" },
    });
    const path = pathOf((await issue(newAddress())).url);
    // What the client claims comes first, what our proxy saw last: a new claim per request changes nothing.
    const seen = `203.0.113.${Math.floor(Math.random() * 250)}`;
    const xff = (i: number) => `10.9.${i}.${Math.floor(Math.random() * 250)}, ${seen}`;
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await limited.request(path, { headers: { "x-forwarded-for": xff(i) } })).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const res = await limited.request(path, { headers: { "x-forwarded-for": xff(9) } });
    expectPageHeaders(res);
    expect(await res.text()).toContain("Çok fazla istek");
    expect((await limited.request(path, { headers: { "x-forwarded-for": `${seen}, 198.51.100.7` } })).status).toBe(200);
  });

  it("a refusal POSTed on a valid link is not limited, even from an address over the limit; a bad token is", async () => {
    const limited = createApp({
      ...runtime.deps,
      clock: pinnedClock(runtime.deps.clock),
      config: { ...runtime.deps.config, LINK_LIMIT_PER_IP_PER_MINUTE: 3, LINK_CLIENT_IP_HEADER: "x-forwarded-for" },
    });
    const address = newAddress();
    const path = pathOf((await issue(address)).url);
    const headers = { "x-forwarded-for": `198.18.0.${Math.floor(Math.random() * 250)}` };
    for (let i = 0; i < 4; i++) await limited.request(path, { headers });
    expect((await limited.request(path, { headers })).status).toBe(429);
    const post = await limited.request(path, {
      method: "POST",
      headers: { ...headers, "content-type": "application/x-www-form-urlencoded" },
      body: "List-Unsubscribe=One-Click",
    });
    expect(post.status).toBe(200);
    await waitFor(() => eventsOf(address.toLowerCase()).length === 1);
    const forged = await limited.request(`${path.slice(0, -2)}xx`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/x-www-form-urlencoded" },
      body: "List-Unsubscribe=One-Click",
    });
    expect(forged.status).toBe(429);
  });
});

/** The clock's present, kept: requests are counted per clock minute, and a minute must not end among a test's. */
function pinnedClock(clock: Clock): Clock {
  const at = clock.now();
  return { now: () => at };
}

describe("a slow SMTP server", () => {
  it("gives up within the outbox lease (60 s) instead of nodemailer's 10 minutes, so the sweeper's retry never overlaps a send still running", async () => {
    let received = 0;
    // Takes the message, then never answers its end (250): what the review's 110-second server did.
    const slow = new SMTPServer({ authOptional: true, disabledCommands: ["STARTTLS", "AUTH"], logger: false, onData: (stream) => {
      received++;
      stream.resume();
    } });
    await new Promise<void>((resolve) => slow.listen(0, "127.0.0.1", resolve));
    try {
      const mailer = createMailer({ SMTP_URL: `smtp://127.0.0.1:${(slow.server.address() as AddressInfo).port}`, MAIL_FROM: "hub@example.com", PUBLIC_BASE_URL: "https://hub.example.com" })!;
      const started = Date.now();
      const mail = { from: { name: "Hub", address: mailer.from }, to: "ayse@example.com", subject: "s", text: "t", headers: {}, messageId: "<slow-1@hub.example.com>" };
      const err = await mailer.send(mail).then(() => null, (e: unknown) => e);
      expect(String((err as Error).message)).toMatch(/timeout/i);
      expect(received).toBe(1);
      expect(Date.now() - started).toBeLessThan(45_000);
      // The message went and no answer came: it may have been taken, so it is not sent again for a day.
      expect(smtpOutcomeUnknown(err)).toBe(true);
      // A server that is not there took nothing: that failure keeps the long retries.
      const port = (slow.server.address() as AddressInfo).port;
      await new Promise<void>((resolve) => slow.close(() => resolve()));
      const gone = createMailer({ SMTP_URL: `smtp://127.0.0.1:${port}`, MAIL_FROM: "hub@example.com", PUBLIC_BASE_URL: "https://hub.example.com" })!;
      const refused = await gone.send(mail).then(() => null, (e: unknown) => e);
      expect(String((refused as Error).message)).toMatch(/ECONNREFUSED/);
      expect(smtpOutcomeUnknown(refused)).toBe(false);
    } finally {
      slow.close();
    }
  }, 60_000);
});

describe("without SMTP_URL", () => {
  const tmp2 = tempDir();
  let rt: Runtime;
  beforeAll(async () => {
    rt = await createRuntime(testConfig(tmp2.dir, { SWEEPER_GRACE_SECONDS: "1", SWEEPER_INTERVAL_SECONDS: "1" }));
    rt.startBackground();
  });
  afterAll(async () => {
    await rt.close();
    await deletePrefix(rt.deps.config.QUEUE_PREFIX);
    tmp2.cleanup();
  });

  it("the RET is recorded and the confirmation's outbox row ends skipped with the reason, not lost", async () => {
    const a = createApp(rt.deps);
    expect((await a.request("/api/v1/brands", authed({ code: "LCW", name: "LC Waikiki" }))).status).toBe(201);
    const res = await a.request("/api/v1/links", authed({ brand: "LCW", recipient: "nosmtp@example.com" }));
    const { url } = (await res.json()) as { url: string };
    expect((await oneClick(pathOf(url), a)).status).toBe(200);
    const row = await waitFor(
      () =>
        rt.deps.db.$client
          .prepare("SELECT o.status, o.last_error AS lastError FROM outbox o WHERE o.kind = 'email_confirmation' AND o.status != 'pending'")
          .get() as { status: string; lastError: string } | undefined,
    );
    expect(row).toEqual({ status: "skipped", lastError: expect.stringContaining("SMTP_URL") });
    const events = rt.deps.db.$client.prepare("SELECT status, type, source FROM consent_events WHERE recipient = 'nosmtp@example.com'").all();
    expect(events).toEqual([{ status: "RET", type: "EPOSTA", source: "HS_EPOSTA" }]);
  });
});
