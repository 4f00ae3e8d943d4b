import { Worker, type Job } from "bullmq";
import { Redis } from "ioredis";
import { stmt, type Db } from "../db/index";
import type { OutboxRef } from "../db/ledger";
import { decryptSecret, signWebhook } from "../src/callbacks/crypto";
import type { WebhookClient } from "../src/callbacks/http";
import { disableEndpoint, endpointFailing, getEndpoint, markEndpointFailing, markEndpointHealthy, type EndpointRow } from "../src/callbacks/store";
import { crashPoint } from "../src/crash";
import { formatIysDate, type Clock } from "../src/domain/time";
import type { Logger } from "../src/log";
import { logOnceWhileDown } from "../src/redis";
import { finishOutbox } from "./outbox";
import { observedJob, type JobMetrics } from "./observe";
import { parsePayload } from "./registry";

export interface CallbackDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  client: WebhookClient;
  /** Decrypts endpoint secrets. */
  secretsKey: Buffer;
  /** Delay before each attempt (ms); its length is the number of attempts. */
  schedule: number[];
  timeoutMs: number;
  disableAfterMs: number;
  /** Job durations for /metrics. */
  metrics?: JobMetrics;
  /** Enqueues one row's attempt after `delayMs`; the job id includes `at`, so asking twice is one job. */
  scheduleAttempt(outboxId: number, delayMs: number, at: number): Promise<void>;
  /** `tag` makes the jobs' ids new (a row enqueued again after its first job completed: BullMQ keeps that id a while). */
  enqueueOutbox(rows: OutboxRef[], opts?: { tag?: string; bulk?: boolean }): Promise<void>;
}

const NOTICE = "/endpoint.disabled/";

/** SQL: an outbox row targets endpoint `@id`: its changes (the endpoint's id) and notices to it (`<id>/endpoint.disabled/…`). */
const TO_ENDPOINT = `(target = @id OR substr(target, 1, length(@id) + ${NOTICE.length}) = @id || '${NOTICE}')`;

/** A replayed notice's target ends with the first row's id (`#<id>`): its webhook-id stays that row's. */
const REPLAY_OF = "#";

/**
 * `target` of a callback row: the endpoint id, or `<endpoint>/endpoint.disabled/<disabled endpoint>`
 * for a notice, with `#<row id>` after it for a replayed one.
 */
export function parseTarget(target: string): { endpointId: string; disabledEndpointId?: string; noticeRowId?: number } {
  const i = target.indexOf(NOTICE);
  if (i < 0) return { endpointId: target };
  const [disabledEndpointId, first] = target.slice(i + NOTICE.length).split(REPLAY_OF) as [string, string | undefined];
  return { endpointId: target.slice(0, i), disabledEndpointId, ...(first === undefined ? {} : { noticeRowId: Number(first) }) };
}

/** The target of a replay of `row`: a notice's names the row it copies (the first one's, for a replay of a replay). */
export function replayTarget(row: { id: number; eventId: number | null; target: string }): string {
  return row.eventId === null && parseTarget(row.target).noticeRowId === undefined ? `${row.target}${REPLAY_OF}${row.id}` : row.target;
}

/**
 * Stable per (event, endpoint): every retry and replay of it carries the same id, so receivers can
 * deduplicate. A notice is its own row: an endpoint disabled, enabled and disabled again makes a
 * second notice with a new id (not one a receiver would drop as seen); a replay of a notice keeps the
 * id of the row it copies (replayTarget).
 */
export function webhookId(row: { id: number; eventId: number | null; target: string }): string {
  const { endpointId, disabledEndpointId, noticeRowId } = parseTarget(row.target);
  return row.eventId !== null ? `evt_${row.eventId}_${endpointId}` : `msg_disabled_${disabledEndpointId}_${endpointId}_${noticeRowId ?? row.id}`;
}

