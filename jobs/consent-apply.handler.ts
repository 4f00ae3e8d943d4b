import { UnrecoverableError } from "bullmq";
import { stmt, type Db } from "../db/index";
import type { ApplyOptions, ConsentAction, Ledger, OutboxRef } from "../db/ledger";
import type { ReceiptStatus } from "../db/schema";

export interface ReceiptRow {
  id: number;
  channel: "sms" | "voice" | "link" | "api";
  provider: string;
  providerRef: string;
  numberId: number | null;
  fromAddress: string | null;
  toAddress: string | null;
  body: string | null;
  payload: string;
  status: ReceiptStatus;
  receivedAt: number;
}

/** What a channel makes of one receipt: the ledger actions plus the receipt's own outbox rows and final status. */
export interface Interpretation {
  actions: ConsentAction[];
  outbox?: ApplyOptions["outbox"];
  status: ReceiptStatus;
  result?: Record<string, unknown>;
}

export type ReceiptInterpreter = (receipt: ReceiptRow) => Interpretation;

export interface ConsentApplyDeps {
  db: Db;
  ledger: Ledger;
  interpreters: Partial<Record<ReceiptRow["channel"], ReceiptInterpreter>>;
  enqueueOutbox(rows: OutboxRef[]): Promise<void>;
}

const RECEIPT_SELECT = `SELECT id, channel, provider, provider_ref AS providerRef, number_id AS numberId, from_address AS fromAddress,
  to_address AS toAddress, body, payload, status, received_at AS receivedAt FROM receipts WHERE id = ?`;

/**
 * A recipient's refusal on the hub's channels covers the address's other record too. The channels
 * record what a number texts, says or clicks as BIREYSEL — or TACIR, for a link issued so — and the
 * recipient does not say which record it means: when the brand also holds the address under the
 * other recipient type with a consent, the same refusal is applied to that record (and so reported
 * to İYS against it), with its own idempotency key. Read inside the apply transaction, so the state
 * cannot change between the look and the write.
 */
export function withTacirRefusals(db: Db, actions: ConsentAction[]): ConsentAction[] {
  const other = stmt<[number, string, string, string], { status: string }>(
    db,
    `SELECT status FROM consent_state WHERE brand_id = ? AND recipient = ? AND recipient_type = ? AND type = ?`,
  );
  const extra: ConsentAction[] = [];
  for (const a of actions) {
    if (a.status !== "RET") continue;
    const otherType = a.recipientType === "BIREYSEL" ? "TACIR" : "BIREYSEL";
    if (other.get(a.brandId, a.recipient, otherType, a.type)?.status !== "ONAY") continue;
    extra.push({ ...a, recipientType: otherType, idempotencyKey: a.idempotencyKey ? `${a.idempotencyKey}:${otherType}` : null });
  }
  return extra.length ? [...actions, ...extra] : actions;
}

/**
 * Applies durable receipts to the ledger in one commit for the batch; a receipt already applied (by
 * an earlier run or a racing job) is left as it is. The batch is first applied without savepoints
 * (each one's sub-journal is written to a temp file: half of an SMS receipt's apply time). Should a
 * receipt throw (a bug, a year missing from the holiday table), that is rolled back whole and the
 * batch applied again with each receipt in its own savepoint: the one that throws is rolled back
 * alone and left `received` for the next try — its neighbours are applied — and the job then fails
 * naming it (BullMQ retries, the sweeper after). Outbox rows of the whole batch are enqueued
 * together at the end.
 */
export async function run({ payload, deps }: { payload: { receiptIds: number[] }; deps: ConsentApplyDeps }): Promise<string> {
  const select = stmt(deps.db, RECEIPT_SELECT);
  const outbox: OutboxRef[] = [];
  const counts: Record<string, number> = {};
  const failures: { receiptId: number; error: string }[] = [];
  /** One receipt, inside the transaction the caller holds. */
  const applyReceipt = (receipt: ReceiptRow) => {
    const interpret = deps.interpreters[receipt.channel];
    if (!interpret) throw new UnrecoverableError(`no interpreter for channel ${receipt.channel}`);
    const plan = interpret(receipt);
    const result = deps.ledger.applyWithin(withTacirRefusals(deps.db, plan.actions), {
      outbox: plan.outbox,
      receipt: { id: receipt.id, status: plan.status, result: plan.result },
    });
    return { outbox: result.outbox, status: result.alreadyApplied ? "already applied" : plan.status };
  };
  const inSavepoint = deps.db.$client.transaction(applyReceipt);
  try {
    deps.db.$client.transaction(() => applyAll(applyReceipt, false)).immediate();
  } catch (err) {
    if (err instanceof UnrecoverableError) throw err;
    outbox.length = 0;
    for (const k of Object.keys(counts)) delete counts[k];
    deps.db.$client.transaction(() => applyAll(inSavepoint, true)).immediate();
  }
  await deps.enqueueOutbox(outbox);
  // Each left `received`, to be tried again.
  if (failures.length > 0) {
    throw new Error(`${failures.length} receipt(s) could not be applied: ${failures.slice(0, 3).map((f) => `#${f.receiptId}: ${f.error}`).join("; ")}`);
  }
  return Object.entries(counts).map(([k, v]) => `${k}: ${v}`).join(", ");

  function applyAll(applyOne: (r: ReceiptRow) => { outbox: OutboxRef[]; status: string }, alone: boolean) {
    for (const receiptId of payload.receiptIds) {
      const receipt = select.get(receiptId) as ReceiptRow | undefined;
      let status: string;
      if (!receipt) status = "missing";
      else if (receipt.status !== "received") status = `already ${receipt.status}`;
      else {
        try {
          const applied = applyOne(receipt); // alone: a savepoint, rolled back alone if it throws
          outbox.push(...applied.outbox);
          status = applied.status;
        } catch (err) {
          if (err instanceof UnrecoverableError || !alone) throw err;
          failures.push({ receiptId, error: err instanceof Error ? err.message : String(err) });
          status = "not applied";
        }
      }
      counts[status] = (counts[status] ?? 0) + 1;
    }
  }
}
