import type { StoredEvent } from "../../db/ledger";
import { formatIysDate, parseIysDate } from "../domain/time";
import type { HourlyBudget, Pacer } from "./pacer";

export interface IysBrandRef {
  iysCode: string;
  brandCode: string;
}

/** `creationDate`: when İYS registered the movement (ms), as it answered; the key of its daily file with transactionId. */
export type IysReportResult =
  | { ok: true; transactionId: string | null; creationDate?: number | null }
  /** `permanent`: İYS refused the movement itself (a rule code); retrying cannot help. */
  | { ok: false; permanent: boolean; code: string; message: string };

/** `retryAt`: not before then (an hourly budget spent: asking earlier would only be refused). */
type IysFailure = { ok: false; permanent: boolean; code: string; message: string; retryAt?: number };

/**
 * İYS took the list for processing (Asenkron Çoklu İzin Ekleme); the outcome is asked for later. A
 * list refused at once for some of its movements (a 422 whose errors name their `index`: H467, H162,
 * H120…) carries those in `items`: the list may go again without them.
 */
export type IysBatchSubmitResult = { ok: true; requestId: string } | (IysFailure & { items?: { index: number; code: string; message: string }[] });

/** One movement of a batch as İYS answers it, by its position in the list sent. */
export interface IysBatchItem {
  index: number;
  status: "success" | "failure" | "enqueue";
  transactionId?: string;
  creationDate?: number;
  code?: string;
  message?: string;
}

/** An empty list means İYS has not processed the request yet (its documentation: ask again later). */
export type IysBatchStatusResult = { ok: true; items: IysBatchItem[] } | IysFailure;

/**
 * A movement a recipient made on İYS itself (its web site, e-Devlet, its app, 3338, a short link),
 * as İYS's pull lists it (İzin Hareketi Sorgulama, source IYS). Values are İYS's as given (checked
 * where they become ledger actions); `citizenName`, which İYS may add, is personal data the hub
 * does not need and is dropped here.
 */
export interface IysChange {
  transactionId: string;
  /** When İYS registered it (ms): with transactionId, the key of İYS's daily movement file. */
  creationDate: number | null;
  recipient: string;
  recipientType: string;
  type: string;
  status: string;
  source: string;
  /** İYS's "YYYY-MM-DD HH:mm:ss" (Turkish time); absent for some TACIR records. */
  consentDate: string | null;
}

/** One page of İYS's pull; `after` points past its last movement (null: İYS gave none, keep the one asked with). */
export type IysChangesResult = { ok: true; after: string | null; items: IysChange[] } | IysFailure;

/** The most movements İYS lists in one pull answer (its `limit`). */
export const IYS_CHANGES_MAX = 1000;

/** How long token requests stop after İYS refused one (its hourly limit restarts with every early request). */
export const IYS_TOKEN_PAUSE_MS = 3_600_000;

/** The most movements İYS takes in one multiple write. */
export const IYS_BATCH_MAX = 1000;

/** Reports the hub's movements to the national İYS. */
export interface IysReporter {
  readonly configured: boolean;
  report(brand: IysBrandRef, event: StoredEvent): Promise<IysReportResult>;
  /** Up to IYS_BATCH_MAX movements, no recipient twice, in one asynchronous request. */
  submitBatch(brand: IysBrandRef, events: StoredEvent[]): Promise<IysBatchSubmitResult>;
  batchStatus(brand: IysBrandRef, requestId: string): Promise<IysBatchStatusResult>;
  /** Recipients' own movements on İYS after `after` (null: İYS's whole 7-day window), oldest first. */
  changes(brand: IysBrandRef, after: string | null, limit?: number, source?: "IYS" | "HS"): Promise<IysChangesResult>;
  /** What İYS holds for one consent now (Tekil İzin Durumu Sorgulama; at most 1000 an hour): null when it holds nothing. */
  /** `low`: a question that can wait (see HourlyBudget): asked only within the first half of the hour's budget. */
  consentStatus(brand: IysBrandRef, consent: IysConsentKey, opts?: { low?: boolean }): Promise<IysConsentStatusResult>;
}

