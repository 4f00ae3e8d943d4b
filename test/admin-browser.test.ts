import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import twilio from "twilio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../src/app";
import { createRuntime, type Runtime } from "../src/runtime";
import { FakeTwilio } from "./fakes/sms-providers";
import { launchChromium, listenForApp } from "./browser";
import { ADMIN_KEY, authed, deletePrefix, tempDir, testConfig, waitFor } from "./helpers";

const ARTIFACTS = join(import.meta.dirname, "artifacts");
const ACCOUNT_SID = `AC${"c3".repeat(16)}`;
const AUTH_TOKEN = "twilio-browser-admin-token";
const SENDER = "+905327654321";
const tmp = tempDir();
const fakeTwilio = new FakeTwilio(ACCOUNT_SID, AUTH_TOKEN);
let runtime: Runtime;
let app: App;
let server: Awaited<ReturnType<typeof listenForApp>>;
let origin: string;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await listenForApp();
  origin = server.origin;
  runtime = await createRuntime(
    testConfig(tmp.dir, {
      PUBLIC_BASE_URL: origin,
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_API_BASE_URL: await fakeTwilio.start(),
    }),
  );
  runtime.startBackground();
  app = createApp(runtime.deps);
  server.serveApp(app);
  const brand = await app.request("/api/v1/brands", authed({ code: "MIGROS", name: "Migros", shortNames: ["MİGROS"], numbers: [{ number: "3434", provider: "twilio" }] }));
  expect(brand.status).toBe(201);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server.close();
  await runtime.close();
  await fakeTwilio.stop();
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

/** An inbound "RET MIGROS" from a real HTTP client, signed as Twilio signs it. */
async function sendRet(): Promise<void> {
  const sid = `SM${"9".repeat(32)}`;
  const params = { MessageSid: sid, SmsSid: sid, AccountSid: ACCOUNT_SID, From: SENDER, To: "3434", Body: "RET MIGROS", NumSegments: "1" };
  const res = await fetch(`${origin}/sms/twilio`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": twilio.getExpectedTwilioSignature(AUTH_TOKEN, `${origin}/sms/twilio`, params) },
    body: new URLSearchParams(params).toString(),
  });
  expect(res.status).toBe(200);
}

describe("the operator dashboard in a real browser", () => {
  it("after logging in with the admin key the dashboard shows the RET sent a moment before; the queue board loads; logout ends the session", async () => {
    const context = await browser.newContext({ locale: "tr-TR" });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    const cspViolations: string[] = [];
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text()) && !page.url().includes("/admin/queues")) cspViolations.push(m.text());
    });

    await page.goto(`${origin}/admin`);
    expect(new URL(page.url()).pathname).toBe("/admin/login");
    await page.getByLabel("Admin key").fill("wrong key");
    await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Log in / Giriş" }).click()]);
    expect(await page.getByRole("alert").textContent()).toBe("Wrong key / Anahtar hatalı.");

    await sendRet();
    await waitFor(() => (runtime.deps.db.$client.prepare("SELECT count(*) AS n FROM consent_events WHERE recipient = ?").get(SENDER) as { n: number }).n === 1);

    await page.getByLabel("Admin key").fill(ADMIN_KEY);
    await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Log in / Giriş" }).click()]);
    expect(new URL(page.url()).pathname).toBe("/admin");
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === "hub_admin")).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/admin" });

    const recent = page.locator("#recent tbody tr").first();
    expect(await recent.locator("td").allTextContents()).toEqual([expect.stringMatching(/^\d+$/), expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/), "MIGROS", "+90532*****21", "MESAJ", "RET", "sms", "suppression", "—"]);
    expect(await page.locator("#counts tbody tr").first().locator("td").allTextContents()).toEqual(["MIGROS", "sms", "0", "1"]);
    expect(await page.locator("#queues tbody tr").count()).toBe(4);
    expect(await page.content()).not.toContain("7654321");
    // Styles applied (allowed by their hash): the RET badge is red.
    expect(await recent.locator(".badge").evaluate((el) => getComputedStyle(el).color)).toBe("rgb(138, 28, 18)");
    await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });
    expect(cspViolations).toEqual([]);

    await page.getByRole("link", { name: "Queues / Kuyruklar" }).click();
    await page.waitForURL(`${origin}/admin/queues`);
    // bull-board's own React page, fed by its API through our session cookie.
    for (const q of ["consent", "confirmations", "callbacks", "iys-reports"]) await page.getByText(q, { exact: true }).first().waitFor();
    await page.waitForLoadState("networkidle");
    await page.getByText(/Yükleniyor|Loading/).waitFor({ state: "detached" });
    await page.screenshot({ path: join(ARTIFACTS, "queues.png"), fullPage: true });

    await page.goto(`${origin}/admin`);
    await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Log out / Çıkış" }).click()]);
    expect(new URL(page.url()).pathname).toBe("/admin/login");
    expect((await context.cookies()).find((c) => c.name === "hub_admin")).toBeUndefined();
    await page.goto(`${origin}/admin`);
    expect(new URL(page.url()).pathname).toBe("/admin/login");
    await context.close();
  }, 90_000);
});

describe("the API reference in a real browser", () => {
  it("renders the operations from the hub's own files, with no internet access", async () => {
    const page = await browser.newPage();
    const external: string[] = [];
    page.on("request", (r) => {
      if (!r.url().startsWith(origin)) external.push(r.url());
    });
    try {
      await page.goto(`${origin}/api/docs`);
      await page.waitForSelector(".opblock", { timeout: 30_000 });
      expect(await page.locator(".opblock").count()).toBeGreaterThan(10);
      expect(await page.textContent("body")).toContain("/check");
      expect(external).toEqual([]);
    } finally {
      await page.close();
    }
  }, 60_000);
});
