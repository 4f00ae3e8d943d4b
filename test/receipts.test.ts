import { afterAll, describe, expect, it } from "vitest";
import { openDatabase, runMigrations } from "../db/index";
import { recordReceipt, recordReceipts, type NewReceipt } from "../src/receipts";
import { tempDir } from "./helpers";

const tmp = tempDir();
const db = openDatabase(`${tmp.dir}/hub.db`);
runMigrations(db);
afterAll(() => {
  db.$client.close();
  tmp.cleanup();
});

const sms = (ref: string, body = "RET MIGROS"): NewReceipt => ({ channel: "sms", provider: "twilio", providerRef: ref, fromAddress: "+905320000001", toAddress: "3434", body, status: "unroutable" });

describe("recordReceipts", () => {
  it("answers each receipt in order; a retry (earlier, or earlier in the same batch) is the receipt that stood", () => {
    const before = recordReceipt(db, sms("SM-old"), 1);
    expect(before.created).toBe(true);
    // 70 receipts in one call, with retries of an older receipt and of one earlier in the same call.
    const refs = Array.from({ length: 70 }, (_, i) => (i === 3 || i === 66 ? "SM-old" : i === 69 ? "SM-5" : `SM-${i}`));
    const out = recordReceipts(db, refs.map((ref, i) => ({ receipt: sms(ref, `body ${i}`), now: 2 })));
    expect(out.map((r) => r.created)).toEqual(refs.map((ref, i) => ref !== "SM-old" && i !== 69));
    expect(out[3]!.id).toBe(before.id);
    expect(out[66]!.id).toBe(before.id);
    expect(out[69]!.id).toBe(out[5]!.id);
    const rows = db.$client.prepare("SELECT id, provider_ref AS ref, body FROM receipts ORDER BY id").all() as { id: number; ref: string; body: string }[];
    expect(rows).toHaveLength(1 + 67);
    // Every new receipt got its own row, with its own content.
    for (const [i, ref] of refs.entries()) {
      if (ref === "SM-old" || i === 69) continue;
      expect(rows.find((r) => r.id === out[i]!.id)).toEqual({ id: out[i]!.id, ref, body: `body ${i}` });
    }
  });
});
