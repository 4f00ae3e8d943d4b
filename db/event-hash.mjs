// An event's hash chain, in plain JavaScript: db/ledger.ts hashes the events it writes itself, and
// the ledger's writer thread (db/ledger-writer-thread.mjs, which runs without the TypeScript loader)
// seals the events of an import's plans. One definition of the bytes an event's hash covers.
import { hash, randomBytes } from "node:crypto";

/** Where LEDGER_SQL.insertEvent's arguments (an event as a row) hold the chain's columns. */
export const ROW_HASH = 14;
export const ROW_SALT = 15;

/**
 * The exact bytes an event's content hash covers, from its row (LEDGER_SQL.insertEvent's arguments):
 * every column but `hash`, in a fixed order, as a JSON array whose first element is
 * the format version: 3 with the event's salt last, 2 (events recorded before salts) without.
 */
export function canonicalRow(row) {
  const salt = row[ROW_SALT];
  const fields = [salt ? 3 : 2, row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10], row[11], row[12], row[13]];
  if (salt) fields.push(salt);
  return JSON.stringify(fields);
}

// The one-shot crypto.hash: the same digest as createHash().update().digest(), without a Hash object per call.
export const sha256 = (s) => hash("sha256", s, "hex");

/**
 * An event's chain hash: SHA-256 of its content hash followed by the previous event's hash (both
 * 64 hex characters). Hashing the content first lets a proof walk the chain to a signed checkpoint
 * with the content hashes of later events only, never their personal data.
 */
export const chainHash = (content, prevHash) => sha256(content + prevHash);

let saltPool = Buffer.alloc(0);
let saltAt = 0;

/** A new event's salt: 16 random bytes, base64url (drawn from a pool: one system call per 4096). */
export function newSalt() {
  if (saltAt + 16 > saltPool.length) {
    saltPool = randomBytes(16 * 4096);
    saltAt = 0;
  }
  saltAt += 16;
  return saltPool.toString("base64url", saltAt - 16, saltAt);
}

/** Gives an event's row a salt (when it has none) and returns its content hash. */
export function contentHashRow(row) {
  row[ROW_SALT] ??= newSalt();
  return sha256(canonicalRow(row));
}

/**
 * Gives an event's row a salt (when it has none) and its hash, chained on the previous event's hash;
 * returns the hash. Until then the row's hash column may hold its content hash, worked out ahead
 * (contentHashRow, by a planner on another thread); when empty, it is worked out here.
 */
export function sealRow(row, prevHash) {
  const content = row[ROW_HASH] || contentHashRow(row);
  return (row[ROW_HASH] = chainHash(content, prevHash));
}
