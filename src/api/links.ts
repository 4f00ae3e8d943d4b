import { Hono } from "hono";
import { z } from "zod";
import { issueLinks, type IssueResult } from "../../channels/link/issue";
import { linkKeyring } from "../../channels/link/token";
import { brandByCode } from "../brands";
import { recipientTypes } from "../domain/consent";
import type { AppDeps, HonoEnv } from "../env";
import { ApiError } from "../errors";
import { jsonBody, parseOr400 } from "../validate";

/** One call issues at most this many links (one transaction). */
export const LINK_BATCH_MAX = 10_000;

const Recipient = z.string().max(512);
const Single = z.object({ brand: z.string().trim().min(1), recipient: Recipient, recipientType: z.enum(recipientTypes).default("BIREYSEL") }).strict();
const Batch = z
  .object({
    brand: z.string().trim().min(1),
    recipients: z.array(Recipient).min(1).max(LINK_BATCH_MAX, `at most ${LINK_BATCH_MAX} recipients per call`),
    recipientType: z.enum(recipientTypes).default("BIREYSEL"),
  })
  .strict();

const present = (r: IssueResult) => (r.ok ? { url: r.url, headers: r.headers, expiresAt: r.expiresAt } : { error: r.error });

/**
 * POST /api/v1/links: the rejection link and List-Unsubscribe headers of one address
 * (`{ brand, recipient }`), or of up to 10 000 (`{ brand, recipients }`, answered in input order,
 * an invalid address answered with its İYS code in its place).
 */
export function createLinkApiRoutes(deps: AppDeps) {
  const ring = linkKeyring(deps.config.LINK_KEYS, deps.secrets.derive);
  return new Hono<HonoEnv>().post("/", async (c) => {
    const body = await jsonBody(c);
    // The batch form is told apart by its field, so a bad request is named against the form meant.
    const isBatch = typeof body === "object" && body !== null && "recipients" in body;
    const input: z.output<typeof Single> | z.output<typeof Batch> = isBatch ? parseOr400(Batch, body) : parseOr400(Single, body);
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
      return c.json({ links: results.map(present) });
    }
    const one = results[0]!;
    if (!one.ok) throw new ApiError(one.error.code, one.error.message, { field: "recipient" });
    return c.json(present(one));
  });
}