/** One consent as İYS keys it. */
export interface IysConsentKey {
  recipient: string;
  recipientType: string;
  type: string;
}

export type IysConsentStatusResult = { ok: true; held: IysChange | null } | IysFailure;

const notConfigured: IysFailure = { ok: false, permanent: true, code: "not_configured", message: "IYS_API_BASE_URL is not set" };

export const noopIysReporter: IysReporter = {
  configured: false,
  async report() {
    return notConfigured;
  },
  async submitBatch() {
    return notConfigured;
  },
  async batchStatus() {
    return notConfigured;
  },
  async changes() {
    return notConfigured;
  },
  async consentStatus() {
    return notConfigured;
  },
};

/** A movement in İYS's consent body (single and multiple writes take the same object). */
/** An İYS date ("YYYY-MM-DD HH:mm:ss", Turkish time) as ms, or null when absent or not one. */
function iysInstant(v: unknown): number | null {
  if (typeof v !== "string") return null;
  const d = parseIysDate(v);
  return d.ok ? d.date.getTime() : null;
}

function consentBody(e: StoredEvent): Record<string, unknown> {
  const body: Record<string, unknown> = {
    recipient: e.recipient,
    recipientType: e.recipientType,
    type: e.type,
    status: e.status,
  };
  if (e.source) body.source = e.source;
  if (e.consentDate !== null) body.consentDate = formatIysDate(new Date(e.consentDate));
  if (e.retailerCode) body.retailerCode = Number(e.retailerCode);
  return body;
}

const str = (v: unknown) => (typeof v === "string" ? v : "");

/** A consent record as İYS lists it (pull) or answers it (status query): İYS's values as given, its citizenName left out. */
function toChange(raw: Record<string, unknown> | null): IysChange {
  return {
    transactionId: str(raw?.transactionId),
    creationDate: iysInstant(raw?.creationDate),
    recipient: str(raw?.recipient),
    recipientType: str(raw?.recipientType),
    type: str(raw?.type),
    status: str(raw?.status),
    source: str(raw?.source),
    consentDate: typeof raw?.consentDate === "string" && raw.consentDate ? raw.consentDate : null,
  };
}

type IysError = { code?: string; message?: string; index?: unknown };
type ErrorBody = { errors?: IysError[] };

/**
 * The errors of an İYS error body. The specification's own 403 examples (H353) spell the key
 * `"code:"`, colon included: İYS may really send it so, and its code is taken from there too.
 */
function errorsOf(json: unknown): IysError[] {
  const errors = (json as ErrorBody | null)?.errors;
  if (!Array.isArray(errors)) return [];
  return errors.map((e) => {
    const raw = (e ?? {}) as IysError & { "code:"?: unknown };
    const code = typeof raw.code === "string" ? raw.code : typeof raw["code:"] === "string" ? raw["code:"] : undefined;
    return { ...raw, code };
  });
}

/** İYS answers these when the movement is already what it holds: the report has, in effect, been made. */
const ALREADY_RECORDED = new Set(["H174"]);
export const alreadyRecorded = (code: string | undefined) => code !== undefined && ALREADY_RECORDED.has(code);

/**
 * HTTP client of the İYS API (v3.2.0): OAuth2 password grant (`/oauth2/token`, 2 h tokens, cached),
 * single consent writes (`POST /sps/{iysCode}/brands/{brandCode}/consents`), asynchronous multiple
 * writes (`POST …/consents/request`, then `GET …/consents/request/{requestId}`) and the pull of
 * recipients' movements on İYS (`GET …/consents/changes`).
 */
/**
 * İYS answers these with a 400 or 422, like a rule refusing the movement, but they say nothing about
 * the movement: retried on the schedule, never dropped (a refusal given up on stays unreported).
 * H123 "the service is busy, try again later", H1059 "an unexpected error while completing, try
 * again later", H1036 an error reading the account's defaults, H525 the subscription's consent quota
 * used up (the movement goes once the quota is raised; the deadline shows it overdue meanwhile).
 */
