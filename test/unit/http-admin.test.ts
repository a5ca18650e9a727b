/**
 * The admin routes (src/http/admin.ts) over real HTTP on 127.0.0.1 in front of real RaftNodes:
 * membership (GET/POST /admin/members, DELETE /admin/members/:id), leadership transfer
 * (POST /admin/transfer-leader), the admin token, and authorization decided on the route that
 * handles a request however its path is spelled (hono decodes percent-escapes before routing, so
 * `/%61dmin/transfer-leader` reaches the admin handler and must need the admin token).
 */
import type { IncomingMessage } from "node:http";
import { request } from "node:http";
import type { Context } from "hono";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_URL_BYTES } from "../../src/core/member-url.ts";
import type { AdminMember, AdminMembersBody, AdminTransferBody } from "../../src/http/protocol.ts";
import { HttpCluster, sleep, startHttpCluster, waitFor, type HttpClusterOptions, type HttpMember } from "./http-harness.ts";

let cluster: HttpCluster | null = null;

afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

async function start(options: HttpClusterOptions = {}): Promise<HttpCluster> {
  cluster = await startHttpCluster(options);
  return cluster;
}

type Method = "GET" | "POST" | "DELETE" | "PUT";

/** One request, redirects not followed; a non-string body is sent as JSON. */
function call(url: string, method: Method, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method,
    body: body === undefined || typeof body === "string" ? body : JSON.stringify(body),
    headers: body === undefined ? headers : { "Content-Type": "application/json", ...headers },
    redirect: "manual",
  });
}

async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(typeof body.error.message).toBe("string");
  return body.error.code;
}

async function membersOf(res: Response): Promise<AdminMembersBody> {
  expect(res.status).toBe(200);
  return (await res.json()) as AdminMembersBody;
}

function find(body: AdminMembersBody, id: string): AdminMember | undefined {
  return body.members.find((m) => m.id === id);
}

const ids = (body: AdminMembersBody): string[] => body.members.map((m) => m.id).sort();

/** Until `leader` (still leading) has `id` as a voter and has left joint consensus. */
async function promoted(c: HttpCluster, leader: HttpMember, id: string): Promise<void> {
  await waitFor(
    () => {
      const conf = leader.node.membership();
      return conf.voters.includes(id) && conf.votersOutgoing.length === 0 && leader.node.status().commitIndex >= leader.node.status().lastIndex;
    },
    `${id} promoted to voter`,
    5_000,
    () => c.describe(),
  );
}

/** A live node other than `not` that leads with its no-op committed. */
async function otherLeader(c: HttpCluster, not: string): Promise<HttpMember> {
  let found: HttpMember | undefined;
  await waitFor(
    () => {
      found = [...c.members.values()].find((m) => {
        const s = m.node.status();
        return m.id !== not && !m.node.stopped && s.role === "leader" && s.commitIndex >= s.lastIndex;
      });
      return found !== undefined;
    },
    `a leader other than ${not}`,
    5_000,
    () => c.describe(),
  );
  return found!;
}

/**
 * Cut the messages from `leader` to the other voters, so what it appends cannot commit. Needs an
 * election timeout well above the test's few round trips, or the followers would elect another.
 */
function stall(c: HttpCluster, leader: HttpMember): HttpMember[] {
  const followers = leader.node.membership().voters.filter((id) => id !== leader.id).map((id) => c.member(id));
  for (const f of followers) c.network.cut(leader.id, f.id);
  return followers;
}

describe("GET /admin/members", () => {
  it("the leader lists every voter with role voter, its URL and its match index; not joint", async () => {
    const c = await start();
    const leader = await c.leader();
    const put = await call(`${leader.url}/kv/k`, "PUT", "v");
    const { index } = (await put.json()) as { index: number };
    await c.applied(index);

    const body = await membersOf(await call(`${leader.url}/admin/members`, "GET"));
    expect(body.leader).toBe(leader.id);
    expect(body.joint).toBe(false);
    expect(body.index).toBeUndefined();
    expect(ids(body)).toEqual(["n1", "n2", "n3"]);
    for (const m of body.members) {
      expect(m).toMatchObject({ role: "voter", url: c.url(m.id) });
      expect(m.promote).toBeUndefined();
      expect(Number.isInteger(m.match)).toBe(true);
      expect(m.match).toBeGreaterThan(0);
      expect(m.match).toBeLessThanOrEqual(leader.node.status().lastIndex);
    }
    expect(find(body, leader.id)!.match).toBe(leader.node.status().lastIndex);
    // The followers acknowledged the write before it was applied everywhere.
    for (const m of body.members) expect(m.match).toBeGreaterThanOrEqual(index);
  });

  it("a follower answers 307 to the leader's URL with X-Meshraft-Leader", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    const res = await call(`${follower.url}/admin/members`, "GET");
    expect(res.status).toBe(307);
    expect(res.headers.get("Location")).toBe(`${leader.url}/admin/members`);
    expect(res.headers.get("X-Meshraft-Leader")).toBe(leader.id);
    expect(await errorCode(res)).toBe("NOT_LEADER");
  });
});

