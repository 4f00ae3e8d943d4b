import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const smsProviders = ["twilio", "vonage"] as const;
export const numberChannels = ["sms", "voice"] as const;

export const brands = sqliteTable(
  "brands",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    /** The hub's handle for the brand (upper-case, e.g. MIGROS); immutable. */
    code: text("code").notNull(),
    name: text("name").notNull(),
    /** İYS number of the provider (hizmet sağlayıcı) that owns the brand. */
    iysCode: text("iys_code"),
    /** İYS brand number. */
    brandCode: text("brand_code"),
    /** Up to 3 short names recipients may text (JSON array). */
    shortNames: text("short_names", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    /** Per-brand settings: confirmation templates, link expiry… (JSON object). */
    settings: text("settings", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [uniqueIndex("brands_code_idx").on(t.code)],
);

export const numbers = sqliteTable(
  "numbers",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    /** E.164 for long numbers, digits for shortcodes. */
    number: text("number").notNull(),
    provider: text("provider", { enum: smsProviders }).notNull(),
    channels: text("channels", { mode: "json" }).$type<(typeof numberChannels)[number][]>().notNull(),
    createdAt: integer("created_at").notNull(),
    /**
     * Words the SMS keyword grammar takes on this number besides the defaults, by category
     * (`{ "refuse": ["ABONELIK"], "scopeCalls": ["TELEFON"] }`, as entered; null: the defaults alone).
     */
    keywords: text("keywords", { mode: "json" }).$type<Partial<Record<"refuse" | "consent" | "help" | "scopeCalls" | "scopeSms" | "scopeAll", string[]>>>(),
  },
  (t) => [uniqueIndex("numbers_number_idx").on(t.number)],
);

/** A number may serve several brands (a shared shortcode); `position` keeps the order brands are listed in. */
export const brandNumbers = sqliteTable(
  "brand_numbers",
  {
    numberId: integer("number_id")
      .notNull()
      .references(() => numbers.id),
    brandId: integer("brand_id")
      .notNull()
      .references(() => brands.id),
    position: integer("position").notNull().default(0),
    /**
     * What this brand uses the number for: a subset of the number's own channels (which are what its
     * webhooks are configured for, the union over its brands). A brand that only calls from a shared
     * shortcode is not offered to its texters, nor one that only texts to its callers.
     */
    channels: text("channels", { mode: "json" }).$type<(typeof numberChannels)[number][]>().notNull().default(sql`'["sms"]'`),
    /**
     * When the brand stopped using the number (ms); null while it does. Kept, not deleted: an SMS
     * that reached the number before is still read against the brands it served then.
     */
    detachedAt: integer("detached_at"),
    /**
     * When the brand started using the number (ms; 0 for links older than this column): an SMS that
     * reached the number before is not read against a brand attached since. A link detached and
     * attached again keeps its first time (the brand is then read as serving in between).
     */
    attachedAt: integer("attached_at").notNull().default(0),
  },
  (t) => [
    primaryKey({ columns: [t.numberId, t.brandId] }),
    // Listing the numbers of a brand.
    index("brand_numbers_brand_id_idx").on(t.brandId),
  ],
);

export const partners = sqliteTable(
  "partners",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    brandId: integer("brand_id")
      .notNull()
      .references(() => brands.id),
    /** İYS retailerCode: 8 digits. */
    retailerCode: text("retailer_code").notNull(),
    name: text("name").notNull(),
    // Where the partner receives changes, and the signing secret, live on its endpoint (endpoints.partner_id).
    createdAt: integer("created_at").notNull(),
    /** SHA-256 (hex) of the partner's own API key for reporting changes; the key itself is shown once. */
    apiKeyHash: text("api_key_hash"),
  },
  (t) => [
    uniqueIndex("partners_brand_id_retailer_code_idx").on(t.brandId, t.retailerCode),
    // A partner's request is authenticated by its key before its body is read (the brand is in the body).
    index("partners_api_key_hash_idx").on(t.apiKeyHash),
  ],
);