export const RETRY_LATER_CODES: ReadonlySet<string> = new Set(["H123", "H1059", "H1036", "H525"]);

export class HttpIysReporter implements IysReporter {
  readonly configured = true;
  private token: { value: string; expiresAt: number } | null = null;

  constructor(
    private readonly opts: {
      baseUrl: string;
      username: string;
      password: string;
      timeoutMs?: number;
      now?: () => number;
      /** İYS takes 10 requests a second from an address: every request (tokens too) waits for a slot. */
      pacer?: Pacer;
      /** İYS answers 1000 single status queries an hour from an address (429 H086 past it). */
      statusBudget?: HourlyBudget;
    },
  ) {}

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  private tokenRequest: Promise<string> | null = null;
  /** After İYS refused a token request (4xx): no new one before this moment, and why. */
  private tokenPaused: { until: number; reason: string } | null = null;

  /**
   * One token request at a time: the reports waiting on it share its answer (İYS allows 100 token
   * requests an hour). A refused one (429 H084 past that limit, wrong credentials) pauses token
   * requests for an hour — İYS: asking again before the hour is over starts the hour again — and
   * every report meanwhile fails at once as transient (retried on its schedule), without asking.
   */
  private accessToken(): Promise<string> {
    if (this.token && this.token.expiresAt > this.now() + 60_000) return Promise.resolve(this.token.value);
    if (this.tokenPaused && this.tokenPaused.until > this.now()) {
      return Promise.reject(new Error(`İYS token requests paused until ${new Date(this.tokenPaused.until).toISOString()}: ${this.tokenPaused.reason}`));
    }
    this.tokenRequest ??= this.requestToken().finally(() => {
      this.tokenRequest = null;
    });
    return this.tokenRequest;
  }