/** Writes callback rows outside the ledger (replays, notices); the caller enqueues them. */
export function insertCallbackRows(db: Db, rows: { eventId: number | null; target: string }[], now: number): OutboxRef[] {
  const insert = stmt(db, `INSERT INTO outbox (kind, event_id, receipt_id, target, status, attempts, created_at, updated_at) VALUES ('callback', ?, NULL, ?, 'pending', 0, ?, ?) RETURNING id`);
  return db.$client.transaction(() => rows.map((r) => ({ id: (insert.get(r.eventId, r.target, now, now) as { id: number }).id, kind: "callback" as const })))();
}

interface ClaimedRow {
  id: number;
  eventId: number | null;
  target: string;
  attempts: number;
}

interface EventForBody {
  id: number;
  brandId: number;
  brand: string;
  recipient: string;
  recipientType: string;
  type: string;
  status: string;
  source: string | null;
  consentDate: number | null;
  retailerCode: string | null;
  receivedAt: number;
  hash: string;
}

const EVENT_SELECT = `SELECT e.id, e.brand_id AS brandId, b.code AS brand, e.recipient, e.recipient_type AS recipientType, e.type, e.status, e.source,
  e.consent_date AS consentDate, e.retailer_code AS retailerCode, e.received_at AS receivedAt, e.hash
  FROM consent_events e JOIN brands b ON b.id = e.brand_id WHERE e.id = ?`;

// An unfinished delivery of an earlier change of the same consent to the same endpoint, with the
// status its endpoint answered to its last attempt.
const EARLIER_PENDING = `SELECT o.id, o.event_id AS eventId, o.next_attempt_at AS nextAttemptAt, o.updated_at AS updatedAt, o.claimed_until AS claimedUntil,
    (SELECT d.response_code FROM deliveries d WHERE d.outbox_id = o.id ORDER BY d.attempt DESC LIMIT 1) AS lastCode,
    o.attempts, (SELECT max(d.attempt) FROM deliveries d WHERE d.outbox_id = o.id) AS lastSent
  FROM consent_events e JOIN outbox o ON o.event_id = e.id
  WHERE e.brand_id = ? AND e.recipient = ? AND e.recipient_type = ? AND e.type = ? AND e.id < ?
    AND o.kind = 'callback' AND o.target = ? AND o.status = 'pending' ORDER BY e.id LIMIT 1`;

const LAST_CODE = `SELECT response_code AS code FROM deliveries WHERE outbox_id = ? ORDER BY attempt DESC LIMIT 1`;

const rejectedReason = (code: number, newerEventId: number) =>
  `refused by the endpoint (HTTP ${code}); event ${newerEventId}, a newer change of the same consent, goes instead`;

/**
 * A receiver's answer that refuses this request itself rather than saying "not now": a 4xx other than
 * 408 (timeout), 425 (too early) and 429 (too many requests). Sending the same body again is unlikely
 * to change it, so such a change does not hold a newer change of the same consent behind it.
 */
export function isRejection(code: number | null | undefined): boolean {
  return code != null && code >= 400 && code < 500 && code !== 408 && code !== 425 && code !== 429;
}

/** How long an attempt's claim keeps other jobs off its row: the send's timeout and some. */
const leaseMs = (deps: CallbackDeps) => deps.timeoutMs + 5000;

// Newer changes of the same consent for the same endpoint: the newest delivered, and the newest
// still to go. An older change sent (a replay) after a newer one was delivered, with nothing newer
// than that one to follow, would leave the receiver on a state the hub has left (an ONAY after its
// RET). A change still to go that is itself older than the one delivered does not count: it is
// superseded in its turn (two old changes replayed: the ONAY went out for its RET, which was then skipped).
const NEWER = `SELECT max(CASE WHEN o.status = 'done' THEN e.id END) AS done, max(CASE WHEN o.status = 'pending' THEN e.id END) AS pending
  FROM consent_events e JOIN outbox o ON o.event_id = e.id
  WHERE e.brand_id = ? AND e.recipient = ? AND e.recipient_type = ? AND e.type = ? AND e.id > ?
    AND o.kind = 'callback' AND o.target = ? AND o.status IN ('done', 'pending')`;

