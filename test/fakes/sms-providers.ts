import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface SentSms {
  from: string;
  to: string;
  text: string;
  /** Vonage's `type` ("text" | "unicode"); absent for Twilio, which picks the encoding itself. */
  type?: string;
  authorization: string | undefined;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (data += c));
    req.on("end", () => resolve(data));
    req.on("error", reject);
  });
}

function parseBody(req: IncomingMessage, raw: string): Record<string, string> {
  if ((req.headers["content-type"] ?? "").includes("application/json")) {
    return Object.fromEntries(Object.entries(JSON.parse(raw || "{}") as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
  }
  return Object.fromEntries(new URLSearchParams(raw));
}

abstract class FakeServer {
  readonly sent: SentSms[] = [];
  /** Requests answered so far (accepted or not). */
  requests = 0;
  /** Answer this many sends with a server error first (retries). */
  failNext = 0;
  /** Recipients the provider refuses as invalid numbers (permanent errors). */
  readonly invalid = new Set<string>();
  private server: Server | null = null;

  protected abstract handle(req: IncomingMessage, res: ServerResponse, body: string): void;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      readBody(req).then((body) => {
        this.requests++;
        this.handle(req, res, body);
      }, () => res.destroy());
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  protected json(res: ServerResponse, status: number, body: unknown) {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  }
}

/** Twilio's Messages resource (REST API 2010-04-01), as the `twilio` package calls it. */
export class FakeTwilio extends FakeServer {
  constructor(
    readonly accountSid: string,
    readonly authToken: string,
  ) {
    super();
  }

  /** Recipients whose message is answered only once the promise settles (a slow send in a batch). */
  readonly slow = new Map<string, Promise<void>>();

  protected handle(req: IncomingMessage, res: ServerResponse, raw: string) {
    const p = parseBody(req, raw);
    const hold = p.To ? this.slow.get(p.To) : undefined;
    if (hold) {
      void hold.then(() => this.answer(req, res, raw));
      return;
    }
    this.answer(req, res, raw);
  }

  private answer(req: IncomingMessage, res: ServerResponse, raw: string) {
    const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(new URL(req.url ?? "/", "http://x").pathname);
    if (req.method !== "POST" || !m) return this.json(res, 404, { code: 20404, message: "The requested resource was not found", status: 404 });
    const expected = `Basic ${Buffer.from(`${this.accountSid}:${this.authToken}`).toString("base64")}`;
    if (req.headers.authorization !== expected || m[1] !== this.accountSid) {
      return this.json(res, 401, { code: 20003, message: "Authenticate", status: 401 });
    }
    if (this.failNext > 0) {
      this.failNext--;
      return this.json(res, 500, { code: 20500, message: "Internal Server Error", status: 500 });
    }
    const p = parseBody(req, raw);
    if (!p.To || !p.From || p.Body === undefined) return this.json(res, 400, { code: 21604, message: "A 'To' phone number is required.", status: 400 });
    if (this.invalid.has(p.To)) return this.json(res, 400, { code: 21211, message: `The 'To' number ${p.To} is not a valid phone number.`, status: 400 });
    this.sent.push({ from: p.From, to: p.To, text: p.Body, authorization: req.headers.authorization });
    const sid = `SM${randomBytes(16).toString("hex")}`;
    this.json(res, 201, {
      sid,
      account_sid: this.accountSid,
      from: p.From,
      to: p.To,
      body: p.Body,
      status: "queued",
      num_segments: "1",
      direction: "outbound-api",
      api_version: "2010-04-01",
      date_created: new Date().toUTCString(),
      uri: `/2010-04-01/Accounts/${this.accountSid}/Messages/${sid}.json`,
    });
  }
}

/** Vonage's SMS API (`POST /sms/json`), as @vonage/server-sdk calls it. */
export class FakeVonage extends FakeServer {
  constructor(
    readonly apiKey: string,
    readonly apiSecret: string,
  ) {
    super();
  }

  protected handle(req: IncomingMessage, res: ServerResponse, raw: string) {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (req.method !== "POST" || path !== "/sms/json") return this.json(res, 404, { type: "not_found" });
    const p = parseBody(req, raw);
    const basic = `Basic ${Buffer.from(`${this.apiKey}:${this.apiSecret}`).toString("base64")}`;
    const authed = req.headers.authorization === basic || (p.api_key === this.apiKey && p.api_secret === this.apiSecret);
    const reply = (message: Record<string, string>) => this.json(res, 200, { "message-count": "1", messages: [message] });
    if (!authed) return reply({ status: "4", "error-text": "Bad Credentials" });
    if (this.failNext > 0) {
      this.failNext--;
      return reply({ status: "5", "error-text": "Internal Error" });
    }
    if (!p.to || !p.from || !p.text) return reply({ status: "2", "error-text": "Missing to param" });
    if (this.invalid.has(p.to)) return reply({ status: "3", "error-text": "Invalid to number" });
    this.sent.push({ from: p.from, to: p.to, text: p.text, type: p.type, authorization: req.headers.authorization });
    reply({ to: p.to, "message-id": randomBytes(8).toString("hex"), status: "0", "remaining-balance": "10.0", "message-price": "0.05", network: "28601" });
  }
}
