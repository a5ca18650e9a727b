import type { Clock } from "../clock.ts";

/** One scheduled callback. `done` is set when it fires or is cancelled. */
interface TimerEvent {
  fn: () => void;
  done: boolean;
}

/**
 * Virtual time for tests and the simulator. Nothing happens on its own: time moves only when the
 * test calls `fireNext`, `advance`, `advanceTo` or `runUntilIdle`, and events fire in
 * (time, insertion order) order, so a run is a pure function of its inputs.
 *
 * Events live in a binary min-heap ordered by (time, seq), kept as parallel arrays so that sifting
 * compares unboxed numbers instead of chasing pointers. Cancelled events stay in the heap (lazy deletion) until they
 * reach the top or until they make up most of the heap, when it is rebuilt; re-arming a timer on
 * every heartbeat therefore costs O(log n), not O(n).
 *
 * An exception thrown by an event propagates out of the call that fired it; that event is already
 * removed and `now()` is its time, so the clock stays consistent and can be driven on.
 */
export class VirtualClock implements Clock {
  private current: number;
  // The heap: slot i holds event events[i], due at times[i], scheduled as number seqs[i].
  private times: number[] = [];
  private seqs: number[] = [];
  private events: TimerEvent[] = [];
  private seq = 0;
  /** Events scheduled and neither fired nor cancelled. */
  private live = 0;
  /** Cancelled events still sitting in the heap. */
  private dead = 0;

  constructor(startMs: number = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  /** Queue `fn` at now + ms (negative or NaN `ms` counts as 0). The returned cancel is idempotent. */
  setTimer(ms: number, fn: () => void): () => void {
    const event: TimerEvent = { fn, done: false };
    this.push(this.current + (ms > 0 ? ms : 0), this.seq++, event);
    this.live++;
    return () => {
      if (event.done) return;
      event.done = true;
      this.live--;
      this.dead++;
      if (this.dead > 1024 && this.dead * 2 > this.events.length) this.rebuild();
    };
  }

  /** Number of events waiting to fire. */
  pending(): number {
    return this.live;
  }

  /** Time of the next event, or undefined when none is waiting. */
  nextTime(): number | undefined {
    return this.peek() ? this.times[0] : undefined;
  }

  /** Advance to the next event's time and run exactly that event. False if none is waiting. */
  fireNext(): boolean {
    if (!this.peek()) return false;
    const event = this.events[0];
    const time = this.times[0];
    this.pop();
    event.done = true;
    this.live--;
    if (time > this.current) this.current = time;
    event.fn();
    return true;
  }

  /**
   * Fire every event due at or before `t` in order, including events that fired events schedule
   * inside the window, then set the time to `t`. Moving backwards is a bug in the caller: throws.
   */
  advanceTo(t: number): void {
    if (!(t >= this.current)) {
      throw new RangeError(`VirtualClock.advanceTo(${t}): time cannot move backwards from ${this.current}`);
    }
    while (this.peek() && this.times[0] <= t) this.fireNext();
    this.current = t;
  }

  /** `advanceTo(now() + ms)`. */
  advance(ms: number): void {
    this.advanceTo(this.current + ms);
  }

  /**
   * Fire events until none is left; returns how many fired. A periodic timer never goes idle, so
   * more than `maxEvents` firings throws instead of spinning forever.
   */
  runUntilIdle(maxEvents: number = 10_000_000): number {
    let fired = 0;
    while (this.peek()) {
      if (fired >= maxEvents) {
        throw new Error(`VirtualClock.runUntilIdle: still busy after ${maxEvents} events (a timer that re-arms itself?)`);
      }
      this.fireNext();
      fired++;
    }
    return fired;
  }

  // --- heap -----------------------------------------------------------------------------------

  /** Whether a live event is waiting; discards cancelled events found on top. */
  private peek(): boolean {
    const events = this.events;
    while (events.length > 0 && events[0].done) {
      this.pop();
      this.dead--;
    }
    return events.length > 0;
  }

  private push(time: number, seq: number, event: TimerEvent): void {
    const { times, seqs, events } = this;
    let i = events.length;
    times.push(time);
    seqs.push(seq);
    events.push(event);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pt = times[parent];
      if (pt < time || (pt === time && seqs[parent] < seq)) break;
      times[i] = pt;
      seqs[i] = seqs[parent];
      events[i] = events[parent];
      i = parent;
    }
    times[i] = time;
    seqs[i] = seq;
    events[i] = event;
  }

  /** Remove the top slot. */
  private pop(): void {
    const time = this.times.pop()!;
    const seq = this.seqs.pop()!;
    const event = this.events.pop()!;
    if (this.events.length > 0) this.siftDown(0, time, seq, event);
  }

  /** Place (time, seq, event) at slot `start` or below, restoring the heap order. */
  private siftDown(start: number, time: number, seq: number, event: TimerEvent): void {
    const { times, seqs, events } = this;
    const n = events.length;
    let i = start;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && (times[right] < times[child] || (times[right] === times[child] && seqs[right] < seqs[child]))) {
        child = right;
      }
      const ct = times[child];
      if (time < ct || (time === ct && seq < seqs[child])) break;
      times[i] = ct;
      seqs[i] = seqs[child];
      events[i] = events[child];
      i = child;
    }
    times[i] = time;
    seqs[i] = seq;
    events[i] = event;
  }

  private rebuild(): void {
    const times: number[] = [];
    const seqs: number[] = [];
    const events: TimerEvent[] = [];
    for (let i = 0; i < this.events.length; i++) {
      if (this.events[i].done) continue;
      times.push(this.times[i]);
      seqs.push(this.seqs[i]);
      events.push(this.events[i]);
    }
    this.times = times;
    this.seqs = seqs;
    this.events = events;
    this.dead = 0;
    for (let i = (events.length >> 1) - 1; i >= 0; i--) this.siftDown(i, times[i], seqs[i], events[i]);
  }
}
