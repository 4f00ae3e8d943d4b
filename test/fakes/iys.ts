import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { formatIysDate } from "../../src/domain/time";

export interface IysConsentWrite {
  iysCode: string;
  brandCode: string;
  body: Record<string, unknown>;
  authorization: string | undefined;
  /** When it arrived (ms): İYS gives one transactionId to a consent's movements within one second. */
  at: number;
}

export interface IysBatchWrite {
  iysCode: string;
  brandCode: string;
  requestId: string;
  items: Record<string, unknown>[];
  at: number;
  /** Per item, once İYS has processed the list. */
  results?: Record<string, unknown>[];
}

/**
 * A local stand-in for the İYS API speaking its HTTP protocol (v3.2.0): password-grant tokens,
 * single consent writes, with İYS's own duplicate answer (H174) for a repeated status, and the
 * asynchronous multiple write, whose request query answers an empty list until `batchDelayMs` has
 * passed, then each movement's success (transactionId) or failure (error code), refusing a movement
 * dated before the record it holds (H178); the single status query; and the pull of
 * movements recipients made on İYS itself (consents/changes, source IYS) or the provider wrote
 * (source HS: the hub's writes and providerMovement's), behind an `after` pointer.
 */
export class FakeIys {
  readonly writes: IysConsentWrite[] = [];
  readonly batches: IysBatchWrite[] = [];
  /** When each request arrived (ms), every endpoint: to check the hub's pacing. */
  readonly arrivals: number[] = [];
  batchQueries = 0;
  /** How long İYS takes to process a multiple write. */
  batchDelayMs = 0;
  /** Recipients whose movements a multiple write refuses (H120, as for a malformed address). */
  readonly refuse = new Set<string>();
  /** Per recipient, errors a multiple write's outcome gives its movement, one list after another (H525: the quota used up). */
  readonly itemErrorsNext = new Map<string, { code: string; message: string }[]>();
  /** Recipients whose movement makes İYS refuse the whole list at once (422, each error naming its index), as for H467. */
  readonly refuseAtSubmit = new Set<string>();
  tokenRequests = 0;
  /** Token requests to refuse as İYS does past its hourly limit (429, H084). */
  tokenLimitedNext = 0;
  /** Answer this many consent writes with `failAnswer` (503 unless set) before accepting (to exercise retries). */
  failNext = 0;
  failAnswer: { status: number; code: string; message: string } = { status: 503, code: "ERR-SYS-0002", message: "Beklenmedik bir hata oluştu." };
  private server: Server | null = null;
  private readonly statusByKey = new Map<string, string>();
  /** What İYS holds per consent, for the single status query (consents/status). */
  private readonly stateByKey = new Map<string, Record<string, unknown>>();
  /** Record this many consent writes but answer nothing (the connection drops), as when the answer is lost on the way back. */
  dropAnswerNext = 0;
  private readonly token = `tok-${Math.random().toString(36).slice(2)}`;
  /** Movements recipients made on İYS itself, in the order İYS registered them. */
  readonly recipientMovements: { iysCode: string; brandCode: string; at: number; item: Record<string, unknown> }[] = [];
  /** The provider's movements İYS registered (the hub's writes, and providerMovement's), in order: what a pull with source HS lists. */
  readonly providerMovements: { iysCode: string; brandCode: string; at: number; item: Record<string, unknown> }[] = [];
  /** Pull requests answered (consents/changes), with the query each asked. */
  readonly changeQueries: URLSearchParams[] = [];
  /** Pulls to answer with an error instead (e.g. 503, or 403 H353 for a brand not the account's). */
  readonly failChangesNext: { status: number; code: string; message: string }[] = [];
  /** brandCodes whose pulls are always refused 403 H353 (a brand not the account's), and the pulls each got. */
  readonly refusedBrandCodes = new Set<string>();
  readonly changeQueriesOf = new Map<string, number>();
  /** Pulls to answer 200 with this body as it is (a proxy's or a changed API's answer). */
  readonly rawChangesNext: string[] = [];
  /** Status queries (consents/status) to answer 503 before answering. */
  failStatusNext = 0;
  /** Single writes wait for `release` before İYS answers them; `arrived` is called as each comes in. */
  holdWrites: { arrived: () => void; release: Promise<void> } | null = null;
  /** Status queries to refuse 429 H086 (the hour's 1000 spent, e.g. by another system behind the same address). */
  refuseStatusNext = 0;
  /** Status queries that reached İYS (answered or refused). */
  statusQueries = 0;
  /** Called once a status query is answered (a test's way to change what İYS holds right after). */
  afterStatusQuery: (() => void) | undefined;
  /** İYS leaves the last hour's movements out of its pull; 0 here unless a test sets it. */
  changesHideMs = 0;

