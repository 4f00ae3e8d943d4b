import { stmt } from "../../db/index";
import type { AppDeps } from "../../src/env";
import { numberByValue } from "../../src/brands";
import { recordReceipt, ReceiptWriter } from "../../src/receipts";
import { RateLimiter } from "../../src/rate-limit";
import { MicroBatcher } from "../../src/batch";
import { normalizeServiceNumber } from "../../src/api/brands";

export interface InboundSms {
  provider: "twilio" | "vonage";
  /** The provider's own id of this message (MessageSid, messageId): the idempotency key. */
  providerRef: string;
  from: string;
  to: string;
  body: string;
  payload?: Record<string, unknown>;
}

export interface Ingested {
  receiptId: number;
  created: boolean;
  status: string;
}

/**
 * What every inbound SMS goes through once its signature is checked: rate limits (pseudonymous keys
 * in Redis; excess is still recorded, worked at low priority and not confirmed), the number lookup
 * (an unknown `To` is kept as unroutable so the provider stops retrying), one durable receipt, and
 * the apply job. Nothing here waits for Redis: the receipt is what makes the webhook safe to answer.
 */
interface Pending {
  receiptId: number;
  from: string;
  numberId: number;
  /** A provider's retry of a receipt we already had is not counted again. */
  count: boolean;
}

/**
 * How long a receipt may wait for others before the batch goes to Redis: the rate-limit script and
 * the BullMQ add cost ~0.3 ms of CPU a batch whatever its size, so under load 10 ms
 * of patience halves the per-webhook cost; the webhook's answer never waits for it.
 */
const ENQUEUE_WINDOW_MS = 10;

export class SmsIngress {
  private readonly limiter: RateLimiter;
  private readonly pending: MicroBatcher<Pending>;
  private readonly writer: ReceiptWriter;

  constructor(private readonly deps: AppDeps) {
    this.limiter = new RateLimiter(deps.redis, deps.config.QUEUE_PREFIX);
    this.writer = new ReceiptWriter(deps.db);
    this.pending = new MicroBatcher(
      (items) => this.enqueue(items),
      (err, items) => deps.log.warn({ receipts: items.length, err: (err as Error).message }, "enqueue failed; the sweeper will retry"),
      500,
      ENQUEUE_WINDOW_MS,
    );
  }

  /**
   * After the webhook is answered: rate limits for the batch in one pipeline (limited receipts are
   * marked so their confirmation is dropped, and worked after everyone else's), then one addBulk.
   */
  private async enqueue(items: Pending[]): Promise<void> {
    const { config, secrets, db, clock, jobs } = this.deps;
    const counted = items.filter((i) => i.count);
    const flags = await this.limiter.hitMany(
      counted.flatMap((i) => [
        { name: "sms-sender", subject: secrets.pseudonym("rate-limit", i.from), limit: config.SMS_LIMIT_PER_SENDER_PER_HOUR, windowMs: 3_600_000 },
        { name: "sms-number", subject: String(i.numberId), limit: config.SMS_LIMIT_PER_NUMBER_PER_MINUTE, windowMs: 60_000 },
      ]),
      clock.now().getTime(),
    );
    const limited = new Set(counted.filter((_, k) => flags[2 * k] || flags[2 * k + 1]).map((i) => i.receiptId));
    if (limited.size > 0) {
      const mark = db.$client.prepare(`UPDATE receipts SET payload = json_set(payload, '$.limited', json('true')) WHERE id = ? AND status = 'received'`);
      db.$client.transaction(() => {
        for (const id of limited) mark.run(id);
      })();
    }
    await jobs.enqueueReceipts(items.map((i) => ({ id: i.receiptId, ...(limited.has(i.receiptId) ? { priority: 100 } : {}) })));
  }

  /** Waits until every receipt taken so far has been handed to the queue. */
  drain(): Promise<void> {
    return this.pending.drain();
  }

  number(provider: InboundSms["provider"], to: string) {
    const value = normalizeServiceNumber(to);
    const number = value ? numberByValue(this.deps.db, value) : null;
    return number && number.provider === provider && number.channels.includes("sms") ? number : null;
  }

  async ingest(m: InboundSms, opts: { status?: "received" | "part" } = {}): Promise<Ingested> {
    const { clock, log } = this.deps;
    const now = clock.now().getTime();
    const number = this.number(m.provider, m.to);
    const rec = await this.writer.record(
      {
        channel: "sms",
        provider: m.provider,
        providerRef: m.providerRef,
        numberId: number?.id ?? null,
        fromAddress: m.from,
        toAddress: m.to,
        body: m.body,
        payload: m.payload ?? {},
        status: number ? (opts.status ?? "received") : "unroutable",
      },
      now,
    );
    if (rec.created) log.info({ receiptId: rec.id, provider: m.provider, status: rec.status }, "sms receipt");
    if (rec.status === "received" && number) this.pending.push({ receiptId: rec.id, from: m.from, numberId: number.id, count: rec.created });
    return { receiptId: rec.id, created: rec.created, status: rec.status };
  }

