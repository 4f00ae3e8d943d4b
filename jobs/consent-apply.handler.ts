import { UnrecoverableError } from "bullmq";
import type { Db } from "../db/index";
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

/** Applies one durable receipt to the ledger; a receipt already applied is left as it is. */
export async function run({ payload, deps }: { payload: { receiptId: number }; deps: ConsentApplyDeps }): Promise<string> {
  const receipt = deps.db.$client
    .prepare(
      `SELECT id, channel, provider, provider_ref AS providerRef, number_id AS numberId, from_address AS fromAddress,
        to_address AS toAddress, body, payload, status, received_at AS receivedAt FROM receipts WHERE id = ?`,
    )
    .get(payload.receiptId) as ReceiptRow | undefined;
  if (!receipt) throw new UnrecoverableError(`receipt ${payload.receiptId} not found`);
  if (receipt.status !== "received") return `already ${receipt.status}`;
  const interpret = deps.interpreters[receipt.channel];
  if (!interpret) throw new UnrecoverableError(`no interpreter for channel ${receipt.channel}`);
  const plan = interpret(receipt);
  const result = deps.ledger.apply(plan.actions, {
    outbox: plan.outbox,
    receipt: { id: receipt.id, status: plan.status, result: plan.result },
  });
  await deps.enqueueOutbox(result.outbox);
  return `${plan.status}: ${result.outcomes.map((o) => o.kind).join(",") || "no actions"}`;
}
