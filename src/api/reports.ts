import { createRoute, z } from "@hono/zod-openapi";
import { brandByCode } from "../brands";
import { assertBrandAccess } from "./auth";
import type { AppDeps } from "../env";
import { ApiError } from "../errors";
import { dailyReport, istanbulDayRange, openReader, sha384 } from "../export";
import { apiRouter, bearerSecurity, errorResponses } from "./openapi";
import { spool, type Spooled } from "../spool";

const DailyQuery = z.object({
  brand: z.string().trim().min(1).openapi({ param: { name: "brand", in: "query" }, example: "MIGROS" }),
  date: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, "YYYY-MM-DD")
    .openapi({ param: { name: "date", in: "query" }, description: "a Turkish calendar day (Europe/Istanbul)", example: "2026-03-02" }),
  format: z.enum(["csv", "json"]).default("csv").openapi({ param: { name: "format", in: "query" } }),
});

const DailyRow = z.object({
  creationDate: z.string(),
  transactionId: z.string(),
  recipient: z.string(),
  recipientType: z.string(),
  type: z.string(),
  status: z.string(),
  consentDate: z.string(),
  source: z.string(),
});

const dailyRoute = createRoute({
  method: "get",
  path: "/daily",
  summary: "Daily movement report (İYS daily file) and its SHA-384",
  description:
    "The brand's movements İYS registered on one Turkish day (those it accepted, with its transactionId and creationDate) in the columns of İYS's daily movement file (creationDate, transactionId, recipient, recipientType, type, status, consentDate, source), sorted by creationDate then transactionId, and the SHA-384 (lower-case hex) of the CSV, to compare with İYS's `hashValue` (Mutabakat Bilgisi Sorgulama). CSV by default (hash in `X-Content-SHA384`); `format=json` gives `{ rows, sha384 }`.",
  security: bearerSecurity,
  request: { query: DailyQuery },
  responses: {
    200: {
      description: "The report",
      headers: { "X-Content-SHA384": { schema: { type: "string" }, description: "SHA-384 of the CSV body, lower-case hex" } },
      content: {
        "text/csv": { schema: z.string() },
        "application/json": { schema: z.object({ brand: z.string(), date: z.string(), rows: z.array(DailyRow), sha384: z.string() }).openapi("DailyReport") },
      },
    },
    ...errorResponses,
  },
});

export function createReportRoutes(deps: AppDeps) {
  return apiRouter().openapi(dailyRoute, (c) => {
    const q = c.req.valid("query");
    assertBrandAccess(c, q.brand);
    const brand = brandByCode(deps.db, q.brand);
    if (!brand) throw new ApiError("not_found", `brand ${q.brand} not found`, { field: "brand" });
    const day = istanbulDayRange(q.date);
    if (!day) throw new ApiError("bad_request", `date: ${q.date} is not a calendar day`, { field: "date" });
    // No movement can be on a day not yet begun: an empty file and its hash would only mislead.
    if (day.start > deps.clock.now().getTime()) throw new ApiError("bad_request", `date: ${q.date} has not begun yet in Istanbul`, { field: "date" });
    const reader = openReader(deps.db);
    // One read transaction for whatever is read: the hash is the hash of the rows that follow. It
    // ends before the response goes out (a HEAD, or a client that reads slowly or never, must not
    // hold a snapshot that stops every WAL checkpoint): the CSV is spooled to a temporary file.
    reader.exec("BEGIN");
    let csv: Spooled | null = null;
    let hash: string;
    let rows: z.infer<typeof DailyRow>[] = [];
    try {
      if (q.format === "json") {
        const [header, ...lines] = [...dailyReport(reader, brand.id, day)];
        hash = sha384([header!, ...lines]);
        const cols = header!.trimEnd().split(",");
        rows = lines.map((l) => Object.fromEntries(l.trimEnd().split(",").map((v, i) => [cols[i], v])) as z.infer<typeof DailyRow>);
      } else if (c.req.method === "HEAD") {
        hash = sha384(dailyReport(reader, brand.id, day));
      } else {
        csv = spool(dailyReport(reader, brand.id, day));
        hash = csv.sha384;
      }
    } finally {
      reader.exec("COMMIT");
      reader.close();
    }
    if (q.format === "json") return c.json({ brand: brand.code, date: q.date, rows, sha384: hash }, 200);
    c.header("Content-Type", "text/csv; charset=utf-8");
    c.header("X-Content-SHA384", hash);
    c.header("Content-Disposition", `attachment; filename="${brand.code}-${q.date}.csv"`);
    if (!csv) return c.body(null, 200) as never;
    c.header("Content-Length", String(csv.size));
    return c.body(csv.body(), 200) as never;
  });
}
