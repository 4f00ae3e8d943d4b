import type { Server } from "node:http";
import type { Duplex } from "node:stream";

type ParserError = Error & { code?: string; reason?: string };

/** What a refused request's sender is told, by the parser's error code. */
const KNOWN: Record<string, { status: number; text: string; code: "bad_request" | "payload_too_large"; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, text: "Request Header Fields Too Large", code: "bad_request", message: "the request's headers are larger than the server takes (16 KiB in all)" },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: { status: 413, text: "Payload Too Large", code: "payload_too_large", message: "the chunked body's chunk extensions are too large" },
  // Answered only while no request of the connection is with the app (below): its headers came too slowly.
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, text: "Request Timeout", code: "bad_request", message: "the request's headers did not arrive whole in time" },
  HPE_HEADERS_TIMEOUT: { status: 408, text: "Request Timeout", code: "bad_request", message: "the request's headers did not arrive whole in time" },
};

/**
 * Requests Node's HTTP parser refuses (a space in a header name, a Content-Length that is not a
 * number, a bare LF, headers past 16 KiB) never reach the app, and Node answered them with an empty
 * 400 or 431: a provider's engineer had nothing to go on. They get the hub's error body instead,
 * naming what the parser found wrong, and the connection is closed (the parser cannot find where the
 * next request would start). Nothing was read as a request, so nothing was done.
 */
export function answerClientErrors(server: Pick<Server, "on">): void {
  server.on("clientError", (err: ParserError, socket: Duplex) => {
    // A request of this connection is with the app (its body timed out, or it is still being
    // answered and another came behind it): an answer written now would be read as that request's,
    // and "nothing was done" could be untrue (an import commits as it streams). Only closed.
    const answering = (socket as Duplex & { _httpMessage?: unknown })._httpMessage != null;
    if (err.code === "ECONNRESET" || !socket.writable || answering) {
      socket.destroy();
      return;
    }
    const known = KNOWN[err.code ?? ""];
    const { status, text, code, message } = known ?? {
      status: 400,
      text: "Bad Request",
      code: "bad_request" as const,
      message: `the request is not valid HTTP/1.1: ${(err.reason ?? err.message).replace(/\.$/, "")}`,
    };
    const body = JSON.stringify({ error: { code, message: `${message} (${err.code ?? "parse error"}); nothing was done`, requestId: null } });
    // Written, then the connection destroyed as Node does: a half-closed socket keeps being read, and
    // a request whose headers or body came too slowly would still reach the app after its 408.
    socket.write(
      `HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
    socket.destroy();
  });
}
