import Database from "better-sqlite3";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { CompactSign, calculateJwkThumbprint, compactVerify, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import type { Clock } from "../src/domain/time";
import type { Db } from "./index";
import { EVENT_STORED_COLUMNS, eventHash, GENESIS_HASH, type LedgerEvent } from "./ledger";

export const CHECKPOINT_TYP = "hub-checkpoint+jws";

export interface LedgerKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Whether any checkpoint was signed (then the key that signed it must be the one loaded). */
export function hasCheckpoints(db: Db): boolean {
  return db.$client.prepare("SELECT 1 FROM ledger_checkpoints LIMIT 1").get() !== undefined;
}

/**
 * Loads the Ed25519 key that signs checkpoints, creating it (mode 0600) on first start. With
 * `create: false` a missing file is an error instead: verifying with a new key would call every
 * checkpoint forged, and signing with one would split the history between two keys.
 */
export async function loadOrCreateLedgerKey(path: string, log?: Logger, opts: { create?: boolean } = {}): Promise<LedgerKey> {
  let jwk: JWK;
  if (!existsSync(path) && opts.create === false) {
    throw new Error(`the ledger signing key LEDGER_KEY_PATH=${path} does not exist (checkpoints were signed with a key kept there: restore it from your backup)`);
  }
  if (existsSync(path)) {
    try {
      jwk = JSON.parse(readFileSync(path, "utf8")) as JWK;
    } catch (err) {
      throw new Error(`LEDGER_KEY_PATH ${path} is not a readable JSON key file (${(err as Error).message})`);
    }
    if (!jwk || jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || !jwk.d || !jwk.x) {
      throw new Error(`LEDGER_KEY_PATH ${path} does not hold an Ed25519 private JWK`);
    }
  } else {
    const pair = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
    jwk = await exportJWK(pair.privateKey);
    jwk.kid = await calculateJwkThumbprint(jwk);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${JSON.stringify(jwk, null, 2)}\n`, { mode: 0o600 });
    log?.info({ path, kid: jwk.kid }, "generated a new ledger signing key (LEDGER_KEY_PATH did not exist)");
  }
  const { d: _d, ...pub } = jwk;
  const publicJwk: JWK = { ...pub, alg: "EdDSA", use: "sig", kid: jwk.kid ?? (await calculateJwkThumbprint(pub)) };
  return {
    kid: publicJwk.kid as string,
    privateKey: (await importJWK({ ...jwk, alg: "EdDSA" }, "EdDSA")) as CryptoKey,
    publicKey: (await importJWK(publicJwk, "EdDSA")) as CryptoKey,
    publicJwk,
  };
}

/**
 * A key that verifies checkpoints, from a file that needs no secret: a JWK set as
 * `GET /api/v1/ledger/public-key` answers it, or one JWK (of a private one only the public half is
 * used). Of several, the one named `preferKid` (the newest checkpoint's signer), else the first.
 */
export async function loadPublicKeyFile(path: string, preferKid?: string): Promise<{ kid: string; publicKey: CryptoKey }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`--public-key ${path} is not a readable JSON file (${(err as Error).message})`);
  }
  const keys = (Array.isArray((parsed as { keys?: unknown })?.keys) ? (parsed as { keys: unknown[] }).keys : [parsed]) as JWK[];
  const usable = keys.filter((k) => k && k.kty === "OKP" && k.crv === "Ed25519" && typeof k.x === "string");
  const jwk = usable.find((k) => preferKid !== undefined && k.kid === preferKid) ?? usable[0];
  if (!jwk) throw new Error(`--public-key ${path} holds no Ed25519 public JWK (a JWK set as GET /api/v1/ledger/public-key answers it, or one JWK)`);
  const pub: JWK = { kty: "OKP", crv: "Ed25519", x: jwk.x };
  return { kid: jwk.kid ?? (await calculateJwkThumbprint(pub)), publicKey: (await importJWK({ ...pub, alg: "EdDSA" }, "EdDSA")) as CryptoKey };
}

/**
 * The ledger's signing key: created only while nothing was signed, and then the key that signed the
 * latest checkpoint. A replaced key file would sign on unnoticed until `hub verify` called every
 * earlier checkpoint forged: the hub does not start with it.
 */
export async function ledgerKeyFor(db: Db, path: string, log?: Logger): Promise<LedgerKey> {
  const last = db.$client.prepare("SELECT id, jws FROM ledger_checkpoints ORDER BY id DESC LIMIT 1").get() as { id: number; jws: string } | undefined;
  const key = await loadOrCreateLedgerKey(path, log, { create: last === undefined });
  if (last) {
    try {
      await compactVerify(last.jws, key.publicKey);
    } catch {
      throw new Error(
        `LEDGER_KEY_PATH ${path} holds key ${key.kid}, but checkpoint #${last.id} was signed by ${signerOf(last.jws)}: restore the key that signed the ledger from your backup`,
      );
    }
  }
  return key;
}

