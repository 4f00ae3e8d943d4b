import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { chromium, type Browser } from "playwright-core";
import type { App } from "../src/app";

/**
 * A real HTTP server on a free port, up before the app exists so PUBLIC_BASE_URL can be its real
 * origin; it answers 503 until `serveApp` hands it the app.
 */
export async function listenForApp(): Promise<{ origin: string; serveApp(app: App): void; close(): Promise<void> }> {
  let handler: App | null = null;
  const server: ServerType = serve({ fetch: (req, env) => (handler ? handler.fetch(req, env) : new Response("starting", { status: 503 })), port: 0, hostname: "127.0.0.1" });
  await new Promise<void>((resolve) => (server.listening ? resolve() : server.once("listening", () => resolve())));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    serveApp: (app) => void (handler = app),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Debian's Chromium, headless, without the background traffic this machine's closed network refuses. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
