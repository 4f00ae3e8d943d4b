import { z } from "zod";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");

/** An http(s) URL: z.url() alone takes "localhost:8787" as a URL of scheme "localhost:". */
// A variable set to nothing is unset before the schema sees it (loadConfig), so none of these sees "".
const optionalUrl = z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional();
const optionalString = z.string().optional();
/** A secret from the environment: surrounding blanks (a pasted newline) are not part of it; blank is unset. */
const optionalSecret = (min: number) =>
  z.preprocess((v) => (typeof v === "string" ? v.trim() || undefined : v), z.string().min(min, `at least ${min} characters`).optional());

/** Every environment variable the hub reads. Names are a contract: tests, CI and operators rely on them. */
export const ConfigSchema = z
  .object({
    NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
    PORT: z.coerce.number().int().min(0).max(65535).default(8787),
    // Links and webhook URLs are this plus a path: a query, fragment or credentials would end up inside them.
    PUBLIC_BASE_URL: optionalUrl.refine(
      // zod runs this after a failed url check too: what is no URL is that check's to say.
      (v) => v === undefined || !URL.canParse(v) || (() => {
        const u = new URL(v);
        return !u.search && !u.hash && !v.includes("#") && !v.includes("?") && !u.username && !u.password && !u.pathname.replace(/\/+$/, "").includes("//");
      })(),
      "must be an origin, optionally with a path (https://hub.example.com or https://example.com/iys): no query (?…), fragment (#…), user:password@ or empty path segment (//)",
    ),
    DATABASE_PATH: z.string().min(1).default("./data/hub.db"),
    /** NORMAL survives a process crash; FULL also an OS crash or power loss, at an fsync a commit. */
    SQLITE_SYNCHRONOUS: z.preprocess((v) => (typeof v === "string" && v !== "" ? v.toUpperCase() : undefined), z.enum(["NORMAL", "FULL"]).default("NORMAL")),
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")
      .refine((v) => !/^rediss?:\/\//.test(v) || URL.canParse(v), "is no valid URL (a port must be a number)")
      // ioredis reads the path as the database index; anything else there was ignored (db 0).
      .refine((v) => !URL.canParse(v) || /^\/?(\d{1,5})?$/.test(new URL(v).pathname), "its path is the database number (redis://host:6379/2), nothing else")
      .default("redis://127.0.0.1:6379"),
    QUEUE_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, "letters, digits, - and _ only")
      .default("hub"),
    HUB_ADMIN_KEY: optionalSecret(16),
    LEDGER_KEY_PATH: z.string().min(1).default("./data/ledger-key.json"),
    /** Master secret from which per-purpose keys are derived; when unset it is kept in HUB_SECRET_PATH. */
    HUB_SECRET: optionalSecret(32),
    HUB_SECRET_PATH: z.string().min(1).default("./data/hub-secret"),
    /** Seconds between signed checkpoints of the ledger head (0 = only on demand and at shutdown). */
    CHECKPOINT_INTERVAL_SECONDS: z.coerce.number().int().min(0).default(60),
    /** Seconds a receipt or outbox row may wait without a finished job before the sweeper re-enqueues it. */
    SWEEPER_GRACE_SECONDS: z.coerce.number().int().min(1).default(30),
    SWEEPER_INTERVAL_SECONDS: z.coerce.number().int().min(1).default(15),
    /** Extra holiday years (JSON, same shape as src/domain/holidays.json), merged over the built-in table. */
    HOLIDAYS_PATH: optionalString,
    /** The national İYS API; when unset, reports to İYS are recorded as skipped (not silently lost). */
    IYS_API_BASE_URL: optionalUrl,
    IYS_USERNAME: optionalString,
    IYS_PASSWORD: optionalString,
    /**
     * Requests a second to the İYS API from every hub process sharing Redis together (tokens, single
     * and multiple writes, queries). İYS's production limit is 10 a second from one IP address.
     */
    IYS_MAX_REQUESTS_PER_SECOND: z.coerce.number().positive().max(1000).default(10),
    /** İYS answers 1000 single status queries an hour from one address; the hub's processes share this budget. */
    IYS_STATUS_QUERIES_PER_HOUR: z.coerce.number().int().min(1).max(100_000).default(1000),
    /**
     * Seconds between sending a list of imported movements to İYS (asynchronous multiple write) and
     * asking what became of it, and between later asks while İYS is still working on it. İYS's
     * documentation says to ask no sooner than 300 seconds after.
     */
    IYS_BATCH_POLL_SECONDS: z.coerce.number().int().min(1).default(300),
    /**
     * Seconds before a report (or list) İYS failed to take for a transient reason (5xx, 429, the
     * network) is sent again; doubled at each failure up to an hour, given up after 7 days.
     */
    IYS_RETRY_BASE_SECONDS: z.coerce.number().positive().default(30),
    /**
     * Seconds between pulls of the movements recipients make on İYS itself (İzin Hareketi
     * Sorgulama: refusals on e-Devlet, İYS's site or app, 3338) for every brand with İYS codes; 0
     * turns the pull off. İYS lists a movement once it is an hour old, so a refusal on İYS reaches
     * the ledger (and the pre-send check, callbacks and dealers) within about an hour and this.
     */
    IYS_PULL_INTERVAL_SECONDS: z.coerce.number().int().min(0).default(900),
    /** Twilio: webhook signatures (X-Twilio-Signature) and confirmations through the REST API. */
    TWILIO_ACCOUNT_SID: optionalString,
    TWILIO_AUTH_TOKEN: optionalString,
    TWILIO_API_BASE_URL: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).default("https://api.twilio.com"),
    /** Vonage SMS API: confirmations, and inbound signatures when a signature secret is set. */
    VONAGE_API_KEY: optionalString,
    VONAGE_API_SECRET: optionalString,
    VONAGE_REST_BASE_URL: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).default("https://rest.nexmo.com"),
    VONAGE_SIGNATURE_SECRET: optionalString,
    VONAGE_SIGNATURE_METHOD: z.enum(["md5hash", "md5", "sha1", "sha256", "sha512"]).default("md5hash"),
    /** How far a signed Vonage webhook's `timestamp` may be from our clock. */
    VONAGE_SIGNATURE_WINDOW_SECONDS: z.coerce.number().int().min(1).default(300),
    /** Inbound SMS per sender number per hour before its confirmations are dropped (actions still apply). */
    SMS_LIMIT_PER_SENDER_PER_HOUR: z.coerce.number().int().min(1).default(20),
    /** Inbound SMS per hub number per minute before the excess is worked at low priority. */
    SMS_LIMIT_PER_NUMBER_PER_MINUTE: z.coerce.number().int().min(1).default(6000),
    /**
     * E-mail rejection links (/r/<token>): `kid:secret` pairs, comma-separated (kid 1–255, secret ≥ 16
     * characters). The first signs new links; the others still verify (key rotation). Unset: one key
     * (kid 1) derived from the hub secret.
     */
    LINK_KEYS: z
      .string()
      .regex(/^\s*(?:[1-9]\d{0,2}:[^,\s]{16,})(?:\s*,\s*[1-9]\d{0,2}:[^,\s]{16,})*\s*$/, "kid:secret pairs, comma-separated (kid 1–255, secret of at least 16 characters)")
      .optional(),
    /** Requests to /r/* per client IP per minute before a 429 page. */
    LINK_LIMIT_PER_IP_PER_MINUTE: z.coerce.number().int().min(1).default(60),
    /** Header carrying the client IP set by your reverse proxy (e.g. x-forwarded-for, cf-connecting-ip); unset: the socket address. */
    LINK_CLIENT_IP_HEADER: optionalString,
    /** SMTP for e-mail confirmations (smtp:// or smtps://user:pass@host:port); unset: confirmations are recorded as skipped. */
    SMTP_URL: z
      .string()
      .regex(/^smtps?:\/\//, "must be an smtp:// or smtps:// URL")
      .refine((v) => !/^smtps?:\/\//.test(v) || (URL.canParse(v) && new URL(v).hostname !== ""), "must name the SMTP server (smtp://host:port)")
      .optional(),
    /**
     * Sender of e-mail confirmations; default no-reply@<host of PUBLIC_BASE_URL>. A bare address: it is
     * the SMTP envelope sender too, and the header's display name is the brand's name.
     */
    MAIL_FROM: z
      .string()
      .trim()
      .regex(/^[^\s@<>"(),;:]+@[^\s@<>"(),;:]+\.[^\s@<>"(),;:]+$/, "must be a bare address such as no-reply@hub.example.com (no display name: the brand's name is used)")
      .optional(),
    LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    /** Run the BullMQ workers in this process (npm start runs web and workers together). */
    RUN_WORKERS: bool.default(true),
    RUN_WEB: bool.default(true),
    /** IVR (Twilio voice): how long the final prompt waits for the ledger commit before saying "received, will be applied". */
    IVR_APPLY_WAIT_MS: z.coerce.number().int().min(0).max(10_000).default(1500),
    /** IVR: lifetime of the signed call-state token carried in the TwiML action URLs (a call's length). */
    IVR_STATE_TTL_SECONDS: z.coerce.number().int().min(60).max(4 * 3600).default(1800),
    /** IVR: seconds a menu waits for a key or speech before counting "no input". */
    IVR_GATHER_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(30).default(6),

    // --- Callbacks and partners (provider subscriptions, dealer/agent fan-out) ---
    /** Key (base64, 32 bytes, or any passphrase) encrypting endpoint secrets at rest; default: derived from the hub secret. */
    // Not trimmed, unlike the other secrets, and with no minimum: the key derived from it must stay
    // what it was for the secrets already stored (there is no re-encryption), whatever it is.
    CALLBACK_SECRETS_KEY: z.string().optional(),
    /**
     * Seconds before each delivery attempt, comma-separated; its length is the number of attempts.
     * The default is Standard Webhooks' schedule continued every 10 hours for 5⅓ days, past
     * CALLBACK_DISABLE_AFTER_HOURS: a partner down over a long weekend still gets a refusal within the
     * 3 business days it has to honour it (Standard Webhooks' own schedule gave up after 27.6 hours).
     */
    CALLBACK_RETRY_SCHEDULE: z
      .string()
      .regex(/^\s*\d+(\s*,\s*\d+)*\s*$/, "comma-separated seconds, e.g. 0,5,300")
      .default(["0,5,300,1800,7200,18000", ...Array(12).fill("36000")].join(","))
      .transform((s) => s.split(",").map((n) => Number(n.trim()) * 1000)),
    /** An attempt not answered 2xx within this many ms is a failure. */
    CALLBACK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(15_000),
    /** Allow callback URLs on private, loopback and link-local addresses (tests, private networks). */
    CALLBACK_ALLOW_PRIVATE: bool.default(false),
    /** An endpoint failing continuously this long is disabled (default 5 days). */
    CALLBACK_DISABLE_AFTER_HOURS: z.coerce.number().min(0).default(120),
    /** After a secret rotation the old secret keeps signing this long. */
    CALLBACK_SECRET_OVERLAP_HOURS: z.coerce.number().min(0).default(24),

    // --- Operations: dashboard, metrics ---
    /** Lifetime of an operator's dashboard session (cookie) after logging in with HUB_ADMIN_KEY. */
    ADMIN_SESSION_MINUTES: z.coerce.number().int().min(1).max(7 * 24 * 60).default(480),
    /** Bearer token a Prometheus scraper may use for /metrics instead of HUB_ADMIN_KEY (at least 16 characters). */
    METRICS_TOKEN: optionalSecret(16),
  })
  // Twilio's webhooks are checked with the token, its confirmations sent with both: one without the
  // other took webhooks and then sent no confirmation (each ended skipped).
  .refine((c) => !c.TWILIO_AUTH_TOKEN === !c.TWILIO_ACCOUNT_SID, {
    path: ["TWILIO_ACCOUNT_SID"],
    message: "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN go together (webhooks are verified with the token, confirmations sent with both): set both, or neither",
  })
  .refine((c) => !c.VONAGE_API_KEY === !c.VONAGE_API_SECRET, {
    path: ["VONAGE_API_SECRET"],
    message: "VONAGE_API_KEY and VONAGE_API_SECRET go together (confirmations are sent with both): set both, or neither",
  })
  .refine((c) => !c.IYS_API_BASE_URL || (c.IYS_USERNAME && c.IYS_PASSWORD), {
    path: ["IYS_PASSWORD"],
    message: "IYS_API_BASE_URL is set: IYS_USERNAME and IYS_PASSWORD are both required (İYS's token endpoint takes them)",
  })
  // In production the origin providers and mail clients reach must be given, over HTTPS: webhook
  // signatures are computed against it, and RFC 8058 one-click links must be https.
  .refine((c) => c.NODE_ENV !== "production" || (c.PUBLIC_BASE_URL ?? "").startsWith("https://"), {
    path: ["PUBLIC_BASE_URL"],
    message: "required in production, as the https:// origin providers and mail clients reach (links, webhook signatures)",
  })
  .transform((c) => ({ ...c, PUBLIC_BASE_URL: (c.PUBLIC_BASE_URL ?? `http://localhost:${c.PORT}`).replace(/\/+$/, "") }));

export type Config = z.output<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(readonly issues: { variable: string; message: string }[]) {
    super(
      `Invalid configuration:\n${issues.map((i) => `  ${i.variable}: ${i.message}`).join("\n")}`,
    );
    this.name = "ConfigError";
  }
}

/** Parses the environment once; the message names every bad variable. */
/** The server's own check (the CLI does not read RUN_WEB or RUN_WORKERS): a process with neither role would do nothing. */
export function assertServerRoles(c: Config): void {
  if (!c.RUN_WEB && !c.RUN_WORKERS) throw new ConfigError([{ variable: "RUN_WORKERS", message: "RUN_WEB and RUN_WORKERS are both false: the process would do nothing" }]);
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // A variable set to nothing (`IYS_PULL_INTERVAL_SECONDS=` in an env file) is unset, so it takes its
  // default: coerced, a blank became 0 — an İYS pull that never ran, an endpoint disabled at its first failure.
  const given = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, typeof v === "string" && v.trim() === "" ? undefined : v]));
  const parsed = ConfigSchema.safeParse(given);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => ({ variable: String(i.path[0] ?? "(config)"), message: i.message })),
    );
  }
  return parsed.data;
}
