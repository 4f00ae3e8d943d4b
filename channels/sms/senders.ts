import twilio from "twilio";
import { Vonage } from "@vonage/server-sdk";
import { Auth } from "@vonage/auth";
import type { Config } from "../../src/config";
import { segmentsOf } from "./templates";
import { outcomeUnknown } from "../../src/errors";
import { TwilioHttpClient } from "./twilio-http";

export interface OutboundSms {
  from: string;
  to: string;
  text: string;
}

export type SendResult =
  | { ok: true; providerId: string; encoding: "GSM-7" | "UCS-2"; segments: number }
  /** `unknownOutcome`: no answer from the provider (a timeout, a connection dropped): the message may have gone. */
  | { ok: false; permanent: boolean; reason: string; unknownOutcome?: boolean };

export interface SmsSender {
  readonly provider: "twilio" | "vonage";
  send(msg: OutboundSms): Promise<SendResult>;
}

export class SenderNotConfigured extends Error {}

/**
 * Twilio error codes that will not get better with a retry: invalid or unreachable `To`, the
 * recipient unsubscribed at Twilio (21610), a `From` we may not use.
 * https://www.twilio.com/docs/api/errors
 */
const TWILIO_PERMANENT = new Set([21211, 21212, 21265, 21408, 21606, 21610, 21612, 21614, 21659, 21660]);

export class TwilioSender implements SmsSender {
  readonly provider = "twilio" as const;
  private readonly client: twilio.Twilio;

  constructor(accountSid: string, authToken: string, baseUrl: string) {
    this.client = twilio(accountSid, authToken, { httpClient: new TwilioHttpClient(baseUrl, 15_000) });
  }

  async send(msg: OutboundSms): Promise<SendResult> {
    const info = segmentsOf(msg.text);
    try {
      const m = await this.client.messages.create({ from: msg.from, to: msg.to, body: msg.text });
      return { ok: true, providerId: m.sid, encoding: info.encoding, segments: info.segments };
    } catch (err) {
      const e = err as { status?: number; code?: number; message?: string };
      const permanent = (e.code !== undefined && TWILIO_PERMANENT.has(e.code)) || (e.status !== undefined && e.status >= 400 && e.status < 500 && e.status !== 429 && e.status !== 401 && e.status !== 403);
      const reason = `twilio ${e.status ?? "?"}${e.code ? ` code ${e.code}` : ""}: ${e.message ?? String(err)}`;
      return { ok: false, permanent, reason, ...(e.status === undefined && outcomeUnknown(reason) ? { unknownOutcome: true } : {}) };
    }
  }
}

/**
 * Vonage SMS API status codes that a retry will not fix (invalid parameters or number, barred,
 * non-whitelisted destination). 1 (throttled), 4 (credentials), 5 (internal) and 9 (quota) are retried.
 * https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms
 */
const VONAGE_PERMANENT = new Set(["2", "3", "6", "7", "15", "29"]);

export class VonageSender implements SmsSender {
  readonly provider = "vonage" as const;
  private readonly vonage: Vonage;

  constructor(apiKey: string, apiSecret: string, restHost: string) {
    this.vonage = new Vonage(new Auth({ apiKey, apiSecret }), { restHost: restHost.replace(/\/+$/, ""), timeout: 15_000 });
  }

  async send(msg: OutboundSms): Promise<SendResult> {
    const info = segmentsOf(msg.text);
    try {
      const res = await this.vonage.sms.send({
        to: msg.to.replace(/^\+/, ""),
        from: msg.from.replace(/^\+/, ""),
        text: msg.text,
        // Turkish letters outside GSM-7 need UCS-2; Vonage calls it "unicode".
        type: info.encoding === "UCS-2" ? "unicode" : "text",
      } as Parameters<Vonage["sms"]["send"]>[0]);
      const first = res.messages[0] as { messageId?: string } | undefined;
      return { ok: true, providerId: first?.messageId ?? "", encoding: info.encoding, segments: info.segments };
    } catch (err) {
      const e = err as { response?: { messages?: { status?: string; errorText?: string }[] }; message?: string };
      const failed = e.response?.messages?.find((m) => m.status !== "0");
      if (failed?.status) {
        return { ok: false, permanent: VONAGE_PERMANENT.has(failed.status), reason: `vonage status ${failed.status}: ${failed.errorText ?? ""}` };
      }
      const reason = `vonage: ${e.message ?? String(err)}`;
      return { ok: false, permanent: false, reason, ...(outcomeUnknown(reason) ? { unknownOutcome: true } : {}) };
    }
  }
}

/** The configured senders; a provider without credentials is absent (its confirmations fail with that reason). */
export function buildSenders(config: Config): Partial<Record<"twilio" | "vonage", SmsSender>> {
  const senders: Partial<Record<"twilio" | "vonage", SmsSender>> = {};
  if (config.TWILIO_ACCOUNT_SID && config.TWILIO_AUTH_TOKEN) {
    senders.twilio = new TwilioSender(config.TWILIO_ACCOUNT_SID, config.TWILIO_AUTH_TOKEN, config.TWILIO_API_BASE_URL);
  }
  if (config.VONAGE_API_KEY && config.VONAGE_API_SECRET) {
    senders.vonage = new VonageSender(config.VONAGE_API_KEY, config.VONAGE_API_SECRET, config.VONAGE_REST_BASE_URL);
  }
  return senders;
}
