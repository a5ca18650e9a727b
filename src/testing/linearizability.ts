/**
 * A linearizability checker for key-value histories, after Porcupine (Anish Athalye): the Wing &
 * Gong backtracking search with Lowe's memoization of (set of linearized operations, model state).
 *
 * A history is linearizable if every operation can be given one instant between its call and its
 * return such that, taken in that order, the operations are a valid sequential run of the model.
 * Operations on different keys never interact, so each key is checked on its own (P-compositionality),
 * which keeps the search small.
 *
 * An operation whose outcome is unknown (the client gave up waiting) has `return: Infinity` or
 * `unknown: true`: it may have taken effect at any instant after its call, or never (equivalent,
 * for this model, to taking effect after everything else). Unknown reads constrain nothing and
 * are dropped.
 */

export type KvInput =
  | { op: "put"; key: string; value: string }
  | { op: "get"; key: string }
  | { op: "delete"; key: string }
  | { op: "cas"; key: string; expect: string | null; value: string | null };

export interface KvOperation {
  /** Who issued it; only used in reports. */
  client: string | number;
  input: KvInput;
  /** When the client sent it, and when the answer arrived (Infinity: never). Any time unit. */
  call: number;
  return: number;
  /**
   * get: `value` (null for absent) is required. cas: `ok` is required. put/delete: ignored.
   * Ignored for operations with unknown outcome.
   */
  output?: { value?: string | null; ok?: boolean };
  /** The outcome is unknown (same as `return: Infinity`). */
  unknown?: boolean;
}

export interface CheckOptions {
  /** Budget for the whole history; past it the answer is `unknown`. Default 10 000 ms. */
  timeoutMs?: number;
}

export type LinearizabilityResult =
  | { ok: true }
  | {
      ok: false;
      key: string;
      /** A human-readable account of where the search got stuck. */
      reason: string;
      /** The operation that could not be placed, and the operations concurrent with it. */
      operations: KvOperation[];
      /** The longest valid order found for this key, before getting stuck. */
      partial: KvOperation[];
    }
  | { ok: "unknown"; reason: "timeout"; key: string };

export const DEFAULT_CHECK_TIMEOUT_MS = 10_000;

/**
 * Checks a KV history. Initially every key is absent. Throws TypeError on a malformed history
 * (a call after its return, a completed get without `output.value`, a completed cas without
 * `output.ok`).
 */
export function checkLinearizable(
  history: readonly KvOperation[],
  opts: CheckOptions = {},
): LinearizabilityResult {
  const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS);
  const byKey = new Map<string, KvOperation[]>();
  history.forEach((op, i) => {
    validate(op, i);
    if (op.input.op === "get" && isUnknown(op)) return;
    const ops = byKey.get(op.input.key);
    if (ops === undefined) byKey.set(op.input.key, [op]);
    else ops.push(op);
  });
  // Small partitions first: a violation in one of them is found before a large one eats the budget.
  const partitions = [...byKey].sort((a, b) => a[1].length - b[1].length);
  for (const [key, ops] of partitions) {
    const r = checkPartition(key, ops, deadline);
    if (r.ok !== true) return r;
  }
  return { ok: true };
}

function isUnknown(op: KvOperation): boolean {
  return op.unknown === true || op.return === Infinity;
}

function validate(op: KvOperation, i: number): void {
  const where = `history[${i}] (${describe(op)})`;
  if (!Number.isFinite(op.call)) throw new TypeError(`${where}: call must be a finite number`);
  if (Number.isNaN(op.return) || op.return < op.call) {
    throw new TypeError(`${where}: return must be >= call (Infinity if unknown)`);
  }
  if (isUnknown(op)) return;
  if (op.input.op === "get" && op.output?.value === undefined) {
    throw new TypeError(`${where}: a completed get needs output.value (null when absent)`);
  }
  if (op.input.op === "cas" && typeof op.output?.ok !== "boolean") {
    throw new TypeError(`${where}: a completed cas needs output.ok`);
  }
}

// ---------------------------------------------------------------------------------------------
// The model, compiled to integers: each distinct string (and null) of a partition gets an id, so
// a state is a small integer and a step is a few comparisons.
// ---------------------------------------------------------------------------------------------

