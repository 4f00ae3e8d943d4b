import { randomBytes } from "node:crypto";
import { stmt, type Db } from "../../db/index";
import type { LedgerEvent, OutboxInput, OutboxPlanner, PlanContext } from "../../db/ledger";
import type { CallbackEventType, EndpointKind, EndpointStatus } from "../../db/schema";

export interface EndpointRow {
  id: string;
  kind: EndpointKind;
  brands: number[] | "*";
  events: CallbackEventType[];
  url: string;
  description: string | null;
  secretEnc: string;
  previousSecretEnc: string | null;
  previousSecretExpiresAt: number | null;
  status: EndpointStatus;
  failingSince: number | null;
  disabledAt: number | null;
  disabledReason: string | null;
  partnerId: number | null;
  createdAt: number;
  updatedAt: number;
}

const COLUMNS = `id, kind, brands, events, url, description, secret_enc AS secretEnc, previous_secret_enc AS previousSecretEnc,
  previous_secret_expires_at AS previousSecretExpiresAt, status, failing_since AS failingSince, disabled_at AS disabledAt,
  disabled_reason AS disabledReason, partner_id AS partnerId, created_at AS createdAt, updated_at AS updatedAt`;

type Raw = Omit<EndpointRow, "brands" | "events"> & { brands: string; events: string };
const toEndpoint = (r: Raw): EndpointRow => ({ ...r, brands: JSON.parse(r.brands) as EndpointRow["brands"], events: JSON.parse(r.events) as CallbackEventType[] });

export const newEndpointId = () => `ep_${randomBytes(10).toString("hex")}`;

/** Every process caches endpoints per brand; a change anywhere bumps this so the caches reload. */
export function bumpEndpointVersion(db: Db): void {
  stmt(db, `INSERT INTO endpoint_versions (id, version) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET version = version + 1`).run();
}

const ENDPOINT_VERSION = `SELECT version FROM endpoint_versions WHERE id = 1`;

export function endpointVersion(db: Db): number {
  return (stmt(db, ENDPOINT_VERSION).get() as { version: number } | undefined)?.version ?? 0;
}

export function getEndpoint(db: Db, id: string): EndpointRow | null {
  const r = stmt<[string], Raw>(db, `SELECT ${COLUMNS} FROM endpoints WHERE id = ?`).get(id);
  return r ? toEndpoint(r) : null;
}

export function listEndpoints(db: Db, kind: EndpointKind): EndpointRow[] {
  return stmt<[string], Raw>(db, `SELECT ${COLUMNS} FROM endpoints WHERE kind = ? ORDER BY created_at, id`).all(kind).map(toEndpoint);
}

export interface NewEndpoint {
  kind: EndpointKind;
  brands: number[] | "*";
  events: CallbackEventType[];
  url: string;
  description?: string | null;
  secretEnc: string;
  partnerId?: number | null;
}

export function insertEndpoint(db: Db, e: NewEndpoint, now: number): EndpointRow {
  const id = newEndpointId();
  stmt(
    db,
    `INSERT INTO endpoints (id, kind, brands, events, url, description, secret_enc, status, partner_id, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)`,
  ).run(id, e.kind, JSON.stringify(e.brands), JSON.stringify(e.events), e.url, e.description ?? null, e.secretEnc, e.partnerId ?? null, now, now);
  bumpEndpointVersion(db);
  return getEndpoint(db, id)!;
}

export interface EndpointPatch {
  url?: string;
  brands?: number[] | "*";
  events?: CallbackEventType[];
  description?: string | null;
  status?: EndpointStatus;
}