  /** A recipient's movement on İYS (e-Devlet, İYS's site or app, 3338): what the brand's pull then lists. */
  recipientMovement(
    iysCode: string,
    brandCode: string,
    m: { recipient: string; type: string; status: string; recipientType?: string; source?: string; consentDate?: string | null; citizenName?: string; transactionId?: string | null },
    at = Date.now(),
  ): Record<string, unknown> {
    return this.register(this.recipientMovements, iysCode, brandCode, at, m, "IYS_WEB");
  }

  /**
   * The provider's own movement written to İYS outside the hub (another of its systems, İYS's web
   * panel): held by İYS, listed by a pull with source HS only.
   */
  providerMovement(
    iysCode: string,
    brandCode: string,
    m: { recipient: string; type: string; status: string; recipientType?: string; source?: string; consentDate: string },
    at = Date.now(),
  ): Record<string, unknown> {
    return this.register(this.providerMovements, iysCode, brandCode, at, m, "HS_WEB");
  }

  private register(
    into: { iysCode: string; brandCode: string; at: number; item: Record<string, unknown> }[],
    iysCode: string,
    brandCode: string,
    at: number,
    m: { recipient: string; type: string; status: string; recipientType?: string; source?: string; consentDate?: string | null; citizenName?: string; transactionId?: string | null },
    defaultSource: string,
  ): Record<string, unknown> {
    const item: Record<string, unknown> = {
      consentDate: m.consentDate === undefined ? formatIysDate(new Date(at)) : (m.consentDate ?? ""),
      creationDate: formatIysDate(new Date(at)),
      source: m.source ?? defaultSource,
      recipient: m.recipient,
      recipientType: m.recipientType ?? "BIREYSEL",
      status: m.status,
      type: m.type,
      // null: İYS left it out (the hub must not lose the movement for it).
      ...(m.transactionId === null ? {} : { transactionId: m.transactionId ?? randomBytes(32).toString("hex") }),
      ...(m.citizenName ? { citizenName: m.citizenName } : {}),
    };
    into.push({ iysCode, brandCode, at, item });
    const key = `${iysCode}/${brandCode}/${m.recipient}/${item.recipientType}/${m.type}`;
    this.statusByKey.set(key, m.status);
    this.stateByKey.set(key, item);
    return item;
  }

  /**
   * İYS's H178: a movement dated before the record it holds of the consent, or in the same second
   * (as the hub's rules take İYS to; dates as İYS writes them compare as strings).
   */
  private olderThanHeld(key: string, movement: Record<string, unknown>): boolean {
    const held = this.stateByKey.get(key)?.consentDate;
    return typeof held === "string" && typeof movement.consentDate === "string" && movement.consentDate <= held;
  }

