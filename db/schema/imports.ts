import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { brands } from "./brands";

export const importStatuses = ["running", "done", "failed"] as const;
export type ImportStatus = (typeof importStatuses)[number];

/**
 * One bulk import (CLI or upload): its counters are updated after every batch, so another request
 * can follow a running import (GET /api/v1/imports/:id).
 */
export const imports = sqliteTable(
  "imports",
  {
    id: text("id").primaryKey(),
    brandId: integer("brand_id")
      .notNull()
      .references(() => brands.id),
    /** `cli` or `api`. */
    via: text("via").notNull(),
    /** Records İYS already holds (ImportOptions.registered): not reported, no 3-business-day window. */
    registered: integer("registered", { mode: "boolean" }).notNull().default(false),
    status: text("status", { enum: importStatuses }).notNull(),
    /** The file's field separator (`,`, or `;` from a Turkish-locale spreadsheet): its rejected-rows CSV is written with it. */
    delimiter: text("delimiter").notNull().default(","),
    rowsRead: integer("rows_read").notNull().default(0),
    recorded: integer("recorded").notNull().default(0),
    unchanged: integer("unchanged").notNull().default(0),
    rejected: integer("rejected").notNull().default(0),
    bytesRead: integer("bytes_read").notNull().default(0),
    /** Content-Length or file size when known. */
    bytesTotal: integer("bytes_total"),
    error: text("error"),
    startedAt: integer("started_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    finishedAt: integer("finished_at"),
  },
  // Recent imports of a brand (GET /api/v1/imports?brand=).
  (t) => [index("imports_brand_id_started_at_idx").on(t.brandId, t.startedAt)],
);

/** Rows an import refused, with the İYS code; the fields are kept as given (the rejected-rows CSV). */
export const importRejections = sqliteTable(
  "import_rejections",
  {
    importId: text("import_id")
      .notNull()
      .references(() => imports.id, { onDelete: "cascade" }),
    line: integer("line").notNull(),
    code: text("code").notNull(),
    message: text("message").notNull(),
    /** JSON array of the row's fields in the İYS bulk column order. */
    fields: text("fields").notNull(),
  },
  // The rejected-rows CSV of one import, in file order.
  (t) => [index("import_rejections_import_id_line_idx").on(t.importId, t.line)],
);
