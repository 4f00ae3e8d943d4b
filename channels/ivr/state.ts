import { EncryptJWT, jwtDecrypt } from "jose";
import { z } from "zod";

export const ivrSteps = ["brand", "menu", "number", "confirm"] as const;
export type IvrStep = (typeof ivrSteps)[number];

/** What the caller chose in the main menu. */
export const ivrChoices = ["refuse-calls", "refuse-sms", "refuse-both", "consent-both", "consent-calls", "consent-sms"] as const;
export type IvrChoice = (typeof ivrChoices)[number];

/** Everything a call carries between webhooks (the server keeps no call memory). */
export const CallState = z.object({
  step: z.enum(ivrSteps),
  lang: z.enum(["tr", "en"]),
  /** Brand id once known (always on numbers that serve one brand). */
  brand: z.number().int().positive().optional(),
  choice: z.enum(ivrChoices).optional(),
  /** A number keyed in by a caller without a usable caller ID (E.164); only ever for a refusal. */
  keyed: z.string().regex(/^\+\d{8,15}$/).optional(),
  /**
   * What the caller keyed or said at the menu (`key 4`, or the speech in quotes, cut to 200
   * characters): kept in the receipt with the confirmation's, the evidence of how the choice was given.
   */
  heard: z.string().max(1000).optional(),
  /** Answers given in the call so far (routes.ts MAX_TURNS). */
  turns: z.number().int().min(0).max(1000).optional(),
  /** Failed attempts (no input, invalid input) at the current step. */
  retries: z.number().int().min(0).max(10),
});
export type CallState = z.infer<typeof CallState>;

const AUDIENCE = "ivr-state";

/**
 * The state token: a JWE (`dir` + A256GCM) with a key derived for this purpose. Authenticated like
 * a signed JWT, and encrypted because it may carry a keyed-in phone number through Twilio's URLs.
 * Bound to the CallSid (`sub`) and expiring with the call.
 */
export class CallStateSealer {
  /** Imported once: handing jose raw bytes would import the key again on every step. */
  private readonly key: Promise<CryptoKey>;

  constructor(
    key: Uint8Array,
    private readonly ttlSeconds: number,
    private readonly now: () => number,
  ) {
    this.key = crypto.subtle.importKey("raw", new Uint8Array(key), "AES-GCM", false, ["encrypt", "decrypt"]);
  }

  async seal(callSid: string, state: CallState): Promise<string> {
    const iat = Math.floor(this.now() / 1000);
    return new EncryptJWT({ s: state })
      .setProtectedHeader({ alg: "dir", enc: "A256GCM" })
      .setSubject(callSid)
      .setAudience(AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.ttlSeconds)
      .encrypt(await this.key);
  }

  /** The state, or a reason the token is refused (tampered, expired, from another call, malformed). */
  async open(token: string, callSid: string): Promise<{ ok: true; state: CallState } | { ok: false; reason: string }> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtDecrypt(token, await this.key, {
        audience: AUDIENCE,
        keyManagementAlgorithms: ["dir"],
        contentEncryptionAlgorithms: ["A256GCM"],
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      const code = (err as { code?: string }).code;
      return { ok: false, reason: code === "ERR_JWT_EXPIRED" ? "the call state token has expired" : "the call state token is not valid" };
    }
    if (payload.sub !== callSid) return { ok: false, reason: "the call state token belongs to another call" };
    const state = CallState.safeParse(payload.s);
    if (!state.success) return { ok: false, reason: "the call state token is malformed" };
    return { ok: true, state: state.data };
  }
}
