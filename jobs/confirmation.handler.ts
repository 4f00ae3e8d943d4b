import { UnrecoverableError } from "bullmq";
import { stmt, type Db } from "../db/index";
import { renderReply, SHARED_HELP, templatesOf, type TemplateKey } from "../channels/sms/templates";
import { receiptRef, type SmsResult } from "../channels/sms/interpret";
import type { SmsSender } from "../channels/sms/senders";
import { brandByCode, numbersOfBrand } from "../src/brands";
import { normalizePhone } from "../src/domain/address";
import type { OutboxOutcome, OutboxRow } from "./outbox";
import { OutcomeUnknownError } from "../src/errors";

export interface ConfirmationDeps {
  db: Db;
  senders: Partial<Record<"twilio" | "vonage", SmsSender>>;
}

interface ReceiptForReply {
  id: number;
  channel: string;
  fromAddress: string | null;
  result: string | null;
  number: string | null;
  provider: "twilio" | "vonage" | null;
}

/**
 * Sends the same-channel reply of one receipt: from the number the recipient texted, through the
 * provider that received it, after the ledger commit (the outbox row was written with it).
 * Permanent provider errors end the row as failed with the reason; others are retried with backoff.
 */
export async function run(row: OutboxRow, deps: ConfirmationDeps): Promise<OutboxOutcome> {
  const receipt = stmt(
    deps.db,
    `SELECT r.id, r.channel, r.from_address AS fromAddress, r.result, n.number, n.provider
       FROM receipts r LEFT JOIN numbers n ON n.id = r.number_id WHERE r.id = ?`,
  ).get(row.receiptId) as ReceiptForReply | undefined;
  if (!receipt || !receipt.number || !receipt.provider) throw new UnrecoverableError("confirmation without a routable receipt");
  if (receipt.channel !== "sms" && receipt.channel !== "voice") throw new UnrecoverableError(`no SMS confirmation for ${receipt.channel} receipts`);

  const result = JSON.parse(receipt.result ?? "{}") as SmsResult;
  const brands = (result.brands ?? []).map((code) => brandByCode(deps.db, code)).filter((b) => b !== null);
  if (brands.length === 0) throw new UnrecoverableError("the number serves no brand");
  const key = (row.target ?? "help") as TemplateKey;
  const templates = templatesOf(brands[0]!.settings);
  // A brand's help says "RET MİGROS"; on a shared number the help names the way and every brand.
  const text = renderReply(
    key === "help" && brands.length > 1 ? SHARED_HELP : templates[key],
    brands.map((b) => b.shortNames[0] ?? b.code),
    result.types ?? ["MESAJ"],
    receiptRef(receipt.id),
  );
  const to = normalizePhone(receipt.fromAddress ?? "");
  if (!to.ok) throw new UnrecoverableError("the sender is not a phone number");

  // An IVR call is confirmed by SMS from a number that serves the brand over SMS.
  const via = receipt.channel === "voice" ? numbersOfBrand(deps.db, brands[0]!.id).find((n) => n.channels.includes("sms")) : { number: receipt.number, provider: receipt.provider };
  if (!via) throw new UnrecoverableError("the brand has no SMS number to confirm from");
  const sender = deps.senders[via.provider];
  if (!sender) throw new UnrecoverableError(`${via.provider} is not configured for sending (credentials missing)`);
  const sent = await sender.send({ from: via.number, to: to.value, text });
  if (sent.ok) {
    return { status: "done", result: { provider: sender.provider, providerId: sent.providerId, encoding: sent.encoding, segments: sent.segments, template: key } };
  }
  if (sent.permanent) throw new UnrecoverableError(sent.reason);
  // Twilio's and Vonage's API take no idempotency key: a send that got no answer may have gone.
  throw sent.unknownOutcome ? new OutcomeUnknownError(sent.reason) : new Error(sent.reason);
}
