import type { Queue } from "bullmq";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { deadlineCounts } from "../admin/data";
import type { BusinessCalendar } from "../domain/calendar";
import type { Clock } from "../domain/time";
import type { Db } from "../../db/index";
import { withTimeout } from "../async";
import { iysPullStandings } from "../iys-pull";
import { Tally } from "./tally";

export const queueStates = ["waiting", "active", "delayed", "failed"] as const;
/** How long the refusals' deadline counts are reused between scrapes. */
const DEADLINE_CACHE_MS = 60_000;
/** Per queue: its jobs in each state and whether it is paused (nothing is taken from it); null when Redis did not answer. */
export type QueueDepths = Record<string, (Record<(typeof queueStates)[number], number> & { paused: boolean }) | null>;

export interface MetricsSources {
  db: Db;
  queues?: Record<string, Queue>;
  /** For the refusals' deadlines (business days); without them that gauge is absent. */
  calendar?: BusinessCalendar;
  clock?: Clock;
}

/**
 * One Prometheus registry per runtime (never prom-client's global one: tests build several apps).
 * Request and job durations are observed where they happen (this process); receipt, ledger, outbox
 * and delivery totals are read from SQLite on scrape through incremental tallies, so they are exact
 * whichever process did the work; queue depths are asked from Redis on scrape.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly httpDuration = new Histogram({
    name: "http_request_duration_seconds",
    help: "HTTP request duration by method, route pattern (never the raw path) and status",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly jobDuration = new Histogram({
    name: "job_duration_seconds",
    help: "BullMQ job duration by queue, job name and outcome (ok or failed), in this process",
    labelNames: ["queue", "job", "outcome"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60],
    registers: [this.registry],
  });
  private sources: MetricsSources | null = null;
  private deadlineCache: { at: number; counts: Record<string, number> } | null = null;
  private tallies: { receipts: Tally; events: Tally; outbox: Tally; deliveries: Tally | null } | null = null;

  constructor(opts: { processMetrics?: boolean } = {}) {
    const self = this;
    // process_* and nodejs_* (CPU, memory, event-loop lag: a database lock held past busy_timeout
    // stalls the loop, and shows here), per process: for the runtime's registry only (they start an
    // event-loop timer and a GC observer that are never stopped).
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });
    // `map` relabels a count, or drops it (null).
    const merged = (counts: { labels: Record<string, string>; n: number }[], map: (l: Record<string, string>) => Record<string, string> | null) => {
      const out = new Map<string, { labels: Record<string, string>; n: number }>();
      for (const c of counts) {
        const labels = map(c.labels);
        if (labels === null) continue;
        const key = JSON.stringify(labels);
        const e = out.get(key);
        if (e) e.n += c.n;
        else out.set(key, { labels, n: c.n });
      }
      return out.values();
    };
    /** The tally's counts, refreshed and relabelled; null before the runtime is bound. */
    const read = async (pick: () => Tally | null | undefined, which: "settled" | "open", map: (l: Record<string, string>) => Record<string, string> | null) => {
      const t = pick();
      if (!t) return null;
      await t.refresh();
      return merged(t.counts(which), map);
    };
    // Settled rows only: a counter must never go down (rows still open would leave their status as they settle).
    const fromTally = (name: string, help: string, labelNames: string[], pick: () => Tally | null | undefined, map: (l: Record<string, string>) => Record<string, string> | null = (l) => l) =>
      new Counter({
        name,
        help,
        labelNames,
        registers: [this.registry],
        async collect() {
          const counts = await read(pick, "settled", map);
          if (!counts) return;
          this.reset();
          for (const { labels, n } of counts) this.inc(labels, n);
        },
      });
    const openFromTally = (name: string, help: string, labelNames: string[], pick: () => Tally | null | undefined) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers: [this.registry],
        async collect() {
          const counts = await read(pick, "open", (l) => l);
          if (!counts) return;
          this.reset();
          for (const { labels, n } of counts) this.set(labels, n);
        },
      });
    fromTally("receipts_total", "Inbound actions durably received and settled (applied, invalid, unroutable…), by channel and status", ["channel", "status"], () => self.tallies?.receipts);
    openFromTally("receipts_open", "Inbound actions received and not settled yet (received, part), by channel and status", ["channel", "status"], () => self.tallies?.receipts);
    openFromTally("outbox_open", "Outbox rows (İYS reports, confirmations, callbacks) not finished yet, by kind and status", ["kind", "status"], () => self.tallies?.outbox);
    fromTally("events_total", "Ledger events (applied actions), by origin, status and effect", ["origin", "status", "effect"], () => self.tallies?.events, ({ origin, status, effect }) => ({ origin: origin!, status: status!, effect: effect! }));
    fromTally("outbox_finished_total", "Outbox rows finished (İYS reports, confirmations, callbacks), by kind and final status", ["kind", "status"], () => self.tallies?.outbox);
    fromTally(
      "confirmations_total",
      "Same-channel confirmations finished (SMS replies and e-mails), by kind and final status",
      ["kind", "status"],
      () => self.tallies?.outbox,
      (l) => (l.kind === "confirmation" || l.kind === "email_confirmation" ? l : null),
    );
    fromTally("deliveries_total", "Callback HTTP delivery attempts, by success", ["ok"], () => self.tallies?.deliveries, ({ ok }) => ({ ok: ok === "1" ? "true" : "false" }));
    new Gauge({
      name: "queue_jobs",
      help: "BullMQ jobs per queue and state (asked from Redis on scrape; absent when Redis is unreachable)",
      labelNames: ["queue", "state"],
      registers: [this.registry],
      async collect() {
        this.reset();
        const depths = await self.queueDepths();
        for (const [queue, counts] of Object.entries(depths)) {
          if (!counts) continue;
          for (const state of queueStates) this.set({ queue, state }, counts[state]);
        }
      },
    });
    new Gauge({
      name: "queue_paused",
      help: "1 while a BullMQ queue is paused (its waiting jobs are not taken: alert on it); absent when Redis is unreachable",
      labelNames: ["queue"],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const [queue, counts] of Object.entries(await self.queueDepths())) if (counts) this.set({ queue }, counts.paused ? 1 : 0);
      },
    });
    new Gauge({
      name: "redis_up",
      help: "1 while Redis answers for every queue, 0 while it does not: the hub keeps taking webhooks, clicks and API writes (durable in SQLite; /readyz says degraded) and queues them once Redis is back; alert on it",
      registers: [this.registry],
      async collect() {
        const depths = Object.values(await self.queueDepths());
        this.set(depths.length > 0 && depths.every((d) => d !== null) ? 1 : 0);
      },
    });
    new Gauge({
      name: "refusal_deadline_work",
      help: "Work owed on RETs (İYS report, question to İYS, provider/partner notification) not done with less than one business day of their 3 left (near) or past them (past; unknown: the holiday table lacks the year): alert on past > 0",
      labelNames: ["state"],
      registers: [this.registry],
      collect() {
        const src = self.sources;
        if (!src?.calendar || !src.clock) return;
        const now = src.clock.now().getTime();
        // Counted at most once a minute (the query reads every open outbox row and its events); a
        // failure leaves the series out rather than failing the whole scrape.
        if (!self.deadlineCache || now - self.deadlineCache.at >= DEADLINE_CACHE_MS || now < self.deadlineCache.at) {
          try {
            self.deadlineCache = { at: now, counts: deadlineCounts({ db: src.db, calendar: src.calendar, now }) };
          } catch {
            self.deadlineCache = null;
          }
        }
        this.reset();
        for (const [state, n] of Object.entries(self.deadlineCache?.counts ?? {})) this.set({ state }, n);
      },
    });
    // İYS lists a brand's recipient movements for 7 days: alert on `time() - iys_pull_last_success_timestamp_seconds > 86400`
    // and on iys_pull_failing (a brand whose pull never succeeded has no timestamp).
    const pulls = () => (self.sources ? iysPullStandings(self.sources.db) : []);
    new Gauge({
      name: "iys_pull_last_success_timestamp_seconds",
      help: "When each brand's pull of its movements on İYS last succeeded (source IYS: its recipients', HS: the provider's own; absent before the first)",
      labelNames: ["brand", "source"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const p of pulls()) if (p.pulledAt !== null) this.set({ brand: p.brand, source: p.source }, p.pulledAt / 1000);
      },
    });
    new Gauge({
      name: "iys_pull_failing",
      help: "1 while each brand's last pull of its movements on İYS (source IYS: its recipients', HS: the provider's own) failed, else 0",
      labelNames: ["brand", "source"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const p of pulls()) this.set({ brand: p.brand, source: p.source }, p.lastError === null ? 0 : 1);
      },
    });
  }

  /** Where the scrape-time values come from; the first call wins (one runtime, one database). */
  bind(sources: MetricsSources): this {
    if (this.sources) return this;
    this.sources = sources;
    const db = sources.db.$client;
    const hasTable = (name: string) => !!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name);
    const hasDeliveries = hasTable("deliveries");
    this.tallies = {
      receipts: new Tally(db, { table: "receipts", columns: ["channel", "status"], open: { column: "status", values: ["received", "part"] } }),
      events: new Tally(db, { table: "consent_events", columns: ["brand_id", "origin", "status", "effect"] }),
      outbox: new Tally(db, {
        table: "outbox",
        columns: ["kind", "status"],
        open: { column: "status", values: ["pending"] },
        remember: { when: (r) => r.status === "failed" || r.status === "exhausted", max: 50 },
        ...(hasTable("outbox_reopened") ? { reopened: { table: "outbox_reopened", column: "outbox_id" } } : {}),
      }),
      deliveries: hasDeliveries ? new Tally(db, { table: "deliveries", columns: ["ok"], remember: { when: (r) => r.ok === 0, max: 50 } }) : null,
    };
    return this;
  }

  /** Refreshed tallies for the dashboard. */
  async tallied() {
    const t = this.tallies;
    if (!t) throw new Error("Metrics.bind() was not called");
    await Promise.all([t.receipts.refresh(), t.events.refresh(), t.outbox.refresh(), t.deliveries?.refresh()]);
    return {
      receipts: t.receipts.counts(),
      events: t.events.counts(),
      outbox: t.outbox.counts(),
      failedOutboxIds: t.outbox.recentIds(),
      failedDeliveryIds: t.deliveries?.recentIds() ?? [],
    };
  }

  /** Waiting, active, delayed and failed jobs per queue; null for a queue Redis did not answer for. */
  async queueDepths(timeoutMs = 1000): Promise<QueueDepths> {
    const queues = this.sources?.queues ?? {};
    const entries = await Promise.all(
      Object.entries(queues).map(async ([name, q]) => {
        try {
          const [c, paused] = await withTimeout(Promise.all([q.getJobCounts(...queueStates), q.isPaused()]), timeoutMs, `job counts of ${name}`);
          return [name, { ...Object.fromEntries(queueStates.map((s) => [s, c[s] ?? 0])), paused }] as const;
        } catch {
          return [name, null] as const;
        }
      }),
    );
    return Object.fromEntries(entries) as QueueDepths;
  }

  observeJob(queue: string, job: string, seconds: number, ok: boolean): void {
    this.jobDuration.observe({ queue, job, outcome: ok ? "ok" : "failed" }, seconds);
  }

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.httpDuration.observe({ method, route, status: String(status) }, seconds);
  }

  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
