import { createRoute, z } from "@hono/zod-openapi";
import { stmt } from "../../db/index";
import { brandById } from "../brands";
import { presentEvent } from "../consents";
import type { AppDeps } from "../env";
import { ApiError } from "../errors";
import { proveEvent } from "../proof";
import { canAccessBrand } from "./auth";
import { apiRouter, bearerSecurity, digits, errorResponses, jsonResponse } from "./openapi";

const Jwk = z.record(z.string(), z.unknown()).openapi("JWK", { description: "Ed25519 public key (RFC 8037 OKP JWK)" });

const Proof = z
  .object({
    event: z.record(z.string(), z.unknown()).openapi({ description: "the event as the API presents it" }),
    canonical: z.string().openapi({ description: "the exact string whose SHA-256 is contentHash: a JSON array, its elements named by canonicalFields" }),
    canonicalFields: z.array(z.string()).openapi({
      description: "what each element of canonical is, in order: format (3), id, brandId, recipient, recipientType, type, status, source, consentDate (epoch ms), retailerCode, origin, receiptId, idempotencyKey, effect, receivedAt (epoch ms), salt",
    }),
    brandId: z.number().openapi({ description: "the brand's id in canonical; event.brand is its code" }),
    contentHash: z.string(),
    prevHash: z.string(),
    hash: z.string(),
    chain: z.array(z.object({ id: z.number(), contentHash: z.string(), prevHash: z.string(), hash: z.string() })),
    checkpoint: z.object({ id: z.number(), eventId: z.number(), hash: z.string(), jws: z.string(), createdAt: z.string() }),
    publicKey: Jwk,
    algorithm: z.string(),
  })
  .openapi("EventProof");

const proofRoute = createRoute({
  method: "get",
  path: "/events/{id}/proof",
  summary: "Proof of one consent event",
  description: "The event, its canonical content and hash, the hash links (no personal data) to the first signed checkpoint after it, and the checkpoint's JWS: verifiable with the public key alone.",
  security: bearerSecurity,
  request: { params: z.object({ id: digits("an event id").pipe(z.number().int().positive()).openapi({ param: { name: "id", in: "path" }, example: "42" }) }) },
  responses: { 200: jsonResponse(Proof, "The proof"), ...errorResponses },
});

const keyRoute = createRoute({
  method: "get",
  path: "/public-key",
  summary: "The ledger's checkpoint signing key (public JWK)",
  responses: { 200: jsonResponse(z.object({ keys: z.array(Jwk) }).openapi("JWKS"), "A JWK set with the current key") },
});

/** Public: anyone holding a proof must be able to fetch the key that verifies it. */
export function createLedgerPublicRoutes(deps: AppDeps) {
  return apiRouter().openapi(keyRoute, (c) => c.json({ keys: [deps.ledgerKey.publicJwk as Record<string, unknown>] }, 200));
}

export function createLedgerRoutes(deps: AppDeps) {
  return apiRouter().openapi(proofRoute, async (c) => {
    const { id } = c.req.valid("param");
    const notFound = () => new ApiError("not_found", `event ${id} not found`, { field: "id" });
    // A provider key sees events of its own brands only; another brand's event is not found (nothing
    // to probe), and asked before the proof is built: building it may sign a new checkpoint.
    const owner = stmt(deps.db, "SELECT brand_id AS brandId FROM consent_events WHERE id = ?").get(id) as { brandId: number } | undefined;
    const brand = owner ? brandById(deps.db, owner.brandId) : null;
    if (!owner || !canAccessBrand(c.get("caller"), brand?.code ?? "")) throw notFound();
    const proof = await proveEvent(deps.db, deps.ledgerKey, deps.clock, id);
    if (!proof) throw notFound();
    return c.json(
      {
        ...proof,
        event: presentEvent(proof.event, brand?.code ?? String(proof.event.brandId)),
        brandId: proof.event.brandId,
        prevHash: proof.event.prevHash,
        hash: proof.event.hash,
        publicKey: proof.publicKey as Record<string, unknown>,
      },
      200,
    );
  });
}
