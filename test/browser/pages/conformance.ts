/**
 * Page script: the storage and transport conformance suites against the page's own IndexedDB and
 * BroadcastChannel. The test calls `meshraftConformance.run(name)` once per case.
 *
 * Every IndexedDB transaction the page opens is recorded with the durability Chromium gives it
 * (`IDBTransaction.durability`), so the test can check that IndexedDbStorage asks for "strict".
 */
import { IndexedDbStorage } from "../../../adapters/browser/idb-storage.ts";
import { registerCases } from "./conformance-cases.ts";

interface RecordedTransaction {
  database: string;
  mode: IDBTransactionMode;
  durability: string;
}
const transactions: RecordedTransaction[] = [];
const openTransaction = IDBDatabase.prototype.transaction;
IDBDatabase.prototype.transaction = function (this: IDBDatabase, ...args: Parameters<IDBDatabase["transaction"]>): IDBTransaction {
  const tx = openTransaction.apply(this, args);
  transactions.push({ database: this.name, mode: tx.mode, durability: tx.durability });
  return tx;
};

const cases = registerCases(() => ({ indexedDB, IDBKeyRange }));

const handle = {
  names: (): string[] => [...cases.keys()],
  async run(name: string): Promise<void> {
    const body = cases.get(name);
    if (body === undefined) throw new Error(`no conformance case named ${name}`);
    await body();
  },
  /** Opens a fresh IndexedDbStorage, saves a batch, compacts, and answers the transactions it opened. */
  async storageTransactions(): Promise<RecordedTransaction[]> {
    const clusterId = `durability-${Date.now().toString(36)}`;
    const storage = await IndexedDbStorage.open({ clusterId, nodeId: "n1" });
    const entries = [1, 2, 3].map((index) => ({ index, term: 1, type: "normal" as const, data: new Uint8Array([index]) }));
    await storage.save({ hardState: { term: 1, votedFor: "n1", commit: 2 }, entries });
    await storage.save({ snapshot: { meta: { index: 2, term: 1, conf: { voters: ["n1"], learners: [], votersOutgoing: [] } }, data: new Uint8Array(10) } });
    await storage.compact(2);
    await storage.close();
    indexedDB.deleteDatabase(storage.database);
    return transactions.filter((t) => t.database === storage.database);
  },
};
(globalThis as unknown as { meshraftConformance: typeof handle }).meshraftConformance = handle;