export function updateEndpoint(db: Db, id: string, p: EndpointPatch, now: number): void {
  const sets: string[] = [];
  const values: unknown[] = [];
  // A new URL starts afresh: the old one's failing streak says nothing of it (the same URL sent again keeps it).
  if (p.url !== undefined) sets.push("failing_since = CASE WHEN url = ? THEN failing_since ELSE NULL END", "url = ?"), values.push(p.url, p.url);
  if (p.brands !== undefined) sets.push("brands = ?"), values.push(JSON.stringify(p.brands));
  if (p.events !== undefined) sets.push("events = ?"), values.push(JSON.stringify(p.events));
  if (p.description !== undefined) sets.push("description = ?"), values.push(p.description);
  if (p.status === "active") sets.push("status = 'active'", "failing_since = NULL", "disabled_at = NULL", "disabled_reason = NULL");
  if (p.status === "disabled") sets.push("status = 'disabled'", "disabled_at = ?", "disabled_reason = 'disabled through the API'"), values.push(now);
  sets.push("updated_at = ?");
  values.push(now, id);
  db.$client.prepare(`UPDATE endpoints SET ${sets.join(", ")} WHERE id = ?`).run(...values);
  bumpEndpointVersion(db);
}

export function rotateEndpointSecret(db: Db, id: string, secretEnc: string, overlapUntil: number, now: number): void {
  stmt(
    db,
    `UPDATE endpoints SET previous_secret_enc = secret_enc, previous_secret_expires_at = ?, secret_enc = ?, updated_at = ? WHERE id = ?`,
  ).run(overlapUntil, secretEnc, now, id);
  bumpEndpointVersion(db);
}

export function deleteEndpoint(db: Db, id: string): boolean {
  const r = stmt(db, `DELETE FROM endpoints WHERE id = ?`).run(id);
  bumpEndpointVersion(db);
  return r.changes === 1;
}

/** Marks a failed attempt; returns the start of the failing streak. */
export function markEndpointFailing(db: Db, id: string, now: number): number {
  const r = stmt(db, `UPDATE endpoints SET failing_since = COALESCE(failing_since, ?) WHERE id = ? RETURNING failing_since AS since`).get(now, id) as
    | { since: number }
    | undefined;
  return r?.since ?? now;
}

/** Ends an endpoint's failing streak; true when it had one (it was failing until now). */
export function markEndpointHealthy(db: Db, id: string): boolean {
  return stmt(db, `UPDATE endpoints SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL`).run(id).changes === 1;
}

/** Whether the endpoint's last attempt (in any process) failed, and none has succeeded since. */
export function endpointFailing(db: Db, id: string): boolean {
  return stmt(db, `SELECT 1 FROM endpoints WHERE id = ? AND failing_since IS NOT NULL`).get(id) !== undefined;
}

/** Disables an active endpoint; false when it was not active (another worker got there first). */
export function disableEndpoint(db: Db, id: string, reason: string, now: number): boolean {
  const r = stmt(db, `UPDATE endpoints SET status = 'disabled', disabled_at = ?, disabled_reason = ?, updated_at = ? WHERE id = ? AND status = 'active'`).run(
    now, reason, now, id);
  if (r.changes === 1) bumpEndpointVersion(db);
  return r.changes === 1;
}

interface PlannerEntry {
  id: string;
  brands: number[] | "*";
  events: CallbackEventType[];
  active: boolean;
}

const row = (eventId: number, target: string, active: boolean): OutboxInput =>
  active ? { kind: "callback", eventId, target } : { kind: "callback", eventId, target, skipped: "endpoint disabled: replay to send" };

/**
 * One `callback` outbox row per subscription of the event's brand and per partner endpoint of the
 * brand, except the partner who reported the event. An endpoint that is disabled gets its row too,
 * already `skipped` (never sent): a replay after it is enabled again finds what it missed — without
 * the row a partner switched off over a refusal never learned of it, and a replay sent it the last
 * ONAY it had. Runs inside the ledger transaction, so it reads from a cache (per brand for partners,
 * up to 3000 each) reloaded when the endpoint version moves; the version is read once a transaction
 * (nothing another process commits can move it meanwhile), and an import's plan (Ledger.plan) is
 * written only while it is unchanged (the planner's guard).
 */
