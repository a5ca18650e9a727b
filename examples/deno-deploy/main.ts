/**
 * A meshraft member as a Deno Deploy app: state in Deno KV (Deploy's disk is ephemeral), peers by
 * their public URLs, the cluster secret from the environment. One Deploy app per member; the
 * other members may be Deploy apps or Node/Deno hosts. See ./README.md.
 *
 * Two ways in: as a voter of the initial cluster (MESHRAFT_PEERS), or, better for Deploy, by
 * joining a running cluster (MESHRAFT_JOIN) as a learner, which receives the log and serves reads
 * near its users but never votes, so an evicted or idle instance costs the cluster no quorum.
 *
 * Environment:
 *   MESHRAFT_ID           this member's id (letters, digits, - and _)
 *   MESHRAFT_URL          this app's public URL, e.g. https://meshraft-z1.deno.dev
 *   MESHRAFT_PEERS        a voter of the initial cluster: the other voters, id=url pairs,
 *                         comma-separated (e.g. "a1=https://raft-a1.example.com,a2=https://raft-a2.example.com")
 *   MESHRAFT_JOIN         instead of MESHRAFT_PEERS: join a running cluster through any of these
 *                         member URLs (comma-separated; redirected to the leader). Only the first
 *                         start joins: once this member's KV holds a configuration it is ignored
 *   MESHRAFT_LEARNER      with MESHRAFT_JOIN: 1 (the default) stays a learner; 0 joins as a voter
 *                         (a learner promoted once caught up)
 *   MESHRAFT_SECRET       the cluster secret (required: a Deploy app's /raft is public)
 *   MESHRAFT_TOKEN        optional: bearer token for the client API
 *   MESHRAFT_ADMIN_TOKEN  optional: bearer token of the /admin routes, also sent when joining
 *                         (default MESHRAFT_TOKEN)
 *   MESHRAFT_CLUSTER_ID   optional, default "meshraft"
 *   MESHRAFT_KV_LEASE_MS  optional, default 10000: how long this member's node id stays taken
 *                         after its instance vanished without closing
 *   MESHRAFT_KV_PATH      optional, for running it off Deploy: a file for Deno.openKv
 *   PORT, HOSTNAME        optional, off Deploy: where to listen (default 0.0.0.0:8000)
 *
 * Deploy may run two instances of the app at once (a rollout, a second region). Only one can
 * hold the node id's lease in KV: the other answers every request with 503 NODE_ID_LEASED and
 * tries again (every few seconds, on requests) until the lease is free, e.g. once the holder was
 * evicted and its lease ran out.
 *
 * Run it locally (deno from node_modules, from the repository root):
 *   MESHRAFT_ID=z1 MESHRAFT_URL=http://127.0.0.1:8000 MESHRAFT_SECRET=s3cret MESHRAFT_KV_PATH=./z1.kv \
 *     npx deno run --allow-net --allow-env --allow-read=. --allow-write=. examples/deno-deploy/main.ts
 */
import {
  createMember,
  type AssembledMember,
  NodeIdentityLeasedError,
  parseStartArgs,
  UsageError,
} from "../../adapters/deno/index.ts";

const env = (name: string): string | undefined => Deno.env.get(name) || undefined;
const list = (name: string): string[] => (env(name) ?? "").split(",").map((item) => item.trim()).filter(Boolean);

/** A 0/1 switch; undefined when unset. */
function switchFromEnv(name: string): boolean | undefined {
  const value = env(name);
  if (value === undefined) return undefined;
  if (value === "1" || value === "true") return true;
  if (value === "0" || value === "false") return false;
  throw new UsageError(`${name} takes 1 or 0, got "${value}"`);
}

