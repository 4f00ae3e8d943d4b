import type { AppDeps } from "../../src/env";
import { numberByValue } from "../../src/brands";
import { recordReceipt } from "../../src/receipts";
import { RateLimiter } from "../../src/rate-limit";
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
export class SmsIngress {
  private readonly limiter: RateLimiter;

  constructor(private readonly deps: AppDeps) {
    this.limiter = new RateLimiter(deps.redis, deps.config.QUEUE_PREFIX);
  }

  async limited(from: string, numberId: number, now: number): Promise<boolean> {
    const { config, secrets } = this.deps;
    const [sender, number] = await Promise.all([
      this.limiter.hit("sms-sender", secrets.pseudonym("rate-limit", from), config.SMS_LIMIT_PER_SENDER_PER_HOUR, 3_600_000, now),
      this.limiter.hit("sms-number", String(numberId), config.SMS_LIMIT_PER_NUMBER_PER_MINUTE, 60_000, now),
    ]);
    return sender.limited || number.limited;
  }

  number(provider: InboundSms["provider"], to: string) {
    const value = normalizeServiceNumber(to);
    const number = value ? numberByValue(this.deps.db, value) : null;
    return number && number.provider === provider && number.channels.includes("sms") ? number : null;
  }

  async ingest(m: InboundSms, opts: { status?: "received" | "part" } = {}): Promise<Ingested> {
    const { db, clock, jobs, log } = this.deps;
    const now = clock.now().getTime();
    const number = this.number(m.provider, m.to);
    // A concatenated SMS counts once, when it is whole.
    const limited = number && opts.status !== "part" ? await this.limited(m.from, number.id, now) : false;
    const rec = recordReceipt(
      db,
      {
        channel: "sms",
        provider: m.provider,
        providerRef: m.providerRef,
        numberId: number?.id ?? null,
        fromAddress: m.from,
        toAddress: m.to,
        body: m.body,
        payload: { ...m.payload, ...(limited ? { limited: true } : {}) },
        status: number ? (opts.status ?? "received") : "unroutable",
      },
      now,
    );
    if (rec.created) log.info({ receiptId: rec.id, provider: m.provider, status: rec.status, limited }, "sms receipt");
    if (rec.status === "received") await jobs.enqueueReceipt(rec.id, limited ? { priority: 100 } : undefined);
    return { receiptId: rec.id, created: rec.created, status: rec.status };
  }

  /**
   * One piece of a concatenated SMS: kept as a `part` receipt; the piece that completes the set
   * makes one `received` receipt of the whole text (in one IMMEDIATE transaction, so two pieces
   * arriving together in two processes assemble it once) and enqueues it.
   */
  async ingestPart(m: InboundSms, concat: { ref: string; part: number; total: number }): Promise<Ingested> {
    const piece = await this.ingest({ ...m, payload: { ...m.payload, concat } }, { status: "part" });
    if (piece.status === "unroutable") return piece;
    const { db, clock, jobs, log } = this.deps;
    type Part = { id: number; providerRef: string; numberId: number; body: string; payload: string };
    const findParts = () =>
      db.$client
        .prepare(
          `SELECT id, provider_ref AS providerRef, number_id AS numberId, body, payload FROM receipts
           WHERE status = 'part' AND from_address = ? AND channel = 'sms' AND provider = ? AND to_address = ?
             AND json_extract(payload, '$.concat.ref') = ? AND json_extract(payload, '$.concat.total') = ?
           ORDER BY id`,
        )
        .all(m.from, m.provider, m.to, concat.ref, concat.total) as Part[];
    /** One piece per part number, in order, or null while some are missing. */
    const complete = (parts: Part[]) => {
      const byPart = new Map<number, Part>();
      for (const p of parts) {
        const n = (JSON.parse(p.payload) as { concat: { part: number } }).concat.part;
        if (!byPart.has(n)) byPart.set(n, p);
      }
      return byPart.size < concat.total ? null : [...byPart.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
    };
    const first = complete(findParts());
    if (!first) return piece;
    const limited = await this.limited(m.from, first[0]!.numberId, clock.now().getTime());
    const assemble = db.$client.transaction(() => {
      const parts = findParts();
      const ordered = complete(parts);
      if (!ordered) return null; // another request assembled it meanwhile
      const whole = recordReceipt(
        db,
        {
          channel: "sms",
          provider: m.provider,
          providerRef: `concat:${ordered.map((p) => p.providerRef).join("+")}`,
          numberId: ordered[0]!.numberId,
          fromAddress: m.from,
          toAddress: m.to,
          body: ordered.map((p) => p.body).join(""),
          payload: { parts: ordered.length, ...(limited ? { limited: true } : {}) },
        },
        clock.now().getTime(),
      );
      const mark = db.$client.prepare(`UPDATE receipts SET status = 'assembled', result = ? WHERE id = ?`);
      for (const p of parts) mark.run(JSON.stringify({ assembledInto: whole.id }), p.id);
      return { whole, limited };
    });
    const done = assemble.immediate();
    if (done) {
      log.info({ receiptId: done.whole.id, parts: concat.total }, "concatenated sms assembled");
      await jobs.enqueueReceipt(done.whole.id, done.limited ? { priority: 100 } : undefined);
    }
    return piece;
  }
}