export function callbackPlanner(db: Db): OutboxPlanner {
  let version = -1;
  let checkedIn = -1;
  let subscriptions: PlannerEntry[] = [];
  const partnersByBrand = new Map<number, { id: string; retailerCode: string; active: boolean }[]>();
  return Object.assign(function planCallbacks(e: LedgerEvent, context: PlanContext): OutboxInput[] {
    const v = context.transaction === checkedIn ? version : endpointVersion(db);
    checkedIn = context.transaction;
    if (v !== version) {
      version = v;
      partnersByBrand.clear();
      subscriptions = stmt<[], { id: string; brands: string; events: string; active: number }>(
        db,
        `SELECT id, brands, events, status = 'active' AS active FROM endpoints WHERE kind = 'subscription' ORDER BY created_at, id`,
      )
        .all()
        .map((r) => ({
          id: r.id,
          brands: JSON.parse(r.brands) as PlannerEntry["brands"],
          events: JSON.parse(r.events) as CallbackEventType[],
          active: r.active === 1,
        }));
    }
    let partners = partnersByBrand.get(e.brandId);
    if (!partners) {
      partners = stmt<[number], { id: string; retailerCode: string; active: number }>(
        db,
        `SELECT ep.id, p.retailer_code AS retailerCode, ep.status = 'active' AS active FROM partners p JOIN endpoints ep ON ep.partner_id = p.id
          WHERE p.brand_id = ? ORDER BY p.id`,
      )
        .all(e.brandId)
        .map((p) => ({ ...p, active: p.active === 1 }));
      partnersByBrand.set(e.brandId, partners);
    }
    const out: OutboxInput[] = [];
    for (const s of subscriptions) {
      if (!s.events.includes("consent.changed")) continue;
      if (s.brands !== "*" && !s.brands.includes(e.brandId)) continue;
      out.push(row(e.id, s.id, s.active));
    }
    const reporter = e.origin === "partner" ? e.retailerCode : null;
    for (const p of partners) if (p.retailerCode !== reporter) out.push(row(e.id, p.id, p.active));
    return out;
  }, { guard: ENDPOINT_VERSION });
}

export interface DeliveryLogRow {
  id: number;
  outboxId: number;
  endpointId: string;
  attempt: number;
  ok: number;
  responseCode: number | null;
  latencyMs: number;
  error: string | null;
  at: number;
  eventId: number | null;
  outboxStatus: string | null;
}

/** A delivery attempt as the API and `hub deliveries --json` give it (ok a boolean, at an ISO date). */
export const presentDelivery = (d: DeliveryLogRow) => ({
  id: d.id,
  outboxId: d.outboxId,
  eventId: d.eventId,
  attempt: d.attempt,
  ok: d.ok === 1,
  responseCode: d.responseCode,
  latencyMs: d.latencyMs,
  error: d.error,
  at: new Date(d.at).toISOString(),
  deliveryStatus: d.outboxStatus,
});

/** Delivery log of one endpoint, newest first. */
export function deliveryLog(db: Db, endpointId: string | null, opts: { limit: number; failedOnly: boolean }): DeliveryLogRow[] {
  return db.$client
    .prepare(
      `SELECT d.id, d.outbox_id AS outboxId, d.endpoint_id AS endpointId, d.attempt, d.ok, d.response_code AS responseCode, d.latency_ms AS latencyMs,
              d.error, d.at, o.event_id AS eventId, o.status AS outboxStatus
         FROM deliveries d LEFT JOIN outbox o ON o.id = d.outbox_id
        WHERE (? IS NULL OR d.endpoint_id = ?) AND (? = 0 OR d.ok = 0) ORDER BY d.at DESC, d.id DESC LIMIT ?`,
    )
    .all(endpointId, endpointId, opts.failedOnly ? 1 : 0, opts.limit) as DeliveryLogRow[];
}