describe("POST /admin/snapshot", () => {
  it("a follower snapshots itself (no redirect): 200 with its id and the index, which covers what it applied; only it", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    const { index } = (await (await call(`${leader.url}/kv/k`, "PUT", "v")).json()) as { index: number };
    await c.applied(index);
    expect(follower.node.lastSnapshotIndex).toBe(0);
    const res = await call(`${follower.url}/admin/snapshot`, "POST");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { id: string; index: number };
    expect(body.id).toBe(follower.id);
    expect(body.index).toBeGreaterThanOrEqual(index);
    expect(follower.node.lastSnapshotIndex).toBe(body.index);
    expect(leader.node.lastSnapshotIndex).toBe(0);
  });
});

describe("POST /admin/members", () => {
  it("adds a node as a voter: 200 with it as a learner marked promote; the leader promotes it once caught up, and it applies the log", async () => {
    const c = await start({ spares: ["n4"] });
    const leader = await c.leader();
    expect((await call(`${leader.url}/kv/before`, "PUT", "written before")).status).toBe(200);

    const res = await call(`${leader.url}/admin/members`, "POST", { id: "n4", url: c.url("n4"), role: "voter" });
    const added = await membersOf(res);
    expect(added.leader).toBe(leader.id);
    expect(added.index).toBeGreaterThan(0);
    expect(find(added, "n4")).toMatchObject({ id: "n4", url: c.url("n4"), role: "learner", promote: true });
    expect(added.members.filter((m) => m.role === "voter").map((m) => m.id).sort()).toEqual(["n1", "n2", "n3"]);

    await promoted(c, leader, "n4");
    const after = await membersOf(await call(`${leader.url}/admin/members`, "GET"));
    expect(after.joint).toBe(false);
    expect(find(after, "n4")).toMatchObject({ role: "voter", url: c.url("n4") });
    expect(find(after, "n4")!.promote).toBeUndefined();
    expect(ids(after)).toEqual(["n1", "n2", "n3", "n4"]);

    // The new member has the entries written before it joined...
    const n4 = c.member("n4");
    let stale: Response | null = null;
    for (let i = 0; i < 200 && stale?.status !== 200; i++) {
      if (i > 0) await sleep(10);
      stale = await call(`${n4.url}/kv/before?stale`, "GET");
    }
    expect(stale!.status).toBe(200);
    expect(stale!.headers.get("X-Meshraft-Node")).toBe("n4");
    expect(await stale!.text()).toBe("written before");
    // ...and knows the leader's URL (from the configuration) to redirect admin requests there.
    const redirect = await call(`${n4.url}/admin/members`, "GET");
    expect(redirect.status).toBe(307);
    expect(redirect.headers.get("Location")).toBe(`${leader.url}/admin/members`);
  });

  it("without a role the node is added as a voter; role learner adds a learner that stays one", async () => {
    const c = await start({ spares: ["n4", "n5"] });
    const leader = await c.leader();
    const voter = await membersOf(await call(`${leader.url}/admin/members`, "POST", { id: "n4", url: c.url("n4") }));
    expect(find(voter, "n4")).toMatchObject({ role: "learner", promote: true });
    await promoted(c, leader, "n4");

    const learner = await membersOf(await call(`${leader.url}/admin/members`, "POST", { id: "n5", url: c.url("n5"), role: "learner" }));
    expect(find(learner, "n5")).toMatchObject({ role: "learner", url: c.url("n5") });
    expect(find(learner, "n5")!.promote).toBeUndefined();
    expect((await call(`${leader.url}/kv/k`, "PUT", "v")).status).toBe(200);
    await waitFor(() => (leader.node.progress("n5")?.match ?? 0) >= leader.node.status().lastIndex, "n5 caught up");
    await sleep(100);
    expect(leader.node.membership().learners).toEqual(["n5"]);
  });

  it("promoting a learner that has not caught up is 409 LEARNER_BEHIND saying how far behind; nothing is proposed; once caught up it is promoted", async () => {
    const c = await start({ spares: ["n4"], start: ["n1", "n2", "n3"] });
    const leader = await c.leader();
    expect((await call(`${leader.url}/admin/members`, "POST", { id: "n4", url: c.url("n4"), role: "learner" })).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await call(`${leader.url}/kv/k${i}`, "PUT", "v")).status).toBe(200);
    // n4 is not running: the leader has nothing from it, so it is the whole log behind.
    const lastIndex = leader.node.status().lastIndex;
    const res = await call(`${leader.url}/admin/members`, "POST", { id: "n4", url: c.url("n4"), role: "voter" });
    expect(res.status).toBe(409);
    expect(res.headers.get("Retry-After")).toBe("1");
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("LEARNER_BEHIND");
    expect(body.error.message).toContain(`n4 is ${lastIndex} entries behind the leader (match 0, last index ${lastIndex}`);
    await sleep(50);
    expect(leader.node.status().lastIndex).toBe(lastIndex);
    expect(leader.node.membership().learners).toEqual(["n4"]);

    await c.member("n4").node.start();
    await waitFor(() => leader.node.progress("n4")?.state === "replicate" && leader.node.progress("n4")!.match >= leader.node.status().lastIndex, "n4 caught up", 5_000, () => c.describe());
    const promotedNow = await membersOf(await call(`${leader.url}/admin/members`, "POST", { id: "n4", url: c.url("n4"), role: "voter" }));
    expect(promotedNow.index).toBeGreaterThan(lastIndex);
    await promoted(c, leader, "n4");
  });

  it("adding a member that is already there in the asked role answers 200 without a change", async () => {
    const c = await start({ spares: ["n4", "n5"] });
    const leader = await c.leader();
    expect((await call(`${leader.url}/admin/members`, "POST", { id: "n4", url: c.url("n4") })).status).toBe(200);
    await promoted(c, leader, "n4");
    expect((await call(`${leader.url}/admin/members`, "POST", { id: "n5", url: c.url("n5"), role: "learner" })).status).toBe(200);
    await waitFor(() => leader.node.status().commitIndex >= leader.node.status().lastIndex, "the learner committed");

    const lastIndex = leader.node.status().lastIndex;
    const conf = leader.node.membership();
    const again: [string, string | undefined][] = [["n4", "voter"], ["n4", undefined], ["n2", "voter"], [leader.id, "voter"], ["n5", "learner"]];
    for (const [id, role] of again) {
      const res = await call(`${leader.url}/admin/members`, "POST", { id, url: c.url(id), ...(role ? { role } : {}) });
      const body = await membersOf(res);
      expect(body.index, `${id} ${role}`).toBeUndefined();
      expect(ids(body)).toEqual(["n1", "n2", "n3", "n4", "n5"]);
    }
    await sleep(50);
    expect(leader.node.status().lastIndex).toBe(lastIndex);
    expect(leader.node.membership()).toEqual(conf);
  });

  it("a member id such as __proto__ or constructor is 400 INVALID_CONF_CHANGE; nothing is proposed", async () => {
    const c = await start();
    const leader = await c.leader();
    const before = leader.node.status().lastIndex;
    for (const id of ["__proto__", "constructor", "hasOwnProperty", "..", "n\n4"]) {
      const res = await call(`${leader.url}/admin/members`, "POST", { id, url: "http://127.0.0.1:9", role: "learner" });
      expect(res.status, id).toBe(400);
      expect(await errorCode(res)).toBe("INVALID_CONF_CHANGE");
    }
    await sleep(50);
    expect(leader.node.status().lastIndex).toBe(before);
    expect(leader.node.membership().learners).toEqual([]);
  });

  it("asking for a voter to become a learner is 400 INVALID_CONF_CHANGE; nothing is proposed", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    const before = leader.node.status().lastIndex;
    for (const id of [follower.id, leader.id]) {
      const res = await call(`${leader.url}/admin/members`, "POST", { id, url: c.url(id), role: "learner" });
      expect(res.status, id).toBe(400);
      expect(await errorCode(res)).toBe("INVALID_CONF_CHANGE");
    }
    await sleep(50);
    expect(leader.node.status().lastIndex).toBe(before);
    expect(leader.node.membership().voters.sort()).toEqual(["n1", "n2", "n3"]);
  });

  it("rejects a malformed body with 400 BAD_REQUEST (not JSON, not an object, missing or bad id/url/role, unknown field); nothing is proposed", async () => {
    const c = await start();
    const leader = await c.leader();
    const before = leader.node.status().lastIndex;
    const url = "http://127.0.0.1:1";
    const bodies = [
      "{not json",
      "",
      "null",
      "[]",
      '"n4"',
      "{}",
      JSON.stringify({ id: "n4" }),
      JSON.stringify({ url }),
      JSON.stringify({ id: "", url }),
      JSON.stringify({ id: 4, url }),
      JSON.stringify({ id: "n4", url: "127.0.0.1:1" }),
      JSON.stringify({ id: "n4", url: "ftp://127.0.0.1:1" }),
      JSON.stringify({ id: "n4", url: 1 }),
      JSON.stringify({ id: "n4", url, role: "admin" }),
      JSON.stringify({ id: "n4", url, promote: true }),
    ];
    for (const body of bodies) {
      const res = await call(`${leader.url}/admin/members`, "POST", body);
      expect(res.status, body).toBe(400);
      expect(await errorCode(res)).toBe("BAD_REQUEST");
    }
    const invalidUtf8 = await fetch(`${leader.url}/admin/members`, { method: "POST", body: new Uint8Array([0x7b, 0xff, 0x7d]) });
    expect(invalidUtf8.status).toBe(400);
    const huge = await call(`${leader.url}/admin/members`, "POST", { id: "n4", url: `${url}/${"x".repeat(70_000)}` });
    expect(huge.status).toBe(413);
    expect(await errorCode(huge)).toBe("BODY_TOO_LARGE");
    await sleep(50);
    expect(leader.node.status().lastIndex).toBe(before);
  });

  it("refuses a url longer than MAX_URL_BYTES (2048) with 400 URL_TOO_LONG; nothing is proposed", async () => {
    const c = await start();
    const leader = await c.leader();
    const before = leader.node.status().lastIndex;
    const url = `http://127.0.0.1:1/${"p".repeat(MAX_URL_BYTES + 1 - "http://127.0.0.1:1/".length)}`;
    const res = await call(`${leader.url}/admin/members`, "POST", { id: "n4", url });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error).toEqual({ code: "URL_TOO_LONG", message: "url refused: the URL is 2049 bytes; member URLs are limited to 2048 bytes of UTF-8 (MAX_URL_BYTES)" });
    await sleep(50);
    expect(leader.node.status().lastIndex).toBe(before);
    // A library call that skips the route is refused by the membership change itself.
    await expect(leader.node.addLearner("n4", url)).rejects.toMatchObject({ code: "INVALID_CONF_CHANGE", message: expect.stringContaining("the URL is 2049 bytes") });
  });

  it("a follower answers 307 to the leader and proposes nothing", async () => {
    const c = await start({ spares: ["n4"] });
    const leader = await c.leader();
    const follower = await c.follower();
    const before = leader.node.status().lastIndex;
    const res = await call(`${follower.url}/admin/members`, "POST", { id: "n4", url: c.url("n4") });
    expect(res.status).toBe(307);
    expect(res.headers.get("Location")).toBe(`${leader.url}/admin/members`);
    expect(res.headers.get("X-Meshraft-Leader")).toBe(leader.id);
    await sleep(50);
    expect(leader.node.status().lastIndex).toBe(before);
  });
});

