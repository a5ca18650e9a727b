import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/core/random.ts";
import { VirtualClock } from "../../src/testing/clock.ts";

describe("VirtualClock", () => {
  it("starts at 0 and moves only when driven", () => {
    const clock = new VirtualClock();
    expect(clock.now()).toBe(0);
    let fired = false;
    clock.setTimer(10, () => (fired = true));
    expect(clock.now()).toBe(0);
    expect(fired).toBe(false);
    expect(clock.pending()).toBe(1);
    expect(clock.nextTime()).toBe(10);
  });

  it("fires events in time order, and in insertion order at equal times", () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    clock.setTimer(5, () => log.push("b@5"));
    clock.setTimer(1, () => log.push("a@1"));
    clock.setTimer(5, () => log.push("c@5"));
    clock.setTimer(3, () => log.push("x@3"));
    clock.setTimer(5, () => log.push("d@5"));
    clock.runUntilIdle();
    expect(log).toEqual(["a@1", "x@3", "b@5", "c@5", "d@5"]);
    expect(clock.now()).toBe(5);
  });

  it("fireNext advances to the next event, runs exactly that one, and returns false when idle", () => {
    const clock = new VirtualClock();
    const log: number[] = [];
    clock.setTimer(7, () => log.push(clock.now()));
    clock.setTimer(7, () => log.push(-clock.now()));
    expect(clock.fireNext()).toBe(true);
    expect(log).toEqual([7]);
    expect(clock.pending()).toBe(1);
    expect(clock.fireNext()).toBe(true);
    expect(log).toEqual([7, -7]);
    expect(clock.fireNext()).toBe(false);
    expect(clock.nextTime()).toBeUndefined();
    expect(clock.now()).toBe(7);
  });

  it("treats a negative or NaN delay as 0", () => {
    const clock = new VirtualClock();
    clock.advance(100);
    const log: string[] = [];
    clock.setTimer(-50, () => log.push("neg"));
    clock.setTimer(Number.NaN, () => log.push("nan"));
    expect(clock.nextTime()).toBe(100);
    clock.advance(0);
    expect(log).toEqual(["neg", "nan"]);
  });

  it("a cancelled event never fires; cancelling twice or after firing is harmless", () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    const cancelA = clock.setTimer(1, () => log.push("a"));
    const cancelB = clock.setTimer(2, () => log.push("b"));
    clock.setTimer(3, () => log.push("c"));
    cancelA();
    cancelA();
    expect(clock.pending()).toBe(2);
    expect(clock.nextTime()).toBe(2);
    clock.advanceTo(2);
    cancelB(); // already fired
    expect(clock.pending()).toBe(1);
    clock.runUntilIdle();
    expect(log).toEqual(["b", "c"]);
    expect(clock.pending()).toBe(0);
  });

  it("advanceTo fires everything due in the window, including events scheduled meanwhile, then sets the time", () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    clock.setTimer(10, () => {
      log.push(`first@${clock.now()}`);
      clock.setTimer(5, () => log.push(`chained@${clock.now()}`)); // due at 15: inside the window
      clock.setTimer(0, () => log.push(`immediate@${clock.now()}`));
      clock.setTimer(20, () => log.push(`late@${clock.now()}`)); // due at 30: outside
    });
    clock.setTimer(20, () => log.push(`edge@${clock.now()}`)); // exactly at t fires
    clock.advanceTo(20);
    expect(log).toEqual(["first@10", "immediate@10", "chained@15", "edge@20"]);
    expect(clock.now()).toBe(20);
    expect(clock.pending()).toBe(1);
    clock.advance(9);
    expect(clock.now()).toBe(29);
    expect(log).toHaveLength(4);
    clock.advance(1);
    expect(log).toEqual(["first@10", "immediate@10", "chained@15", "edge@20", "late@30"]);
  });

  it("a timer set inside an event is relative to that event's time", () => {
    const clock = new VirtualClock();
    const times: number[] = [];
    const tick = (): void => {
      times.push(clock.now());
      if (times.length < 5) clock.setTimer(100, tick);
    };
    clock.setTimer(100, tick);
    clock.advance(1000);
    expect(times).toEqual([100, 200, 300, 400, 500]);
  });

  it("refuses to move backwards", () => {
    const clock = new VirtualClock();
    clock.advance(10);
    expect(() => clock.advanceTo(5)).toThrow(/backwards/);
    expect(() => clock.advance(-1)).toThrow(RangeError);
    expect(clock.now()).toBe(10);
  });

  it("an event that throws propagates, and the clock stays consistent", () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    clock.setTimer(1, () => {
      throw new Error("boom");
    });
    clock.setTimer(2, () => log.push("after"));
    expect(() => clock.advanceTo(5)).toThrow("boom");
    expect(clock.now()).toBe(1);
    expect(clock.pending()).toBe(1);
    clock.advanceTo(5);
    expect(log).toEqual(["after"]);
  });

  it("runUntilIdle refuses to spin forever on a self-rearming timer", () => {
    const clock = new VirtualClock();
    const rearm = (): void => void clock.setTimer(1, rearm);
    clock.setTimer(1, rearm);
    expect(() => clock.runUntilIdle(1000)).toThrow(/still busy after 1000 events/);
  });

  it("handles a million events in order, quickly, with heavy cancellation", () => {
    const clock = new VirtualClock();
    const random = new SeededRandom(42);
    const N = 200_000;
    let fired = 0;
    let lastTime = -1;
    let lastSeqAtTime = -1;
    let ordered = true;
    const cancels: (() => void)[] = [];
    const started = performance.now();
    for (let i = 0; i < N; i++) {
      const at = random.int(0, 10_000);
      const seq = i;
      cancels.push(
        clock.setTimer(at, () => {
          fired++;
          const now = clock.now();
          if (now < lastTime || (now === lastTime && seq < lastSeqAtTime)) ordered = false;
          if (now !== lastTime) lastSeqAtTime = -1;
          lastTime = now;
          lastSeqAtTime = seq;
        }),
      );
    }
    // Cancel every third event, as re-armed election timers would.
    let cancelled = 0;
    for (let i = 0; i < N; i += 3) {
      cancels[i]();
      cancelled++;
    }
    expect(clock.pending()).toBe(N - cancelled);
    clock.advanceTo(5_000);
    clock.runUntilIdle();
    const elapsed = performance.now() - started;
    expect(ordered).toBe(true);
    expect(fired).toBe(N - cancelled);
    expect(clock.pending()).toBe(0);
    expect(elapsed).toBeLessThan(30_000); // a sanity bound: a quadratic queue would take hours
  });
});