export function consentChangedBody(e: EventForBody): string {
  return JSON.stringify({
    type: "consent.changed",
    timestamp: new Date(e.receivedAt).toISOString(),
    data: {
      brand: e.brand,
      recipient: e.recipient,
      recipientType: e.recipientType,
      type: e.type,
      status: e.status,
      source: e.source,
      consentDate: e.consentDate === null ? null : formatIysDate(new Date(e.consentDate)),
      ...(e.retailerCode ? { retailerCode: e.retailerCode } : {}),
      eventId: e.id,
      ledgerHash: e.hash,
    },
  });
}

function noticeBody(disabled: EndpointRow | null, disabledId: string, now: number): string {
  return JSON.stringify({
    type: "endpoint.disabled",
    timestamp: new Date(disabled?.disabledAt ?? now).toISOString(),
    data: {
      endpointId: disabledId,
      kind: disabled?.kind ?? null,
      url: disabled?.url ?? null,
      failingSince: disabled?.failingSince ? new Date(disabled.failingSince).toISOString() : null,
      disabledAt: disabled?.disabledAt ? new Date(disabled.disabledAt).toISOString() : null,
      reason: disabled?.disabledReason ?? null,
    },
  });
}

/** The current secret and, during a rotation's overlap window, the previous one. */
function signingSecrets(deps: CallbackDeps, ep: EndpointRow, now: number): string[] {
  const secrets = [decryptSecret(deps.secretsKey, ep.secretEnc)];
  if (ep.previousSecretEnc && (ep.previousSecretExpiresAt ?? 0) > now) secrets.push(decryptSecret(deps.secretsKey, ep.previousSecretEnc));
  return secrets;
}

/**
 * The callback worker's state: rows in flight in this process (a later change of the same consent
 * waits for them rather than for their lease to run out).
 */
/** The longest an endpoint that keeps failing has its rows wait without an attempt (it is probed at least this often). */
const MAX_COOLING_MS = 3_600_000;

export class CallbackDelivery {
  private readonly inFlight = new Map<number, Promise<string>>();
  /**
   * Endpoints whose last attempt here failed (a timeout, no connection, a 5xx, a 429), and until when
   * their other rows wait without being sent: the failed row's next attempt, or the end of an attempt
   * probing it now (0: failing by the database, no cooling time known here: probe first). Without
   * it every job holding one of a dead endpoint's rows kept a worker slot for the whole timeout, so
   * one dealer's broken URL slowed every other endpoint's deliveries to a trickle (32 slots ÷ 15 s).
   * A hint only: the database says whether the endpoint still fails (another process's success ends
   * it, another's failure starts it here too), and a success here sends the rows that waited at once.
   */
  private readonly cooling = new Map<string, number>();
  /** Failing endpoints with an attempt in flight here, and until when at most (its lease). */
  private readonly probing = new Map<string, number>();

  constructor(readonly deps: CallbackDeps) {}

  /** Rows of one endpoint go one after another in id order; different endpoints at once. */
  async run(outboxIds: number[]): Promise<string> {
    const targets = new Map<string, number[]>();
    const select = stmt(this.deps.db, `SELECT target FROM outbox WHERE id = ?`);
    for (const id of [...outboxIds].sort((a, b) => a - b)) {
      const t = (select.get(id) as { target: string | null } | undefined)?.target ?? "";
      targets.set(t, [...(targets.get(t) ?? []), id]);
    }
    const counts: Record<string, number> = {};
    await Promise.all(
      [...targets.entries()].map(async ([target, ids]) => {
        const endpointId = parseTarget(target).endpointId;
        for (const id of ids) {
          const gate = await this.waitWhileFailing(id, endpointId);
          if (gate.waiting) {
            counts[gate.waiting] = (counts[gate.waiting] ?? 0) + 1;
            continue;
          }
          const p = this.deliver(id);
          this.inFlight.set(id, p);
          try {
            const outcome = await p;
            counts[outcome] = (counts[outcome] ?? 0) + 1;
          } finally {
            this.inFlight.delete(id);
            if (gate.probe !== undefined && this.probing.get(endpointId) === gate.probe) this.probing.delete(endpointId);
          }
        }
      }),
    );
    return Object.entries(counts).map(([k, v]) => `${k}: ${v}`).join(", ");
  }

