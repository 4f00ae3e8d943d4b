import { Hono } from "hono";
import { z } from "zod";
import { brandByCode, createBrand, listBrands, numbersOfBrand, type Brand } from "../brands";
import { normalizePhone } from "../domain/address";
import type { AppDeps, HonoEnv } from "../env";
import { ApiError } from "../errors";
import { jsonBody, parseOr400 } from "../validate";
import { TemplateOverrides } from "../../channels/sms/templates";

const NumberInput = z.object({
  number: z.string().trim().min(3).max(32),
  provider: z.enum(["twilio", "vonage"]),
  channels: z.array(z.enum(["sms", "voice"])).min(1).max(2).default(["sms"]),
});

export const BrandInput = z.object({
  code: z
    .string()
    .trim()
    .transform((s) => s.toUpperCase())
    .pipe(z.string().regex(/^[A-Z0-9][A-Z0-9_-]{1,31}$/, "2–32 letters A–Z, digits, - or _")),
  name: z.string().trim().min(1).max(120),
  iysCode: z.string().regex(/^\d{1,12}$/, "digits only").nullish(),
  brandCode: z.string().regex(/^\d{1,12}$/, "digits only").nullish(),
  shortNames: z.array(z.string().trim().min(2).max(30)).max(3, "a brand has at most 3 short names").default([]),
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
});

/** Shortcodes are 3–6 digits; long numbers are stored in E.164. */
export function normalizeServiceNumber(raw: string): string | null {
  const compact = raw.replace(/[\s\u00a0-]/g, "");
  if (/^\d{3,6}$/.test(compact)) return compact;
  const phone = normalizePhone(raw);
  return phone.ok ? phone.value : null;
}

export function presentBrand(b: Brand, nums: ReturnType<typeof numbersOfBrand>) {
  return {
    code: b.code,
    name: b.name,
    iysCode: b.iysCode,
    brandCode: b.brandCode,
    shortNames: b.shortNames,
    settings: b.settings,
    numbers: nums.map((n) => ({ number: n.number, provider: n.provider, channels: n.channels })),
    createdAt: new Date(b.createdAt).toISOString(),
  };
}

export function createBrandRoutes(deps: AppDeps) {
  return new Hono<HonoEnv>()
    .post("/", async (c) => {
      const input = parseOr400(BrandInput, await jsonBody(c));
      const numbers = input.numbers.map((n, i) => {
        const value = normalizeServiceNumber(n.number);
        if (!value) throw new ApiError("bad_request", `numbers[${i}].number: not a shortcode or a valid phone number`, { field: `numbers[${i}].number` });
        return { ...n, number: value };
      });
      const brand = createBrand(deps.db, { ...input, numbers }, deps.clock.now().getTime());
      deps.log.info({ brand: brand.code, numbers: numbers.length }, "brand created");
      return c.json(presentBrand(brand, numbersOfBrand(deps.db, brand.id)), 201);
    })
    .get("/", (c) => c.json({ brands: listBrands(deps.db).map((b) => presentBrand(b, numbersOfBrand(deps.db, b.id))) }))
    .get("/:code", (c) => {
      const brand = brandByCode(deps.db, c.req.param("code"));
      if (!brand) throw new ApiError("not_found", `brand ${c.req.param("code")} not found`);
      return c.json(presentBrand(brand, numbersOfBrand(deps.db, brand.id)));
    });
}
