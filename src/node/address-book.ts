import { allMembers } from "../core/quorum.ts";
import type { ConfState, NodeId } from "../core/types.ts";
import type { Transport } from "../transport/transport.ts";

/**
 * Where each member is reachable and whom the transport links to. URLs come from the `members`
 * a node starts with and from configurations (a change that adds a member names its URL); a URL
 * once learnt is kept, so a redirect to a member that has left still names where it was.
 *
 * The links cover two configurations: the latest one the core works with (`latest`) and the one
 * as of the applied index (`applied`). A member leaving must still hear the leader (and answer
 * it) until its removal is committed and applied.
 */
export class AddressBook {
  private readonly urls = new Map<NodeId, string>();
  /** The configuration last announced (membership event, transport peers). */
  private latestConf: ConfState | null = null;
  /** The configuration as of the applied index. */
  private appliedConf: ConfState | null = null;
  /** When (clock ms) a message from each peer last arrived. */
  private readonly heardAt = new Map<NodeId, number>();

  constructor(
    private readonly selfId: NodeId,
    private readonly transport: Pick<Transport, "setPeers">,
  ) {}

  /** The configuration last passed to `latest` (null before the first). */
  get latest(): ConfState | null {
    return this.latestConf;
  }

  urlOf(id: NodeId | null): string | null {
    return id === null ? null : (this.urls.get(id) ?? null);
  }

  /** Learn one URL (from the members given at start). */
  learn(id: NodeId, url: string): void {
    this.urls.set(id, url);
  }

  /** The URLs known for `ids`, as a ConfState's `urls` record (undefined when none is known). */
  urlsFor(ids: NodeId[]): Record<NodeId, string> | undefined {
    const urls = [...this.urls].filter(([id]) => ids.includes(id));
    return urls.length > 0 ? Object.fromEntries(urls) : undefined;
  }

  /** The core switched configuration: learn its URLs and link to its members. */
  setLatest(conf: ConfState): void {
    this.latestConf = conf;
    for (const [id, url] of Object.entries(conf.urls ?? {})) this.urls.set(id, url);
    this.updatePeers();
  }

  /** The configuration as of the applied index changed (an entry or a snapshot applied, or at start). */
  setApplied(conf: ConfState): void {
    this.appliedConf = conf;
    this.updatePeers();
  }

  /** A message from `id` arrived at `now` (clock ms). */
  heard(id: NodeId, now: number): void {
    this.heardAt.set(id, now);
  }

  /** When a message from `id` last arrived (undefined: never since start). */
  lastHeard(id: NodeId): number | undefined {
    return this.heardAt.get(id);
  }

  /** Link to the members of the latest configuration and of the applied one. */
  private updatePeers(): void {
    if (!this.transport.setPeers || !this.latestConf) return;
    const ids = new Set(allMembers(this.latestConf));
    if (this.appliedConf) for (const id of allMembers(this.appliedConf)) ids.add(id);
    // A node that joins starts with no configuration: it keeps the links it was given until it learns one.
    if (ids.size === 0) return;
    const peers = [];
    for (const id of ids) {
      const url = this.urls.get(id);
      if (id !== this.selfId && url) peers.push({ id, url });
    }
    this.transport.setPeers(peers);
  }
}