  private async requestToken(): Promise<string> {
    await this.opts.pacer?.slot();
    const res = await fetch(new URL("oauth2/token", this.base()), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: this.opts.username, password: this.opts.password, grant_type: "password" }),
      signal: AbortSignal.timeout(this.opts.timeoutMs ?? 15_000),
    });
    if (!res.ok) {
      const body = (await res.json().catch(() => null)) as (ErrorBody & { error?: string; error_description?: string }) | null;
      const first = errorsOf(body)[0];
      const code = first?.code ?? body?.error ?? `HTTP_${res.status}`;
      const detail = first?.message ?? body?.error_description;
      const reason = `İYS refused the token request: ${code}${detail ? ` (${detail})` : ""}`;
      if (res.status >= 400 && res.status < 500) this.tokenPaused = { until: this.now() + IYS_TOKEN_PAUSE_MS, reason };
      throw new Error(reason);
    }
    this.tokenPaused = null;
    const body = (await res.json()) as { access_token?: string; expires_in?: number };
    if (!body.access_token) throw new Error("İYS token response has no access_token");
    this.token = { value: body.access_token, expiresAt: this.now() + (body.expires_in ?? 7200) * 1000 };
    return body.access_token;
  }

  private base(): string {
    return this.opts.baseUrl.endsWith("/") ? this.opts.baseUrl : `${this.opts.baseUrl}/`;
  }

  private brandUrl(brand: IysBrandRef, rest: string): URL {
    return new URL(`sps/${encodeURIComponent(brand.iysCode)}/brands/${encodeURIComponent(brand.brandCode)}/${rest}`, this.base());
  }

  /**
   * One authenticated call: the status and the parsed JSON body (or null: a proxy's HTML error page).
   * With `statusBudget`, a status query: taken from the hour's budget once the token is there (a
   * token refused or paused spends none); past the budget nothing is sent and `budgetWait` says for how long.
   */
  private async call(
    method: "GET" | "POST",
    url: URL,
    body?: unknown,
    statusBudget?: { low?: boolean },
  ): Promise<{ status: number; ok: boolean; json: unknown; budgetWait?: number }> {
    const token = await this.accessToken();
    if (statusBudget && this.opts.statusBudget) {
      const wait = await this.opts.statusBudget.take(statusBudget);
      if (wait !== null) return { status: 0, ok: false, json: null, budgetWait: wait };
    }
    await this.opts.pacer?.slot();
    const res = await fetch(url, {
      method,
      headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), authorization: `Bearer ${token}` },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(this.opts.timeoutMs ?? 15_000),
    });
    if (res.status === 401) this.token = null;
    const text = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      // keep the status only
    }
    return { status: res.status, ok: res.ok, json };
  }

  private failure(status: number, json: unknown): IysFailure {
    const err = errorsOf(json)[0];
    const code = err?.code ?? `HTTP_${status}`;
    // 400/422: a rule code about the movement; 403 H180: no İYS dealer has that retailerCode (asking
    // again cannot change it, and İYS counts every refused request against the account's success rate).
    // Except the codes that are about İYS or the account, not the movement (RETRY_LATER_CODES).
    const permanent = (((status === 400 || status === 422) && !!err?.code) || (status === 403 && err?.code === "H180")) && !RETRY_LATER_CODES.has(code);
    return { ok: false, permanent, code, message: err?.message ?? `HTTP ${status}` };
  }

  async report(brand: IysBrandRef, e: StoredEvent): Promise<IysReportResult> {
    const { status, ok, json } = await this.call("POST", this.brandUrl(brand, "consents"), consentBody(e));
    if (ok) {
      const answer = json as { transactionId?: string; creationDate?: unknown } | null;
      return { ok: true, transactionId: answer?.transactionId ?? null, creationDate: iysInstant(answer?.creationDate) };
    }
    const failure = this.failure(status, json);
    if (alreadyRecorded(failure.code)) return { ok: true, ...(await this.recordedAs(brand, e)) };
    return failure;
  }

  /**
   * İYS already holds the movement (H174): typically an earlier attempt whose answer was lost (a
   * timeout, a dropped connection). Its transactionId and creationDate — the key of İYS's daily file —
   * are asked for (the single status query) and kept when İYS holds exactly this movement; otherwise,
   * or if the query fails, the report stands without them.
   */
  private async recordedAs(brand: IysBrandRef, e: StoredEvent): Promise<{ transactionId: string | null; creationDate?: number | null }> {
    try {
      const asked = await this.consentStatus(brand, e);
      // Exactly what this report sent (as consentBody renders it), not an earlier movement of the same status.
      const sent = consentBody(e);
      const held = asked.ok ? asked.held : null;
      const same = held !== null && held.status === sent.status && held.consentDate === (sent.consentDate ?? null) && held.source === (sent.source ?? "");
      if (same && held.transactionId) return { transactionId: held.transactionId, creationDate: held.creationDate };
    } catch {
      // the report stands; only the daily file's key is missing
    }
    return { transactionId: null };
  }

  async consentStatus(brand: IysBrandRef, consent: IysConsentKey, opts: { low?: boolean } = {}): Promise<IysConsentStatusResult> {
    // Within the hour's budget, or not asked at all: İYS would only answer 429 H086.
    const { status, ok, json, budgetWait } = await this.call(
      "POST",
      this.brandUrl(brand, "consents/status"),
      { recipient: consent.recipient, recipientType: consent.recipientType, type: consent.type },
      opts,
    );
    if (budgetWait !== undefined) {
      const retryAt = this.now() + budgetWait;
      return { ok: false, permanent: false, code: "status_budget", message: `the hourly budget of İYS status queries is spent until ${new Date(retryAt).toISOString()}`, retryAt };
    }
    // İYS holds no record of the consent: no content, or a not-found answer in İYS's error body
    // (İYS's document lists neither; a proxy's 404 page is not taken for one).
    if (status === 204 || (status === 404 && typeof errorsOf(json)[0]?.code === "string")) return { ok: true, held: null };
    if (!ok) {
      const failure = this.failure(status, json);
      // İYS counts the hour otherwise than we do (another system behind the same address): none until the next one.
      if (status === 429 && failure.code === "H086" && this.opts.statusBudget) return { ...failure, retryAt: this.now() + (await this.opts.statusBudget.exhaust()) };
      return failure;
    }
    if (json === null || typeof json !== "object" || Array.isArray(json) || typeof (json as { status?: unknown }).status !== "string") {
      return { ok: false, permanent: false, code: "bad_response", message: "İYS answered the status query with something other than a consent" };
    }
    return { ok: true, held: toChange(json as Record<string, unknown>) };
  }

  async submitBatch(brand: IysBrandRef, events: StoredEvent[]): Promise<IysBatchSubmitResult> {
    if (events.length === 0 || events.length > IYS_BATCH_MAX) throw new Error(`an İYS multiple write takes 1 to ${IYS_BATCH_MAX} movements, not ${events.length}`);
    const { status, ok, json } = await this.call("POST", this.brandUrl(brand, "consents/request"), events.map(consentBody));
    const requestId = (json as { requestId?: unknown } | null)?.requestId;
    if (ok && typeof requestId === "string" && requestId) return { ok: true, requestId };
    if (ok) return { ok: false, permanent: false, code: "no_request_id", message: "İYS accepted the list without a requestId" };
    const failure = this.failure(status, json);
    const errors = errorsOf(json);
    const items = errors
      .filter((e) => Number.isInteger(e.index) && (e.index as number) >= 0 && (e.index as number) < events.length && e.code)
      .map((e) => ({ index: e.index as number, code: e.code!, message: e.message ?? e.code! }));
    return failure.permanent && items.length > 0 ? { ...failure, items } : failure;
  }

  async batchStatus(brand: IysBrandRef, requestId: string): Promise<IysBatchStatusResult> {
    const { status, ok, json } = await this.call("GET", this.brandUrl(brand, `consents/request/${encodeURIComponent(requestId)}`));
    if (!ok) return this.failure(status, json);
    if (!Array.isArray(json)) return { ok: false, permanent: false, code: "bad_response", message: "İYS answered the request query with something other than a list" };
    const items: IysBatchItem[] = [];
    for (const raw of json as Record<string, unknown>[]) {
      const index = Number(raw?.index);
      const st = raw?.status;
      if (!Number.isInteger(index) || (st !== "success" && st !== "failure" && st !== "enqueue")) continue;
      const error = raw.error as { code?: string; message?: string } | undefined;
      items.push({
        index,
        status: st,
        ...(typeof raw.transactionId === "string" ? { transactionId: raw.transactionId } : {}),
        ...(iysInstant(raw.creationDate) !== null ? { creationDate: iysInstant(raw.creationDate)! } : {}),
        ...(error?.code ? { code: error.code } : {}),
        ...(error?.message ? { message: error.message } : {}),
      });
    }
    return { ok: true, items };
  }

  async changes(brand: IysBrandRef, after: string | null, limit = IYS_CHANGES_MAX, source: "IYS" | "HS" = "IYS"): Promise<IysChangesResult> {
    const url = this.brandUrl(brand, "consents/changes");
    url.searchParams.set("source", source);
    url.searchParams.set("limit", String(limit));
    if (after) url.searchParams.set("after", after);
    const { status, ok, json } = await this.call("GET", url);
    // 204: no movement after `after` (İYS: "İzin bulunamadı").
    if (status === 204) return { ok: true, after: null, items: [] };
    if (!ok) return this.failure(status, json);
    const body = json as { after?: unknown; list?: unknown } | null;
    if (body === null || typeof body !== "object" || Array.isArray(body) || !Array.isArray(body.list)) {
      return { ok: false, permanent: false, code: "bad_response", message: "İYS answered the pull with something other than { after, list }" };
    }
    const items = (body.list as Record<string, unknown>[]).map(toChange);
    const next = typeof body.after === "string" && body.after ? body.after : null;
    if (items.length > 0 && next === null) {
      return { ok: false, permanent: false, code: "bad_response", message: "İYS listed movements without an after pointer" };
    }
    return { ok: true, after: next, items };
  }
}