  private now() {
    return this.deps.clock.now().getTime();
  }

  /**
   * A row of an endpoint failing here: while one of its rows is being tried, the others wait for
   * that attempt's end; while it cools down, new rows (no attempt yet) wait for the cooling's end,
   * and a row already in its retry schedule is tried, one at a time. A row that waits is moved
   * without an attempt (its schedule is not used up) and answered "waiting for a failing endpoint";
   * otherwise it is sent now, as the endpoint's probe while it fails (`probe`: the end of that attempt).
   */
  private async waitWhileFailing(id: number, endpointId: string): Promise<{ waiting?: string; probe?: number }> {
    const known = this.cooling.get(endpointId);
    if (!endpointFailing(this.deps.db, endpointId)) {
      if (known !== undefined) this.cooling.delete(endpointId);
      return {};
    }
    // Failing by the database, with no failure seen here (this process started since, or another
    // one's attempts failed): no cooling time known, so its first row probes it and the others wait
    // for that attempt. Without it a restarted worker's first wave all went to a dead endpoint,
    // each holding a worker slot for the whole timeout.
    const until = known ?? 0;
    if (known === undefined) this.cooling.set(endpointId, until);
    const now = this.now();
    const row = stmt(this.deps.db, `SELECT status, attempts, next_attempt_at AS nextAttemptAt FROM outbox WHERE id = ?`).get(id) as
      | { status: string; attempts: number; nextAttemptAt: number | null }
      | undefined;
    // Finished or not due (a job left from an earlier move): deliver() answers it without sending, and it probes nothing.
    if (!row || row.status !== "pending" || (row.nextAttemptAt !== null && row.nextAttemptAt > now)) return {};
    const probing = this.probing.get(endpointId);
    const inFlight = probing !== undefined && probing > now;
    if (inFlight || (until > now && row.attempts === 0)) {
      const at = (inFlight ? probing : until) + Math.floor(Math.random() * 1000);
      const moved = stmt(
        this.deps.db,
        `UPDATE outbox SET next_attempt_at = @at, updated_at = @now WHERE id = @id AND kind = 'callback' AND status = 'pending'
           AND (next_attempt_at IS NULL OR next_attempt_at <= @now)`,
      ).run({ at, now, id });
      if (moved.changes === 0) return {};
      await this.schedule(id, at - now, at);
      return { waiting: "waiting for a failing endpoint" };
    }
    // Due, nothing in flight: a retry on its schedule while the endpoint cools, or the first row after: the probe.
    const probe = now + leaseMs(this.deps);
    this.probing.set(endpointId, probe);
    return { probe };
  }

  /**
   * After an attempt: a failure makes the endpoint's other rows wait until the failed row's retry or
   * as long again as the endpoint has been failing, whichever is later (at most an hour: the waits
   * double, so a backlog of a dead dealer's rows is not moved every few seconds); a success after
   * failures sends those that waited.
   */
  private async afterAttempt(endpointId: string, ok: boolean, wasFailing: boolean, retryAt: number | null, failingFor: number, at: number): Promise<void> {
    if (!ok) {
      const until = at + Math.min(MAX_COOLING_MS, Math.max((retryAt ?? at) - at, failingFor, 1000));
      this.cooling.set(endpointId, Math.max(until, this.cooling.get(endpointId) ?? 0));
      return;
    }
    this.cooling.delete(endpointId);
    if (wasFailing) await releaseWaitingRows(this.deps, endpointId, at);
  }