describe("one change at a time", () => {
  it("a second change while one is in flight is 409 CONF_CHANGE_IN_PROGRESS with Retry-After; once the first is done, a retry succeeds", async () => {
    const c = await start({ spares: ["n4", "n5"], node: { electionTimeoutMs: 500, heartbeatIntervalMs: 50 } });
    const leader = await c.leader();
    // The first change is appended on the leader but cannot commit: its followers do not hear it.
    const followers = stall(c, leader);
    const before = leader.node.status().lastIndex;
    const first = call(`${leader.url}/admin/members`, "POST", { id: "n4", url: c.url("n4") });
    await waitFor(() => leader.node.status().lastIndex > before, "the first change appended", 2_000);
    expect(leader.node.status().role).toBe("leader");

    const second = await call(`${leader.url}/admin/members`, "POST", { id: "n5", url: c.url("n5") });
    expect(second.status).toBe(409);
    expect(second.headers.get("Retry-After")).toBe("1");
    expect(await errorCode(second)).toBe("CONF_CHANGE_IN_PROGRESS");
    const remove = await call(`${leader.url}/admin/members/${followers[0].id}`, "DELETE");
    expect(remove.status).toBe(409);
    expect(await errorCode(remove)).toBe("CONF_CHANGE_IN_PROGRESS");
    expect(leader.node.status().lastIndex).toBe(before + 1);

    c.network.heal();
    const done = await first;
    expect(done.status).toBe(200);
    expect(find((await done.json()) as AdminMembersBody, "n4")).toMatchObject({ role: "learner", promote: true });

    // The promotion of n4 is a change too: retry, as Retry-After says, until it is through.
    let retry: Response | null = null;
    for (let i = 0; i < 50 && retry?.status !== 200; i++) {
      if (retry !== null) {
        expect(retry.status).toBe(409);
        await sleep(100);
      }
      retry = await call(`${leader.url}/admin/members`, "POST", { id: "n5", url: c.url("n5") });
    }
    expect(retry!.status).toBe(200);
    expect(find((await retry!.json()) as AdminMembersBody, "n5")).toMatchObject({ role: "learner", promote: true });
  });
});

