import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { redactAddresses } from "./domain/address";

/** The hub's own error codes; rule violations use the İYS code itself (H174, H162…). */
export const errorCodes = [
  "bad_request",
  "unauthorized",
  "forbidden",
  "not_found",
  "method_not_allowed",
  "conflict",
  "payload_too_large",
  "unsupported_media_type",
  "rate_limited",
  "unavailable",
  "internal_error",
] as const;
export type HubErrorCode = (typeof errorCodes)[number];
export type IysErrorCode = `H${number}`;

const codeToStatus: Record<HubErrorCode, ContentfulStatusCode> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  unavailable: 503,
  internal_error: 500,
};

export class ApiError extends Error {
  readonly status: ContentfulStatusCode;
  constructor(
    readonly code: HubErrorCode | IysErrorCode,
    message: string,
    readonly details?: { field?: string; issues?: { field: string; message: string }[]; importId?: string },
  ) {
    super(message);
    this.name = "ApiError";
    this.status = code.startsWith("H") && /^H\d+$/.test(code) ? 422 : codeToStatus[code as HubErrorCode];
  }
}

export function errorBody(c: Context, err: ApiError) {
  // For the request's log line: a 422 is told apart by its İYS code (H467, H174…), a 400 by its field.
  c.set("errorCode", err.code);
  // A field can be a key the caller made up (an unknown field): an address there is masked as in any log line.
  if (err.details?.field) c.set("errorField", redactAddresses(err.details.field));
  return {
    error: {
      code: err.code,
      message: err.message,
      requestId: (c.get("requestId") as string | undefined) ?? null,
      ...(err.details ?? {}),
    },
  };
}

/**
 * A send that failed without saying whether it went: no answer in time, or the connection dropped
 * after the request was written. Retried by its job like any transient failure, but not past it.
 */
export class OutcomeUnknownError extends Error {}

/** Said of a transport error that came before the request was written whole: nothing was sent. */
export const NOT_SENT = "(before the request was sent)";

/** Whether a transport error (no provider status) may have come after the request went out. */
export function outcomeUnknown(message: string): boolean {
  return !message.includes(NOT_SENT) && /time(?:d )?out|ETIMEDOUT|ECONNRESET|EPIPE|socket hang up|aborted|closed unexpectedly/i.test(message);
}
