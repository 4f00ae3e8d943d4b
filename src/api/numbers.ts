import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { numbers } from "../../db/schema";
import { assertNamesFitNumber, brandsOfNumber, numberCacheForget, numberByValue, type NumberRow } from "../brands";
import { effectiveNumberWords, KEYWORD_WORD_CATEGORIES, numberKeywordWords, type ExtraKeywordWords } from "../domain/keywords";
import type { AppDeps } from "../env";
import { ApiError } from "../errors";
import { requireAdmin } from "./auth";
import { normalizeServiceNumber } from "./brands";
import { apiRouter, bearerSecurity, errorResponses, jsonBody, jsonResponse, requireJson } from "./openapi";

const Words = z
  .array(z.string().trim().min(1).max(30))
  .max(20)
  .optional();

const KeywordsInput = z
  .object({
    refuse: Words.openapi({ description: "refusal words (default RET, IPTAL, DUR, STOP)", example: ["ABONELIK"] }),
    consent: Words.openapi({ description: "consent words (default ONAY, EVET, START)" }),
    help: Words.openapi({ description: "help words (default YARDIM, BILGI, HELP)" }),
    scopeCalls: Words.openapi({ description: "after the brand: calls (default ARAMA, ÇAĞRI and their plurals)", example: ["TELEFON"] }),
    scopeSms: Words.openapi({ description: "after the brand: SMS (default MESAJ, SMS, İLETİ and their plurals)" }),
    scopeAll: Words.openapi({ description: "after the brand: both (default TÜMÜ, HEPSİ)" }),
  })
  .strict()
  .openapi("NumberKeywords");

const WordLists = z.object(Object.fromEntries(KEYWORD_WORD_CATEGORIES.map((c) => [c, z.array(z.string())])) as Record<(typeof KEYWORD_WORD_CATEGORIES)[number], z.ZodArray<z.ZodString>>);

const NumberOut = z
  .object({
    number: z.string().openapi({ example: "3434" }),
    provider: z.string().openapi({ example: "twilio" }),
    channels: z.array(z.string()).openapi({ example: ["sms"] }),
    brands: z.array(z.string()).openapi({ description: "the brands texting from the number, in the order their names are listed in replies", example: ["MIGROS"] }),
    keywords: z.object({
      added: KeywordsInput.openapi({ description: "the number's own words, as entered ({} when it has none)" }),
      words: WordLists.openapi({ description: "every word the grammar takes on the number, folded (what recipients' texts are compared with)" }),
    }),
  })
  .openapi("ServiceNumber");

const NumberParam = z.object({ number: z.string().openapi({ param: { name: "number", in: "path" }, description: "a shortcode or a phone number, in any spelling", example: "3434" }) });

const getNumberRoute = createRoute({
  method: "get",
  path: "/{number}",
  summary: "Read a service number and the keyword words it takes",
  description: "Admin key only. A number brands receive SMS and calls on, the brands texting from it, and its SMS keyword words.",
  security: bearerSecurity,
  middleware: [requireAdmin] as const,
  request: { params: NumberParam },
  responses: { 200: jsonResponse(NumberOut, "The number"), ...errorResponses },
});

const putKeywordsRoute = createRoute({
  method: "put",
  path: "/{number}/keywords",
  summary: "Set the SMS keyword words a number takes besides the defaults",
  description:
    "Admin key only. The words given are added to the defaults of their category, for every brand on the number (the defaults stay: the replies name RET, ARAMA and TUMU); `{}` leaves the defaults alone. Each word must be one word once folded, in one category only (a word already in another keyword or scope category, or a refusal word that is a scope word, is a 400), and no short name, code or İYS number of a brand on the number may then be a scope word or a keyword word (400 naming it). Applies to every SMS applied from then on, those still queued included.",
  security: bearerSecurity,
  middleware: [requireAdmin, requireJson] as const,
  request: { params: NumberParam, body: jsonBody(KeywordsInput, "words by category", { refuse: ["ABONELIK"], scopeCalls: ["TELEFON"] }) },
  responses: { 200: jsonResponse(NumberOut, "The number as stored"), ...errorResponses },
});

function present(deps: AppDeps, row: NumberRow) {
  const added = row.keywords ?? {};
  return {
    number: row.number,
    provider: row.provider,
    channels: row.channels,
    brands: brandsOfNumber(deps.db, row.id, "sms").map((b) => b.code),
    keywords: { added, words: effectiveNumberWords(added) },
  };
}

function numberOf(deps: AppDeps, raw: string): NumberRow {
  const value = normalizeServiceNumber(raw);
  if (!value) throw new ApiError("bad_request", "number: not a shortcode or a valid phone number", { field: "number" });
  // Read afresh, not from the webhooks' few-second cache: what the admin sees is what is stored.
  numberCacheForget(deps.db, value);
  const row = numberByValue(deps.db, value);
  if (!row) throw new ApiError("not_found", `number ${value} is not one of the hub's (brands attach numbers: PATCH /api/v1/brands/{code} addNumbers)`);
  return row;
}

export function createNumberRoutes(deps: AppDeps) {
  return apiRouter()
    .openapi(getNumberRoute, (c) => c.json(present(deps, numberOf(deps, c.req.valid("param").number)), 200))
    .openapi(putKeywordsRoute, (c) => {
      const row = numberOf(deps, c.req.valid("param").number);
      const input = c.req.valid("json");
      // Stored as entered, without empty lists.
      const added: ExtraKeywordWords = Object.fromEntries(KEYWORD_WORD_CATEGORIES.filter((k) => input[k]?.length).map((k) => [k, input[k]!]));
      try {
        numberKeywordWords(added);
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        // foldedWords' message names the word and its categories; the defaults are part of them.
        throw new ApiError("bad_request", `keywords: ${err.message.replace(/^keyword word/, "word")} (the defaults of each category are kept: see GET /api/v1/numbers/${row.number})`, { field: "keywords" });
      }
      const updated = deps.db.$client
        .transaction(() => {
          const next = { ...row, keywords: Object.keys(added).length ? added : null };
          for (const brand of brandsOfNumber(deps.db, row.id, "sms")) assertNamesFitNumber(brand, next, "keywords", undefined, `brand ${brand.code}`);
          return deps.db.update(numbers).set({ keywords: next.keywords }).where(eq(numbers.id, row.id)).returning().get()!;
        })
        .immediate();
      numberCacheForget(deps.db, row.number);
      deps.log.info({ number: row.number, categories: Object.keys(added) }, "number keywords changed");
      return c.json(present(deps, updated), 200);
    });
}
