import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface IysConsentWrite {
  iysCode: string;
  brandCode: string;
  body: Record<string, unknown>;
  authorization: string | undefined;
}

/**
 * A local stand-in for the İYS API speaking its HTTP protocol (v3.2.0): password-grant tokens and
 * single consent writes, with İYS's own duplicate answer (H174) for a repeated status.
 */
export class FakeIys {
  readonly writes: IysConsentWrite[] = [];
  tokenRequests = 0;
  /** Answer this many consent writes with 503 before accepting (to exercise retries). */
  failNext = 0;
  private server: Server | null = null;
  private readonly statusByKey = new Map<string, string>();
  private readonly token = `tok-${Math.random().toString(36).slice(2)}`;

  async start(): Promise<string> {
    this.server = createServer(async (req, res) => {
      const body = await readBody(req);
      const send = (status: number, json: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(json));
      };
      const url = new URL(req.url ?? "/", "http://x");
      if (req.method === "POST" && url.pathname === "/oauth2/token") {
        this.tokenRequests++;
        const creds = JSON.parse(body) as { username?: string; password?: string; grant_type?: string };
        if (creds.grant_type !== "password" || !creds.username) return send(400, { errors: [{ code: "H250", message: "Kullanıcı adı veya şifre eksik!" }] });
        return send(200, { access_token: this.token, refresh_token: "r", expires_in: 7200, token_type: "bearer" });
      }
      const m = /^\/sps\/([^/]+)\/brands\/([^/]+)\/consents$/.exec(url.pathname);
      if (req.method === "POST" && m) {
        if (req.headers.authorization !== `Bearer ${this.token}`) return send(401, { errors: [{ code: "H351", message: "Eksik veya geçersiz jeton!" }] });
        if (this.failNext > 0) {
          this.failNext--;
          return send(503, { errors: [{ code: "ERR-SYS-0002", message: "Beklenmedik bir hata oluştu." }] });
        }
        const parsed = JSON.parse(body) as Record<string, unknown>;
        this.writes.push({ iysCode: m[1]!, brandCode: m[2]!, body: parsed, authorization: req.headers.authorization });
        const key = `${m[1]}/${m[2]}/${parsed.recipient}/${parsed.recipientType}/${parsed.type}`;
        if (this.statusByKey.get(key) === parsed.status) {
          return send(400, { errors: [{ code: "H174", message: "İzin durumu (status) güncellemesi için farklı bir durum girilmelidir." }] });
        }
        this.statusByKey.set(key, String(parsed.status));
        return send(200, { transactionId: `tx${this.writes.length}`, creationDate: "2026-11-22 10:00:00" });
      }
      send(404, { errors: [{ code: "H015", message: "not found" }] });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
