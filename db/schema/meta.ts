import { sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * Facts about this database itself. `hub_id`: a random id made at its first start, which a hub
 * writes under its QUEUE_PREFIX in Redis, so that a second hub with another database on the same
 * prefix (a staging copy, a test instance) is refused instead of taking this one's jobs.
 */
export const hubMeta = sqliteTable("hub_meta", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});
