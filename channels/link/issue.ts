import { randomBytes } from "node:crypto";
import { stmt, type Db } from "../../db/index";
import type { Brand } from "../../src/brands";
import { normalizeEmail, type AddressError } from "../../src/domain/address";
import type { RecipientType } from "../../src/domain/consent";
import { LINK_ID_BYTES, signLinkToken, verifyLinkToken, type LinkKeyring } from "./token";

/** What a sender puts in the e-mail: the link and the RFC 2369 / RFC 8058 headers. */
export interface IssuedLink {
  url: string;
  headers: { "List-Unsubscribe": string; "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" };
  expiresAt: string | null;
}

export type IssueResult = ({ ok: true } & IssuedLink) | { ok: false; error: { code: AddressError["code"]; message: string } };

export interface LinkRow {
  id: number;
  linkId: string;
  brandId: number;
  recipient: string;
  recipientType: RecipientType;
  type: "EPOSTA";
  createdAt: number;
  expiresAt: number | null;
}

const DAY_MS = 86_400_000;

/** Days a brand's links stay valid after their last issuance (`settings.linkExpiryDays`), or null for never. */
export function linkExpiryDays(brand: Pick<Brand, "settings">): number | null {
  const v = brand.settings.linkExpiryDays;
  return typeof v === "number" && Number.isInteger(v) && v > 0 ? v : null;
}

export function linkUrl(baseUrl: string, ring: LinkKeyring, linkId: string): string {
  return `${baseUrl}/r/${signLinkToken(ring, Buffer.from(linkId, "hex"))}`;
}

/**
 * Issues (or finds) the link of each recipient for one brand, in one transaction, answers in input
 * order; an address İYS would refuse is answered with its İYS code, the others still get their link.
 * The same recipient gets the same URL every time (as long as the signing key is the same); with a
 * brand expiry, each issuance moves the expiry forward, so a link stays valid N days after the last
 * e-mail that carried it. Never back: e-mails already sent carry the URL, so a shorter expiry set
 * since (or one set on a brand whose links had none) applies to new links only.
 */
export function issueLinks(
  db: Db,
  ring: LinkKeyring,
  baseUrl: string,
  brand: Pick<Brand, "id" | "settings">,
  recipients: { recipient: string; recipientType: RecipientType }[],
  now: number,
): IssueResult[] {
  const days = linkExpiryDays(brand);
  const expiresAt = days === null ? null : now + days * DAY_MS;
  const insert = stmt<unknown[], { linkId: string; expiresAt: number | null }>(
    db,
    `INSERT INTO links (link_id, brand_id, recipient, recipient_type, type, created_at, expires_at) VALUES (?, ?, ?, ?, 'EPOSTA', ?, ?)
     ON CONFLICT (brand_id, recipient, recipient_type, type) DO UPDATE SET expires_at =
       CASE WHEN links.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL ELSE max(links.expires_at, excluded.expires_at) END
     RETURNING link_id AS linkId, expires_at AS expiresAt`,
  );
  return db.$client.transaction(() =>
    recipients.map(({ recipient, recipientType }): IssueResult => {
      const email = normalizeEmail(recipient);
      if (!email.ok) return { ok: false, error: { code: email.code, message: email.message } };
      const row = insert.get(randomBytes(LINK_ID_BYTES).toString("hex"), brand.id, email.value, recipientType, now, expiresAt)!;
      const url = linkUrl(baseUrl, ring, row.linkId);
      return {
        ok: true,
        url,
        headers: { "List-Unsubscribe": `<${url}>`, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" },
        expiresAt: row.expiresAt === null ? null : new Date(row.expiresAt).toISOString(),
      };
    }),
  ).immediate();
}

export type Resolved = { kind: "ok"; link: LinkRow } | { kind: "expired" } | { kind: "unknown" };

/** A token's link row: unknown for anything forged, truncated, re-keyed or not (or no longer) in the table. */
export function resolveLink(db: Db, ring: LinkKeyring, token: string, now: number): Resolved {
  const linkId = verifyLinkToken(ring, token);
  if (!linkId) return { kind: "unknown" };
  const link = linkByLinkId(db, linkId.toString("hex"));
  if (!link) return { kind: "unknown" };
  if (link.expiresAt !== null && link.expiresAt <= now) return { kind: "expired" };
  return { kind: "ok", link };
}

const LINK_COLUMNS = `id, link_id AS linkId, brand_id AS brandId, recipient, recipient_type AS recipientType, type, created_at AS createdAt, expires_at AS expiresAt`;

export function linkByLinkId(db: Db, linkId: string): LinkRow | null {
  return stmt<[string], LinkRow>(db, `SELECT ${LINK_COLUMNS} FROM links WHERE link_id = ?`).get(linkId) ?? null;
}

export function linkById(db: Db, id: number): LinkRow | null {
  return stmt<[number], LinkRow>(db, `SELECT ${LINK_COLUMNS} FROM links WHERE id = ?`).get(id) ?? null;
}

/** `a***@e***.com`: enough for the recipient to recognise the address, not enough to learn it. */
export function maskEmail(address: string): string {
  const at = address.lastIndexOf("@");
  if (at < 0) return "***";
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  const dot = domain.lastIndexOf(".");
  const host = dot > 0 ? domain.slice(0, dot) : domain;
  const tld = dot > 0 ? domain.slice(dot) : "";
  return `${local.slice(0, 1)}***@${host.slice(0, 1)}***${tld}`;
}