  /**
   * One piece of a concatenated SMS: kept as a `part` receipt; the piece that completes the set
   * (within CONCAT_WINDOW_MS) makes one `received` receipt of the whole text (in one IMMEDIATE
   * transaction, so two pieces arriving together in two processes assemble it once) and enqueues it.
   * Pieces that never complete are assembled as they are by the sweeper (assembleStaleParts).
   */
  async ingestPart(m: InboundSms, concat: { ref: string; part: number; total: number }): Promise<Ingested> {
    const piece = await this.ingest({ ...m, payload: { ...m.payload, concat } }, { status: "part" });
    if (piece.status === "unroutable") return piece;
    const { db, clock, log } = this.deps;
    const key: ConcatKey = { from: m.from, provider: m.provider, to: m.to, ref: concat.ref, total: concat.total };
    const since = clock.now().getTime() - CONCAT_WINDOW_MS;
    if (!completeParts(findParts(db, key, since), concat.total)) return piece;
    const done = db.$client
      .transaction(() => {
        const parts = findParts(db, key, since);
        const ordered = completeParts(parts, concat.total);
        // null: another request assembled it meanwhile. Repeats of a part number are marked too.
        return ordered ? assemble(db, key, ordered, clock.now().getTime(), parts) : null;
      })
      .immediate();
    if (done) {
      log.info({ receiptId: done.whole.id, parts: concat.total }, "concatenated sms assembled");
      this.pending.push({ receiptId: done.whole.id, from: m.from, numberId: done.numberId, count: done.whole.created });
    }
    return piece;
  }
}

/**
 * How long the pieces of one concatenated SMS may take to arrive. Phones number their messages with
 * an 8- or 16-bit `concat-ref` and reuse it, so a piece older than this belongs to another message:
 * it is never glued onto a new one (a stale "ONAY " must not complete a new "… MIGROS" whose own first
 * piece said "RET "). After it, the sweeper assembles what arrived of an incomplete message.
 */
export const CONCAT_WINDOW_MS = 15 * 60_000;

interface ConcatKey {
  from: string;
  provider: string;
  to: string;
  ref: string;
  total: number;
}

type Part = { id: number; providerRef: string; numberId: number; body: string; payload: string; receivedAt: number };

function findParts(db: AppDeps["db"], key: ConcatKey, since: number): Part[] {
  return stmt(
    db,
    `SELECT id, provider_ref AS providerRef, number_id AS numberId, body, payload, received_at AS receivedAt FROM receipts
     WHERE status = 'part' AND from_address = ? AND channel = 'sms' AND provider = ? AND to_address = ?
       AND json_extract(payload, '$.concat.ref') = ? AND json_extract(payload, '$.concat.total') = ? AND received_at >= ?
     ORDER BY id`,
  ).all(key.from, key.provider, key.to, key.ref, key.total, since) as Part[];
}

const partNumber = (p: Part) => (JSON.parse(p.payload) as { concat: { part: number } }).concat.part;

/** One piece per part number (the latest of repeats: the newest message), in part order. */
function byPart(parts: Part[]): Part[] {
  const map = new Map<number, Part>();
  for (const p of parts) map.set(partNumber(p), p);
  return [...map.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
}

/** Every piece, in order, or null while some are missing. */
function completeParts(parts: Part[], total: number): Part[] | null {
  const ordered = byPart(parts);
  return ordered.length < total ? null : ordered;
}

/** One `received` receipt of the pieces' text; every piece of the key marked assembled into it. Inside a transaction. */
function assemble(db: AppDeps["db"], key: ConcatKey, ordered: Part[], now: number, allParts: Part[] = ordered) {
  const whole = recordReceipt(
    db,
    {
      channel: "sms",
      provider: key.provider,
      providerRef: `concat:${ordered.map((p) => p.providerRef).join("+")}`,
      numberId: ordered[0]!.numberId,
      fromAddress: key.from,
      toAddress: key.to,
      body: ordered.map((p) => p.body).join(""),
      payload: {
        parts: ordered.length,
        // How far apart its pieces came: those of one message come seconds apart; a piece minutes
        // older may be a leftover of another message under the same reused concat-ref.
        spreadMs: Math.max(...ordered.map((p) => p.receivedAt)) - Math.min(...ordered.map((p) => p.receivedAt)),
        ...(ordered.length < key.total ? { total: key.total, incomplete: true } : {}),
      },
    },
    now,
  );
  const mark = stmt(db, `UPDATE receipts SET status = 'assembled', result = ? WHERE id = ? AND status = 'part'`);
  for (const p of allParts) mark.run(JSON.stringify({ assembledInto: whole.id }), p.id);
  return { whole, numberId: ordered[0]!.numberId };
}

/**
 * The sweeper's share: pieces of concatenated SMS still waiting after CONCAT_WINDOW_MS will not be
 * completed. What arrived of each message is assembled as it is (a `received` receipt marked
 * incomplete), so it is parsed like any SMS — a refusal whose last piece was lost is still a
 * refusal, and anything unparseable gets the help reply — instead of waiting forever. Returns the
 * new receipts' ids.
 */
export function assembleStaleParts(db: AppDeps["db"], now: number): number[] {
  const stale = db.$client
    .prepare(
      `SELECT DISTINCT from_address AS "from", provider, to_address AS "to", json_extract(payload, '$.concat.ref') AS ref,
         json_extract(payload, '$.concat.total') AS total
       FROM receipts WHERE status = 'part' AND channel = 'sms' AND received_at < ? LIMIT 1000`,
    )
    .all(now - CONCAT_WINDOW_MS) as ConcatKey[];
  const ids: number[] = [];
  for (const key of stale) {
    const made = db.$client
      .transaction(() => {
        // The key's pieces up to the window past its first one; later ones start another message.
        const all = findParts(db, key, 0);
        if (all.length === 0) return null;
        const first = all[0]!.receivedAt;
        const group = all.filter((p) => p.receivedAt < first + CONCAT_WINDOW_MS);
        if (group.at(-1)!.receivedAt >= now - CONCAT_WINDOW_MS) return null; // still within its window
        return assemble(db, key, byPart(group), group.at(-1)!.receivedAt, group);
      })
      .immediate();
    if (made) ids.push(made.whole.id);
  }
  return ids;
}
