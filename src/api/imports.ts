import { createRoute, z } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { stream } from "hono/streaming";
import type { Context } from "hono";
import { brandById, brandByCode } from "../brands";
import { assertBrandAccess, canAccessBrand } from "./auth";
import type { AppDeps, HonoEnv } from "../env";
import { ApiError } from "../errors";
import { stmt } from "../../db/index";
import { importById, importsOfBrand, ImportFormatError, ImportTooLargeError, rejectedCsvHeader, rejectedCsvLine, runImport, type ImportRecord } from "../import";
import { apiRouter, bearerSecurity, errorResponses, EXAMPLE_CONSENT_DATE, jsonResponse, mediaType } from "./openapi";

/** Uploads are streamed (constant memory); the cap only bounds one request's duration. */
export const IMPORT_MAX_BYTES = 2 * 2 ** 30;

const requireCsv = createMiddleware<HonoEnv>(async function requireCsv(c, next) {
  if (mediaType(c) !== "text/csv") throw new ApiError("unsupported_media_type", "Content-Type must be text/csv (the İYS bulk columns, header row first)");
  await next();
});

const Counts = {
  rowsRead: z.number().int(),
  recorded: z.number().int(),
  unchanged: z.number().int().openapi({ description: "rows already in the ledger (a re-run of the same file)" }),
  rejected: z.number().int().openapi({ description: "rows refused, listed in the rejected-rows CSV with their İYS codes" }),
  bytesRead: z.number().int(),
  bytesTotal: z.number().int().nullable(),
};

const registeredField = z.boolean().openapi({ description: "records İYS already holds (registered=true): for consents the hub held no record of, not reported and no 3-business-day window" });

const ImportSummary = z
  .object({
    id: z.string(),
    status: z.literal("done"),
    registered: registeredField,
    ...Counts,
    codes: z.record(z.string(), z.number().int()).openapi({ description: "rejected rows per İYS code", example: { H467: 3, H120: 1 } }),
    seconds: z.number(),
    encoding: z.enum(["utf-8", "utf-16le", "windows-1254"]).openapi({
      description: "how the file's bytes were read: UTF-8, UTF-16LE (a file starting with its byte-order mark), or Windows-1254 when the file is not UTF-8 (Excel's plain CSV under Turkish Windows)",
    }),
    progressUrl: z.string(),
    rejectedUrl: z.string(),
  })
  .openapi("ImportSummary");

const ImportProgress = z
  .object({
    id: z.string(),
    brand: z.string(),
    via: z.string(),
    registered: registeredField,
    status: z.enum(["running", "done", "failed"]),
    ...Counts,
    error: z.string().nullable(),
    startedAt: z.string(),
    updatedAt: z.string(),
    finishedAt: z.string().nullable(),
    rejectedUrl: z.string(),
  })
  .openapi("ImportProgress");

const BrandQuery = z.object({ brand: z.string().trim().min(1).openapi({ param: { name: "brand", in: "query" }, example: "MIGROS" }) });
const UploadQuery = BrandQuery.extend({
  registered: z
    .enum(["true", "false"])
    .default("false")
    .openapi({
      param: { name: "registered", in: "query" },
      description:
        "Admin key only (a provider key gets a 403). `true`: the rows are records İYS already holds — the provider's base registered on İYS before the hub, or another hub's state export. For a consent the hub holds no record of: checked by the İYS rules except the 3-business-day window (H467), recorded with origin `registered` (a consent as held by İYS, a refusal as a local suppression) and never reported to İYS. A file may hold a consent's history. Over a record of the hub's own (a channel's, the API's, an ordinary import's, İYS's pull), a row is an ordinary import movement (the window applies, it is reported): a file never overrides the hub's record on its word alone.",
    }),
});
const IdParam = z.object({ id: z.string().uuid().openapi({ param: { name: "id", in: "path" } }) });

