import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../src/app";
import { createRuntime, type Runtime } from "../src/runtime";
import { launchChromium, listenForApp } from "./browser";
import { authed, deletePrefix, tempDir, testConfig, waitFor } from "./helpers";

const ARTIFACTS = join(import.meta.dirname, "artifacts");
const tmp = tempDir();
let runtime: Runtime;
let app: App;
let server: Awaited<ReturnType<typeof listenForApp>>;
let origin: string;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await listenForApp();
  origin = server.origin;
  runtime = await createRuntime(testConfig(tmp.dir, { PUBLIC_BASE_URL: origin, SWEEPER_GRACE_SECONDS: "1", SWEEPER_INTERVAL_SECONDS: "1" }));
  runtime.startBackground();
  app = createApp(runtime.deps);
  server.serveApp(app);
  expect((await app.request("/api/v1/brands", authed({ code: "MIGROS", name: "Migros" }))).status).toBe(201);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server.close();
  await runtime.close();
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

const db = () => runtime.deps.db.$client;
const footprint = () => db().prepare("SELECT (SELECT count(*) FROM receipts) AS receipts, (SELECT count(*) FROM consent_events) AS events, (SELECT count(*) FROM outbox) AS outbox").get();
const eventsOf = (recipient: string) =>
  db().prepare("SELECT type, status, source, origin FROM consent_events WHERE recipient = ? ORDER BY id").all(recipient) as { type: string; status: string; source: string; origin: string }[];

describe("the rejection link in a real browser", () => {
  it("opening the link changes nothing; the button records the RET and shows the Turkish result page", async () => {
    const res = await app.request("/api/v1/links", authed({ brand: "MIGROS", recipient: "tarayici.testi@example.com" }));
    const { url } = (await res.json()) as { url: string };
    expect(url.startsWith(`${origin}/r/`)).toBe(true);

    const context = await browser.newContext({ locale: "tr-TR" });
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    const cspViolations: string[] = [];
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    const before = footprint();
    const opened = await page.goto(url);
    expect(opened?.status()).toBe(200);
    await expect.poll(() => page.title()).toBe("Migros: e-posta iletilerini reddet");
    expect(await page.locator(".addr").textContent()).toBe("t***@e***.com");
    const submit = page.getByRole("button", { name: "E-posta iletilerini reddet" });
    expect(await submit.count()).toBe(1);
    // The inline style is allowed by its hash: the button is styled, nothing was blocked.
    expect(await submit.evaluate((el) => getComputedStyle(el).backgroundColor)).toBe("rgb(179, 38, 30)");
    await page.screenshot({ path: join(ARTIFACTS, "link-confirm.png"), fullPage: true });
    // The English toggle is a plain link (no script), and still changes nothing.
    await page.getByRole("link", { name: "English" }).click();
    await page.getByRole("button", { name: "Refuse e-mail messages" }).waitFor();
    await page.getByRole("link", { name: "Türkçe" }).click();
    await submit.waitFor();
    expect(footprint()).toEqual(before);
    expect(eventsOf("tarayici.testi@example.com")).toEqual([]);

    await Promise.all([page.waitForNavigation(), submit.click()]);
    // A plain heading (role=status had taken its heading role away).
    await page.getByRole("heading", { level: 1, name: "Kaydedildi" }).waitFor();
    expect(await page.locator("main").textContent()).toContain("Migros markasından e-posta ile ticari ileti almayı reddettiğiniz kaydedildi.");
    await page.screenshot({ path: join(ARTIFACTS, "link-done.png"), fullPage: true });

    await waitFor(() => eventsOf("tarayici.testi@example.com").length === 1);
    expect(eventsOf("tarayici.testi@example.com")).toEqual([{ type: "EPOSTA", status: "RET", source: "HS_EPOSTA", origin: "link" }]);
    expect(cspViolations).toEqual([]);
    await context.close();
  }, 60_000);
});
