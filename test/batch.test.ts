import { describe, expect, it } from "vitest";
import { MicroBatcher } from "../src/batch";

/** A flush that records its batches and holds each one until released. */
function held() {
  const batches: number[][] = [];
  const releases: (() => void)[] = [];
  const flush = (items: number[]) =>
    new Promise<void>((resolve) => {
      batches.push(items);
      releases.push(resolve);
    });
  return { batches, flush, release: () => releases.shift()!() };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("MicroBatcher", () => {
  it("items of one tick go together; what arrives during a flush goes in one batch right after it", async () => {
    const h = held();
    const b = new MicroBatcher<number>(h.flush, () => {});
    b.push(1);
    b.push(2);
    await tick();
    expect(h.batches).toEqual([[1, 2]]);
    for (const i of [3, 4, 5]) {
      b.push(i);
      await tick();
    }
    expect(h.batches).toHaveLength(1); // nothing overlaps the running flush
    h.release();
    await tick();
    expect(h.batches).toEqual([[1, 2], [3, 4, 5]]);
    const drained = b.drain();
    h.release();
    await drained;
    expect(h.batches).toHaveLength(2);
  });

  it("with a window, items of several ticks within it go together; drain does not wait for the window", async () => {
    const h = held();
    const b = new MicroBatcher<number>(h.flush, () => {}, 500, 60_000);
    for (const i of [1, 2, 3]) {
      b.push(i);
      await tick();
    }
    expect(h.batches).toEqual([]);
    const drained = b.drain();
    await tick();
    expect(h.batches).toEqual([[1, 2, 3]]);
    h.release();
    await drained;
    // Windows of a second: a loaded machine may pause the test for tens of milliseconds between pushes.
    const quick = new MicroBatcher<number>(h.flush, () => {}, 500, 1000);
    quick.push(4);
    await tick();
    quick.push(5);
    await new Promise((r) => setTimeout(r, 1100));
    expect(h.batches).toEqual([[1, 2, 3], [4, 5]]);
    h.release();
  });

  it("with a window, what arrives during a flush still waits out its own window (unless the batch is full)", async () => {
    const h = held();
    const b = new MicroBatcher<number>(h.flush, () => {}, 3, 1000);
    b.push(1);
    await new Promise((r) => setTimeout(r, 1100));
    expect(h.batches).toEqual([[1]]);
    b.push(2); // arrives while [1] is being flushed
    h.release();
    await tick();
    await tick();
    expect(h.batches).toEqual([[1]]); // its window (1 s) is not over
    b.push(3);
    await new Promise((r) => setTimeout(r, 1100));
    expect(h.batches).toEqual([[1], [2, 3]]);
    for (const i of [4, 5, 6, 7]) b.push(i); // during the flush of [2, 3]: a full batch goes at once
    h.release();
    await tick();
    await tick();
    expect(h.batches).toEqual([[1], [2, 3], [4, 5, 6]]);
    const drained = b.drain();
    h.release();
    await tick();
    h.release();
    await drained;
    expect(h.batches).toEqual([[1], [2, 3], [4, 5, 6], [7]]);
  });

  it("batches are at most `max`; drain waits for every item pushed, through failures", async () => {
    const seen: number[][] = [];
    const failed: number[][] = [];
    const b = new MicroBatcher<number>(
      async (items) => {
        seen.push(items);
        if (items.includes(0)) throw new Error("boom");
      },
      (_err, items) => failed.push(items),
      2,
    );
    for (let i = 0; i < 5; i++) b.push(i);
    await b.drain();
    expect(seen).toEqual([[0, 1], [2, 3], [4]]);
    expect(failed).toEqual([[0, 1]]);
  });

});
