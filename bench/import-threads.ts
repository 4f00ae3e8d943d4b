/**
 * `npm run bench:import-threads [-- ROWS]`: where one import's CPU goes, thread by thread (Linux:
 * /proc/self/task). Imports the bench's generated file (1 000 000 rows unless given) into a fresh
 * hub once and prints the wall time a row, the process's CPU a row, and each thread's: the main
 * thread (reading, normalising, the İYS rules, planning, part of the hashing), then the others by
 * CPU: the two the import starts (the ledger's writer thread, the database's checkpointer) and the
 * ones before it (V8's platform workers: garbage collection helpers). Not a benchmark (no baseline;
 * the machine is shared): a way to see which side a change moves.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { importRound, writeCsv } from "./import";

/** CPU milliseconds of each live thread of this process, by thread id. */
function threadCpu(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // utime + stime, in clock ticks (USER_HZ: 100 on Linux).
      out.set(Number(tid), (Number(f[11]) + Number(f[12])) * 10);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

const rows = Number(process.argv[2] ?? 1_000_000);
if (!Number.isInteger(rows) || rows < 1) {
  console.error("usage: npm run bench:import-threads [-- ROWS]");
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), "hub-import-threads-"));
try {
  const csv = join(dir, "consents.csv");
  writeCsv(csv, rows);
  mkdirSync(join(dir, "hub"));
  const before = threadCpu();
  // Threads that end before the import does (the writer thread) keep their last sample.
  const seen = new Map<number, number>();
  const sample = () => threadCpu().forEach((ms, tid) => seen.set(tid, ms));
  const timer = setInterval(sample, 100);
  const cpu0 = process.cpuUsage();
  const { ms, db } = await importRound(csv, join(dir, "hub"), `import-threads-${randomBytes(4).toString("hex")}`, rows);
  const cpu = process.cpuUsage(cpu0);
  clearInterval(timer);
  sample();
  db.$client.close();
  const perRow = (msTotal: number) => `${((msTotal * 1000) / rows).toFixed(2)} µs a row`;
  console.log(`${rows} rows in ${(ms / 1000).toFixed(1)} s: ${perRow(ms)} of wall time, ${perRow((cpu.user + cpu.system) / 1000)} of CPU`);
  const used = [...seen].map(([tid, total]) => [tid, total - (before.get(tid) ?? 0)] as const).filter(([, t]) => t > 0);
  const main = used.find(([tid]) => tid === process.pid);
  if (main) console.log(`  main thread   ${perRow(main[1])}`);
  for (const [tid, t] of used.filter(([tid]) => tid !== process.pid).sort((a, b) => b[1] - a[1])) {
    // Started with the import: the hub's own (its database's checkpointer, the ledger's writer); before it: V8's and libuv's.
    console.log(`  thread ${String(tid).padEnd(6)} ${perRow(t)}${before.has(tid) ? "" : " (started by the import: the writer or the checkpointer)"}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