const NULL_ID = 0;
const PUT = 0;
const GET = 1;
const CAS_OK = 2;
const CAS_FAIL = 3;
const CAS_EITHER = 4;

/** Per operation: kind, and two value ids (put: a = value; get: a = read; cas: a = expect, b = value). */
interface Compiled {
  kind: Uint8Array;
  a: Int32Array;
  b: Int32Array;
}

function compile(ops: readonly KvOperation[]): Compiled {
  const ids = new Map<string | null, number>([[null, NULL_ID]]);
  const id = (v: string | null): number => {
    let x = ids.get(v);
    if (x === undefined) ids.set(v, (x = ids.size));
    return x;
  };
  const c: Compiled = {
    kind: new Uint8Array(ops.length),
    a: new Int32Array(ops.length),
    b: new Int32Array(ops.length),
  };
  ops.forEach((op, i) => {
    const input = op.input;
    switch (input.op) {
      case "put":
        c.kind[i] = PUT;
        c.a[i] = id(input.value);
        break;
      case "delete":
        c.kind[i] = PUT;
        c.a[i] = NULL_ID;
        break;
      case "get":
        c.kind[i] = GET;
        c.a[i] = id(op.output?.value ?? null);
        break;
      case "cas":
        c.kind[i] = isUnknown(op) ? CAS_EITHER : op.output?.ok === true ? CAS_OK : CAS_FAIL;
        c.a[i] = id(input.expect);
        c.b[i] = id(input.value);
        break;
    }
  });
  return c;
}

/** The state after applying operation `i` in `state`, or -1 if its output contradicts the state. */
function step(c: Compiled, i: number, state: number): number {
  switch (c.kind[i]) {
    case PUT:
      return c.a[i];
    case GET:
      return state === c.a[i] ? state : -1;
    case CAS_OK:
      return state === c.a[i] ? c.b[i] : -1;
    case CAS_FAIL:
      return state !== c.a[i] ? state : -1;
    default: // CAS_EITHER: whichever happened; "never happened" is covered by ordering it last.
      return state === c.a[i] ? c.b[i] : state;
  }
}

// ---------------------------------------------------------------------------------------------
// The search.
// ---------------------------------------------------------------------------------------------