describe("changes that cannot commit", () => {
  it("while a voter removal cannot commit, GET shows the joint configuration with the removed voter as leaving", async () => {
    const c = await start({ node: { electionTimeoutMs: 500, heartbeatIntervalMs: 50 } });
    const leader = await c.leader();
    const [gone, stays] = stall(c, leader).map((m) => m.id);
    const before = leader.node.status().lastIndex;
    const removal = call(`${leader.url}/admin/members/${gone}`, "DELETE");
    await waitFor(() => leader.node.status().lastIndex > before, "the joint entry appended", 2_000);

    const joint = await membersOf(await call(`${leader.url}/admin/members`, "GET"));
    expect(joint.joint).toBe(true);
    expect(find(joint, gone)).toMatchObject({ role: "leaving" });
    expect(find(joint, stays)).toMatchObject({ role: "voter" });
    expect(find(joint, leader.id)).toMatchObject({ role: "voter" });

    c.network.heal();
    const done = await membersOf(await removal);
    expect(done.joint).toBe(false);
    expect(find(done, gone)).toBeUndefined();
  });

  it("a change not applied within proposalTimeoutMs is 504 OUTCOME_UNKNOWN", async () => {
    const c = await start({ spares: ["n4"], node: { proposalTimeoutMs: 400 } });
    const leader = await c.leader();
    c.network.isolate(leader.id);
    const res = await call(`${leader.url}/admin/members`, "POST", { id: "n4", url: c.url("n4") });
    expect(res.status).toBe(504);
    expect(await errorCode(res)).toBe("OUTCOME_UNKNOWN");
  });

  it("a change that leaves no voter is 400 INVALID_CONF_CHANGE; a transfer nobody takes is 503 TRANSFER_FAILED with Retry-After", async () => {
    const c = await start({ ids: ["n1"] });
    const leader = await c.leader();
    const remove = await call(`${leader.url}/admin/members/n1`, "DELETE");
    expect(remove.status).toBe(400);
    expect(await errorCode(remove)).toBe("INVALID_CONF_CHANGE");
    const transfer = await call(`${leader.url}/admin/transfer-leader`, "POST");
    expect(transfer.status).toBe(503);
    expect(transfer.headers.get("Retry-After")).toBe("1");
    expect(await errorCode(transfer)).toBe("TRANSFER_FAILED");
    expect(leader.node.status().role).toBe("leader");
  });
});