/** The kids the checkpoints name (oldest first; a header that does not parse names none). */
export function checkpointSigners(db: Db): string[] {
  const jwss = db.$client.prepare("SELECT jws FROM ledger_checkpoints ORDER BY id").pluck().all() as string[];
  return jwss.flatMap((jws) => kidOf(jws) ?? []);
}

/** The kid a checkpoint's (unsigned) header names; undefined without one, null when it does not parse. */
function kidOf(jws: string): string | undefined | null {
  try {
    return decodeProtectedHeader(jws).kid;
  } catch {
    return null;
  }
}

/** The kid a checkpoint names, for messages. */
function signerOf(jws: string): string {
  const kid = kidOf(jws);
  return kid ? `key ${kid}` : kid === null ? "another key (its header does not parse)" : "another key";
}

/** Whether the database file holds the hub's ledger tables (a 0-byte file or another database does not); read-only. */
export function hasLedgerTables(c: Database.Database): boolean {
  const n = c
    .prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('consent_events', 'consent_state', 'ledger_checkpoints')")
    .pluck()
    .get() as number;
  return n === 3;
}

export interface CheckpointPayload {
  v: 1;
  eventId: number;
  hash: string;
  issuedAt: string;
}

export interface Checkpoint {
  id: number;
  eventId: number;
  hash: string;
  jws: string;
  createdAt: number;
}

/**
 * Events between two checkpoints at most: a proof carries the links from its event to the first
 * checkpoint after it, and a million-row import between two ticks made proofs of 74 MB.
 */
export const CHECKPOINT_SPAN = 1000;

/**
 * Signs the current chain head unless the last checkpoint already covers it, and before it every
 * CHECKPOINT_SPAN-th event since the last checkpoint (so no proof has more than CHECKPOINT_SPAN
 * links). Returns the head's checkpoint.
 */
export async function createCheckpoint(db: Db, key: LedgerKey, clock: Clock): Promise<Checkpoint | null> {
  const c = db.$client;
  const head = c.prepare("SELECT id, hash FROM consent_events ORDER BY id DESC LIMIT 1").get() as
    | { id: number; hash: string }
    | undefined;
  if (!head) return null;
  const last = c.prepare("SELECT event_id AS eventId FROM ledger_checkpoints ORDER BY id DESC LIMIT 1").get() as
    | { eventId: number }
    | undefined;
  if (last && last.eventId >= head.id) return null;
  const now = clock.now();
  const hashOf = c.prepare<[number], string>("SELECT hash FROM consent_events WHERE id = ?").pluck();
  const insert = c.prepare("INSERT INTO ledger_checkpoints (event_id, hash, jws, created_at) VALUES (?, ?, ?, ?) RETURNING id");
  const signed: { eventId: number; hash: string; jws: string }[] = [];
  for (let id = (last?.eventId ?? 0) + CHECKPOINT_SPAN; id < head.id; id += CHECKPOINT_SPAN) {
    const hash = hashOf.get(id);
    if (hash !== undefined) signed.push({ eventId: id, hash, jws: await signCheckpoint(key, id, hash, now) });
  }
  signed.push({ eventId: head.id, hash: head.hash, jws: await signCheckpoint(key, head.id, head.hash, now) });
  // One transaction: the head's checkpoint is never there without those before it. Another call
  // (the timer and a proof, another process) may have signed while this one did: only what goes
  // past the last checkpoint as it stands now is kept.
  const ids = c
    .transaction(() => {
      const since = (c.prepare("SELECT max(event_id) FROM ledger_checkpoints").pluck().get() as number | null) ?? 0;
      return signed.filter((cp) => cp.eventId > since).map((cp) => (insert.get(cp.eventId, cp.hash, cp.jws, now.getTime()) as { id: number }).id);
    })
    .immediate();
  if (ids.length === 0) return null;
  const cp = signed.at(-1)!;
  return { id: ids.at(-1)!, eventId: cp.eventId, hash: cp.hash, jws: cp.jws, createdAt: now.getTime() };
}

function signCheckpoint(key: LedgerKey, eventId: number, hash: string, now: Date): Promise<string> {
  const payload: CheckpointPayload = { v: 1, eventId, hash, issuedAt: now.toISOString() };
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader({ alg: "EdDSA", kid: key.kid, typ: CHECKPOINT_TYP }).sign(key.privateKey);
}

export interface VerifyProblem {
  eventId?: number;
  checkpointId?: number;
  /** "signature": the checkpoint's signature does not verify with the key given (another key, or a forged checkpoint). */
  kind?: "signature";
  problem: string;
}

export interface VerifyReport {
  ok: boolean;
  events: number;
  checkpoints: number;
  head: { id: number; hash: string } | null;
  /** The first event whose row does not match the chain (altered, removed or inserted). */
  firstBadEventId: number | null;
  problems: VerifyProblem[];
  /** Checkpoints whose signature verifies with the key given. */
  signaturesVerified: number;
  /** Problems other than signatures that do not verify, counted past the listed ones. */
  otherProblems: number;
}

// Without prevHash: verify chains each event on the one it read before (no lookup an event).
const EVENT_SELECT = `SELECT ${EVENT_STORED_COLUMNS} FROM consent_events ORDER BY id`;

