import { integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/**
 * Provider API keys (besides HUB_ADMIN_KEY). The key itself is shown once at creation; only its
 * SHA-256 is kept. A key acts on the brands it lists (codes), or on every brand with "*".
 */
export const apiKeys = sqliteTable(
  "api_keys",
  {
    /** `key_…`: names the key in lists and in DELETE, never the secret. */
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    /** Brand codes (JSON array, upper case), or "*" for every brand, present and future. */
    brands: text("brands", { mode: "json" }).$type<string[] | "*">().notNull(),
    /** SHA-256 of the whole key, hex. */
    keyHash: text("key_hash").notNull(),
    /** The key's first characters, so an operator can tell keys apart without the secret. */
    prefix: text("prefix").notNull(),
    createdAt: integer("created_at").notNull(),
    revokedAt: integer("revoked_at"),
  },
  (t) => [
    // Every authenticated request looks its key up by hash.
    uniqueIndex("api_keys_key_hash_idx").on(t.keyHash),
  ],
);
