import { createRoute, z } from "@hono/zod-openapi";
import { issueLinks, type IssueResult } from "../../channels/link/issue";
import { linkKeyring } from "../../channels/link/token";
import { brandByCode } from "../brands";
import { recipientTypes } from "../domain/consent";
import type { AppDeps } from "../env";
import { ApiError } from "../errors";
import { zodError } from "../validate";
import { assertBrandAccess } from "./auth";
import { apiRouter, bearerSecurity, errorResponses, jsonBody, jsonResponse, requireJson } from "./openapi";

/** One call issues at most this many links (one transaction). */
export const LINK_BATCH_MAX = 10_000;

const Recipient = z.string().max(512);
const Brand = z.string().trim().min(1).openapi({ example: "MIGROS" });
const Single = z
  .object({ brand: Brand, recipient: Recipient.openapi({ example: "ayse@example.com" }), recipientType: z.enum(recipientTypes).default("BIREYSEL") })
  .strict()
  .openapi("LinkRequest", { example: { brand: "MIGROS", recipient: "ayse@example.com" } });
const Batch = z
  .object({
    brand: Brand,
    recipients: z.array(Recipient).min(1).max(LINK_BATCH_MAX, `at most ${LINK_BATCH_MAX} recipients per call`).openapi({ example: ["ayse@example.com", "mehmet@example.com"] }),
    recipientType: z.enum(recipientTypes).default("BIREYSEL"),
  })
  .strict()
  .openapi("LinkBatchRequest", { example: { brand: "MIGROS", recipients: ["ayse@example.com", "mehmet@example.com"] } });

const Link = z
  .object({
    url: z.string().openapi({ example: "https://hub.example.com/r/…" }),
    headers: z
      .record(z.string(), z.string())
      .openapi({ description: "List-Unsubscribe and List-Unsubscribe-Post (RFC 8058) for the message", example: { "List-Unsubscribe": "<https://hub.example.com/r/…>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" } }),
    expiresAt: z.string().nullable(),
  })
  .openapi("Link");
const LinkError = z.object({ error: z.object({ code: z.string().openapi({ example: "H120" }), message: z.string() }) }).openapi("LinkError");

const route = createRoute({
  method: "post",
  path: "/",
  summary: "Issue e-mail rejection links",
  description: `The rejection link and List-Unsubscribe headers of one address (\`{ brand, recipient }\`, an invalid address is a 422 with its İYS code), or of up to ${LINK_BATCH_MAX} (\`{ brand, recipients }\`, answered in input order, an invalid address answered with its İYS code in its place). The same address gets the same link again.`,
  security: bearerSecurity,
  middleware: [requireJson] as const,
  request: { body: jsonBody(z.union([Single, Batch]), "one address, or a batch", { brand: "MIGROS", recipient: "ayse@example.com" }) },
  responses: {
    200: jsonResponse(z.union([Link, z.object({ links: z.array(z.union([Link, LinkError])) }).openapi("LinkBatch")]), "The link, or the batch's links in input order"),
    ...errorResponses,
  },
});

const present = (r: IssueResult) => (r.ok ? { url: r.url, headers: r.headers, expiresAt: r.expiresAt } : { error: r.error });

/**
 * POST /api/v1/links: the rejection link and List-Unsubscribe headers of one address
 * (`{ brand, recipient }`), or of up to 10 000 (`{ brand, recipients }`, answered in input order,
 * an invalid address answered with its İYS code in its place).
 */
export function createLinkApiRoutes(deps: AppDeps) {
  const ring = linkKeyring(deps.config.LINK_KEYS, deps.secrets.derive);
  return apiRouter().openapi(
    route,
    (c) => {
      const input = c.req.valid("json");
      assertBrandAccess(c, input.brand);
      const brand = brandByCode(deps.db, input.brand);
      if (!brand) throw new ApiError("not_found", `brand ${input.brand} not found`, { field: "brand" });
      const list = "recipients" in input ? input.recipients : [input.recipient];
      const results = issueLinks(
        deps.db,
        ring,
        deps.config.PUBLIC_BASE_URL,
        brand,
        list.map((recipient) => ({ recipient, recipientType: input.recipientType })),
        deps.clock.now().getTime(),
      );
      if ("recipients" in input) {
        deps.log.info({ brand: brand.code, links: results.length, invalid: results.filter((r) => !r.ok).length }, "links issued");
        return c.json({ links: results.map(present) }, 200);
      }
      const one = results[0]!;
      if (!one.ok) throw new ApiError(one.error.code, one.error.message, { field: "recipient" });
      return c.json({ url: one.url, headers: one.headers, expiresAt: one.expiresAt }, 200);
    },
    (result) => {
      if (result.success) return undefined;
      // The batch form is told apart by its field, so a bad request is named against the form meant.
      // The validator hands its hook the body it parsed (untyped in @hono/zod-validator's Hook).
      const body = (result as { data?: unknown }).data;
      const isBatch = typeof body === "object" && body !== null && "recipients" in body;
      const meant = (isBatch ? Batch : Single).safeParse(body);
      throw zodError(meant.success ? result.error : meant.error);
    },
  );
}
