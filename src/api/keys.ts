import { createRoute, z } from "@hono/zod-openapi";
import { randomBytes } from "node:crypto";
import { stmt } from "../../db/index";
import { brandByCode } from "../brands";
import type { AppDeps } from "../env";
import { ApiError } from "../errors";
import { keyHash, newProviderKey, requireAdmin } from "./auth";
import { apiRouter, bearerSecurity, errorResponses, jsonBody, jsonResponse, requireJson } from "./openapi";

const KeyBrands = z
  .union([z.literal("*"), z.array(z.string().trim().min(1).max(32)).min(1).max(1000)], { error: (issue) => (issue.input === undefined ? "required" : 'a list of brand codes (["MIGROS"]), or "*" for every brand') })
  .openapi({ description: 'brand codes the key may act on, or "*" for every brand (present and future)', example: ["MIGROS"] });

const KeyInput = z
  .object({
    name: z.string().trim().min(1).max(120).openapi({ description: "who holds the key", example: "Acme SMS platform" }),
    brands: KeyBrands,
  })
  .strict()
  .openapi("ApiKeyRequest", { example: { name: "Acme SMS platform", brands: ["MIGROS"] } });

const KeyOut = z
  .object({
    id: z.string().openapi({ example: "key_3f9a1c2b7d4e" }),
    name: z.string(),
    brands: z.union([z.literal("*"), z.array(z.string())]),
    prefix: z.string().openapi({ description: "the key's first characters, to tell keys apart", example: "hub_Xq3v" }),
    status: z.enum(["active", "revoked"]),
    createdAt: z.string(),
    revokedAt: z.string().nullable(),
  })
  .openapi("ApiKey");

const CreatedKey = KeyOut.extend({
  key: z.string().openapi({ description: "the key itself: shown this once, only its SHA-256 is stored", example: "hub_Xq3vN0s1m9TtR2cLw8pYbKdA4fGhJ6eUz5iOq7lMnB0" }),
}).openapi("CreatedApiKey");

const KeyId = z.object({ id: z.string().openapi({ param: { name: "id", in: "path" }, example: "key_3f9a1c2b7d4e" }) });

const createKeyRoute = createRoute({
  method: "post",
  path: "/",
  summary: "Create a provider API key scoped to brands",
  description: "Admin key only. The answer carries the key once (`hub_` + 32 random bytes, base64url); the hub keeps only its SHA-256. A provider key acts on its brands only (403 elsewhere) and never on the admin areas (keys, brand creation, subscriptions, deliveries).",
  security: bearerSecurity,
  middleware: [requireAdmin, requireJson] as const,
  request: { body: jsonBody(KeyInput, "the key's holder and brands", { name: "Acme SMS platform", brands: ["MIGROS"] }) },
  responses: { 201: jsonResponse(CreatedKey, "The key, shown once"), ...errorResponses },
});

const listKeysRoute = createRoute({
  method: "get",
  path: "/",
  summary: "List API keys (never the secrets)",
  description: "Admin key only. Active and revoked keys, newest first.",
  security: bearerSecurity,
  middleware: [requireAdmin] as const,
  responses: { 200: jsonResponse(z.object({ keys: z.array(KeyOut) }).openapi("ApiKeyList"), "The keys"), ...errorResponses },
});

const revokeKeyRoute = createRoute({
  method: "delete",
  path: "/{id}",
  summary: "Revoke an API key",
  description: "Admin key only. The key is refused (401) from the next request on; the row stays for the record. Revoking twice is harmless.",
  security: bearerSecurity,
  middleware: [requireAdmin] as const,
  request: { params: KeyId },
  responses: { 204: { description: "Revoked" }, ...errorResponses },
});

interface KeyRow {
  id: string;
  name: string;
  brands: string;
  prefix: string;
  createdAt: number;
  revokedAt: number | null;
}

const KEY_SELECT = `SELECT id, name, brands, prefix, created_at AS createdAt, revoked_at AS revokedAt FROM api_keys`;

const present = (k: KeyRow) => ({
  id: k.id,
  name: k.name,
  brands: JSON.parse(k.brands) as string[] | "*",
  prefix: k.prefix,
  status: k.revokedAt === null ? ("active" as const) : ("revoked" as const),
  createdAt: new Date(k.createdAt).toISOString(),
  revokedAt: k.revokedAt === null ? null : new Date(k.revokedAt).toISOString(),
});

/** `/api/v1/keys`: provider API keys (admin key only). */
export function createKeyRoutes(deps: AppDeps) {
  const byId = (id: string) => stmt<[string], KeyRow>(deps.db, `${KEY_SELECT} WHERE id = ?`).get(id);
  return apiRouter()
    .openapi(createKeyRoute, (c) => {
      const input = c.req.valid("json");
      const brands =
        input.brands === "*"
          ? ("*" as const)
          : [
              ...new Set(
                input.brands.map((code, i) => {
                  const b = brandByCode(deps.db, code);
                  if (!b) throw new ApiError("bad_request", `brands[${i}]: brand ${code} not found`, { field: `brands[${i}]` });
                  return b.code;
                }),
              ),
            ];
      const key = newProviderKey();
      const id = `key_${randomBytes(6).toString("hex")}`;
      stmt(deps.db, `INSERT INTO api_keys (id, name, brands, key_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?, ?)`).run(
        id,
        input.name,
        JSON.stringify(brands),
        keyHash(key),
        key.slice(0, 8),
        deps.clock.now().getTime(),
      );
      deps.log.info({ keyId: id, brands: brands === "*" ? "*" : brands.length }, "api key created");
      return c.json({ ...present(byId(id)!), key }, 201);
    })
    .openapi(listKeysRoute, (c) => c.json({ keys: stmt<[], KeyRow>(deps.db, `${KEY_SELECT} ORDER BY created_at DESC, id`).all().map(present) }, 200))
    .openapi(revokeKeyRoute, (c) => {
      const { id } = c.req.valid("param");
      const row = byId(id);
      if (!row) throw new ApiError("not_found", `API key ${id} not found`, { field: "id" });
      if (row.revokedAt === null) {
        stmt(deps.db, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`).run(deps.clock.now().getTime(), id);
        deps.log.info({ keyId: id }, "api key revoked");
      }
      return c.body(null, 204);
    });
}
