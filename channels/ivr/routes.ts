import { Hono, type Context } from "hono";
import { brandById, brandNames, brandsOfNumber, numberByValue, type Brand } from "../../src/brands";
import { normalizeServiceNumber } from "../../src/api/brands";
import { normalizePhone } from "../../src/domain/address";
import type { AppDeps, HonoEnv } from "../../src/env";
import { ApiError } from "../../src/errors";
import { ReceiptWriter } from "../../src/receipts";
import { formParams, publicUrl } from "../sms/routes";
import { twilioSignatureValid } from "../sms/signatures";
import { choiceActions, type VoicePayload, type VoiceResult } from "./interpret";
import { parseBrand, parseConfirm, parseMenu, type BrandOption, type Input } from "./menu";
import * as prompts from "./prompts";
import { CallStateSealer, ivrSteps, type CallState, type IvrStep } from "./state";

const CALL_SID = /^CA[0-9a-fA-F]{32}$/;
/** No input or invalid input is repeated at most this many times, then the call ends politely. */
export const MAX_RETRIES = 2;
/** Answers a call may give in all (brand, menu, number, confirmation, repeats and language switches) before a goodbye. */
export const MAX_TURNS = 20;
const POLL_MS = 50;

type Params = Record<string, string | string[]>;

function single(params: Params, name: string): string | undefined {
  const v = params[name];
  return Array.isArray(v) ? v[0] : v;
}

function required(params: Params, name: string, pattern?: RegExp): string {
  const v = single(params, name)?.trim();
  if (!v) throw new ApiError("bad_request", `${name} is required`, { field: name });
  if (pattern && !pattern.test(v)) throw new ApiError("bad_request", `${name} is malformed`, { field: name });
  return v;
}

const twiml = (c: Context, xml: string) => c.body(xml, 200, { "content-type": "text/xml; charset=utf-8" });

/** The caller's own number when caller ID shows a Turkish number; withheld ("anonymous"…) or foreign → null. */
function callerNumber(params: Params): string | null {
  const from = single(params, "From") ?? single(params, "Caller") ?? "";
  const phone = normalizePhone(from);
  return phone.ok && phone.value.startsWith("+90") ? phone.value : null;
}

const spokenName = (b: Brand) => b.shortNames[0] ?? b.name;

/** The language a caller asked for: the one named, or (a key press) the other one. */
const switchTo = (current: "tr" | "en", named?: "tr" | "en"): "tr" | "en" => named ?? (current === "tr" ? "en" : "tr");

/**
 * Twilio voice webhooks: the entry (`POST /twilio`), one path per menu step (`/twilio/<step>?s=<state>`)
 * and call status callbacks (`/twilio/status`). Every request is signature-checked; call state
 * travels in an encrypted, CallSid-bound token in the action URLs, so any process can answer any
 * step. Only the confirmed final step records a receipt (unique per CallSid + step).
 */
