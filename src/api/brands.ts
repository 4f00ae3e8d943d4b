import { createRoute, z } from "@hono/zod-openapi";
import { brandByCode, createBrand, listBrands, numbersOfBrand, updateBrand, type Brand } from "../brands";
import { normalizePhone } from "../domain/address";
import { brandNameProblem } from "../domain/keywords";
import { iysPullCursor, type IysPullCursor } from "../iys-pull";
import { enqueueReopened, reopenSkippedIysReports } from "../iys-reports";
import type { AppDeps } from "../env";
import { ApiError } from "../errors";
import { assertBrandAccess, canAccessBrand, requireAdmin } from "./auth";
import { apiRouter, bearerSecurity, conflictResponse, errorResponses, jsonBody, jsonResponse, requireJson } from "./openapi";
import { TemplateOverrides } from "../../channels/sms/templates";

const NumberInput = z
  .object({
    number: z.string().trim().min(3).max(32),
    provider: z.enum(["twilio", "vonage"]),
    channels: z.array(z.enum(["sms", "voice"])).min(1).max(2).default(["sms"]),
  })
  .strict()
  // The IVR speaks Twilio Voice only: a Vonage number would be listed for calls nobody answers.
  .refine((n) => n.provider === "twilio" || !n.channels.includes("voice"), { message: "voice (the IVR) is served over Twilio only", path: ["channels"] });

/** A name recipients text for the brand (a short name, the code): one parseKeyword can match without ambiguity. */
const textable = (s: string, ctx: z.RefinementCtx) => {
  const problem = brandNameProblem(s);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
};

const ShortNameList = (name: z.ZodType<string>) => z.array(name).max(3, "a brand has at most 3 short names");
const ShortNames = ShortNameList(z.string().trim().min(2).max(30).superRefine(textable));

export const BrandInput = z.object({
  code: z
    .string()
    .trim()
    .transform((s) => s.toUpperCase())
    .pipe(z.string().regex(/^[A-Z0-9][A-Z0-9_-]{1,31}$/, "2–32 letters A–Z, digits, - or _").superRefine(textable)),
  name: z.string().trim().min(1).max(120),
  iysCode: z.string().regex(/^\d{1,12}$/, "digits only").nullish(),
  brandCode: z.string().regex(/^\d{1,12}$/, "digits only").nullish(),
  shortNames: ShortNames.default([]),
  settings: z
    .object({
      /** Overrides of the SMS confirmation and help replies, checked against the segment limit. */
      smsTemplates: TemplateOverrides.optional(),
      /** After an IVR call, also confirm by SMS (from a number that serves the brand over SMS). */
      ivrSmsConfirmation: z.boolean().optional(),
      /** E-mail rejection links stay valid this many days after their last issuance; unset: no expiry. */
      linkExpiryDays: z.number().int().min(1).max(3650).optional(),
    })
    .strict()
    .optional(),
  numbers: z.array(NumberInput).max(50).default([]),
})
  // A misspelt field ("shortName") must not leave its default in force: an unknown field is a 400.
  .strict()
  .openapi("BrandRequest");

const brandExample = {
  code: "MIGROS",
  name: "Migros",
  iysCode: "654321",
  brandCode: "654322",
  shortNames: ["MIGROS"],
  numbers: [{ number: "3434", provider: "twilio", channels: ["sms"] }],
};

/** Shortcodes are 3–6 digits; long numbers are stored in E.164. */
export function normalizeServiceNumber(raw: string): string | null {
  const compact = raw.replace(/[\s\u00a0-]/g, "");
  if (/^\d{3,6}$/.test(compact)) return compact;
  const phone = normalizePhone(raw);
  return phone.ok ? phone.value : null;
}

/** A pull's cursor, or null before it first ran (the two pulls share a row: one may run before the other). */
const presentPull = (pull: IysPullCursor | null) =>
  pull && (pull.pulledAt !== null || pull.lastError !== null) && {
    after: pull.after,
    movements: pull.movements,
    pulledAt: pull.pulledAt === null ? null : new Date(pull.pulledAt).toISOString(),
    lastError: pull.lastError,
  };

export function presentBrand(b: Brand, nums: ReturnType<typeof numbersOfBrand>, pull: IysPullCursor | null, ownPull: IysPullCursor | null = null) {
  return {
    code: b.code,
    name: b.name,
    iysCode: b.iysCode,
    brandCode: b.brandCode,
    shortNames: b.shortNames,
    settings: b.settings,
    numbers: nums.map((n) => ({ number: n.number, provider: n.provider, channels: n.channels })),
    iysPull: presentPull(pull) || null,
    iysPullOwn: presentPull(ownPull) || null,
    createdAt: new Date(b.createdAt).toISOString(),
  };
}

