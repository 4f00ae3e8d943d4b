import type { Context, Env, MiddlewareHandler } from "hono";
import { bodyLimit as countedBodyLimit } from "hono/body-limit";

/**
 * hono's bodyLimit, without touching `c.req.raw.body` where it need not: under @hono/node-server
 * (npm start) that getter turns the lightweight request into a full web Request with a stream, and
 * `c.req.text()` then reads the body the slow way — measured at ~100 µs a webhook, more than half
 * of it. A declared Content-Length is checked from the header (Node's HTTP parser holds a body to
 * it, as hono trusts it too); a chunked body is counted as it arrives; GET and HEAD carry none.
 */
export function bodyLimit<E extends Env>(maxSize: number, onError: (c: Context<E>) => Response | Promise<Response>): MiddlewareHandler<E> {
  const counted = countedBodyLimit({ maxSize, onError });
  return async function limitBody(c, next) {
    if (c.req.method === "GET" || c.req.method === "HEAD") return next();
    const length = c.req.header("content-length");
    if (length !== undefined && c.req.header("transfer-encoding") === undefined) {
      return parseInt(length, 10) > maxSize ? onError(c) : next();
    }
    return counted(c, next);
  };
}
