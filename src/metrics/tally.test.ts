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
});
