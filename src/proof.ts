import type { JWK } from "jose";
import { createCheckpoint, type LedgerKey } from "../db/checkpoints";
import type { Db } from "../db/index";
import { CANONICAL_FIELDS, canonicalEvent, contentHash, EVENT_COLUMNS, type LedgerEvent } from "../db/ledger";
import type { Clock } from "./domain/time";

export const PROOF_ALGORITHM =
  "contentHash = SHA-256(canonical) (hex); hash = SHA-256(contentHash + prevHash) (the two hex strings concatenated); " +
  "each link's prevHash is the hash before it; the checkpoint JWS (EdDSA, Ed25519, typ hub-checkpoint+jws) signs {eventId, hash} of the last link.";

export interface EventProof {
  event: LedgerEvent;
  /** The exact string whose SHA-256 is `contentHash`. */
  canonical: string;
  /** What each element of `canonical` is, in order (consentDate and receivedAt in epoch milliseconds). */
  canonicalFields: string[];
  contentHash: string;
  /** Events after this one up to the checkpoint: hashes only, no personal data. */
  chain: { id: number; contentHash: string; prevHash: string; hash: string }[];
  checkpoint: { id: number; eventId: number; hash: string; jws: string; createdAt: string };
  publicKey: JWK;
  algorithm: string;
}

/**
 * Everything a third party needs to check one event with the ledger's public key alone: its
 * canonical content, the hash links to the first signed checkpoint at or after it (signing the
 * head now when no checkpoint covers it yet), and that checkpoint's JWS.
 */
export async function proveEvent(db: Db, key: LedgerKey, clock: Clock, eventId: number): Promise<EventProof | null> {
  const c = db.$client;
  const event = c.prepare(`SELECT ${EVENT_COLUMNS} FROM consent_events WHERE id = ?`).get(eventId) as LedgerEvent | undefined;
  if (!event) return null;
  const firstCovering = () =>
    c.prepare(`SELECT id, event_id AS eventId, hash, jws, created_at AS createdAt FROM ledger_checkpoints WHERE event_id >= ? ORDER BY event_id, id LIMIT 1`).get(eventId) as
      | { id: number; eventId: number; hash: string; jws: string; createdAt: number }
      | undefined;
  let checkpoint = firstCovering();
  if (!checkpoint) {
    await createCheckpoint(db, key, clock);
    checkpoint = firstCovering();
    if (!checkpoint) throw new Error(`no checkpoint covers event ${eventId}`);
  }
  const chain = (c.prepare(`SELECT ${EVENT_COLUMNS} FROM consent_events WHERE id > ? AND id <= ? ORDER BY id`).all(eventId, checkpoint.eventId) as LedgerEvent[]).map(
    (e) => ({ id: e.id, contentHash: contentHash(e), prevHash: e.prevHash, hash: e.hash }),
  );
  return {
    event,
    canonical: canonicalEvent(event),
    canonicalFields: CANONICAL_FIELDS.slice(0, event.salt ? CANONICAL_FIELDS.length : CANONICAL_FIELDS.length - 1),
    contentHash: contentHash(event),
    chain,
    checkpoint: { ...checkpoint, createdAt: new Date(checkpoint.createdAt).toISOString() },
    publicKey: key.publicJwk,
    algorithm: PROOF_ALGORITHM,
  };
}
