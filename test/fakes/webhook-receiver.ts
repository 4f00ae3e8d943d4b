import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedWebhook {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** What we answered (0 when we never answered: a slow path cut off by the sender). */
  answered: number;
}

/**
 * Webhook receivers on localhost: one server, one path per endpoint. Paths can fail their next
 * requests, be down for good, or answer late.
 */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  readonly failNext = new Map<string, number>();
  readonly down = new Set<string>();
  readonly slowMs = new Map<string, number>();
  /** Per path: the status to answer a body with, when it says one (a receiver refusing some changes). */
  readonly answerWith = new Map<string, (body: string) => number | undefined>();
  private server: Server | null = null;
  base = "";

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (c: string) => (body += c));
      req.on("end", () => {
        const path = req.url ?? "/";
        const entry: ReceivedWebhook = { path, headers: req.headers, body, answered: 0 };
        this.received.push(entry);
        const answer = (code: number) => {
          entry.answered = code;
          res.writeHead(code, { "content-type": "text/plain" }).end(code < 300 ? "ok" : "nope");
        };
        const left = this.failNext.get(path) ?? 0;
        if (this.down.has(path)) return answer(503);
        if (left > 0) {
          this.failNext.set(path, left - 1);
          return answer(500);
        }
        const chosen = this.answerWith.get(path)?.(body);
        if (chosen !== undefined) return answer(chosen);
        const slow = this.slowMs.get(path);
        if (slow) {
          const t = setTimeout(() => !res.destroyed && answer(200), slow);
          res.on("close", () => clearTimeout(t));
          return;
        }
        answer(204);
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.base;
  }

  at(path: string): ReceivedWebhook[] {
    return this.received.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/**
 * An implementation of the Standard Webhooks verification written from the specification, apart
 * from the hub's signer: HMAC-SHA256 keyed with the base64-decoded part of `whsec_…`, over
 * `${id}.${timestamp}.${body}`, compared with each space-separated `v1,` signature.
 */
export function verifyStandardWebhook(secret: string, headers: { id: string; timestamp: string; signature: string }, body: string): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${headers.id}.${headers.timestamp}.${body}`).digest();
  return headers.signature.split(" ").some((part) => {
    const [version, sig] = part.split(",");
    if (version !== "v1" || !sig) return false;
    const given = Buffer.from(sig, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

export function verifyReceived(secret: string, r: ReceivedWebhook): boolean {
  return verifyStandardWebhook(
    secret,
    { id: String(r.headers["webhook-id"]), timestamp: String(r.headers["webhook-timestamp"]), signature: String(r.headers["webhook-signature"]) },
    r.body,
  );
}
