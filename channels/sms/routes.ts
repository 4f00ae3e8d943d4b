import { Hono, type Context } from "hono";
import type { AppDeps, HonoEnv } from "../../src/env";
import { ApiError } from "../../src/errors";
import { SmsIngress } from "./ingress";
import { twilioSignatureValid, vonageSignatureValid } from "./signatures";

const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>';

function isForm(c: Context): boolean {
  return (c.req.header("content-type") ?? "").toLowerCase().startsWith("application/x-www-form-urlencoded");
}

/** Form parameters as Twilio signs them: every value, repeated names kept as arrays. */
export function formParams(raw: string): Record<string, string | string[]> {
  // No prototype: a parameter named "constructor" or "toString" is a parameter like any other.
  const out: Record<string, string | string[]> = Object.create(null);
  for (const [k, v] of new URLSearchParams(raw)) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function single(params: Record<string, string | string[]>, name: string): string | undefined {
  const v = params[name];
  return Array.isArray(v) ? v[0] : v;
}

function required(params: Record<string, string | string[]>, name: string, pattern?: RegExp): string {
  const v = single(params, name)?.trim();
  if (!v) throw new ApiError("bad_request", `${name} is required`, { field: name });
  if (pattern && !pattern.test(v)) throw new ApiError("bad_request", `${name} is malformed`, { field: name });
  return v;
}

/** The URL the provider called, as it saw it: our public origin, the path and the query. */
export function publicUrl(deps: AppDeps, c: Context): string {
  // The raw path and query as received (the request URL is absolute: scheme://host/path?query).
  const url = c.req.url;
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const hash = url.indexOf("#");
  return `${deps.config.PUBLIC_BASE_URL}${start < 0 ? "/" : url.slice(start, hash < 0 ? undefined : hash)}`;
}

/** Vonage sends international numbers without the "+"; shortcodes stay as they are. */
function vonageAddress(raw: string): string {
  return /^\d{7,15}$/.test(raw) ? `+${raw}` : raw;
}

export function createSmsRoutes(deps: AppDeps) {
  const ingress = new SmsIngress(deps);

  async function vonage(c: Context<HonoEnv>, params: Record<string, string>) {
    const { config, clock } = deps;
    // An unsigned request could record anyone's consent or refusal: in production, as for Twilio
    // without its token, the route is closed until the secret is set.
    if (!config.VONAGE_SIGNATURE_SECRET && config.NODE_ENV === "production") {
      throw new ApiError("unavailable", "Vonage webhooks are not configured: VONAGE_SIGNATURE_SECRET is required in production (enable signed webhooks in Vonage)");
    }
    if (config.VONAGE_SIGNATURE_SECRET) {
      if (!vonageSignatureValid(params, config.VONAGE_SIGNATURE_SECRET, config.VONAGE_SIGNATURE_METHOD)) {
        throw new ApiError("forbidden", "sig is missing or does not match VONAGE_SIGNATURE_SECRET");
      }
      const ts = Number(params.timestamp);
      const skew = Math.abs(clock.now().getTime() / 1000 - ts);
      if (!Number.isFinite(ts) || skew > config.VONAGE_SIGNATURE_WINDOW_SECONDS) {
        throw new ApiError("forbidden", "timestamp is missing or outside the signature window");
      }
    }
    const messageId = required(params, "messageId", /^[A-Za-z0-9-]{1,64}$/);
    const from = vonageAddress(required(params, "msisdn", /^\+?[0-9A-Za-z ]{1,20}$/));
    const to = vonageAddress(required(params, "to", /^\+?\d{3,15}$/));
    const text = params.text ?? "";
    const payload: Record<string, unknown> = { type: params.type ?? "text", messageTimestamp: params["message-timestamp"] };
    if (params.concat === "true") {
      const ref = required(params, "concat-ref", /^\d{1,5}$/);
      const part = Number(required(params, "concat-part", /^\d{1,3}$/));
      const total = Number(required(params, "concat-total", /^\d{1,3}$/));
      if (total < 1) throw new ApiError("bad_request", "concat-total must be at least 1", { field: "concat-total" });
      if (part < 1 || part > total) throw new ApiError("bad_request", `concat-part must be within 1..${total} (concat-total)`, { field: "concat-part" });
      // A message of one part is whole as it is: taken as an ordinary message, not held for parts that never come.
      if (total === 1) await ingress.ingest({ provider: "vonage", providerRef: messageId, from, to, body: text, payload });
      else await ingress.ingestPart({ provider: "vonage", providerRef: messageId, from, to, body: text, payload }, { ref, part, total });
    } else {
      await ingress.ingest({ provider: "vonage", providerRef: messageId, from, to, body: text, payload });
    }
    // Vonage treats any 2xx as delivered.
    return c.body(null, 204);
  }

  // Bodies are limited to WEBHOOK_MAX_BYTES by the app (src/app.ts), for every webhook path.
  return new Hono<HonoEnv>()
    .post("/twilio", async (c) => {
      const token = deps.config.TWILIO_AUTH_TOKEN;
      if (!token) throw new ApiError("unavailable", "Twilio webhooks are not configured (TWILIO_AUTH_TOKEN)");
      if (!isForm(c)) throw new ApiError("unsupported_media_type", "Content-Type must be application/x-www-form-urlencoded");
      const params = formParams(await c.req.text());
      const url = publicUrl(deps, c);
      if (!twilioSignatureValid(token, c.req.header("x-twilio-signature"), url, params)) {
        // The URL checked against: a PUBLIC_BASE_URL other than the one configured in Twilio is the usual cause.
        throw new ApiError("forbidden", `X-Twilio-Signature is missing or does not match (checked against ${url.split("?")[0]}; PUBLIC_BASE_URL must be the origin Twilio calls)`);
      }
      const sid = required(params, "MessageSid", /^[A-Z]{2}[0-9a-fA-F]{32}$/);
      await ingress.ingest({
        provider: "twilio",
        providerRef: sid,
        from: required(params, "From"),
        to: required(params, "To"),
        body: single(params, "Body") ?? "",
        payload: { numSegments: single(params, "NumSegments") },
      });
      return c.body(EMPTY_TWIML, 200, { "content-type": "text/xml; charset=utf-8" });
    })
    .get("/vonage", (c) => vonage(c, c.req.query()))
    .post("/vonage", async (c) => {
      const type = (c.req.header("content-type") ?? "").toLowerCase();
      let params: Record<string, string>;
      if (type.startsWith("application/json")) {
        let body: unknown;
        try {
          body = JSON.parse(await c.req.text());
        } catch {
          throw new ApiError("bad_request", "the request body is not valid JSON", { field: "(body)" });
        }
        if (!body || typeof body !== "object" || Array.isArray(body)) throw new ApiError("bad_request", "the body must be a JSON object", { field: "(body)" });
        params = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null && typeof v !== "object").map(([k, v]) => [k, String(v)]));
      } else if (isForm(c)) {
        params = Object.fromEntries(new URLSearchParams(await c.req.text()));
      } else throw new ApiError("unsupported_media_type", "Content-Type must be application/json or application/x-www-form-urlencoded");
      return vonage(c, params);
    });
}
