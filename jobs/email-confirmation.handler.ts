import { UnrecoverableError } from "bullmq";
import { stmt, type Db } from "../db/index";
import type { Mailer } from "../channels/email/mailer";
import { PermanentMailError } from "../channels/email/mailer";
import { emailReceiptRef, refusalConfirmation } from "../channels/email/templates";
import { linkById } from "../channels/link/issue";
import { brandById } from "../src/brands";
import type { OutboxOutcome, OutboxRow } from "./outbox";
import { OutcomeUnknownError, outcomeUnknown } from "../src/errors";

export interface EmailConfirmationDeps {
  db: Db;
  /** Null or absent when SMTP_URL is unset. */
  mailer?: Mailer | null;
}

/**
 * Sends the confirmation of a link refusal to the address the link belongs to, after the ledger
 * commit. Without SMTP the row ends skipped with the reason (the result page was the confirmation).
 * The Message-ID is fixed per outbox row, so a retried send after a lost answer is recognisably the same mail.
 */
export async function run(row: OutboxRow, deps: EmailConfirmationDeps): Promise<OutboxOutcome> {
  const receipt = stmt<[number], { id: number; channel: string; payload: string }>(deps.db, `SELECT id, channel, payload FROM receipts WHERE id = ?`).get(
    row.receiptId ?? 0,
  );
  if (!receipt || receipt.channel !== "link") throw new UnrecoverableError("e-mail confirmation without a link receipt");
  const { link: linkId } = JSON.parse(receipt.payload) as { link?: number };
  const link = typeof linkId === "number" ? linkById(deps.db, linkId) : null;
  const brand = link ? brandById(deps.db, link.brandId) : null;
  if (!link || !brand) throw new UnrecoverableError("the link or its brand is gone");
  if (!deps.mailer) return { status: "skipped", note: "SMTP_URL is not set: the result page was the only confirmation" };

  const ref = emailReceiptRef(receipt.id);
  const { subject, text } = refusalConfirmation(brand.name, ref);
  const domain = deps.mailer.from.slice(deps.mailer.from.lastIndexOf("@") + 1) || "localhost";
  try {
    const sent = await deps.mailer.send({
      from: { name: brand.name, address: deps.mailer.from },
      to: link.recipient,
      subject,
      text,
      // RFC 3834: an automatic answer to the recipient's own action; auto-responders must not reply.
      headers: { "Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All", "Content-Language": "tr" },
      messageId: `<confirmation-${row.id}@${domain}>`,
    });
    return { status: "done", result: { messageId: sent.messageId, response: sent.response, ref } };
  } catch (err) {
    if (err instanceof PermanentMailError) throw new UnrecoverableError(err.message);
    if (smtpOutcomeUnknown(err)) throw new OutcomeUnknownError((err as Error).message ?? String(err));
    throw err;
  }
}

/**
 * Whether a failed SMTP send may have been taken: no answer (the socket went silent, the connection
 * dropped). Nodemailer tags every transport failure CONN, however far the session got; only its
 * connect, greeting and TLS-upgrade timeouts (and a refused connection) certainly came before anything was sent.
 */
export function smtpOutcomeUnknown(err: unknown): boolean {
  const e = err as { responseCode?: number; message?: string; timeoutType?: string };
  const beforeSession = ["CONNECT_TIMEOUT", "GREETING_TIMEOUT", "UPGRADE_TIMEOUT"].includes(e.timeoutType ?? "");
  return e.responseCode === undefined && !beforeSession && outcomeUnknown(e.message ?? "");
}