  async start(): Promise<string> {
    this.server = createServer(async (req, res) => {
      this.arrivals.push(Date.now());
      const body = await readBody(req);
      const send = (status: number, json: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(json));
      };
      const url = new URL(req.url ?? "/", "http://x");
      if (req.method === "POST" && url.pathname === "/oauth2/token") {
        this.tokenRequests++;
        if (this.tokenLimitedNext > 0) {
          this.tokenLimitedNext--;
          return send(429, { errors: [{ code: "H084", message: "Kimlik doğrulama servisine çok fazla istek gönderildi. 1 saat sonra tekrar deneyiniz." }] });
        }
        const creds = JSON.parse(body) as { username?: string; password?: string; grant_type?: string };
        if (creds.grant_type !== "password" || !creds.username) return send(400, { errors: [{ code: "H250", message: "Kullanıcı adı veya şifre eksik!" }] });
        return send(200, { access_token: this.token, refresh_token: "r", expires_in: 7200, token_type: "bearer" });
      }
      const batch = /^\/sps\/([^/]+)\/brands\/([^/]+)\/consents\/request(?:\/([^/]+))?$/.exec(url.pathname);
      if (batch) {
        if (req.headers.authorization !== `Bearer ${this.token}`) return send(401, { errors: [{ code: "H351", message: "Eksik veya geçersiz jeton!" }] });
        if (req.method === "POST" && !batch[3]) {
          if (this.failNext > 0) {
            this.failNext--;
            return send(this.failAnswer.status, { errors: [{ code: this.failAnswer.code, message: this.failAnswer.message }] });
          }
          const items = JSON.parse(body) as Record<string, unknown>[];
          if (!Array.isArray(items) || items.length === 0 || items.length > 1000) return send(400, { errors: [{ code: "H092", message: "Çoklu izin ekleme isteği geçerli olmalıdır." }] });
          const refusedAtOnce = items.flatMap((it, index) =>
            this.refuseAtSubmit.has(String(it.recipient)) ? [{ index, location: ["consentDate"], code: "H467", message: "Üç iş günü öncesinde alınan izinler kaydedilemez." }] : [],
          );
          if (refusedAtOnce.length > 0) return send(422, { errors: refusedAtOnce });
          const requestId = `req${this.batches.length + 1}${Math.random().toString(36).slice(2, 10)}`;
          this.batches.push({ iysCode: batch[1]!, brandCode: batch[2]!, requestId, items, at: Date.now() });
          return send(202, { requestId, subRequests: items.map((it, k) => ({ ...it, subRequestId: `${requestId}-${k}`, creationDate: formatIysDate(new Date()) })) });
        }
        if (req.method === "GET" && batch[3]) {
          this.batchQueries++;
          const b = this.batches.find((x) => x.requestId === batch[3]);
          if (!b || Date.now() < b.at + this.batchDelayMs) return send(200, []);
          b.results ??= b.items.map((it, index) => {
            if (this.refuse.has(String(it.recipient))) return { index, subRequestId: `${b.requestId}-${index}`, status: "failure", error: { code: "H120", message: "Alıcı formatı hatalı." } };
            const error = this.itemErrorsNext.get(String(it.recipient))?.shift();
            if (error) return { index, subRequestId: `${b.requestId}-${index}`, status: "failure", error };
            const key = `${b.iysCode}/${b.brandCode}/${it.recipient}/${it.recipientType}/${it.type}`;
            if (this.statusByKey.get(key) === it.status) {
              return { index, status: "failure", error: { code: "H174", message: "İzin durumu (status) güncellemesi için farklı bir durum girilmelidir." } };
            }
            if (this.olderThanHeld(key, it)) return { index, status: "failure", error: { code: "H178", message: "Sistemdeki iznin tarihinden önceki tarihli izinlerle güncelleme yapılamaz." } };
            this.statusByKey.set(key, String(it.status));
            const answer = { transactionId: `btx-${b.requestId}-${index}`, creationDate: formatIysDate(new Date()) };
            this.stateByKey.set(key, { ...it, ...answer });
            this.providerMovements.push({ iysCode: b.iysCode, brandCode: b.brandCode, at: Date.now(), item: { ...it, ...answer } });
            return { index, requestId: b.requestId, status: "success", ...answer };
          });
          return send(200, b.results);
        }
      }
      const pull = /^\/sps\/([^/]+)\/brands\/([^/]+)\/consents\/changes$/.exec(url.pathname);
      if (req.method === "GET" && pull) {
        if (req.headers.authorization !== `Bearer ${this.token}`) return send(401, { errors: [{ code: "H351", message: "Eksik veya geçersiz jeton!" }] });
        this.changeQueries.push(url.searchParams);
        this.changeQueriesOf.set(pull[2]!, (this.changeQueriesOf.get(pull[2]!) ?? 0) + 1);
        // Spelled as the specification's own 403 examples spell it: "code:", colon included.
        if (this.refusedBrandCodes.has(pull[2]!)) return send(403, { errors: [{ "code:": "H353", message: "brandCode, kullanıcı izinleriyle eşleştirilemiyor" }] });
        const raw = this.rawChangesNext.shift();
        if (raw !== undefined) {
          res.writeHead(200, { "content-type": "application/json" });
          return res.end(raw);
        }
        const failure = this.failChangesNext.shift();
        if (failure) return send(failure.status, { errors: [{ code: failure.code, message: failure.message }] });
        const limit = Number(url.searchParams.get("limit") ?? 1000);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
          return send(422, { errors: [{ code: "H507", location: ["limit"], value: String(limit), message: "limit alanı için karakter üst sınırı 1000 olmalıdır." }] });
        }
        const source = url.searchParams.get("source") ?? "IYS";
        if (source !== "IYS" && source !== "HS") return send(422, { errors: [{ code: "H506", location: ["source"], value: source, message: "İzin kaynağı (source) bulunamadı." }] });
        const pointer = (r: { at: number; item: Record<string, unknown> }) => `${Math.floor(r.at / 1000)}_${r.item.transactionId}`;
        const listed = source === "HS" ? this.providerMovements : this.recipientMovements;
        const mine = listed.filter((r) => r.iysCode === pull[1] && r.brandCode === pull[2] && r.at <= Date.now() - this.changesHideMs);
        const after = url.searchParams.get("after");
        const start = after ? mine.findIndex((r) => pointer(r) === after) + 1 : 0;
        const page = mine.slice(start, start + limit);
        if (page.length === 0) {
          res.writeHead(204);
          return res.end();
        }
        return send(200, { after: pointer(page[page.length - 1]!), list: page.map((r) => r.item) });
      }
      const q = /^\/sps\/([^/]+)\/brands\/([^/]+)\/consents\/status$/.exec(url.pathname);
      if (req.method === "POST" && q) {
        if (req.headers.authorization !== `Bearer ${this.token}`) return send(401, { errors: [{ code: "H351", message: "Eksik veya geçersiz jeton!" }] });
        this.statusQueries++;
        if (this.refuseStatusNext > 0) {
          this.refuseStatusNext--;
          return send(429, { errors: [{ code: "H086", message: "Saatte kabul edilen tekil izin durumu sorgulama istek limitine ulaşıldı. Lütfen daha sonra tekrar deneyiniz." }] });
        }
        if (this.failStatusNext > 0) {
          this.failStatusNext--;
          return send(503, { errors: [{ code: "ERR-SYS-0002", message: "Beklenmedik bir hata oluştu." }] });
        }
        const asked = JSON.parse(body) as Record<string, unknown>;
        const held = this.stateByKey.get(`${q[1]}/${q[2]}/${asked.recipient}/${asked.recipientType}/${asked.type}`);
        if (held) send(200, held);
        else send(404, { errors: [{ code: "H130", message: "İzin bulunamadı." }] });
        this.afterStatusQuery?.();
        return;
      }
      const m = /^\/sps\/([^/]+)\/brands\/([^/]+)\/consents$/.exec(url.pathname);
      if (req.method === "POST" && m) {
        if (req.headers.authorization !== `Bearer ${this.token}`) return send(401, { errors: [{ code: "H351", message: "Eksik veya geçersiz jeton!" }] });
        const hold = this.holdWrites;
        if (hold) {
          hold.arrived();
          await hold.release;
        }
        if (this.failNext > 0) {
          this.failNext--;
          return send(this.failAnswer.status, { errors: [{ code: this.failAnswer.code, message: this.failAnswer.message }] });
        }
        const parsed = JSON.parse(body) as Record<string, unknown>;
        this.writes.push({ iysCode: m[1]!, brandCode: m[2]!, body: parsed, authorization: req.headers.authorization, at: Date.now() });
        const key = `${m[1]}/${m[2]}/${parsed.recipient}/${parsed.recipientType}/${parsed.type}`;
        if (this.statusByKey.get(key) === parsed.status) {
          return send(400, { errors: [{ code: "H174", message: "İzin durumu (status) güncellemesi için farklı bir durum girilmelidir." }] });
        }
        if (this.olderThanHeld(key, parsed)) return send(400, { errors: [{ code: "H178", message: "Sistemdeki iznin tarihinden önceki tarihli izinlerle güncelleme yapılamaz." }] });
        this.statusByKey.set(key, String(parsed.status));
        const answer = { transactionId: `tx${this.writes.length}`, creationDate: formatIysDate(new Date()) };
        this.stateByKey.set(key, { ...parsed, ...answer });
        this.providerMovements.push({ iysCode: m[1]!, brandCode: m[2]!, at: Date.now(), item: { ...parsed, ...answer } });
        if (this.dropAnswerNext > 0) {
          this.dropAnswerNext--;
          req.socket.destroy();
          return;
        }
        return send(200, answer);
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