describe("DELETE /admin/members/:id", () => {
  it("a non-member is 404 MEMBER_NOT_FOUND; nothing is proposed", async () => {
    const c = await start({ spares: ["n4"] });
    const leader = await c.leader();
    const before = leader.node.status().lastIndex;
    for (const id of ["n4", "nope", "no%20such"]) {
      const res = await call(`${leader.url}/admin/members/${id}`, "DELETE");
      expect(res.status, id).toBe(404);
      expect(await errorCode(res)).toBe("MEMBER_NOT_FOUND");
    }
    await sleep(50);
    expect(leader.node.status().lastIndex).toBe(before);
  });

  // c.req.param() already percent-decodes; the id must not be decoded a second time.
  it("an id with an encoded % is decoded once: DELETE of the non-member \"n%31\" removes nothing (not n1)", async () => {
    const c = await start();
    const leader = await c.leader();
    const before = leader.node.status().lastIndex;
    const res = await call(`${leader.url}/admin/members/${encodeURIComponent("n%31")}`, "DELETE");
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe("MEMBER_NOT_FOUND");
    expect(leader.node.membership().voters.sort()).toEqual(["n1", "n2", "n3"]);
    expect(leader.node.status().lastIndex).toBe(before);
  });

  it("an id with an encoded % that is not an escape (\"100%\") is 404 MEMBER_NOT_FOUND, not 500", async () => {
    const c = await start();
    const leader = await c.leader();
    const res = await call(`${leader.url}/admin/members/${encodeURIComponent("100%")}`, "DELETE");
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe("MEMBER_NOT_FOUND");
  });

  it("removing a follower answers 200 without it; GET no longer lists it and the rest still commit", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    const body = await membersOf(await call(`${leader.url}/admin/members/${follower.id}`, "DELETE"));
    expect(body.leader).toBe(leader.id);
    expect(body.joint).toBe(false);
    expect(body.index).toBeGreaterThan(0);
    expect(find(body, follower.id)).toBeUndefined();
    expect(body.members).toHaveLength(2);

    const after = await membersOf(await call(`${leader.url}/admin/members`, "GET"));
    expect(find(after, follower.id)).toBeUndefined();
    expect(after.members.map((m) => m.role)).toEqual(["voter", "voter"]);
    expect(leader.node.membership().voters).not.toContain(follower.id);
    expect((await call(`${leader.url}/kv/k`, "PUT", "two voters")).status).toBe(200);

    const again = await call(`${leader.url}/admin/members/${follower.id}`, "DELETE");
    expect(again.status).toBe(404);
    expect(await errorCode(again)).toBe("MEMBER_NOT_FOUND");
  });

  it("removing a learner answers 200 without it", async () => {
    const c = await start({ spares: ["n4"] });
    const leader = await c.leader();
    expect((await call(`${leader.url}/admin/members`, "POST", { id: "n4", url: c.url("n4"), role: "learner" })).status).toBe(200);
    const body = await membersOf(await call(`${leader.url}/admin/members/n4`, "DELETE"));
    expect(find(body, "n4")).toBeUndefined();
    expect(leader.node.membership().learners).toEqual([]);
  });

  it("removing the leader itself answers 200; another node becomes leader and does not list it", async () => {
    const c = await start();
    const old = await c.leader();
    const body = await membersOf(await call(`${old.url}/admin/members/${old.id}`, "DELETE"));
    expect(find(body, old.id)).toBeUndefined();
    expect(body.members).toHaveLength(2);

    const next = await otherLeader(c, old.id);
    expect(next.node.membership().voters).not.toContain(old.id);
    const after = await membersOf(await call(`${next.url}/admin/members`, "GET"));
    expect(after.leader).toBe(next.id);
    expect(ids(after)).toEqual(["n1", "n2", "n3"].filter((id) => id !== old.id));
    expect(old.node.status().role).not.toBe("leader");
    expect((await call(`${next.url}/kv/k`, "PUT", "after the leader left")).status).toBe(200);
  });

  it("a follower answers 307 to the leader and removes nothing", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    const res = await call(`${follower.url}/admin/members/${follower.id}`, "DELETE");
    expect(res.status).toBe(307);
    expect(res.headers.get("Location")).toBe(`${leader.url}/admin/members/${follower.id}`);
    await sleep(50);
    expect(leader.node.membership().voters.sort()).toEqual(["n1", "n2", "n3"]);
  });
});