/** 32-bit mix (the splitmix32 finalizer); gives each operation its Zobrist hash word. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

type PartitionResult = Exclude<LinearizabilityResult, { ok: true }> | { ok: true };

function checkPartition(key: string, ops: readonly KvOperation[], deadline: number): PartitionResult {
  const n = ops.length;
  const model = compile(ops);

  // Events: node 2i+1 is the call of op i, node 2i+2 its return; node 0 is the list head.
  // Sorted by time; at equal times calls come first, so operations that touch are concurrent
  // (the permissive reading of ambiguous timestamps).
  const order: number[] = [];
  for (let i = 0; i < n; i++) order.push(2 * i + 1, 2 * i + 2);
  const time = (node: number): number => {
    const op = ops[(node - 1) >> 1];
    return node & 1 ? op.call : isUnknown(op) ? Infinity : op.return;
  };
  order.sort((x, y) => time(x) - time(y) || (y & 1) - (x & 1) || x - y);

  const next = new Int32Array(2 * n + 1).fill(-1);
  const prev = new Int32Array(2 * n + 1).fill(-1);
  let last = 0;
  for (const node of order) {
    next[last] = node;
    prev[node] = last;
    last = node;
  }
  // Dancing links: a removed node keeps its own pointers, so removals undone in LIFO order
  // restore the list exactly.
  const unlink = (x: number): void => {
    next[prev[x]] = next[x];
    if (next[x] !== -1) prev[next[x]] = prev[x];
  };
  const relink = (x: number): void => {
    next[prev[x]] = x;
    if (next[x] !== -1) prev[next[x]] = x;
  };

  const zobrist = new Uint32Array(n);
  for (let i = 0; i < n; i++) zobrist[i] = mix32(i + 0x9e3779b9);
  const bits = new Uint32Array((n + 31) >>> 5);
  let hash = 0;
  // Memo of configurations already explored: hash -> [bits, state] pairs with that hash.
  const seen = new Map<number, { bits: Uint32Array; state: number }[]>();
  const remember = (state: number): boolean => {
    const h = (hash ^ Math.imul(state + 1, 0x9e3779b1)) >>> 0;
    const bucket = seen.get(h);
    if (bucket === undefined) {
      seen.set(h, [{ bits: bits.slice(), state }]);
      return true;
    }
    for (const e of bucket) {
      if (e.state === state && e.bits.every((w, j) => w === bits[j])) return false;
    }
    bucket.push({ bits: bits.slice(), state });
    return true;
  };
  const toggle = (i: number): void => {
    bits[i >>> 5] ^= 1 << (i & 31);
    hash ^= zobrist[i];
  };

  // The current partial linearization: call nodes, and the state before each.
  const stackNode: number[] = [];
  const stackState: number[] = [];
  let state = NULL_ID;
  let best = { depth: -1, order: [] as number[], stuck: -1 };
  let node = next[0];
  let iterations = 0;

  while (next[0] !== -1) {
    if ((++iterations & 0x3ff) === 0 && Date.now() > deadline) {
      return { ok: "unknown", reason: "timeout", key };
    }
    const op = (node - 1) >> 1;
    if (node & 1) {
      // A call: try to linearize this operation now.
      const s = step(model, op, state);
      if (s !== -1) {
        toggle(op);
        if (remember(s)) {
          stackNode.push(node);
          stackState.push(state);
          state = s;
          unlink(node);
          unlink(node + 1);
          node = next[0];
          continue;
        }
        toggle(op); // this configuration was already explored and failed
      }
      node = next[node];
    } else {
      // The return of an operation not yet linearized: the current prefix cannot be extended.
      if (stackNode.length > best.depth) {
        best = { depth: stackNode.length, order: stackNode.map((c) => (c - 1) >> 1), stuck: op };
      }
      if (stackNode.length === 0) return explain(key, ops, best);
      const call = stackNode.pop() as number;
      state = stackState.pop() as number;
      toggle((call - 1) >> 1);
      relink(call + 1);
      relink(call);
      node = next[call];
    }
  }
  return { ok: true };
}

function explain(
  key: string,
  ops: readonly KvOperation[],
  best: { order: number[]; stuck: number },
): PartitionResult {
  const partial = best.order.map((i) => ops[i]);
  let state: string | null = null;
  for (const op of partial) state = afterOp(op, state);
  const stuck = ops[best.stuck];
  const end = isUnknown(stuck) ? Infinity : stuck.return;
  const concurrent = ops.filter((o) => o === stuck || (o.call <= end && stuck.call <= effectiveReturn(o)));
  const lines = [
    `key ${JSON.stringify(key)}: the ${ops.length} operations have no linearization.`,
    `The longest valid order found places ${partial.length} of them, leaving the value ` +
      `${JSON.stringify(state)}; then no remaining order can place ${describe(stuck)} before it returns.`,
    `Operations overlapping it:`,
    ...concurrent.map((o) => `  ${describe(o)}`),
  ];
  return { ok: false, key, reason: lines.join("\n"), operations: concurrent, partial };
}

function effectiveReturn(op: KvOperation): number {
  return isUnknown(op) ? Infinity : op.return;
}

function afterOp(op: KvOperation, state: string | null): string | null {
  switch (op.input.op) {
    case "put":
      return op.input.value;
    case "delete":
      return null;
    case "get":
      return state;
    case "cas":
      return state === op.input.expect ? op.input.value : state;
  }
}

function describe(op: KvOperation): string {
  const q = JSON.stringify;
  const i = op.input;
  const unknown = isUnknown(op);
  let text: string;
  switch (i.op) {
    case "put":
      text = `put(${q(i.key)}, ${q(i.value)})`;
      break;
    case "delete":
      text = `delete(${q(i.key)})`;
      break;
    case "get":
      text = `get(${q(i.key)})` + (unknown ? "" : ` -> ${q(op.output?.value ?? null)}`);
      break;
    case "cas":
      text =
        `cas(${q(i.key)}, ${q(i.expect)} -> ${q(i.value)})` +
        (unknown ? "" : op.output?.ok ? " -> ok" : " -> failed");
      break;
  }
  const ret = unknown ? "outcome unknown" : `return ${op.return}`;
  return `client ${q(op.client)}: ${text} [call ${op.call}, ${ret}]`;
}
