import type { Context } from "hono";
import { z } from "zod";
import { ApiError } from "./errors";

// A field left out is "required", whatever its type (zod's own words were "Invalid option: expected
// one of …" for an enum, "expected string, received undefined"…). Our own refinements keep theirs.
z.config({ customError: (issue) => (issue.input === undefined && issue.code !== "custom" ? "required" : undefined) });

function fieldOf(path: PropertyKey[]): string {
  return path.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join(".").replace(/\.\[/g, "[") || "(body)";
}

const isSafeRangeIssue = (i: z.core.$ZodIssue) =>
  (i.code === "too_big" && i.maximum === Number.MAX_SAFE_INTEGER) || (i.code === "too_small" && i.minimum === Number.MIN_SAFE_INTEGER);

/** A zod failure as our 400: names the first bad field (and lists all). */
export function zodError(error: z.ZodError): ApiError {
  // A field the schema does not know (a strict object) is named itself: a typo such as `recipientTyp`
  // would otherwise leave the default in force without a word.
  // An integer's own safe range (±2^53 − 1) is said only when the field has no limit of its own
  // (a limit of 3650 was said as "expected int to be <=9007199254740991" for a huge number).
  const ownLimit = new Set(error.issues.filter((i) => !isSafeRangeIssue(i)).map((i) => fieldOf(i.path)));
  const issues = error.issues.filter((i) => !isSafeRangeIssue(i) || !ownLimit.has(fieldOf(i.path))).flatMap((i) =>
    i.code === "unrecognized_keys" ? i.keys.map((k) => ({ field: fieldOf([...i.path, k]), message: "unknown field" })) : [{ field: fieldOf(i.path), message: i.message }],
  );
  const first = issues[0]!;
  return new ApiError("bad_request", `${first.field}: ${first.message}`, { field: first.field, issues });
}

/** Parses with a zod schema; a failure is a 400 naming the first bad field (and listing all). */
export function parseOr400<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw zodError(r.error);
}

/** Reads a JSON body; malformed JSON or another content type is a clear 4xx, never a 500. */
export async function jsonBody(c: Context): Promise<unknown> {
  const type = c.req.header("content-type") ?? "";
  if (!type.toLowerCase().includes("application/json")) {
    throw new ApiError("unsupported_media_type", "Content-Type must be application/json");
  }
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError("bad_request", "the request body is not valid JSON", { field: "(body)" });
  }
}