describe("POST /admin/transfer-leader", () => {
  it("hands leadership to `to` and answers 200 {leader: to, leaderUrl}", async () => {
    const c = await start();
    const old = await c.leader();
    const to = await c.follower();
    const res = await call(`${old.url}/admin/transfer-leader`, "POST", { to: to.id });
    expect(res.status).toBe(200);
    expect((await res.json()) as AdminTransferBody).toEqual({ leader: to.id, leaderUrl: to.url });
    expect(to.node.status().role).toBe("leader");
    expect((await c.leader()).id).toBe(to.id);

    const redirect = await call(`${old.url}/admin/members`, "GET");
    expect(redirect.status).toBe(307);
    expect(redirect.headers.get("Location")).toBe(`${to.url}/admin/members`);
  });

  it("without `to` (empty body or {}), leadership moves to another voter", async () => {
    const c = await start();
    for (const body of [undefined, {}]) {
      const old = await c.leader();
      const res = await call(`${old.url}/admin/transfer-leader`, "POST", body);
      expect(res.status).toBe(200);
      const answer = (await res.json()) as AdminTransferBody;
      expect(answer.leader).not.toBe(old.id);
      expect(answer.leaderUrl).toBe(c.url(answer.leader));
      expect((await c.leader()).id).toBe(answer.leader);
    }
  });

  it("an unknown or non-voter `to` is 400 INVALID_CONF_CHANGE, a non-string `to` 400 BAD_REQUEST; leadership stays", async () => {
    const c = await start({ spares: ["n4"] });
    const leader = await c.leader();
    expect((await call(`${leader.url}/admin/members`, "POST", { id: "n4", url: c.url("n4"), role: "learner" })).status).toBe(200);
    for (const to of ["nope", "n4"]) {
      const res = await call(`${leader.url}/admin/transfer-leader`, "POST", { to });
      expect(res.status, to).toBe(400);
      expect(await errorCode(res)).toBe("INVALID_CONF_CHANGE");
    }
    for (const to of [4, true, ["n2"]]) {
      const res = await call(`${leader.url}/admin/transfer-leader`, "POST", { to });
      expect(res.status, JSON.stringify(to)).toBe(400);
      expect(await errorCode(res)).toBe("BAD_REQUEST");
    }
    const notJson = await call(`${leader.url}/admin/transfer-leader`, "POST", "{to:");
    expect(notJson.status).toBe(400);
    expect(await errorCode(notJson)).toBe("BAD_REQUEST");
    await sleep(100);
    expect(leader.node.status().role).toBe("leader");
  });

  it("a follower answers 307 to the leader and leadership stays", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    const res = await call(`${follower.url}/admin/transfer-leader`, "POST", { to: follower.id });
    expect(res.status).toBe(307);
    expect(res.headers.get("Location")).toBe(`${leader.url}/admin/transfer-leader`);
    expect(res.headers.get("X-Meshraft-Leader")).toBe(leader.id);
    await sleep(100);
    expect(leader.node.status().role).toBe("leader");
  });
});

