import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { Tally } from "./tally";

describe("Tally", () => {
  it("settled counts only grow (a counter); rows still open are counted apart (a gauge) until they settle", async () => {
    const db = new Database(":memory:");
    db.exec("CREATE TABLE outbox (id INTEGER PRIMARY KEY, kind TEXT, status TEXT)");
    const tally = new Tally(db, { table: "outbox", columns: ["kind", "status"], open: { column: "status", values: ["pending"] } });
    const insert = db.prepare("INSERT INTO outbox (kind, status) VALUES (?, ?)");
    insert.run("confirmation", "done");
    const open = Number(insert.run("confirmation", "pending").lastInsertRowid);
    await tally.refresh();
    expect(tally.counts("settled")).toEqual([{ labels: { kind: "confirmation", status: "done" }, n: 1 }]);
    expect(tally.counts("open")).toEqual([{ labels: { kind: "confirmation", status: "pending" }, n: 1 }]);
    expect(tally.counts()).toHaveLength(2);
    db.prepare("UPDATE outbox SET status = 'done' WHERE id = ?").run(open);
    await tally.refresh();
    expect(tally.counts("settled")).toEqual([{ labels: { kind: "confirmation", status: "done" }, n: 2 }]);
    expect(tally.counts("open")).toEqual([]);
    db.close();
  });

  it("a row taken back from a settled status (logged as reopened) is read again, counted when it settles anew and remembered if it fails", async () => {
    const db = new Database(":memory:");
    db.exec("CREATE TABLE outbox (id INTEGER PRIMARY KEY, kind TEXT, status TEXT); CREATE TABLE outbox_reopened (seq INTEGER PRIMARY KEY, outbox_id INTEGER NOT NULL)");
    const insert = db.prepare("INSERT INTO outbox (kind, status) VALUES (?, ?)");
    const skipped = Number(insert.run("iys_report", "skipped").lastInsertRowid);
    // Reopened before the first scan: the scan reads it as it is then (pending), not twice.
    const early = Number(insert.run("iys_report", "skipped").lastInsertRowid);
    db.prepare("UPDATE outbox SET status = 'pending' WHERE id = ?").run(early);
    db.prepare("INSERT INTO outbox_reopened (outbox_id) VALUES (?)").run(early);
    const tally = new Tally(db, {
      table: "outbox",
      columns: ["kind", "status"],
      open: { column: "status", values: ["pending"] },
      remember: { when: (r) => r.status === "failed", max: 50 },
      reopened: { table: "outbox_reopened", column: "outbox_id" },
    });
    await tally.refresh();
    expect(tally.counts("settled")).toEqual([{ labels: { kind: "iys_report", status: "skipped" }, n: 1 }]);
    expect(tally.counts("open")).toEqual([{ labels: { kind: "iys_report", status: "pending" }, n: 1 }]);
    // The brand gets its codes: the skipped row is pending again, then fails.
    db.prepare("UPDATE outbox SET status = 'pending' WHERE id = ?").run(skipped);
    db.prepare("INSERT INTO outbox_reopened (outbox_id) VALUES (?)").run(skipped);
    await tally.refresh();
    expect(tally.counts("open")).toEqual([{ labels: { kind: "iys_report", status: "pending" }, n: 2 }]);
    db.prepare("UPDATE outbox SET status = 'failed' WHERE id IN (?, ?)").run(skipped, early);
    await tally.refresh();
    expect(tally.counts("open")).toEqual([]);
    expect(tally.counts("settled")).toEqual([
      { labels: { kind: "iys_report", status: "skipped" }, n: 1 },
      { labels: { kind: "iys_report", status: "failed" }, n: 2 },
    ]);
    expect(tally.recentIds()).toEqual([early, skipped]);
    db.close();
  });
});
