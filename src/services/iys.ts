import type { LedgerEvent } from "../../db/ledger";
import { formatIysDate } from "../domain/time";

export interface IysBrandRef {
  iysCode: string;
  brandCode: string;
}

export type IysReportResult =
  | { ok: true; transactionId: string | null }
  /** `permanent`: İYS refused the movement itself (a rule code); retrying cannot help. */
  | { ok: false; permanent: boolean; code: string; message: string };

/** Reports the hub's movements to the national İYS. */
export interface IysReporter {
  readonly configured: boolean;
  report(brand: IysBrandRef, event: LedgerEvent): Promise<IysReportResult>;
}

export const noopIysReporter: IysReporter = {
  configured: false,
  async report() {
    return { ok: false, permanent: true, code: "not_configured", message: "IYS_API_BASE_URL is not set" };
  },
};

/** İYS answers these when the movement is already what it holds: the report has, in effect, been made. */
const ALREADY_RECORDED = new Set(["H174"]);

/**
 * HTTP client of the İYS API (v3.2.0): OAuth2 password grant (`/oauth2/token`, 2 h tokens, cached) and
 * single consent writes (`POST /sps/{iysCode}/brands/{brandCode}/consents`).
 */
export class HttpIysReporter implements IysReporter {
  readonly configured = true;
  private token: { value: string; expiresAt: number } | null = null;

  constructor(
    private readonly opts: { baseUrl: string; username: string; password: string; timeoutMs?: number; now?: () => number },
  ) {}

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  private async accessToken(): Promise<string> {
    if (this.token && this.token.expiresAt > this.now() + 60_000) return this.token.value;
    const res = await fetch(new URL("oauth2/token", this.base()), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: this.opts.username, password: this.opts.password, grant_type: "password" }),
      signal: AbortSignal.timeout(this.opts.timeoutMs ?? 15_000),
    });
    if (!res.ok) throw new Error(`İYS token request failed with HTTP ${res.status}`);
    const body = (await res.json()) as { access_token?: string; expires_in?: number };
    if (!body.access_token) throw new Error("İYS token response has no access_token");
    this.token = { value: body.access_token, expiresAt: this.now() + (body.expires_in ?? 7200) * 1000 };
    return body.access_token;
  }

  private base(): string {
    return this.opts.baseUrl.endsWith("/") ? this.opts.baseUrl : `${this.opts.baseUrl}/`;
  }

  async report(brand: IysBrandRef, e: LedgerEvent): Promise<IysReportResult> {
    const token = await this.accessToken();
    const body: Record<string, unknown> = {
      recipient: e.recipient,
      recipientType: e.recipientType,
      type: e.type,
      status: e.status,
    };
    if (e.source) body.source = e.source;
    if (e.consentDate !== null) body.consentDate = formatIysDate(new Date(e.consentDate));
    if (e.retailerCode) body.retailerCode = Number(e.retailerCode);
    const url = new URL(
      `sps/${encodeURIComponent(brand.iysCode)}/brands/${encodeURIComponent(brand.brandCode)}/consents`,
      this.base(),
    );
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.opts.timeoutMs ?? 15_000),
    });
    if (res.status === 401) this.token = null;
    const text = await res.text();
    let json: { transactionId?: string; errors?: { code?: string; message?: string }[] } = {};
    try {
      json = JSON.parse(text);
    } catch {
      // A proxy's HTML error page: keep the status only.
    }
    if (res.ok) return { ok: true, transactionId: json.transactionId ?? null };
    const err = json.errors?.[0];
    const code = err?.code ?? `HTTP_${res.status}`;
    if (ALREADY_RECORDED.has(code)) return { ok: true, transactionId: null };
    const permanent = (res.status === 400 || res.status === 422) && !!err?.code;
    return { ok: false, permanent, code, message: err?.message ?? `HTTP ${res.status}` };
  }
}