describe("admin token", () => {
  const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });

  it("with adminToken, /admin/* needs it (401 without, with a wrong one, or with the API token); the KV API keeps the API token", async () => {
    const c = await start({ app: { apiToken: "api", adminToken: "adm" } });
    const leader = await c.leader();
    for (const headers of [{}, bearer("wrong"), bearer("api"), bearer("admX"), { Authorization: "adm" }]) {
      const res = await call(`${leader.url}/admin/members`, "GET", undefined, headers);
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
      expect(await errorCode(res)).toBe("UNAUTHORIZED");
    }
    const before = leader.node.status().lastIndex;
    for (const res of [
      await call(`${leader.url}/admin/members/n2`, "DELETE", undefined, bearer("api")),
      await call(`${leader.url}/admin/transfer-leader`, "POST", {}, bearer("api")),
    ]) {
      expect(res.status).toBe(401);
    }
    await sleep(50);
    expect(leader.node.status().lastIndex).toBe(before);
    expect(leader.node.status().role).toBe("leader");

    expect((await call(`${leader.url}/admin/members`, "GET", undefined, bearer("adm"))).status).toBe(200);
    expect((await call(`${leader.url}/kv/k`, "PUT", "v", bearer("adm"))).status).toBe(401);
    expect((await call(`${leader.url}/kv/k`, "PUT", "v", bearer("api"))).status).toBe(200);
  });

  it("a follower checks the admin token before it reveals the leader", async () => {
    const c = await start({ app: { adminToken: "adm" } });
    const leader = await c.leader();
    const follower = await c.follower();
    const denied = await call(`${follower.url}/admin/members`, "GET");
    expect(denied.status).toBe(401);
    expect(denied.headers.get("X-Meshraft-Leader")).toBeNull();
    expect(denied.headers.get("Location")).toBeNull();
    const allowed = await call(`${follower.url}/admin/members`, "GET", undefined, bearer("adm"));
    expect(allowed.status).toBe(307);
    expect(allowed.headers.get("Location")).toBe(`${leader.url}/admin/members`);
  });

  it("adminToken alone guards only /admin/*: the KV API stays open", async () => {
    const c = await start({ app: { adminToken: "adm" } });
    const leader = await c.leader();
    expect((await call(`${leader.url}/kv/k`, "PUT", "v")).status).toBe(200);
    expect((await call(`${leader.url}/admin/members`, "GET")).status).toBe(401);
    expect((await call(`${leader.url}/admin/members`, "GET", undefined, bearer("adm"))).status).toBe(200);
  });

  it("without adminToken, /admin/* takes the API token", async () => {
    const c = await start({ app: { apiToken: "api" } });
    const leader = await c.leader();
    expect((await call(`${leader.url}/admin/members`, "GET")).status).toBe(401);
    expect((await call(`${leader.url}/admin/members`, "GET", undefined, bearer("api"))).status).toBe(200);
  });
});

// -----------------------------------------------------------------------------------------------
// Authorization on the dispatched route, whatever the spelling of the path

/**
 * One request with `path` sent byte for byte (node:http, like `curl --path-as-is`; fetch would
 * normalize it): the status and body.
 */
function raw(base: string, method: string, path: string, token?: string, body?: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    headers["Content-Length"] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port: Number(port), method, path, headers, timeout: 5_000 }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within 5 s`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** Percent-encodes the character at `i` of `path` (`upper`: hex digits in upper case). */
function encodeAt(path: string, i: number, upper = false): string {
  const hex = path.charCodeAt(i).toString(16);
  return `${path.slice(0, i)}%${upper ? hex.toUpperCase() : hex}${path.slice(i + 1)}`;
}

/**
 * Spellings of `path` that a router or a URL parser may take for it: every letter of it
 * percent-encoded in turn (lower- and upper-case hex), the whole first segment encoded, double
 * encoding, other letter case, dot segments (plain and encoded), doubled and trailing slashes.
 */
function variants(path: string): string[] {
  const out = new Set<string>();
  for (let i = 1; i < path.length; i++) {
    if (!/[a-z]/i.test(path[i])) continue;
    out.add(encodeAt(path, i));
    out.add(encodeAt(path, i, true));
  }
  const [, first, ...rest] = path.split("/");
  const tail = rest.length > 0 ? `/${rest.join("/")}` : "";
  const encodedFirst = [...first].map((ch) => `%${ch.charCodeAt(0).toString(16)}`).join("");
  out.add(`/${encodedFirst}${tail}`);
  out.add(`/${encodedFirst.replaceAll("%", "%25")}${tail}`); // double-encoded
  out.add(encodeAt(path, 1).replace("%", "%25"));
  out.add(`/${first.toUpperCase()}${tail}`);
  out.add(`/${first[0].toUpperCase()}${first.slice(1)}${tail}`);
  out.add(`/status/..${path}`);
  out.add(`/kv/..${path}`);
  out.add(`/x/%2e%2e${path}`);
  out.add(`/x/%2E%2E${path}`);
  out.add(`/x/.%2e${path}`);
  out.add(`/./${path.slice(1)}`);
  out.add(`/${first}/.${tail}`);
  out.add(`/${first}/./${rest.join("/")}`);
  out.add(`/${first}/x/..${tail}`);
  out.add(`/${first}/x/%2e%2e${tail}`);
  out.add(`//${path.slice(1)}`);
  out.add(`${path}/`);
  out.add(`${path}/.`);
  out.add(`${path}?x=1`);
  out.add(path);
  return [...out];
}

const ADMIN_ROUTES: { method: string; path: string; body?: string }[] = [
  { method: "GET", path: "/admin/members" },
  { method: "POST", path: "/admin/members", body: JSON.stringify({ id: "n9", url: "http://127.0.0.1:9" }) },
  { method: "DELETE", path: "/admin/members/n2" },
  { method: "POST", path: "/admin/transfer-leader", body: JSON.stringify({ to: "n2" }) },
];

