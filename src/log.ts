import { pino, type Logger } from "pino";

export type { Logger };

/** One logger for the process. Addresses and message bodies must never be logged; these paths are a safety net. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: {
        paths: ["recipient", "from", "to", "body", "email", "phone", "*.recipient", "*.from", "*.to", "*.body", "*.email", "*.phone", "req.headers.authorization"],
        censor: "[redacted]",
      },
    },
    destination,
  );
}