const uploadRoute = createRoute({
  method: "post",
  path: "/",
  summary: "Bulk import of consents (CSV in the İYS bulk columns)",
  description:
    "The body is streamed into the ledger as it arrives (not buffered): header row `type,recipient,status,source,consentDate,recipientType,retailerCode` (any order; recipientType and retailerCode optional), every row through the İYS rules, 1000 rows a transaction. Answers when the file is done; meanwhile `GET /imports?brand=` and `GET /imports/{id}` show its progress. Re-sending the same file records nothing new. Consents collected more than 3 business days ago are refused H467 as İYS would, unless the file holds records İYS already has (`registered=true`).",
  security: bearerSecurity,
  middleware: [requireCsv] as const,
  request: {
    query: UploadQuery,
    body: { required: true, content: { "text/csv": { schema: z.string().openapi({ example: `type,recipient,status,source,consentDate,recipientType\nMESAJ,05321234567,ONAY,HS_WEB,${EXAMPLE_CONSENT_DATE},BIREYSEL\n` }) } } },
  },
  responses: { 200: jsonResponse(ImportSummary, "The import is done (rows may have been rejected: see `rejected`)"), ...errorResponses, 415: errorResponses[415] },
});

const listRoute = createRoute({
  method: "get",
  path: "/",
  summary: "Recent imports of a brand (running ones included)",
  security: bearerSecurity,
  request: { query: BrandQuery },
  responses: { 200: jsonResponse(z.object({ imports: z.array(ImportProgress) }), "Newest first"), ...errorResponses },
});

const progressRoute = createRoute({
  method: "get",
  path: "/{id}",
  summary: "Progress of an import",
  security: bearerSecurity,
  request: { params: IdParam },
  responses: { 200: jsonResponse(ImportProgress, "Counters are updated after every batch"), ...errorResponses },
});

