import { createRoute, z } from "@hono/zod-openapi";
import { brandByCode } from "../brands";
import { checkRecipients } from "../check";
import { normalizeRecipient } from "../domain/address";
import { consentTypes, recipientTypes } from "../domain/consent";
import type { AppDeps } from "../env";
import { ApiError } from "../errors";
import { assertBrandAccess } from "./auth";
import { apiRouter, bearerSecurity, errorResponses, jsonBody, jsonResponse, requireJson } from "./openapi";

export const CHECK_MAX_RECIPIENTS = 100_000;

export const CheckInput = z
  .object({
    brand: z.string().trim().min(1).openapi({ example: "MIGROS" }),
    type: z.enum(consentTypes).openapi({ description: "the channel about to be used" }),
    recipientType: z.enum(recipientTypes).default("BIREYSEL"),
    recipients: z
      // An address too long to be one is answered on its own (invalid_address), not a 400 for the
      // whole call; the body limit bounds the total.
      .array(z.string())
      .min(1)
      .max(CHECK_MAX_RECIPIENTS, `at most ${CHECK_MAX_RECIPIENTS} recipients a call`)
      .openapi({ example: ["0532 123 45 67", "+905551112233"] }),
  })
  .strict()
  .openapi("CheckRequest");

export const CheckOutput = z
  .object({
    allowed: z.array(z.string()).openapi({ description: "recipients that may be sent to now, as given" }),
    denied: z.array(
      z.object({
        recipient: z.string(),
        reason: z.enum(["no_consent", "refused", "invalid_address"]),
        code: z.string().optional().openapi({ description: "İYS code of an invalid address (H120, H121, H464…)" }),
      }),
    ),
  })
  .openapi("CheckResult");

const route = createRoute({
  method: "post",
  path: "/",
  summary: "Pre-send check: which recipients may be sent to now",
  description:
    "Answers from the current consent state, after applying every receipt already durably received (a RET accepted a millisecond ago is honoured). ONAY → allowed; RET or a suppression → `refused`; nothing → `no_consent` (TACIR recipients are allowed until they refuse; a refusal kept under the address's BIREYSEL record counts unless a later TACIR record stands).",
  security: bearerSecurity,
  middleware: [requireJson] as const,
  request: { body: jsonBody(CheckInput, "the recipients about to be sent to", { brand: "MIGROS", type: "MESAJ", recipients: ["0532 123 45 67", "+905551112233"] }) },
  responses: { 200: jsonResponse(CheckOutput, "The recipients, split"), ...errorResponses },
});

export function createCheckRoutes(deps: AppDeps) {
  return apiRouter().openapi(route, async (c) => {
    const input = c.req.valid("json");
    assertBrandAccess(c, input.brand);
    const brand = brandByCode(deps.db, input.brand);
    if (!brand) throw new ApiError("not_found", `brand ${input.brand} not found`, { field: "brand" });
    return c.json(await answerCheck(deps, brand.id, input), 200);
  });
}

/** The check for a brand the caller may ask about (providers here, partners in api/callbacks.ts). */
export async function answerCheck(deps: AppDeps, brandId: number, input: z.infer<typeof CheckInput>) {
  await deps.receipts.applyPending(() => normalizedAddresses(input.recipients));
  return checkRecipients(deps.db, brandId, input.type, input.recipientType, input.recipients);
}

/** The addresses a check asks about, normalised as the receipts' senders are. */
function* normalizedAddresses(recipients: string[]): Generator<string> {
  for (const r of recipients) {
    const a = normalizeRecipient(r);
    if (a.ok) yield a.value;
  }
}
