/**
 * What `/metrics` measures around a node rather than in the HTTP app (issue 14, etcd's names as
 * the model): how long each storage save takes (the fsync), how long the state machine takes to
 * apply an entry, and snapshots sent to and received from peers (the event loop's delay is
 * src/event-loop-delay.ts's). The
 * member wraps the parts it hands its RaftNode (`storage`, `stateMachine`, `transport`); the app
 * registers the families (createHttpMetrics).
 */
import { realClock, type Clock } from "../clock.ts";
import type { Message } from "../core/types.ts";
import type { StateMachine } from "../statemachine.ts";
import type { Storage } from "../storage/storage.ts";
import type { Transport } from "../transport/transport.ts";
import { Counter, Histogram } from "./metrics.ts";

export class NodeInstruments {
  readonly fsyncSeconds: Histogram = new Histogram("meshraft_storage_save_duration_seconds", "Time to save one batch durably (write and fsync), like etcd's wal_fsync_duration_seconds.");
  readonly applySeconds: Histogram = new Histogram("meshraft_apply_duration_seconds", "Time the state machine took to apply one committed entry.");
  readonly snapshotsSent: Counter = new Counter("meshraft_snapshots_sent_total", "Snapshots sent to a follower (their last chunk), by peer.");
  readonly snapshotsReceived: Counter = new Counter("meshraft_snapshots_received_total", "Snapshots received from the leader (their last chunk).");

  constructor(private readonly clock: Clock = realClock) {
    this.snapshotsReceived.inc({}, 0);
  }

  storage(inner: Storage): Storage {
    const seconds = this.fsyncSeconds;
    const clock = this.clock;
    return {
      load: () => inner.load(),
      async save(batch) {
        const started = clock.now();
        await inner.save(batch);
        seconds.observe((clock.now() - started) / 1000);
      },
      compact: (upTo) => inner.compact(upTo),
      close: () => inner.close(),
      ...(inner.sizeBytes ? { sizeBytes: () => inner.sizeBytes!() } : {}),
    };
  }

  stateMachine<R>(inner: StateMachine<R>): StateMachine<R> {
    const seconds = this.applySeconds;
    const clock = this.clock;
    return {
      apply(entry) {
        const started = clock.now();
        try {
          return inner.apply(entry);
        } finally {
          seconds.observe((clock.now() - started) / 1000);
        }
      },
      snapshot: () => inner.snapshot(),
      restore: (data) => inner.restore(data),
    };
  }

  /** The node's view of `inner`: counts snapshots going by; everything else passes through. */
  transport(inner: Transport): Transport {
    const sent = this.snapshotsSent;
    const received = this.snapshotsReceived;
    const lastChunk = (m: Message): boolean => m.type === "InstallSnapshot" && m.done;
    const wrapped: Transport = {
      start: (handler) =>
        inner.start((m) => {
          if (lastChunk(m)) received.inc();
          handler(m);
        }),
      send: (m) => {
        if (lastChunk(m)) sent.inc({ peer: m.to });
        inner.send(m);
      },
      close: () => inner.close(),
    };
    if (inner.setPeers) wrapped.setPeers = (peers) => inner.setPeers!(peers);
    if (inner.announcedUrl) wrapped.announcedUrl = (id) => inner.announcedUrl!(id);
    if (inner.linked) wrapped.linked = (id) => inner.linked!(id);
    if (inner.linkStats) wrapped.linkStats = () => inner.linkStats!();
    return wrapped;
  }
}
