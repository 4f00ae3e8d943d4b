import { createServer, type Server } from "node:http";
import { createConnection, type AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { answerClientErrors } from "../src/client-errors";

// A Node server with short timeouts (the hub's are an hour for bodies and a minute for headers), the
// hub's clientError answer on it, and a handler that counts the requests it is handed.
let server: Server | null = null;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = null;
});

async function start(handle: (path: string) => Promise<void> = async () => {}): Promise<{ port: number; handled: string[] }> {
  const handled: string[] = [];
  server = createServer({ requestTimeout: 1000, headersTimeout: 500, connectionsCheckingInterval: 100 }, (req, res) => {
    handled.push(req.url ?? "");
    req.resume();
    req.on("end", () => void handle(req.url ?? "").then(() => res.end("ok")));
  });
  answerClientErrors(server);
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", () => resolve()));
  return { port: (server!.address() as AddressInfo).port, handled };
}

/** Writes the pieces `gapMs` apart (the client never closes its side), answers what came back until the server closed. */
async function talk(port: number, pieces: string[], gapMs = 0): Promise<string> {
  const socket = createConnection(port, "127.0.0.1");
  let answer = "";
  socket.on("data", (d: Buffer) => (answer += d.toString()));
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  for (const p of pieces) {
    if (socket.destroyed) break;
    socket.write(p);
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
  }
  const cut = setTimeout(() => socket.destroy(), 5000);
  await closed;
  clearTimeout(cut);
  return answer;
}

const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as { error: { code: string; message: string } };

describe("requests Node's HTTP parser refuses", () => {
  it("a malformed header gets the hub's JSON error, and the connection is closed by the server", async () => {
    const { port, handled } = await start();
    const answer = await talk(port, ["GET /x HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n"]);
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(bodyOf(answer).error).toEqual({ code: "bad_request", message: expect.stringMatching(/HPE_INVALID_HEADER_TOKEN\); nothing was done$/), requestId: null });
    expect(handled).toEqual([]);
  });

  it("headers trickling in past the headers timeout get a 408 and are never handed to the app, even if the client keeps sending", async () => {
    const { port, handled } = await start();
    const pieces = ["POST /slow-headers HTTP/1.1\r\n", "Host: x\r\n", "X-A: 1\r\n", "X-B: 2\r\n", "X-C: 3\r\n", "X-D: 4\r\n", "X-E: 5\r\n", "Content-Length: 0\r\n\r\n"];
    const answer = await talk(port, pieces, 200);
    expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(bodyOf(answer).error.message).toMatch(/^the request's headers did not arrive whole in time \((ERR_HTTP_REQUEST_TIMEOUT|HPE_HEADERS_TIMEOUT)\); nothing was done$/);
    await new Promise((r) => setTimeout(r, 300));
    expect(handled).toEqual([]);
  });

  it("a malformed request behind one still being answered on the same connection gets no answer of its own (it would be read as the first one's)", async () => {
    const { port, handled } = await start((path) => new Promise((r) => setTimeout(r, path === "/slow" ? 300 : 0)));
    const answer = await talk(port, ["GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", "GET /y HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n"], 50);
    expect(handled).toEqual(["/slow"]);
    expect(answer).not.toContain("nothing was done");
  });
});
