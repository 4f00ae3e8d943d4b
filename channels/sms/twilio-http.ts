import { NOT_SENT } from "../../src/errors";
import http from "node:http";
import https from "node:https";
import twilio from "twilio";
import type SdkRequestClient from "twilio/lib/base/RequestClient";

type RequestOptions<T> = SdkRequestClient.RequestOptions<T>;
/** What a transport answers: the status, the raw body (the SDK parses JSON itself) and the headers. */
interface Response<T> {
  statusCode: number;
  body: T;
  headers: unknown;
}

const MAX_RESPONSE_CHARS = 1 << 20;

/** Twilio's form encoding: every value as a string, arrays as repeated names (`qs` with `arrayFormat: "repeat"`). */
function formEncode(data: object): string {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(data)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const item of v) form.append(k, String(item));
    else form.append(k, v === null ? "" : String(v));
  }
  return form.toString();
}

/**
 * The `twilio` client's HTTP transport (its documented `httpClient` option), on Node's own http(s)
 * with keep-alive agents instead of the SDK's axios stack, which cost about as much CPU per send as
 * everything else a confirmation does. The SDK still builds every request (resource paths, parameter
 * names, User-Agent, Accept headers) and still turns every response into a record or a
 * RestException; this only moves bytes. Requests go to `base` instead of `https://*.twilio.com`
 * (TWILIO_API_BASE_URL; tests point it at a local fake). Behind HTTP_PROXY or with TWILIO_CA_BUNDLE
 * the SDK's own transport is used, since that is what honours them.
 */
export class TwilioHttpClient extends twilio.RequestClient {
  private readonly origin: string;
  private readonly timeoutMs: number;
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  private readonly sdkTransport = Boolean(process.env.HTTP_PROXY || process.env.TWILIO_CA_BUNDLE);

  constructor(base: string, timeoutMs: number) {
    super({ timeout: timeoutMs, keepAlive: true });
    this.origin = base.replace(/\/+$/, "");
    this.timeoutMs = timeoutMs;
  }

  override async request<TData>(opts: RequestOptions<TData>): Promise<Response<TData>> {
    const uri = opts.uri.replace(/^https:\/\/[a-z0-9.-]*twilio\.com/, this.origin);
    if (this.sdkTransport) return super.request<TData>({ ...opts, uri });
    const url = new URL(uri);
    if (opts.params) {
      for (const [k, v] of new URLSearchParams(formEncode(opts.params))) url.searchParams.append(k, v);
    }
    const headers: Record<string, string> = { ...(opts.headers as Record<string, string> | undefined) };
    if (opts.username && opts.password) headers.Authorization = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString("base64")}`;
    else if (opts.authStrategy) headers.Authorization = await opts.authStrategy.getAuthString();
    let body: string | undefined;
    if (opts.data) {
      const type = headers["Content-Type"];
      if (type === "application/x-www-form-urlencoded") body = formEncode(opts.data);
      else if (type === "application/json") body = JSON.stringify(opts.data);
      if (body !== undefined) headers["Content-Length"] = String(Buffer.byteLength(body));
    }
    const secure = url.protocol === "https:";
    const timeoutMs = opts.timeout ?? this.timeoutMs;
    return new Promise<Response<TData>>((resolve, reject) => {
      const req = (secure ? https : http).request(url, { method: opts.method.toUpperCase(), headers, agent: secure ? this.agents.https : this.agents.http }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
          // Twilio answers a send with a record of a few KiB; a body past this is not Twilio.
          if (text.length > MAX_RESPONSE_CHARS) req.destroy(new Error(`the response is larger than ${MAX_RESPONSE_CHARS} characters`));
        });
        res.on("end", () => {
          clearTimeout(timer);
          // A string body, as the SDK's own transport may hand over: Version.create parses it.
          resolve({ statusCode: res.statusCode ?? 0, body: text as TData, headers: res.headers });
        });
        res.on("error", fail);
      });
      // The whole exchange, not just an idle socket: the outbox lease assumes a send ends in time.
      const timer = setTimeout(() => req.destroy(new Error(`timeout of ${timeoutMs}ms exceeded`)), timeoutMs);
      // Whether the request reached the socket whole: a failure before that (no connection, a
      // connect that timed out) certainly sent nothing, and says so (outcomeUnknown reads it).
      let written = false;
      req.on("finish", () => (written = true));
      function fail(err: Error) {
        clearTimeout(timer);
        reject(written ? err : Object.assign(new Error(`${err.message} ${NOT_SENT}`), { code: (err as { code?: string }).code }));
      }
      req.on("error", fail);
      req.end(body);
    });
  }
}