const PullOut = z
  .object({
    after: z.string().nullable().openapi({ description: "İYS's pointer past the last movement taken" }),
    movements: z.number().int().openapi({ description: "Movements İYS listed so far (recorded, already held, or refused by the rules)" }),
    pulledAt: z.string().nullable().openapi({ description: "When İYS last answered a pull" }),
    lastError: z.string().nullable().openapi({ description: "Why the last pull failed, until one succeeds", example: null }),
  })
  .nullable();

const BrandOut = z
  .object({
    code: z.string().openapi({ example: "MIGROS" }),
    name: z.string().openapi({ example: "Migros" }),
    iysCode: z.string().nullable().openapi({ example: "654321" }),
    brandCode: z.string().nullable().openapi({ example: "654322" }),
    shortNames: z.array(z.string()).openapi({ example: ["MIGROS"] }),
    settings: z.record(z.string(), z.unknown()),
    numbers: z.array(z.object({ number: z.string(), provider: z.string(), channels: z.array(z.string()) })),
    iysPull: PullOut.openapi({
      description:
        "The pull of movements recipients make on İYS itself (e-Devlet, İYS's site and app, 3338), every IYS_PULL_INTERVAL_SECONDS for brands with İYS codes; null before the first.",
      example: null,
    }),
    iysPullOwn: PullOut.openapi({
      description:
        "The pull of the provider's own movements on İYS (source HS): the hub's reports, recognised and skipped, and what the provider's other systems or İYS's web panel wrote, taken as İYS's records; null before the first.",
      example: null,
    }),
    createdAt: z.string().openapi({ example: "2026-01-15T09:00:00.000Z" }),
  })
  .openapi("Brand");

const BrandCode = z.object({ code: z.string().openapi({ param: { name: "code", in: "path" }, example: "MIGROS" }) });

const createBrandRoute = createRoute({
  method: "post",
  path: "/",
  summary: "Register a brand",
  description:
    "Admin key only. A brand with its İYS codes, up to 3 SMS short names (matched in RET messages), settings, and the numbers that receive its opt-outs. `code` is stored upper-case. A number may serve several brands (a shared shortcode), but two brands on one number may not answer to the same short name (409, like a taken code).",
  security: bearerSecurity,
  middleware: [requireAdmin, requireJson] as const,
  request: { body: jsonBody(BrandInput, "the brand", brandExample) },
  responses: { 201: jsonResponse(BrandOut, "The brand as stored"), ...errorResponses, 409: conflictResponse },
});

const listBrandsRoute = createRoute({
  method: "get",
  path: "/",
  summary: "List brands",
  description: "Every brand for the admin key; a provider key sees only its own brands.",
  security: bearerSecurity,
  responses: { 200: jsonResponse(z.object({ brands: z.array(BrandOut) }).openapi("BrandList"), "The brands, by code"), ...errorResponses },
});

const getBrandRoute = createRoute({
  method: "get",
  path: "/{code}",
  summary: "Read one brand",
  security: bearerSecurity,
  request: { params: BrandCode },
  responses: { 200: jsonResponse(BrandOut, "The brand"), ...errorResponses },
});

const BrandPatchInput = z
  .object({
    name: BrandInput.shape.name.optional(),
    iysCode: BrandInput.shape.iysCode,
    brandCode: BrandInput.shape.brandCode,
    // Checked against the stored ones in the handler: a name the brand already has is kept as it is,
    // even one a later rule would refuse (resending the brand's names was a 400).
    shortNames: ShortNameList(z.string().trim().min(2).max(30)).optional(),
    settings: BrandInput.shape.settings,
    addNumbers: z.array(NumberInput).max(50).optional().openapi({ description: "numbers attached in addition to the brand's own" }),
    removeNumbers: z
      .array(z.string().trim().min(3).max(32))
      .max(50)
      .optional()
      .openapi({ description: "numbers the brand stops using (in any spelling), detached before addNumbers are attached; a number left with no brand answers its webhooks as unroutable" }),
  })
  .strict()
  .openapi("BrandPatch");

const patchBrandRoute = createRoute({
  method: "patch",
  path: "/{code}",
  summary: "Change a brand",
  description:
    "Admin key only. The fields given replace the stored ones (`settings` as a whole, checked as at creation); `removeNumbers` detaches numbers from the brand, then `addNumbers` attaches numbers (e.g. a voice line for the IVR) to the brand's own — to change what a number is used for, remove it and add it again in one call. New short names must not clash with another brand on one of its numbers (409); `ivrSmsConfirmation` needs an SMS number left (400).",
  security: bearerSecurity,
  middleware: [requireAdmin, requireJson] as const,
  request: { params: BrandCode, body: jsonBody(BrandPatchInput, "what changes", { shortNames: ["MIGROS", "MİGROS JET"], addNumbers: [{ number: "0850 222 00 00", provider: "twilio", channels: ["voice"] }] }) },
  responses: { 200: jsonResponse(BrandOut, "The brand as stored"), ...errorResponses, 409: conflictResponse },
});