/**
 * Recomputes the whole chain, checks every checkpoint's signature against the chain, and checks that
 * the state projection matches the events. Streams the events (constant memory).
 */
export async function verifyLedger(db: Db, publicKey: CryptoKey | null, opts: { maxProblems?: number } = {}): Promise<VerifyReport> {
  const c = db.$client;
  const maxProblems = opts.maxProblems ?? 100;
  const problems: VerifyProblem[] = [];
  let firstBadEventId: number | null = null;
  let signaturesVerified = 0;
  let otherProblems = 0;
  const flag = (p: VerifyProblem) => {
    if (p.kind !== "signature") otherProblems++;
    if (p.eventId !== undefined && firstBadEventId === null) firstBadEventId = p.eventId;
    if (problems.length < maxProblems) problems.push(p);
  };

  const checkpointRows = c
    .prepare("SELECT id, event_id AS eventId, hash, jws FROM ledger_checkpoints ORDER BY id")
    .all() as { id: number; eventId: number; hash: string; jws: string }[];
  const checkpointsAt = new Map<number, { id: number; hash: string }[]>();
  for (const cp of checkpointRows) {
    try {
      if (publicKey === null) throw new Error("no key");
      const { payload, protectedHeader } = await compactVerify(cp.jws, publicKey);
      const body = JSON.parse(new TextDecoder().decode(payload)) as CheckpointPayload;
      if (protectedHeader.typ !== CHECKPOINT_TYP) throw new Error("wrong typ");
      signaturesVerified++;
      if (body.eventId !== cp.eventId || body.hash !== cp.hash) {
        flag({ checkpointId: cp.id, problem: "checkpoint row does not match its signed payload" });
      }
      const list = checkpointsAt.get(body.eventId) ?? [];
      list.push({ id: cp.id, hash: body.hash });
      checkpointsAt.set(body.eventId, list);
    } catch {
      flag({ checkpointId: cp.id, kind: "signature", problem: `checkpoint signature (${signerOf(cp.jws)}) does not verify with the ledger public key` });
    }
  }

  let expectedId = 1;
  let prevHash = GENESIS_HASH;
  let count = 0;
  let head: { id: number; hash: string } | null = null;
  for (const e of c.prepare(EVENT_SELECT).iterate() as IterableIterator<LedgerEvent>) {
    count++;
    if (e.id !== expectedId) {
      flag({ eventId: e.id, problem: `expected event ${expectedId} next, found ${e.id} (events removed or renumbered)` });
    }
    // Chained on the event before as read (a missing one is flagged above: the hash then fails too).
    e.prevHash = prevHash;
    const recomputed = eventHash(e);
    if (recomputed !== e.hash) flag({ eventId: e.id, problem: "its hash does not match its content and the hash of the event before it (this row altered, or that one's hash)" });
    for (const cp of checkpointsAt.get(e.id) ?? []) {
      if (cp.hash !== e.hash || cp.hash !== recomputed) {
        flag({ eventId: e.id, checkpointId: cp.id, problem: "event differs from what a signed checkpoint fixed" });
      }
    }
    checkpointsAt.delete(e.id);
    prevHash = e.hash;
    expectedId = e.id + 1;
    head = { id: e.id, hash: e.hash };
  }
  for (const [eventId, cps] of checkpointsAt) {
    for (const cp of cps) flag({ eventId, checkpointId: cp.id, problem: "a signed checkpoint names an event that is missing" });
  }

  const stateMismatches = c
    .prepare(
      `WITH latest AS (
         SELECT brand_id, recipient, recipient_type, type, MAX(id) AS id,
                MAX(effect = 'movement') AS in_iys
         FROM consent_events GROUP BY brand_id, recipient, recipient_type, type)
       SELECT l.id AS eventId FROM latest l
         JOIN consent_events e ON e.id = l.id
         LEFT JOIN consent_state s ON s.brand_id = l.brand_id AND s.recipient = l.recipient
           AND s.recipient_type = l.recipient_type AND s.type = l.type
       WHERE s.event_id IS NOT l.id OR s.status IS NOT e.status OR s.source IS NOT e.source
          OR s.consent_date IS NOT e.consent_date OR s.retailer_code IS NOT e.retailer_code OR s.in_iys IS NOT l.in_iys
       UNION ALL
       SELECT s.event_id FROM consent_state s WHERE NOT EXISTS (
         SELECT 1 FROM consent_events e WHERE e.brand_id = s.brand_id AND e.recipient = s.recipient
           AND e.recipient_type = s.recipient_type AND e.type = s.type)
       LIMIT ?`,
    )
    .all(maxProblems) as { eventId: number }[];
  for (const m of stateMismatches) {
    otherProblems++;
    if (problems.length < maxProblems) problems.push({ eventId: m.eventId, problem: "consent_state does not match the events (projection altered)" });
  }

  return {
    ok: problems.length === 0 && firstBadEventId === null,
    events: count,
    checkpoints: checkpointRows.length,
    head,
    firstBadEventId,
    problems,
    signaturesVerified,
    otherProblems,
  };
}
