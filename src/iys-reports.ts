import { stmt, type Db } from "../db/index";
import type { ActionOutcome, LedgerEvent, OutboxInput, OutboxPlanner, PlanContext } from "../db/ledger";
import { isProviderSource } from "./domain/consent";
import { IYS_BATCH_MAX } from "./services/iys";

/**
 * Provider-sourced movements go to İYS; suppressions are not İYS movements, İYS's own and the
 * records a registered import says İYS holds are already there. A TACIR first record may have no source (İYS makes source and consentDate optional for it,
 * and the ledger marks it as held by İYS): it is reported without them.
 */
export function reportsToIys(e: LedgerEvent): boolean {
  if (e.effect !== "movement" || e.origin === "iys" || e.origin === "registered") return false;
  return e.source === null ? e.recipientType === "TACIR" : isProviderSource(e.source);
}

/**
 * A refusal kept as a local suppression because the hub knew of no consent: İYS is asked whether it
 * holds one from before (collected by another of the provider's systems); if so the refusal is
 * reported over it (iys_follow, reportSuppression). Only for brands with İYS codes (registered when
 * the İYS API is configured), where the hub had no record (not a late refusal of a consent it
 * holds) and İYS would still take it (not past 3 business days); BIREYSEL only (the channels'
 * refusals), not bulk imports': a status query each would spend İYS's 1000 an hour for days.
 */
export function iysFollowPlanner(db: Db): OutboxPlanner {
  return (e: LedgerEvent, context: PlanContext) => {
    if (e.effect !== "suppression" || e.status !== "RET" || e.recipientType !== "BIREYSEL" || e.origin === "import" || e.origin === "registered" || e.origin === "iys") return [];
    if (e.source === null || !isProviderSource(e.source) || context.previous !== null || context.late) return [];
    const codes = stmt<[number], { ok: number }>(db, `SELECT iys_code IS NOT NULL AND brand_code IS NOT NULL AS ok FROM brands WHERE id = ?`).get(e.brandId);
    return codes?.ok ? [{ kind: "iys_follow", eventId: e.id }] : [];
  };
}

/**
 * Every reportable movement one `iys_report` row (İYS's single write) — except bulk imports', which
 * `iysBatchPlanner` reports in lists: at İYS's 10 requests a second a million single writes would
 * take more than a day of the brand's whole API budget, ahead of its recipients' refusals.
 */
export function iysReportPlanner(e: LedgerEvent): OutboxInput[] {
  if (!reportsToIys(e) || e.origin === "import") return [];
  return [{ kind: "iys_report", eventId: e.id }];
}

/**
 * The İYS reports of one import transaction: its reportable movements in `iys_batch` rows of up to
 * IYS_BATCH_MAX (İYS's asynchronous multiple write), in ledger order. İYS asks that a list not hold
 * one address twice and that several movements of one address go through the single write; so an
 * address with more than one movement in the transaction has them all reported singly — counting
 * the refusals the ledger carried over to the import's consents (`derived`: reported singly by
 * iysReportPlanner already, as channel refusals).
 */
export function iysBatchPlanner(outcomes: ActionOutcome[], max = IYS_BATCH_MAX, derived: ActionOutcome[] = []): OutboxInput[] {
  const events: LedgerEvent[] = [];
  const seen = new Map<string, number>();
  const count = (e: LedgerEvent) => seen.set(e.recipient, (seen.get(e.recipient) ?? 0) + 1);
  for (const o of outcomes) {
    if (o.kind !== "recorded" || !reportsToIys(o.event)) continue;
    events.push(o.event);
    count(o.event);
  }
  for (const o of derived) if (o.kind === "recorded" && reportsToIys(o.event)) count(o.event);
  const rows: OutboxInput[] = [];
  let list: number[] = [];
  const close = () => {
    if (list.length) rows.push({ kind: "iys_batch", eventId: list[0]!, target: JSON.stringify(list) });
    list = [];
  };
  for (const e of events) {
    if (seen.get(e.recipient)! > 1) {
      rows.push({ kind: "iys_report", eventId: e.id });
      continue;
    }
    list.push(e.id);
    if (list.length === max) close();
  }
  close();
  return rows;
}
