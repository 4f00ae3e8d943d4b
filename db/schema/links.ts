import { integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { consentTypes, recipientTypes } from "../../src/domain/consent";
import { brands } from "./brands";

/**
 * E-mail rejection links: one row per (brand, recipient, recipientType, type), so issuing twice gives
 * the same link. The token carries only `linkId` (random) and a signature; the address stays here.
 */
export const links = sqliteTable(
  "links",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    /** 8 random bytes, hex: the part of the token that names this row. */
    linkId: text("link_id").notNull(),
    brandId: integer("brand_id")
      .notNull()
      .references(() => brands.id),
    /** Normalised e-mail address. */
    recipient: text("recipient").notNull(),
    recipientType: text("recipient_type", { enum: recipientTypes }).notNull(),
    type: text("type", { enum: consentTypes }).notNull(),
    createdAt: integer("created_at").notNull(),
    /** ms since epoch; null = never. Moved forward at every issuance when the brand sets `linkExpiryDays`. */
    expiresAt: integer("expires_at"),
  },
  (t) => [
    // Resolving a token.
    uniqueIndex("links_link_id_idx").on(t.linkId),
    // Issuing the same link twice finds the row it made the first time.
    uniqueIndex("links_brand_id_recipient_recipient_type_type_idx").on(t.brandId, t.recipient, t.recipientType, t.type),
  ],
);
