/**
 * A meshraft member as a Deno Deploy app: state in Deno KV (Deploy's disk is ephemeral), peers by
 * their public URLs, the cluster secret from the environment. One Deploy app per member; the
 * other members may be Deploy apps or Node/Deno hosts. See ./README.md.
 *
 * Environment:
 *   MESHRAFT_ID           this member's id (letters, digits, - and _)
 *   MESHRAFT_URL          this app's public URL, e.g. https://meshraft-z1.deno.dev
 *   MESHRAFT_PEERS        the other members: id=url pairs, comma-separated
 *                         (e.g. "a1=https://raft-a1.example.com,a2=https://raft-a2.example.com")
 *   MESHRAFT_SECRET       the cluster secret (required: a Deploy app's /raft is public)
 *   MESHRAFT_TOKEN        optional: bearer token for the client API
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
  createDenoMember,
  type DenoMember,
  NodeIdentityLeasedError,
  parseStartArgs,
  UsageError,
} from "../../adapters/deno/index.ts";

const env = (name: string): string | undefined => Deno.env.get(name) || undefined;

/** The member's configuration from the environment, checked like `meshraft start`'s flags. */
function configFromEnv() {
  const missing = ["MESHRAFT_ID", "MESHRAFT_URL", "MESHRAFT_SECRET"].filter((name) => !env(name));
  if (missing.length > 0) throw new UsageError(`set ${missing.join(", ")} (see examples/deno-deploy/main.ts)`);
  const argv = ["--id", env("MESHRAFT_ID")!, "--url", env("MESHRAFT_URL")!, "--listen", "0.0.0.0:0", "--data-dir", "deno-kv"];
  for (const pair of (env("MESHRAFT_PEERS") ?? "").split(",").map((p) => p.trim()).filter(Boolean)) argv.push("--peer", pair);
  if (env("MESHRAFT_CLUSTER_ID")) argv.push("--cluster-id", env("MESHRAFT_CLUSTER_ID")!);
  const args = parseStartArgs(argv, { MESHRAFT_SECRET: env("MESHRAFT_SECRET"), MESHRAFT_TOKEN: env("MESHRAFT_TOKEN") });
  const kvLeaseMs = Number(env("MESHRAFT_KV_LEASE_MS") ?? 10_000);
  if (!(Number.isInteger(kvLeaseMs) && kvLeaseMs >= 100)) throw new UsageError("MESHRAFT_KV_LEASE_MS takes a whole number of milliseconds, at least 100");
  // Reads near users: a follower answers linearizable reads itself (ReadIndex through the
  // leader), and `?stale` reads locally without asking anyone.
  return { ...args, kvLeaseMs, followerReads: true };
}

const config = configFromEnv();
const kv = await Deno.openKv(env("MESHRAFT_KV_PATH"));

let member: DenoMember | null = null;
let starting: Promise<void> | null = null;
let refusal: { error: Error; at: number } | null = null;
const RETRY_MS = 2_000;

/** Starts the member unless this instance was refused less than RETRY_MS ago. */
function ensureMember(): Promise<void> {
  if (member || starting || (refusal && Date.now() - refusal.at < RETRY_MS)) return starting ?? Promise.resolve();
  starting = (async () => {
    try {
      const m = await createDenoMember({ ...config, kv });
      await m.start();
      member = m;
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

Deno.serve({ hostname: env("HOSTNAME") ?? "0.0.0.0", port: Number(env("PORT") ?? 8000), onListen: () => {} }, async (request) => {
  await ensureMember();
  if (member) return member.app.fetch(request);
  const error = refusal?.error;
  const code = (error as { code?: string } | undefined)?.code ?? "UNAVAILABLE";
  return Response.json(
    { error: { code, message: error?.message ?? `member ${config.id} is starting` } },
    { status: 503, headers: { "Retry-After": String(Math.ceil(config.kvLeaseMs / 1000)) } },
  );
});
