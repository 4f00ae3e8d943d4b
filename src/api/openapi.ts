import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { HonoEnv } from "../env";
import { formatIysDate } from "../domain/time";
import { ApiError, errorCodes } from "../errors";
import { zodError } from "../validate";

/**
 * Every /api/v1 sub-app is an OpenAPIHono: routes are declared with `createRoute` and zod schemas,
 * so the document at /api/v1/openapi.json is the validation that runs. A validation failure is our
 * one error shape (400 naming the first bad field), never zod's own.
 */
export function apiRouter() {
  return new OpenAPIHono<HonoEnv>({
    defaultHook: (result) => {
      if (!result.success) throw zodError(result.error);
    },
  });
}

/**
 * The consent date the document's examples show: replaced by an hour ago (Istanbul time) each time
 * the document is served, so that "Try it out" sends a date İYS still takes (within 3 business days).
 */
export const EXAMPLE_CONSENT_DATE = "2026-11-24 10:30:00";

/** The document's JSON with EXAMPLE_CONSENT_DATE made an hour before `now` (to the minute). */
export function withRecentExampleDates(documentJson: string, now: number): string {
  const recent = formatIysDate(new Date(Math.floor((now - 3_600_000) / 60_000) * 60_000));
  return documentJson.replaceAll(EXAMPLE_CONSENT_DATE, recent);
}

/** A Content-Type's media type, lower-cased, without its parameters ("application/json ; charset=utf-8" → "application/json"). */
export function mediaType(c: Context): string {
  return (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
}

/**
 * 415 unless the body is JSON: declared before the route's validators, which read what their own
 * test calls JSON (application/json or application/…+json, parameters with values) and nothing else
 * ("text/plain; x=application/json" passed here and reached them as an empty body).
 */
export const requireJson = createMiddleware<HonoEnv>(async function requireJson(c, next) {
  // The routes' own gate (@hono/zod-openapi) takes no blank before a ";" (which HTTP allows:
  // "application/json ; charset=utf-8" was its bare 415): given to it as written without blanks,
  // and held to its pattern here, so that what it would refuse gets this answer, not its bare one.
  const header = c.req.header("content-type") ?? "";
  const canonical = header
    .split(";")
    .map((part) => part.trim().replace(/\s*=\s*/, "="))
    .filter(Boolean)
    .join("; ");
  if (!/^application\/([a-z.-]+\+)?json(; [a-zA-Z0-9-]+=[^;]+)*$/i.test(canonical)) {
    throw new ApiError("unsupported_media_type", "Content-Type must be application/json");
  }
  if (canonical !== header) c.req.raw.headers.set("content-type", canonical);
  // Read here and kept (Hono's body cache): the validator parses this same text, once.
  const text = await c.req.text();
  if (text.includes("\\u") && /\\u[dD][89a-fA-F]/.test(text)) {
    const field = unpairedSurrogate(text);
    if (field !== null) {
      throw new ApiError("bad_request", `${field}: holds an unpaired UTF-16 surrogate (a \\uD800–\\uDFFF escape without its pair): not text that can be stored or sent`, { field });
    }
  }
  await next();
});

/**
 * The first place in a JSON text whose string (value or key) is not well-formed UTF-16, as a field
 * path; null when there is none or the text is not JSON (the validator says that).
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function unpairedSurrogate(text: string): string | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  // An explicit stack, not recursion (a body nested ten thousand deep must not overflow the call
  // stack), and each node's path built only for the one found (a path per node was quadratic).
  type Node = { v: unknown; seg: string | number; parent: Node | null };
  const pathOf = (n: Node): string => {
    let out = "";
    for (let at: Node | null = n; at && at.parent; at = at.parent) out = (typeof at.seg === "number" ? `[${at.seg}]` : `.${at.seg}`) + out;
    return out.replace(/^\./, "") || "(body)";
  };
  const stack: Node[] = [{ v: value, seg: "", parent: null }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const v = node.v;
    if (typeof v === "string") {
      if (LONE_SURROGATE.test(v)) return pathOf(node);
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], seg: i, parent: node });
    } else if (v !== null && typeof v === "object") {
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, inner] = entries[i]!;
        const child = { v: inner, seg: k, parent: node };
        if (LONE_SURROGATE.test(k)) return pathOf(child);
        stack.push(child);
      }
    }
  }
  return null;
}

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ description: `one of ${errorCodes.join(", ")}, or an İYS rule code (H174, H162, …) with status 422`, example: "bad_request" }),
      message: z.string(),
      requestId: z.string().nullable(),
      field: z.string().optional().openapi({ description: "the request field at fault", example: "recipient" }),
      issues: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
      importId: z.string().optional().openapi({ description: "an upload broken past its first rows: the import holding the rows before the break" }),
    }),
  })
  .openapi("Error");

const error = (description: string) => ({ description, content: { "application/json": { schema: ErrorSchema } } });

/** The error answers every authenticated JSON route may give. */
export const errorResponses = {
  400: error("Bad input: `error.field` names it"),
  401: error("Missing or invalid API key"),
  403: error("The API key may not act on this brand"),
  404: error("Unknown brand or resource"),
  413: error("Body too large"),
  415: error("Content-Type is not application/json"),
  422: error("An İYS rule refused it: `error.code` is the İYS code"),
} as const;

/** A JSON request body, required (so a missing body is a 400, not an empty object). */
export function jsonBody<T extends z.ZodType>(schema: T, description?: string, example?: unknown) {
  return { required: true, description, content: { "application/json": { schema, ...(example === undefined ? {} : { example }) } } } as const;
}

export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } } as const;
}

export const bearerSecurity = [{ bearer: [] as string[] }];

/** 409: the request conflicts with what exists (a taken code, a disabled endpoint…). */
export const conflictResponse = error("Conflicts with the current state: `error.message` says how");

/**
 * A whole number in a path or query string, written in digits: `Number()` (z.coerce) also read
 * `1e1`, `0x30`, ` 48` and `1\n` as numbers, acting on a row other than the one typed.
 */
export const digits = (what = "a whole number") => z.string().regex(/^\d+$/, `${what}, in digits`).transform(Number);
