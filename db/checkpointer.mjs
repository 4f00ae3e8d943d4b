// Background WAL checkpoints for the hub's SQLite file, on a worker thread with its own connection
// (plain JavaScript: a worker thread runs without the TypeScript loader). Started and stopped by
// openDatabase in db/index.ts, which says why.
//
// A PASSIVE checkpoint copies committed WAL frames into the database file without taking the write
// lock, so the hub's writers go on committing meanwhile; it only skips frames that a reader still
// needs. While the hub writes it runs every `minMs`; while nothing changes it backs off to `maxMs`.
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const { path, synchronous, minMs, maxMs, stopped } = workerData;
const db = new Database(path, { fileMustExist: true });
// The checkpoint's fsyncs follow the connection's synchronous setting: the same as the hub's.
db.pragma(`synchronous = ${synchronous}`);
db.pragma("wal_autocheckpoint = 0");

let last = "";
let wait = minMs;
let timer = setTimeout(checkpoint, wait);

function checkpoint() {
  try {
    const [r] = db.pragma("wal_checkpoint(PASSIVE)");
    const now = `${r.log}/${r.checkpointed}`;
    wait = now !== last ? minMs : Math.min(maxMs, wait * 2);
    last = now;
  } catch {
    // SQLITE_BUSY (another checkpoint is running) or a transient I/O error: try again later.
    wait = maxMs;
  }
  timer = setTimeout(checkpoint, wait);
}

parentPort.on("message", (m) => {
  if (m !== "stop") return;
  clearTimeout(timer);
  db.close();
  const flag = new Int32Array(stopped);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
  parentPort.close();
});