/** The member's configuration from the environment, checked like `meshraft start`'s flags. */
function configFromEnv() {
  const missing = ["MESHRAFT_ID", "MESHRAFT_URL", "MESHRAFT_SECRET"].filter((name) => !env(name));
  if (missing.length > 0) throw new UsageError(`set ${missing.join(", ")} (see examples/deno-deploy/main.ts)`);
  const peers = list("MESHRAFT_PEERS");
  const join = list("MESHRAFT_JOIN");
  if (peers.length > 0 && join.length > 0) {
    throw new UsageError("set MESHRAFT_PEERS (a voter of the initial cluster) or MESHRAFT_JOIN (join a running one), not both");
  }
  // A Deploy member that joins stays a learner unless told otherwise: see README.md, "a poor voter".
  const learner = switchFromEnv("MESHRAFT_LEARNER") ?? join.length > 0;
  if (learner && join.length === 0) throw new UsageError("MESHRAFT_LEARNER=1 needs MESHRAFT_JOIN (the members of the cluster to join as a learner)");
  const argv = ["--id", env("MESHRAFT_ID")!, "--url", env("MESHRAFT_URL")!, "--listen", "0.0.0.0:0", "--data-dir", "deno-kv"];
  for (const pair of peers) argv.push("--peer", pair);
  for (const url of join) argv.push("--join", url);
  if (learner) argv.push("--learner");
  if (env("MESHRAFT_CLUSTER_ID")) argv.push("--cluster-id", env("MESHRAFT_CLUSTER_ID")!);
  const args = parseStartArgs(argv, {
    MESHRAFT_SECRET: env("MESHRAFT_SECRET"),
    MESHRAFT_TOKEN: env("MESHRAFT_TOKEN"),
    MESHRAFT_ADMIN_TOKEN: env("MESHRAFT_ADMIN_TOKEN"),
  });
  const kvLeaseMs = Number(env("MESHRAFT_KV_LEASE_MS") ?? 10_000);
  if (!(Number.isInteger(kvLeaseMs) && kvLeaseMs >= 100)) throw new UsageError("MESHRAFT_KV_LEASE_MS takes a whole number of milliseconds, at least 100");
  // Reads near users, for a follower and a learner alike: a linearizable read is answered here
  // once the leader confirmed the read index (ReadIndex), and `?stale` reads locally at once.
  return { ...args, kvLeaseMs, followerReads: true };
}

const config = configFromEnv();
const kv = await Deno.openKv(env("MESHRAFT_KV_PATH"));

let member: AssembledMember | null = null;
let starting: Promise<void> | null = null;
let refusal: { error: Error; at: number } | null = null;
const RETRY_MS = 2_000;

/** Starts the member unless this instance was refused less than RETRY_MS ago. */
function ensureMember(): Promise<void> {
  if (member) return Promise.resolve();
  if (starting || (refusal && Date.now() - refusal.at < RETRY_MS)) return starting ?? Promise.resolve();
  starting = (async () => {
    try {
      const m = await createMember({ ...config, kv });
      // Served while it starts: a joining member's start waits for a mesh link, and the members
      // dial in through this very handler (its API answers 503 until the node runs).
      member = m;
      // A failed start (a join the cluster refused, or not answered within two minutes) must
      // release the node id's lease, or the next attempt would find it taken by this instance.
      await m.start().catch(async (error) => {
        member = null;
        await m.stop().catch(() => undefined);
        throw error;
      });
      refusal = null;
      // Another instance took the node id over: stop, and answer 503 until it is free again.
      m.failed.then(async (error) => {
        member = null;
        refusal = { error, at: Date.now() };
        await m.stop().catch(() => undefined);
      });
    } catch (error) {
      if (!(error instanceof NodeIdentityLeasedError)) console.error(`meshraft: ${error instanceof Error ? error.message : String(error)}`);
      refusal = { error: error instanceof Error ? error : new Error(String(error)), at: Date.now() };
    } finally {
      starting = null;
    }
  })();
  return starting;
}

void ensureMember();

const onListen = ({ hostname, port }: { hostname: string; port: number }): void =>
  console.log(`meshraft member ${config.id} (Deno Deploy example) listening on http://${hostname}:${port}`);
Deno.serve({ hostname: env("HOSTNAME") ?? "0.0.0.0", port: Number(env("PORT") ?? 8000), onListen }, async (request) => {
  await ensureMember();
  if (member) return member.app.fetch(request);
  const error = refusal?.error;
  const code = (error as { code?: string } | undefined)?.code ?? "UNAVAILABLE";
  return Response.json(
    { error: { code, message: error?.message ?? `member ${config.id} is starting` } },
    { status: 503, headers: { "Retry-After": String(Math.ceil(config.kvLeaseMs / 1000)) } },
  );
});
