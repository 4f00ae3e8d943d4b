import nodemailer from "nodemailer";
import type { Config } from "../../src/config";

export interface OutgoingMail {
  from: { name: string; address: string };
  to: string;
  subject: string;
  text: string;
  headers: Record<string, string>;
  messageId: string;
}

/** SMTP behind a small interface (the Workers build and tests may swap it); one nodemailer transport per process. */
export interface Mailer {
  /** The address confirmations come from (`MAIL_FROM`, default no-reply@<PUBLIC_BASE_URL host>). */
  from: string;
  send(mail: OutgoingMail): Promise<{ messageId: string; response: string }>;
  close(): void;
}

/** SMTP responses that will not get better by retrying (RFC 5321 5yz). */
export class PermanentMailError extends Error {
  override name = "PermanentMailError";
}

export function mailFromOf(config: Pick<Config, "MAIL_FROM" | "PUBLIC_BASE_URL">): string {
  return config.MAIL_FROM ?? `no-reply@${new URL(config.PUBLIC_BASE_URL).hostname}`;
}

/** Null when SMTP_URL is unset: confirmations are then recorded as skipped. */
export function createMailer(config: Pick<Config, "SMTP_URL" | "MAIL_FROM" | "PUBLIC_BASE_URL">): Mailer | null {
  if (!config.SMTP_URL) return null;
  // Bounded well within an outbox row's lease (jobs/outbox.ts OUTBOX_LEASE_MS, 60 s): nodemailer's
  // defaults (2 min to connect, 10 min of socket silence) let a slow server outlast the lease, and
  // the sweeper's re-enqueue then sent the same confirmation twice. Query parameters of SMTP_URL
  // (?socketTimeout=…) still win.
  const transport = nodemailer.createTransport({ url: config.SMTP_URL, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000, dnsTimeout: 5_000 });
  return {
    from: mailFromOf(config),
    async send(mail) {
      try {
        const info = await transport.sendMail({
          from: mail.from,
          to: mail.to,
          subject: mail.subject,
          text: mail.text,
          headers: mail.headers,
          messageId: mail.messageId,
        });
        return { messageId: info.messageId, response: info.response };
      } catch (err) {
        const code = (err as { responseCode?: number }).responseCode;
        if (code !== undefined && code >= 500 && code < 600) throw new PermanentMailError((err as Error).message);
        throw err;
      }
    },
    close: () => transport.close(),
  };
}