const CLIENT_ROUTES: { method: string; path: string; body?: string }[] = [
  { method: "PUT", path: "/kv/k", body: "v" },
  { method: "GET", path: "/kv/k" },
  { method: "DELETE", path: "/kv/k" },
  { method: "POST", path: "/kv/k/cas", body: JSON.stringify({ expect: null, value: "v" }) },
  { method: "GET", path: "/metrics" },
  { method: "GET", path: "/status" },
];

describe("authorization is decided on the route that handles the request", () => {
  it("no spelling of an admin path (encoded, double-encoded, mixed case, dot segments) reaches an admin handler with the client token or none; nothing changes", async () => {
    const c = await start({ app: { apiToken: "api", adminToken: "adm", publicStatus: false }, node: { electionTimeoutMs: 1_000 } });
    const leader = await c.leader();
    const before = { lastIndex: leader.node.status().lastIndex, voters: leader.node.membership().voters.join() };
    // The router really takes an encoded spelling for the admin route: with the admin token it answers.
    expect((await raw(leader.url, "GET", "/%61dmin/members", "adm")).status).toBe(200);
    expect((await raw(leader.url, "GET", "/adm%69n/members", "adm")).status).toBe(200);
    let tried = 0;
    for (const route of ADMIN_ROUTES) {
      for (const path of variants(route.path)) {
        for (const token of ["api", undefined, "wrong"]) {
          const res = await raw(leader.url, route.method, path, token, route.body);
          // 401 where an admin handler would answer, 404 where none matches: never the handler.
          expect([401, 404], `${route.method} ${path} token=${token}: ${res.status} ${res.body}`).toContain(res.status);
          tried++;
        }
      }
    }
    expect(tried).toBeGreaterThan(200);
    await sleep(100);
    expect(leader.node.status().role).toBe("leader");
    expect(leader.node.status().lastIndex).toBe(before.lastIndex);
    expect(leader.node.membership().voters.join()).toBe(before.voters);
  });

  it("no spelling of a KV, /metrics or (non-public) /status path is served without the API token or with the admin token", async () => {
    const c = await start({ app: { apiToken: "api", adminToken: "adm", publicStatus: false } });
    const leader = await c.leader();
    expect((await raw(leader.url, "PUT", "/kv/k", "api", "v0")).status).toBe(200);
    expect((await raw(leader.url, "GET", "/%6detrics", "api")).status).toBe(200);
    for (const route of CLIENT_ROUTES) {
      for (const path of variants(route.path)) {
        for (const token of ["adm", undefined, "wrong"]) {
          const res = await raw(leader.url, route.method, path, token, route.body);
          expect([401, 404], `${route.method} ${path} token=${token}: ${res.status} ${res.body}`).toContain(res.status);
        }
      }
    }
    expect(new TextDecoder().decode(leader.kv.get("k")!)).toBe("v0");
  });

  it("with only an admin token, encoded admin paths still need it while the KV API stays open", async () => {
    const c = await start({ app: { adminToken: "adm" } });
    const leader = await c.leader();
    const before = leader.node.status().lastIndex;
    for (const path of variants("/admin/transfer-leader")) {
      const res = await raw(leader.url, "POST", path, undefined, JSON.stringify({ to: "n2" }));
      expect([401, 404], `${path}: ${res.status} ${res.body}`).toContain(res.status);
    }
    expect((await raw(leader.url, "PUT", "/kv/k", undefined, "v")).status).toBe(200);
    await sleep(100);
    expect(leader.node.status().role).toBe("leader");
    expect(leader.node.status().lastIndex).toBe(before + 1);
  });

  it("every admin change is logged with the token kind and the remote address; refusals too", async () => {
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`), error: (m: string) => lines.push(`error ${m}`) };
    const remoteAddress = (ctx: Context): string | undefined => (ctx.env as { incoming?: IncomingMessage }).incoming?.socket.remoteAddress;
    const c = await start({ app: { apiToken: "api", adminToken: "adm", logger, remoteAddress }, node: { electionTimeoutMs: 1_000 } });
    const leader = await c.leader();
    expect((await raw(leader.url, "POST", "/%61dmin/transfer-leader", "api", JSON.stringify({ to: "n2" }))).status).toBe(401);
    expect(lines.some((l) => /^warn admin: refused POST \/admin\/transfer-leader \(401\), token=client remote=127\.0\.0\.1$/.test(l)), lines.join("\n")).toBe(true);
    const to = leader.id === "n2" ? "n3" : "n2";
    expect((await raw(leader.url, "POST", "/admin/transfer-leader", "adm", JSON.stringify({ to }))).status).toBe(200);
    const line = lines.find((l) => l.includes("transfer leadership"));
    expect(line).toBe(`info admin: transfer leadership to "${to}": ${to} leads; asked by token=admin remote=127.0.0.1`);
  });
});
