import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { checkUrlShape, HTTPS_ONLY, isPrivateAddress } from "./target";

/** How much of a receiver's answer we read (it only ends up in the delivery log). */
const MAX_RESPONSE_BYTES = 4096;

export interface PostResult {
  ok: boolean;
  status: number | null;
  latencyMs: number;
  error: string | null;
  /** The first bytes of the answer. */
  body: string;
}

export interface WebhookClient {
  post(url: string, headers: Record<string, string>, body: string): Promise<PostResult>;
  close(): void;
}

/**
 * Outbound callback POSTs with node:http: no redirects are ever followed (a 3xx is a failure), the
 * answer is read up to a few KB, the whole exchange is bounded by `timeoutMs`, and unless private
 * targets are allowed the connection's own DNS lookup refuses private addresses (no rebinding
 * between a check and the connect). Keep-alive agents reuse connections to busy receivers.
 */
export function createWebhookClient(opts: { timeoutMs: number; allowPrivate: boolean; maxSockets?: number }): WebhookClient {
  const guardedLookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return (callback as (e: Error | null, a: LookupAddress[]) => void)(err, []);
      const list = addresses as LookupAddress[];
      const bad = opts.allowPrivate ? undefined : list.find((a) => isPrivateAddress(a.address));
      if (bad) return (callback as (e: Error | null, a: LookupAddress[]) => void)(new Error(`${hostname} resolves to a private address`), []);
      if ((options as { all?: boolean }).all) (callback as (e: Error | null, a: LookupAddress[]) => void)(null, list);
      else (callback as (e: Error | null, a: string, f: number) => void)(null, list[0]!.address, list[0]!.family);
    });
  };
  const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 64, lookup: guardedLookup };
  const http = new HttpAgent(agentOpts);
  const https = new HttpsAgent(agentOpts);

  return {
    post(rawUrl, headers, body) {
      const started = performance.now();
      const done = (r: Omit<PostResult, "latencyMs">): PostResult => ({ ...r, latencyMs: Math.round(performance.now() - started) });
      const shape = checkUrlShape(rawUrl);
      if (!shape.ok) return Promise.resolve(done({ ok: false, status: null, error: `refused URL: ${shape.reason}`, body: "" }));
      const url = shape.url;
      if (!opts.allowPrivate && url.protocol !== "https:") return Promise.resolve(done({ ok: false, status: null, error: `refused URL: ${HTTPS_ONLY}`, body: "" }));
      const host = url.hostname.replace(/^\[|\]$/g, "");
      if (!opts.allowPrivate && (isIP(host) ? isPrivateAddress(host) : host === "localhost" || host.endsWith(".localhost"))) {
        return Promise.resolve(done({ ok: false, status: null, error: `refused URL: ${host} is a private address`, body: "" }));
      }
      return new Promise<PostResult>((resolve) => {
        let settled = false;
        const finish = (r: Omit<PostResult, "latencyMs">) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(done(r));
        };
        const send = url.protocol === "https:" ? httpsRequest : httpRequest;
        const req = send(url, {
          method: "POST",
          agent: url.protocol === "https:" ? https : http,
          headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(body), "user-agent": "iys-consent-hub-webhooks/1" },
        });
        const timer = setTimeout(() => {
          finish({ ok: false, status: null, error: `timeout after ${opts.timeoutMs} ms`, body: "" });
          req.destroy();
        }, opts.timeoutMs);
        req.on("error", (err) => finish({ ok: false, status: null, error: err.message, body: "" }));
        req.on("response", (res: IncomingMessage) => {
          const status = res.statusCode ?? 0;
          const chunks: Buffer[] = [];
          let size = 0;
          const end = () => {
            const text = Buffer.concat(chunks).toString("utf8").slice(0, MAX_RESPONSE_BYTES);
            const ok = status >= 200 && status < 300;
            finish({ ok, status, error: ok ? null : status >= 300 && status < 400 ? `redirect ${status} not followed` : `HTTP ${status}`, body: text });
          };
          res.on("data", (c: Buffer) => {
            if (size >= MAX_RESPONSE_BYTES) return;
            chunks.push(c);
            size += c.length;
            if (size >= MAX_RESPONSE_BYTES) {
              end();
              res.destroy();
            }
          });
          res.on("end", end);
          res.on("error", (err) => finish({ ok: false, status, error: err.message, body: "" }));
        });
        req.end(body);
      });
    },
    close() {
      http.destroy();
      https.destroy();
    },
  };
}