  /** One attempt of one row, when it is due; everything it decides is committed before it returns. */
  async deliver(id: number): Promise<string> {
    try {
      return await this.attempt(id);
    } catch (err) {
      // Anything that throws between the claim and the commit (a secret that no longer decrypts after
      // CALLBACK_SECRETS_KEY changed, a database error) is a failed attempt like a refused delivery:
      // counted, retried on the schedule, exhausted at its end — never a row left pending unseen.
      const message = err instanceof Error ? err.message : String(err);
      const at = this.now();
      const row = stmt(this.deps.db, `SELECT attempts FROM outbox WHERE id = ? AND status = 'pending'`).get(id) as { attempts: number } | undefined;
      if (!row) throw err;
      const attempt = row.attempts + 1;
      this.deps.log.warn({ outboxId: id, attempt, err: message }, "callback attempt failed before sending");
      if (attempt >= this.deps.schedule.length) {
        finishOutbox(this.deps.db, id, "exhausted", at, message);
        return "exhausted";
      }
      const retryAt = at + this.deps.schedule[attempt]!;
      stmt(this.deps.db, `UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ? AND status = 'pending'`).run(
        message, retryAt, at, id);
      await this.schedule(id, retryAt - at, retryAt);
      return "to retry";
    }
  }

  private async attempt(id: number): Promise<string> {
    const { db, log } = this.deps;
    const now = this.now();
    // A lease: no other job (a sweeper re-enqueue, a stalled job's rerun) sends the row while this attempt runs.
    const lease = now + leaseMs(this.deps);
    const row = stmt(
      db,
      `UPDATE outbox SET next_attempt_at = @lease, claimed_until = @lease, updated_at = @now WHERE id = @id AND kind = 'callback' AND status = 'pending'
         AND (next_attempt_at IS NULL OR next_attempt_at <= @now) RETURNING id, event_id AS eventId, target, attempts`,
    ).get({ lease, now, id }) as ClaimedRow | undefined;
    if (!row) {
      const current = stmt(db, `SELECT status, next_attempt_at AS nextAttemptAt FROM outbox WHERE id = ?`).get(id) as
        | { status: string; nextAttemptAt: number | null }
        | undefined;
      if (current?.status === "pending" && current.nextAttemptAt !== null) {
        await this.schedule(id, current.nextAttemptAt - now, current.nextAttemptAt);
        return "not due";
      }
      return "already finished";
    }
    const { endpointId, disabledEndpointId } = parseTarget(row.target);
    const endpoint = getEndpoint(db, endpointId);
    if (!endpoint || endpoint.status !== "active") {
      finishOutbox(db, id, "skipped", now, endpoint ? "endpoint disabled" : "endpoint deleted");
      return "skipped";
    }

    let body: string;
    if (row.eventId !== null) {
      const event = stmt(db, EVENT_SELECT).get(row.eventId) as EventForBody | undefined;
      if (!event) {
        finishOutbox(db, id, "failed", now, "event not found");
        return "failed";
      }
      const newer = stmt(db, NEWER).get(event.brandId, event.recipient, event.recipientType, event.type, event.id, row.target) as { done: number | null; pending: number | null };
      if (newer.done !== null && (newer.pending === null || newer.pending < newer.done)) {
        finishOutbox(db, id, "skipped", now, `superseded: event ${newer.done}, a newer change of the same consent, was delivered to the endpoint`);
        return "superseded";
      }
      // Refused by the receiver last time, and no longer the consent's newest change: the newer one
      // goes instead (it carries the state to end on), rather than waiting behind this one for the
      // whole retry schedule — a RET to a dealer held for days by an ONAY the dealer cannot take.
      const newest = Math.max(newer.done ?? 0, newer.pending ?? 0);
      const lastCode = newest > 0 ? (stmt(db, LAST_CODE).get(id) as { code: number | null } | undefined)?.code : null;
      if (isRejection(lastCode)) {
        finishOutbox(db, id, "failed", now, rejectedReason(lastCode!, newest));
        return "refused";
      }
      for (;;) {
        const earlier = stmt(db, EARLIER_PENDING).get(event.brandId, event.recipient, event.recipientType, event.type, event.id, row.target) as
          | { id: number; eventId: number; nextAttemptAt: number | null; updatedAt: number; claimedUntil: number | null; lastCode: number | null; attempts: number; lastSent: number | null }
          | undefined;
        if (!earlier) break;
        const running = this.inFlight.get(earlier.id);
        if (running) {
          this.release(id, now);
          await running.catch(() => {});
          return this.attempt(id);
        }
        // An earlier change its receiver refused, and not being sent right now (a claim, in any
        // process and whatever its CALLBACK_TIMEOUT_MS, sets claimed_until and next_attempt_at to its
        // lease's end): it ends here, failed, and this newer change goes. The compare on
        // next_attempt_at and updated_at loses to a claim made since.
        // A row claimed by a process of the version before claimed_until (a rolling upgrade): its
        // lease told by its length, as that version did.
        const claimed =
          earlier.nextAttemptAt !== null &&
          earlier.nextAttemptAt > now &&
          (earlier.claimedUntil !== null ? earlier.claimedUntil === earlier.nextAttemptAt : earlier.nextAttemptAt - earlier.updatedAt === leaseMs(this.deps));
        if (isRejection(earlier.lastCode) && !claimed) {
          const ended = stmt(
            db,
            `UPDATE outbox SET status = 'failed', last_error = ?, attempts = attempts + 1, updated_at = ?
               WHERE id = ? AND status = 'pending' AND next_attempt_at IS ? AND updated_at = ?`,
          ).run(rejectedReason(earlier.lastCode!, event.id), now, earlier.id, earlier.nextAttemptAt, earlier.updatedAt);
          if (ended.changes === 1) {
            log.info({ outboxId: earlier.id, eventId: earlier.eventId, status: earlier.lastCode, newerEventId: event.id }, "callback refused by its receiver given up for a newer change");
            continue;
          }
        }
        // The earlier change waits for a retry after failures of the endpoint's (not its refusal of
        // that body), and the endpoint answers again: it goes now, and this one right behind it —
        // not hours later on the earlier one's schedule (a RET held behind an ONAY's 10-hour retry).
        // Not one whose last attempt failed before sending (a secret that no longer decrypts): the
        // endpoint answering says nothing of it, and pulled forward at each wake of this one it used
        // up its schedule in seconds.
        let earlierAt = earlier.nextAttemptAt;
        const failedAtEndpoint = earlier.attempts === (earlier.lastSent ?? 0);
        if (earlierAt !== null && earlierAt > now && !claimed && failedAtEndpoint && !isRejection(earlier.lastCode) && !endpointFailing(db, endpoint.id)) {
          const pulled = stmt(db, `UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND status = 'pending' AND next_attempt_at = ?`).run(now, earlier.id, earlierAt);
          if (pulled.changes === 1) {
            earlierAt = now;
            await this.schedule(earlier.id, 0, now);
          }
        }
        const at = Math.max(earlierAt ?? now, now) + 250;
        this.release(id, at);
        await this.schedule(id, at - now, at);
        return "waiting for an earlier change";
      }
      body = consentChangedBody(event);
    } else {
      body = noticeBody(disabledEndpointId ? getEndpoint(db, disabledEndpointId) : null, disabledEndpointId ?? "", now);
    }

    const msgId = webhookId(row);
    const timestamp = Math.floor(now / 1000);
    const signature = signingSecrets(this.deps, endpoint, now)
      .map((s) => signWebhook(s, msgId, timestamp, body))
      .join(" ");
    const res = await this.deps.client.post(endpoint.url, { "webhook-id": msgId, "webhook-timestamp": String(timestamp), "webhook-signature": signature }, body);
    crashPoint("callback-after-response");

    const at = this.now();
    const attempt = row.attempts + 1;
    const last = attempt >= this.deps.schedule.length;
    let retryAt: number | null = null;
    let disabled = false;
    let wasFailing = false;
    let failingFor = 0;
    let notices: OutboxRef[] = [];
    db.$client.transaction(() => {
      stmt(db, `INSERT INTO deliveries (outbox_id, endpoint_id, attempt, ok, response_code, latency_ms, error, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(
        id, endpoint.id, attempt, res.ok ? 1 : 0, res.status, res.latencyMs, res.error, at);
      if (res.ok) {
        finishOutbox(db, id, "done", at, undefined, { status: res.status, latencyMs: res.latencyMs, attempt });
        wasFailing = markEndpointHealthy(db, endpoint.id);
        return;
      }
      if (last) finishOutbox(db, id, "exhausted", at, res.error ?? "failed");
      else {
        retryAt = at + this.deps.schedule[attempt]!;
        stmt(db, `UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ? AND status = 'pending'`).run(
          res.error ?? "failed", retryAt, at, id);
      }
      const since = markEndpointFailing(db, endpoint.id, at);
      failingFor = at - since;
      // The notices are written with the disabling, in one commit: a crash or a Redis error after it
      // cannot leave an endpoint disabled that nobody heard of (the sweeper sends what is written).
      if (at - since >= this.deps.disableAfterMs && disableEndpoint(db, endpoint.id, `failing since ${new Date(since).toISOString()}`, at)) {
        disabled = true;
        notices = this.noticeRows(endpoint, at);
      }
      // The row ran out of attempts and the endpoint has nothing else to deliver: nothing will tell
      // whether it stays down, so its failing streak ends here. Kept, a failure days later (a retry
      // schedule shorter than CALLBACK_DISABLE_AFTER_HOURS, sparse traffic) would count all that
      // time as failing and disable an endpoint that failed twice.
      // Its rows are those targeting it: changes (the endpoint's id) and notices to it (`<id>/endpoint.disabled/…`).
      const more = stmt(
        db,
        `SELECT 1 FROM outbox WHERE status = 'pending' AND kind = 'callback'
           AND ${TO_ENDPOINT} LIMIT 1`,
      );
      if (last && !disabled && !more.get({ id: endpoint.id })) {
        markEndpointHealthy(db, endpoint.id);
      }
    })();

    if (disabled) {
      this.deps.log.error(
        { endpointId: endpoint.id, kind: endpoint.kind, failingSince: endpoint.failingSince, notified: notices.length },
        "callback endpoint disabled after failing continuously",
      );
    }
    if (retryAt !== null) await this.schedule(id, retryAt - at, retryAt);
    if (notices.length > 0) await this.deps.enqueueOutbox(notices);
    // A receiver refusing this one body (a 4xx) is up: only a failure to take anything makes its other rows wait.
    if (res.ok || !isRejection(res.status)) await this.afterAttempt(endpoint.id, res.ok, wasFailing, retryAt, failingFor, at);
    if (res.ok) return "delivered";
    log.info({ outboxId: id, endpointId: endpoint.id, attempt, status: res.status, err: res.error }, "callback attempt failed");
    return last ? "exhausted" : "to retry";
  }

  /**
   * Schedules the row's next attempt, whose time is committed already: a Redis error then is no
   * failed attempt (counting it skipped one of the schedule, and could exhaust the row early), only
   * logged; the sweeper re-enqueues the row once it is due.
   */
  private async schedule(id: number, delayMs: number, at: number): Promise<void> {
    try {
      await this.deps.scheduleAttempt(id, delayMs, at);
    } catch (err) {
      this.deps.log.warn({ outboxId: id, err: err instanceof Error ? err.message : String(err) }, "callback attempt not scheduled; the sweeper re-enqueues it when due");
    }
  }

  private release(id: number, at: number) {
    stmt(this.deps.db, `UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND status = 'pending'`).run(at, id);
  }

  /** Notice rows for the provider's other active subscriptions that take `endpoint.disabled` (inside the disabling transaction). */
  private noticeRows(endpoint: EndpointRow, now: number): OutboxRef[] {
    const others = (
      stmt(db(this), `SELECT id, events FROM endpoints WHERE kind = 'subscription' AND status = 'active' AND id != ? ORDER BY created_at, id`).all(endpoint.id) as {
        id: string;
        events: string;
      }[]
    ).filter((o) => (JSON.parse(o.events) as string[]).includes("endpoint.disabled"));
    return insertCallbackRows(db(this), others.map((o) => ({ eventId: null, target: `${o.id}${NOTICE}${endpoint.id}` })), now);
  }
}

/**
 * The rows of an endpoint that waited for it while it failed, sent now (it answered again, or was
 * enabled or given a new URL): those never tried yet (notices to it too). Rows in their retry
 * schedule keep it: a change the receiver refuses must not use up its attempts each time another
 * one gets through. Under a new tag: their first job's id may still be in BullMQ (kept after it completed).
 */
export async function releaseWaitingRows(
  deps: Pick<CallbackDeps, "db" | "log" | "enqueueOutbox">,
  endpointId: string,
  at: number,
  opts: { retries?: boolean } = {},
): Promise<number> {
  // `retries`: a new URL, so the rows' failures were the old one's: their schedules start over too.
  // A chunk a statement, in id order (one pass over the outbox from the first waiting row), each
  // enqueued before the next: a backlog of a long outage (200 000 rows) held the event loop 0.6 s in one UPDATE.
  const release = stmt(
    deps.db,
    `UPDATE outbox SET next_attempt_at = @at, updated_at = @at, claimed_until = ${RELEASED} WHERE id IN (
       SELECT id FROM outbox WHERE kind = 'callback' AND status = 'pending' AND id > @after
         AND (@retries OR attempts = 0) AND next_attempt_at > @at AND (claimed_until IS NULL OR claimed_until <> next_attempt_at)
         AND ${TO_ENDPOINT} ORDER BY id LIMIT ${RELEASE_CHUNK})
     RETURNING id`,
  );
  let total = 0;
  for (let after = 0; ; ) {
    const released = release.all({ at, id: endpointId, retries: opts.retries ? 1 : 0, after }) as { id: number }[];
    if (released.length === 0) break;
    total += released.length;
    for (const r of released) after = Math.max(after, r.id);
    // A backlog: behind the changes that come meanwhile (a refusal texted now goes first), as an import's are.
    await deps.enqueueOutbox(released.map((r) => ({ id: r.id, kind: "callback" }) as OutboxRef), { tag: `released-${at}`, bulk: true }).catch((err: Error) =>
      deps.log.warn({ endpointId, err: err.message }, "released callback rows not enqueued; the sweeper sends them"),
    );
    if (released.length < RELEASE_CHUNK) break;
  }
  if (total > 0) deps.log.info({ endpointId, released: total }, "callback endpoint answering again: the deliveries that waited for it go now");
  return total;
}

/**
 * `claimed_until` of a row released into a prioritized job (behind live traffic), until its next
 * claim: the sweeper leaves such a row to that job (jobs/sweeper.ts). Never a lease's end.
 */
export const RELEASED = -1;

/** Rows a release moves in one statement. */
const RELEASE_CHUNK = 2000;

const db = (d: CallbackDelivery) => d.deps.db;

export interface CallbackWorkerOptions {
  redisUrl: string;
  prefix: string;
  concurrency?: number;
}

/**
 * The `callbacks` queue's worker. It does not use BullMQ's retries: a failed attempt stays a
 * pending outbox row with `next_attempt_at` and a delayed job for that moment (the configured
 * schedule, not BullMQ's exponential backoff); the sweeper re-enqueues a due row whose job vanished.
 */
export function startCallbackWorker(delivery: CallbackDelivery, opts: CallbackWorkerOptions): { worker: Worker; close(): Promise<void> } {
  const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  const log = delivery.deps.log;
  const worker = new Worker(
    "callbacks",
    async function deliverCallbacks(job: Job) {
      const { outboxIds } = parsePayload("callbacks", job.name, job.data) as { outboxIds: number[] };
      return observedJob(delivery.deps, "callbacks", job, () => delivery.run(outboxIds));
    },
    // A short lock: a worker killed mid-delivery has its job picked up again within seconds.
    { connection, prefix: opts.prefix, concurrency: opts.concurrency ?? 32, lockDuration: 15_000, stalledInterval: 10_000, autorun: true },
  );
  worker.on("error", logOnceWhileDown(connection, log, { queue: "callbacks" }, "worker error"));
  return {
    worker,
    async close() {
      await worker.close();
      delivery.deps.client.close();
      connection.disconnect();
    },
  };
}
