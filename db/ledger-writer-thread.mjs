// Writes Ledger.plan's plans (db/ledger-writer.ts says why), on a worker thread with its own
// connection to the hub's SQLite file. Plain JavaScript: a worker thread runs without the
// TypeScript loader the process may run under; the statements come from db/ledger.ts.
//
// One message, one IMMEDIATE transaction: the plan's events, their state rows, its outbox rows and
// the caller's own statements (`runs`: an import's rejected rows and counts), written only while the
// ledger's head is still the one the plan went on from; otherwise nothing is written (`moved`).
// The events come without their chain: each gets its previous hash and hash here (sealRow), from the
// head the transaction found, and its salt and content hash too unless the planner worked them out.
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { sealRow } from "./event-hash.mjs";

const { path, pragmas, sql, statements, genesis } = workerData;
const db = new Database(path, { fileMustExist: true });
for (const p of pragmas) db.pragma(p);
// The references of what a plan writes are checked once a plan (parents), not by SQLite once a row:
// an event's brand, its state row's brand and its state row's event were three parent lookups a
// row, ~3 % of this thread's SQL in a replay of an import's events (7.34 against 7.10 µs a row). An event's brand (and receipt, none in an import's plans) exists: checked below,
// brands are never deleted. Its state row and outbox rows name events of the same transaction
// (stateFromEvents, the planners). The caller's own statements are its to keep right (an import's
// rejected rows name the import it inserted first; imports are never deleted).
db.pragma("foreign_keys = OFF");
const brandExists = db.prepare("SELECT 1 FROM brands WHERE id = ?").pluck();
const receiptExists = db.prepare("SELECT 1 FROM receipts WHERE id = ?").pluck();
/** What SQLite says of a row whose parent is missing, with its code (the caller's error names it as it would). */
const missingParent = (what, id) =>
  Object.assign(new Error(`FOREIGN KEY constraint failed (${what} ${id} does not exist)`), { code: "SQLITE_CONSTRAINT_FOREIGNKEY" });
const head = db.prepare(sql.head);
const insertEvent = db.prepare(sql.insertEvent);
const stateFromEvents = db.prepare(sql.stateFromEvents);
const insertOutboxMany = db.prepare(sql.insertOutboxMany);
const own = Object.fromEntries(Object.entries(statements).map(([name, text]) => [name, db.prepare(text)]));
const guards = new Map();
const guard = (text) => {
  let s = guards.get(text);
  if (!s) guards.set(text, (s = db.prepare(text).pluck()));
  return s.get() ?? null;
};

/** The hash this thread's last committed plan left, with that plan's number (a plan made on top of it names the number, not the hash). */
let written = null;

const write = db.transaction((m) => {
  const now = head.get() ?? { id: 0, hash: genesis };
  const expected = m.after.hash ?? (written !== null && written.plan === m.after.plan ? written.hash : null);
  if (now.id !== m.after.id || now.hash !== expected) return { moved: true };
  // What a planner read outside the ledger (the callback endpoints) changed since: as stale.
  if (m.guards.some(([text, value]) => guard(text) !== value)) return { moved: true };
  let brand = null;
  for (const e of m.events) {
    if (e[1] !== brand) {
      brand = e[1];
      if (brandExists.get(brand) === undefined) throw missingParent("brand", brand);
    }
    if (e[10] != null && receiptExists.get(e[10]) === undefined) throw missingParent("receipt", e[10]);
  }
  let prev = now.hash;
  for (const e of m.events) {
    prev = sealRow(e, prev);
    insertEvent.run(e);
  }
  for (const [from, to] of m.stateRanges) stateFromEvents.run(from, to);
  const outbox = m.outbox.length
    ? insertOutboxMany
        .all(m.receivedAt, m.receivedAt, JSON.stringify(m.outbox))
        .filter((r) => r.status === "pending")
        .map((r) => ({ id: r.id, kind: r.kind }))
        .sort((a, b) => a.id - b.id)
    : [];
  for (const [name, args] of m.runs) own[name].run(args);
  return { moved: false, outbox, head: { hash: prev, plan: m.head.plan } };
});

/** When this thread last finished a write (0: not yet). */
let finished = 0;
// The monotonic clock every thread of the process reads alike (a thread's performance.timeOrigin is its own).
const clock = () => Number(process.hrtime.bigint());

parentPort.on("message", (m) => {
  if (m === "stop") {
    db.close();
    parentPort.close();
    return;
  }
  // Whether this thread sat idle until the plan was sent (WriteResult.waited).
  const waited = finished !== 0 && m.sentAt > finished;
  let answer;
  try {
    const { head: after, ...result } = write.immediate(m);
    // Committed: the plans made on top of this one go on from its head.
    if (after) written = after;
    answer = { seq: m.seq, waited, ...result };
  } catch (err) {
    // SQLite's code (SQLITE_BUSY, SQLITE_FULL…) goes with it: the API answers those with a 503.
    answer = { seq: m.seq, error: err instanceof Error ? err.message : String(err), code: err?.code };
  }
  // Before the answer goes: a plan sent once it is in was sent while this thread sat idle.
  finished = clock();
  parentPort.postMessage(answer);
});