/** A service number as stored (shortcodes as digits, long numbers E.164); `field` names the input. */
function storedNumber(raw: string, field: string): string {
  const value = normalizeServiceNumber(raw);
  if (!value) throw new ApiError("bad_request", `${field}: not a shortcode or a valid phone number`, { field });
  return value;
}

function storedNumbers(input: z.infer<typeof NumberInput>[], field: string) {
  return input.map((n, i) => ({ ...n, number: storedNumber(n.number, `${field}[${i}].number`) }));
}

export function createBrandRoutes(deps: AppDeps) {
  return apiRouter()
    .openapi(createBrandRoute, (c) => {
      const input = c.req.valid("json");
      const numbers = storedNumbers(input.numbers, "numbers");
      const brand = createBrand(deps.db, { ...input, numbers }, deps.clock.now().getTime());
      deps.log.info({ brand: brand.code, numbers: numbers.length }, "brand created");
      return c.json(presentBrand(brand, numbersOfBrand(deps.db, brand.id), iysPullCursor(deps.db, brand.id), iysPullCursor(deps.db, brand.id, "HS")), 201);
    })
    .openapi(listBrandsRoute, (c) => {
      const caller = c.get("caller");
      const visible = listBrands(deps.db).filter((b) => canAccessBrand(caller, b.code));
      return c.json({ brands: visible.map((b) => presentBrand(b, numbersOfBrand(deps.db, b.id), iysPullCursor(deps.db, b.id), iysPullCursor(deps.db, b.id, "HS"))) }, 200);
    })
    .openapi(getBrandRoute, (c) => {
      const { code } = c.req.valid("param");
      assertBrandAccess(c, code, "code");
      const brand = brandByCode(deps.db, code);
      if (!brand) throw new ApiError("not_found", `brand ${code} not found`);
      return c.json(presentBrand(brand, numbersOfBrand(deps.db, brand.id), iysPullCursor(deps.db, brand.id), iysPullCursor(deps.db, brand.id, "HS")), 200);
    })
    .openapi(patchBrandRoute, async (c) => {
      const { code } = c.req.valid("param");
      const { addNumbers, removeNumbers, ...fields } = c.req.valid("json");
      const stored = fields.shortNames ? (brandByCode(deps.db, code)?.shortNames ?? []) : [];
      fields.shortNames?.forEach((name, i) => {
        const problem = stored.includes(name) ? null : brandNameProblem(name);
        if (problem) throw new ApiError("bad_request", `shortNames[${i}]: ${problem}`, { field: `shortNames[${i}]` });
      });
      const removed = removeNumbers?.map((n, i) => storedNumber(n, `removeNumbers[${i}]`));
      const now = deps.clock.now().getTime();
      const patch = { ...fields, ...(addNumbers ? { addNumbers: storedNumbers(addNumbers, "addNumbers") } : {}), ...(removed ? { removeNumbers: removed } : {}) };
      // Given its İYS codes: what was skipped for want of them and İYS would still take goes to İYS
      // now, in the same transaction as the codes (no moment where a later movement of a consent
      // could go to İYS ahead of its reopened earlier one).
      const { brand, reopened } = deps.db.$client
        .transaction(() => {
          const changed = updateBrand(deps.db, code, patch, now);
          // The reopen finds nothing while a code is still missing.
          const codesChanged = changed !== null && (fields.iysCode !== undefined || fields.brandCode !== undefined);
          return { brand: changed, reopened: codesChanged ? reopenSkippedIysReports(deps.db, deps.calendar, now, changed.id) : [] };
        })
        .immediate();
      if (!brand) throw new ApiError("not_found", `brand ${code} not found`);
      await enqueueReopened(deps.jobs.enqueueOutbox, reopened, now);
      deps.log.info(
        { brand: brand.code, fields: Object.keys(fields), numbersAdded: addNumbers?.length ?? 0, numbersRemoved: removed?.length ?? 0, iysReportsReopened: reopened.length },
        "brand changed",
      );
      return c.json(presentBrand(brand, numbersOfBrand(deps.db, brand.id), iysPullCursor(deps.db, brand.id), iysPullCursor(deps.db, brand.id, "HS")), 200);
    });
}