const rejectedRoute = createRoute({
  method: "get",
  path: "/{id}/rejected",
  summary: "The rejected rows of an import, as CSV",
  description: "The row's columns as given, then `line` (in the uploaded file), `code` (İYS error code) and `message`.",
  security: bearerSecurity,
  request: { params: IdParam },
  responses: { 200: { description: "CSV", content: { "text/csv": { schema: z.string() } } }, ...errorResponses },
});

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function createImportRoutes(deps: AppDeps) {
  const base = `${deps.config.PUBLIC_BASE_URL}/api/v1/imports`;
  const present = (r: ImportRecord) => ({
    id: r.id,
    brand: brandById(deps.db, r.brandId)?.code ?? String(r.brandId),
    via: r.via,
    registered: r.registered,
    status: r.status,
    rowsRead: r.rowsRead,
    recorded: r.recorded,
    unchanged: r.unchanged,
    rejected: r.rejected,
    bytesRead: r.bytesRead,
    bytesTotal: r.bytesTotal,
    error: r.error,
    startedAt: iso(r.startedAt)!,
    updatedAt: iso(r.updatedAt)!,
    finishedAt: iso(r.finishedAt),
    rejectedUrl: `${base}/${r.id}/rejected`,
  });
  const brandOf = (c: Context<HonoEnv>, code: string) => {
    assertBrandAccess(c, code);
    const brand = brandByCode(deps.db, code);
    if (!brand) throw new ApiError("not_found", `brand ${code} not found`, { field: "brand" });
    return brand;
  };

  return apiRouter()
    .openapi(uploadRoute, async (c) => {
      const query = c.req.valid("query");
      const brand = brandOf(c, query.brand);
      // Records İYS holds are never reported to İYS: loading them is the operator's call, not a platform's.
      if (query.registered === "true" && c.get("caller")?.kind !== "admin") {
        throw new ApiError("forbidden", "registered=true needs the admin key (HUB_ADMIN_KEY): its rows are taken as records İYS holds and never reported", { field: "registered" });
      }
      const body = c.req.raw.body;
      if (!body) throw new ApiError("bad_request", "the request has no body: send the CSV", { field: "(body)" });
      const length = Number(c.req.header("content-length"));
      if (length > IMPORT_MAX_BYTES) throw new ApiError("payload_too_large", `an import is at most ${IMPORT_MAX_BYTES / 2 ** 30} GiB; split the file`);
      try {
        const summary = await runImport(body as unknown as AsyncIterable<Uint8Array>, { ...deps, enqueueOutbox: (rows) => deps.jobs.enqueueOutbox(rows, { bulk: true }) }, {
          brandId: brand.id,
          via: "api",
          registered: query.registered === "true",
          bytesTotal: Number.isFinite(length) && length > 0 ? length : null,
          // In the web process, between webhooks: with 5000-row transactions a 200 000-row upload held
          // the event loop 115 ms at the median (252 ms p99); with 1000, 21 ms (40 ms p99), in the same
          // time overall (5.4 s against 5.7 s). `hub import`, a process of its own, keeps 5000.
          batchSize: 1000,
          // A chunked upload has no Content-Length to refuse it by: the bytes are counted as they come.
          maxBytes: IMPORT_MAX_BYTES,
        });
        deps.log.info({ requestId: c.get("requestId"), importId: summary.id, rows: summary.rowsRead, rejected: summary.rejected }, "import done");
        return c.json({ ...summary, progressUrl: `${base}/${summary.id}`, rejectedUrl: `${base}/${summary.id}/rejected` }, 200);
      } catch (err) {
        if (err instanceof ImportTooLargeError) throw new ApiError("payload_too_large", err.message, { field: "(body)", ...(err.importId ? { importId: err.importId } : {}) });
        if (err instanceof ImportFormatError) throw new ApiError("bad_request", err.message, { field: "(body)", ...(err.importId ? { importId: err.importId } : {}) });
        throw err;
      }
    })
    .openapi(listRoute, (c) => {
      const brand = brandOf(c, c.req.valid("query").brand);
      return c.json({ imports: importsOfBrand(deps.db, brand.id).map(present) }, 200);
    })
    .openapi(progressRoute, (c) => {
      const { id } = c.req.valid("param");
      const record = importById(deps.db, id);
      if (!record || !canAccessBrand(c.get("caller"), brandById(deps.db, record.brandId)?.code ?? "")) throw new ApiError("not_found", `import ${id} not found`, { field: "id" });
      return c.json(present(record), 200);
    })
    .openapi(rejectedRoute, (c) => {
      const { id } = c.req.valid("param");
      const record = importById(deps.db, id);
      if (!record || !canAccessBrand(c.get("caller"), brandById(deps.db, record.brandId)?.code ?? "")) throw new ApiError("not_found", `import ${id} not found`, { field: "id" });
      c.header("Content-Type", "text/csv; charset=utf-8");
      c.header("Content-Disposition", `attachment; filename="import-${id}-rejected.csv"`);
      if (c.req.method === "HEAD") return c.body(null, 200) as never;
      // Read a page at a time between writes: a client that reads slowly or goes away holds no
      // statement (an open one is a snapshot that stops every WAL checkpoint). The rows of a
      // finished import do not change; a running one's pages are whatever is rejected by then.
      // `line >= ?` bounds the index range (an OR alone made every page scan from the first row).
      const page = stmt<[string, number, number, number], { rowid: number; line: number; code: string; message: string; fields: string }>(
        deps.db,
        `SELECT rowid, line, code, message, fields FROM import_rejections
         WHERE import_id = ? AND line >= ? AND (line > ? OR rowid > ?) ORDER BY line, rowid LIMIT 500`,
      );
      return stream(c, async (s) => {
        await s.write(rejectedCsvHeader(record.delimiter));
        for (let after = { line: -1, rowid: -1 }; !s.aborted; ) {
          const rows = page.all(id, after.line, after.line, after.rowid);
          if (rows.length === 0) break;
          await s.write(rows.map((r) => rejectedCsvLine({ ...r, fields: JSON.parse(r.fields) as string[] }, record.delimiter)).join(""));
          after = rows.at(-1)!;
        }
      }) as never;
    });
}