export function createIvrRoutes(deps: AppDeps) {
  const sealer = new CallStateSealer(deps.secrets.derive("ivr-state"), deps.config.IVR_STATE_TTL_SECONDS, () => deps.clock.now().getTime());
  const writer = new ReceiptWriter(deps.db);
  const ctx: prompts.PromptContext = { baseUrl: deps.config.PUBLIC_BASE_URL, timeoutSeconds: deps.config.IVR_GATHER_TIMEOUT_SECONDS };
  const receiptStatus = deps.db.$client.prepare<[number], { status: string; result: string | null; payload: string }>("SELECT status, result, payload FROM receipts WHERE id = ?");

  async function signedParams(c: Context<HonoEnv>): Promise<Params> {
    const token = deps.config.TWILIO_AUTH_TOKEN;
    if (!token) throw new ApiError("unavailable", "Twilio webhooks are not configured (TWILIO_AUTH_TOKEN)");
    if (!(c.req.header("content-type") ?? "").toLowerCase().startsWith("application/x-www-form-urlencoded")) {
      throw new ApiError("unsupported_media_type", "Content-Type must be application/x-www-form-urlencoded");
    }
    const params = formParams(await c.req.text());
    if (!twilioSignatureValid(token, c.req.header("x-twilio-signature"), publicUrl(deps, c), params)) {
      throw new ApiError("forbidden", "X-Twilio-Signature is missing or does not match");
    }
    return params;
  }

  /**
   * The brands the called number serves over voice (none: an unknown or SMS-only number). A call
   * past its brand choice (`state.brand`) goes on with that brand should the number stop serving it
   * meanwhile (its numbers changed mid-call): the sealed call state says the number served it when
   * the call began, and a caller's refusal must not be lost to an operator's change.
   */
  function brandsCalled(params: Params, state?: CallState): { numberId: number | null; brands: Brand[] } | null {
    const value = normalizeServiceNumber(required(params, "To"));
    const number = value ? numberByValue(deps.db, value) : null;
    const serving = number && number.provider === "twilio" && number.channels.includes("voice") ? brandsOfNumber(deps.db, number.id, "voice") : [];
    if (state?.brand !== undefined && !serving.some((b) => b.id === state.brand)) {
      const brand = brandById(deps.db, state.brand);
      if (brand) return { numberId: number?.id ?? null, brands: [...serving, brand] };
    }
    return number && serving.length ? { numberId: number.id, brands: serving } : null;
  }

  const options = (brands: Brand[]): BrandOption[] =>
    brands.map((b) => ({ id: b.id, names: brandNames(b), brandCode: b.brandCode, spokenName: spokenName(b) }));

  async function render(callSid: string, state: CallState, brands: Brand[], caller: string | null, retry: prompts.Retry, greet = false): Promise<string> {
    const token = await sealer.seal(callSid, state);
    const brand = state.brand ? brands.find((b) => b.id === state.brand) : undefined;
    switch (state.step) {
      case "brand":
        return prompts.brandMenu(ctx, state.lang, token, brands.map((b) => ({ spokenName: spokenName(b) })), retry);
      case "menu":
        return prompts.mainMenu(ctx, state.lang, token, spokenName(brand!), { greet, allowConsent: caller !== null, retry });
      case "number":
        return prompts.numberPrompt(ctx, state.lang, token, retry);
      case "confirm":
        return prompts.confirmPrompt(ctx, state.lang, token, spokenName(brand!), state.choice!, state.keyed, retry);
    }
  }

  /** The same step again after no or invalid input, or a goodbye once the repeats are used up. */
  async function again(callSid: string, state: CallState, brands: Brand[], caller: string | null, retry: prompts.Retry): Promise<string> {
    if (state.retries >= MAX_RETRIES) return prompts.tooManyAttemptsPrompt(state.lang);
    return render(callSid, { ...state, retries: state.retries + 1 }, brands, caller, retry);
  }

  /** `key 4`, or the speech in quotes (cut to 200 characters): what a receipt keeps of an answer. */
  function heardOf(input: Input): string {
    return input.digits ? `key ${input.digits.slice(0, 20)}` : JSON.stringify(input.speech.slice(0, 200));
  }

  /** Durable receipt, the apply job, a short wait for the ledger commit, then what was recorded. */
  async function finish(callSid: string, state: CallState, numberId: number | null, to: string, recipient: string, brand: Brand, confirmed: string): Promise<string> {
    const { types, status } = choiceActions(state.choice!);
    const payload: VoicePayload = { brandId: brand.id, choice: state.choice!, types, status, keyed: state.keyed !== undefined, lang: state.lang };
    const rec = await writer.record(
      {
        channel: "voice",
        provider: "twilio",
        providerRef: `${callSid}:confirm`,
        numberId,
        fromAddress: recipient,
        toAddress: to,
        // What the caller keyed or said, as an SMS receipt keeps its text: how the choice was given.
        body: `menu: ${state.heard ?? "?"}; confirm: ${confirmed}`,
        payload: { ...payload },
      },
      deps.clock.now().getTime(),
    );
    if (rec.created) deps.log.info({ receiptId: rec.id, brand: brand.code, choice: state.choice }, "voice receipt");
    let row = receiptStatus.get(rec.id)!;
    if (row.status === "received") {
      await deps.jobs.enqueueReceipt(rec.id);
      const deadline = Date.now() + deps.config.IVR_APPLY_WAIT_MS;
      while (row.status === "received" && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, POLL_MS));
        row = receiptStatus.get(rec.id)!;
      }
    }
    const result = JSON.parse(row.result ?? "{}") as Partial<VoiceResult>;
    const outcome: prompts.Outcome =
      row.status === "received" ? "pending" : row.status === "applied" ? (result.outcome ?? "recorded") : "rejected";
    // The call's confirmation was recorded before (Twilio retrying, or a menu step replayed with
    // another choice): what is said is what was recorded, not the choice this request carries.
    const stored = rec.created ? payload : (JSON.parse(row.payload) as VoicePayload);
    const spokenBrand = stored.brandId === brand.id ? brand : (brandById(deps.db, stored.brandId) ?? brand);
    return prompts.finalPrompt(state.lang, spokenName(spokenBrand), stored.choice, outcome, result.types);
  }

  // Bodies are limited to WEBHOOK_MAX_BYTES by the app (src/app.ts), for every webhook path.
  return new Hono<HonoEnv>()
    .post("/twilio", async (c) => {
      const params = await signedParams(c);
      const callSid = required(params, "CallSid", CALL_SID);
      const called = brandsCalled(params);
      if (!called) return twiml(c, prompts.unavailablePrompt());
      const caller = callerNumber(params);
      const [only] = called.brands;
      const state: CallState =
        called.brands.length === 1 ? { step: "menu", lang: "tr", brand: only!.id, retries: 0 } : { step: "brand", lang: "tr", retries: 0 };
      return twiml(c, await render(callSid, state, called.brands, caller, "none", true));
    })
    .post("/twilio/status", async (c) => {
      const params = await signedParams(c);
      const callSid = required(params, "CallSid", CALL_SID);
      const callStatus = required(params, "CallStatus", /^[a-z-]{3,20}$/);
      const rec = await writer.record(
        {
          channel: "voice",
          provider: "twilio",
          providerRef: `${callSid}:status:${callStatus}`,
          fromAddress: single(params, "From") ?? null,
          toAddress: single(params, "To") ?? null,
          payload: { callStatus, callDuration: single(params, "CallDuration") ?? null, sequence: single(params, "SequenceNumber") ?? null },
          status: "audit",
        },
        deps.clock.now().getTime(),
      );
      if (rec.created) deps.log.info({ receiptId: rec.id, callStatus }, "voice call status");
      return c.body(null, 204);
    })
    .post("/twilio/:step", async (c) => {
      const step = c.req.param("step") as IvrStep;
      if (!ivrSteps.includes(step)) throw new ApiError("not_found", `no IVR step ${step}`);
      const params = await signedParams(c);
      const callSid = required(params, "CallSid", CALL_SID);
      const token = c.req.query("s");
      if (!token) throw new ApiError("forbidden", "the call state token (s) is missing");
      const opened = await sealer.open(token, callSid);
      if (!opened.ok) throw new ApiError("forbidden", opened.reason);
      if (opened.state.step !== step) throw new ApiError("forbidden", "the call state token is for another step");
      // Every answer counts toward the call's turns: repeats and language switches reset the step's
      // retries, so without it a caller pressing 0 or 9 kept the call (and its minutes) going for ever.
      const state: CallState = { ...opened.state, turns: (opened.state.turns ?? 0) + 1 };
      if (state.turns! > MAX_TURNS) return twiml(c, prompts.tooManyAttemptsPrompt(state.lang));

      const called = brandsCalled(params, state);
      if (!called) return twiml(c, prompts.unavailablePrompt());
      const { brands } = called;
      const caller = callerNumber(params);
      const input: Input = { digits: single(params, "Digits") ?? "", speech: single(params, "SpeechResult") ?? "" };
      const fresh = (s: Partial<CallState>): CallState => ({ ...state, ...s, retries: 0 });

      switch (step) {
        case "brand": {
          const got = parseBrand(input, options(brands));
          if (got.kind === "brand") return twiml(c, await render(callSid, fresh({ step: "menu", brand: got.id }), brands, caller, "none", true));
          if (got.kind === "language") return twiml(c, await render(callSid, fresh({ lang: switchTo(state.lang, got.lang) }), brands, caller, "none"));
          return twiml(c, await again(callSid, state, brands, caller, got.kind));
        }
        case "menu": {
          if (!brands.some((b) => b.id === state.brand)) return twiml(c, prompts.unavailablePrompt());
          const got = parseMenu(input);
          if (got.kind === "repeat") return twiml(c, await render(callSid, state, brands, caller, "none"));
          if (got.kind === "language") return twiml(c, await render(callSid, fresh({ lang: switchTo(state.lang, got.lang) }), brands, caller, "none"));
          if (got.kind !== "choice") return twiml(c, await again(callSid, state, brands, caller, got.kind));
          if (choiceActions(got.choice).status === "ONAY" && !caller) return twiml(c, await again(callSid, state, brands, caller, "consent-withheld"));
          return twiml(c, await render(callSid, fresh({ step: caller ? "confirm" : "number", choice: got.choice, heard: heardOf(input) }), brands, caller, "none"));
        }
        case "number": {
          if (!input.digits) return twiml(c, await again(callSid, state, brands, caller, "empty"));
          const phone = normalizePhone(input.digits.replace(/[#*]/g, ""));
          if (!phone.ok || !phone.value.startsWith("+90")) return twiml(c, await again(callSid, state, brands, caller, "invalid"));
          return twiml(c, await render(callSid, fresh({ step: "confirm", keyed: phone.value }), brands, caller, "none"));
        }
        case "confirm": {
          const brand = brands.find((b) => b.id === state.brand) ?? brandById(deps.db, state.brand ?? 0);
          if (!brand || !state.choice) throw new ApiError("forbidden", "the call state token has no choice to confirm");
          const got = parseConfirm(input, choiceActions(state.choice).status === "ONAY" ? "consent" : "refusal");
          if (got.kind === "no") return twiml(c, prompts.cancelledPrompt(state.lang));
          if (got.kind !== "yes") return twiml(c, await again(callSid, state, brands, caller, got.kind));
          const recipient = state.keyed ?? caller;
          // Consent needs the caller's own number; the menu never offers it otherwise.
          if (!recipient || (state.keyed && choiceActions(state.choice).status === "ONAY")) {
            throw new ApiError("forbidden", "consent needs the caller's own number");
          }
          return twiml(c, await finish(callSid, state, called.numberId, required(params, "To"), recipient, brand, heardOf(input)));
        }
      }
    });
}
