/**
 * The peer address book (src/node/address-book.ts) and the bootstrap rules (src/node/bootstrap.ts):
 * where members are reached, whom the transport links to, and the configuration a node starts from.
 */
import { describe, expect, it } from "vitest";
import type { ConfState } from "../../src/core/types.ts";
import { BootstrapConflictError } from "../../src/errors.ts";
import { AddressBook } from "../../src/node/address-book.ts";
import { bootstrapMembers, initialConf } from "../../src/node/bootstrap.ts";
import type { StoredState } from "../../src/storage/storage.ts";
import type { PeerAddress } from "../../src/transport/transport.ts";

/** The transport side the book talks to: it keeps each list it was given. */
function linkRecorder() {
  const calls: PeerAddress[][] = [];
  return { calls, setPeers: (peers: PeerAddress[]) => void calls.push(peers.slice().sort((a, b) => a.id.localeCompare(b.id))) };
}

const conf = (voters: string[], urls?: Record<string, string>, learners: string[] = []): ConfState => ({ voters, learners, votersOutgoing: [], ...(urls ? { urls } : {}) });

describe("AddressBook", () => {
  it("knows the URLs it was given and those configurations carry, and keeps them after a member leaves", () => {
    const links = linkRecorder();
    const book = new AddressBook("n1", links);
    book.learn("n2", "http://n2");
    expect(book.urlOf("n2")).toBe("http://n2");
    expect(book.urlOf("n3")).toBeNull();
    expect(book.urlOf(null)).toBeNull();
    book.setLatest(conf(["n1", "n2", "n3"], { n3: "http://n3", n2: "http://n2b" }));
    expect([book.urlOf("n2"), book.urlOf("n3")]).toEqual(["http://n2b", "http://n3"]);
    book.setLatest(conf(["n1", "n2"]));
    expect(book.urlOf("n3")).toBe("http://n3");
  });

  it("links to the members of the latest and the applied configuration, not itself, only those with a URL", () => {
    const links = linkRecorder();
    const book = new AddressBook("n1", links);
    book.learn("n1", "http://n1");
    book.learn("n2", "http://n2");
    book.learn("n3", "http://n3");
    // Before the core announced a configuration nothing is linked, whatever was applied.
    book.setApplied(conf(["n1", "n2", "n3"]));
    expect(links.calls).toEqual([]);
    // n3 is removed in the latest configuration but not yet applied: it must still hear the leader.
    book.setLatest(conf(["n1", "n2"], undefined, ["n4"]));
    expect(links.calls.at(-1)).toEqual([
      { id: "n2", url: "http://n2" },
      { id: "n3", url: "http://n3" },
    ]);
    expect(book.latest).toEqual(conf(["n1", "n2"], undefined, ["n4"]));
    // Once the removal is applied, n3 is dropped; n4 (a learner) is linked once its URL is known.
    book.setApplied(conf(["n1", "n2"]));
    expect(links.calls.at(-1)).toEqual([{ id: "n2", url: "http://n2" }]);
    book.setLatest(conf(["n1", "n2"], { n4: "http://n4" }, ["n4"]));
    expect(links.calls.at(-1)).toEqual([
      { id: "n2", url: "http://n2" },
      { id: "n4", url: "http://n4" },
    ]);
  });

  it("a node that joins with no configuration keeps the links it was given until it learns one", () => {
    const links = linkRecorder();
    const book = new AddressBook("n4", links);
    book.setApplied(conf([]));
    book.setLatest(conf([]));
    expect(links.calls).toEqual([]);
    book.setLatest(conf(["n1"], { n1: "http://n1" }, ["n4"]));
    expect(links.calls).toEqual([[{ id: "n1", url: "http://n1" }]]);
  });

  it("a transport without setPeers is left alone", () => {
    const book = new AddressBook("n1", {});
    book.setLatest(conf(["n1", "n2"], { n2: "http://n2" }));
    expect(book.urlOf("n2")).toBe("http://n2");
  });

  it("remembers when each peer was last heard from", () => {
    const book = new AddressBook("n1", {});
    expect(book.lastHeard("n2")).toBeUndefined();
    book.heard("n2", 100);
    book.heard("n2", 250);
    expect(book.lastHeard("n2")).toBe(250);
  });

  it("gives the URLs of a set of ids as a configuration's record, or nothing when none is known", () => {
    const book = new AddressBook("n1", {});
    expect(book.urlsFor(["n1", "n2"])).toBeUndefined();
    book.learn("n2", "http://n2");
    book.learn("n9", "http://n9");
    expect(book.urlsFor(["n1", "n2"])).toEqual({ n2: "http://n2" });
  });
});

const empty: StoredState = { hardState: { term: 0, votedFor: null, commit: 0 }, snapshot: null, entries: [] };
const withRecord = (recorded: ConfState): StoredState => ({ ...empty, snapshot: { meta: { index: 0, term: 0, conf: recorded }, data: new Uint8Array(0) } });

describe("bootstrap", () => {
  it("members name the voters and their URLs; they must include this node, and a node that joins takes none", () => {
    const { voters, urls } = bootstrapMembers("n1", ["n1", { id: "n2", url: "http://n2" }], false);
    expect(voters).toEqual(["n1", "n2"]);
    expect([...urls]).toEqual([["n2", "http://n2"]]);
    expect(() => bootstrapMembers("n3", ["n1", "n2"], false)).toThrow(/must include this node's id "n3"/);
    expect(() => bootstrapMembers("n3", ["n1"], true)).toThrow(/a node that joins/);
    expect(bootstrapMembers("n3", [], true).voters).toEqual([]);
  });

  it("empty storage starts from the members given, with a configuration record to store with the first save", () => {
    const given = conf(["n1", "n2"]);
    const { conf: c, record } = initialConf("n1", empty, given, false);
    expect(c).toBe(given);
    expect(record).toEqual({ meta: { index: 0, term: 0, conf: given }, data: new Uint8Array(0) });
  });

  it("storage with entries but no record (written before records existed) starts from the members, writing no record", () => {
    const stored: StoredState = { ...empty, hardState: { term: 2, votedFor: "n1", commit: 1 } };
    expect(initialConf("n1", stored, conf(["n1", "n2"]), false).record).toBeNull();
  });

  it("a stored record wins when the members given agree with it, or name only this node; other members are a BootstrapConflictError", () => {
    const recorded = conf(["n1", "n2", "n3"], { n2: "http://n2" });
    expect(initialConf("n1", withRecord(recorded), conf(["n3", "n2", "n1"]), false)).toEqual({ conf: recorded, record: null });
    expect(initialConf("n1", withRecord(recorded), conf(["n1"]), false).conf).toBe(recorded);
    expect(() => initialConf("n1", withRecord(recorded), conf(["n1", "n2"]), false)).toThrow(BootstrapConflictError);
    expect(() => initialConf("n1", withRecord(recorded), conf(["n1", "n2", "n3"], { n2: "http://elsewhere" }), false)).toThrow(BootstrapConflictError);
    // A node that joined stored an empty record; it starts from it.
    expect(initialConf("n4", withRecord(conf([])), conf([]), true).conf).toEqual(conf([]));
  });

  it("a stored snapshot's configuration wins over everything given", () => {
    const snapConf = conf(["n1", "n5"]);
    const stored: StoredState = { ...empty, snapshot: { meta: { index: 40, term: 3, conf: snapConf }, data: new Uint8Array(1) } };
    expect(initialConf("n1", stored, conf(["n1", "n2"]), false)).toEqual({ conf: snapConf, record: null });
  });
});
