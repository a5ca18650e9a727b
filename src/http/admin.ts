/**
 * The admin routes of the HTTP app: membership and leadership.
 *
 *   GET    /admin/members           the configuration, with each member's role and progress
 *   POST   /admin/members           {id, url, role?}: add a member ("voter" by default: it joins
 *                                   as a learner and is promoted once caught up) or promote a
 *                                   learner that has caught up (409 LEARNER_BEHIND if it has not)
 *   DELETE /admin/members/:id       remove a member (the leader itself included)
 *   POST   /admin/transfer-leader   {to?}: hand leadership to `to`, or to the most up-to-date voter
 *   POST   /admin/snapshot          snapshot this member's state machine now and compact its log
 *
 * Only the leader answers (followers redirect (307) like the KV API), except /admin/snapshot,
 * which every member answers for itself. Adding a member that is
 * already there in the asked role answers 200 without a change, so a joining node may retry.
 */
import type { Context, Hono } from "hono";
import { memberUrlProblem } from "../core/member-url.ts";
import type { ConfChangeItem } from "../core/membership.ts";
import type { ConfState } from "../core/types.ts";
import {
  ConfChangeInProgressError,
  InvalidConfChangeError,
  LearnerBehindError,
  NotLeaderError,
  TransferFailedError,
} from "../errors.ts";
import type { MembershipChange, RaftNode } from "../node.ts";
import { ApiError, apiErrorFrom } from "./errors.ts";
import type { AdminMember, AdminMembersBody, AdminSnapshotBody, AdminTransferBody } from "./protocol.ts";

export interface AdminRouteContext {
  // deno-lint-ignore no-explicit-any
  node: RaftNode<any>;
  urlOf: (id: string) => string | null;
  /** Null when this node leads, else the redirect (or throws 503 without a known leader). */
  unlessLeader: (c: Context) => Response | null;
  redirectToLeader: (c: Context, leaderId: string | null, hintedUrl: string | null) => Response;
  readJson: (c: Context) => Promise<unknown>;
  /** Logs an admin change with who asked for it (token kind, remote address). */
  audit: (c: Context, message: string) => void;
}

const RETRY = { "Retry-After": "1" };

export function mountAdminRoutes(app: Hono, ctx: AdminRouteContext): void {
  const { node } = ctx;

  function membersBody(conf: ConfState, index?: number): AdminMembersBody {
    const members: AdminMember[] = [];
    const add = (id: string, role: AdminMember["role"]): void => {
      if (members.some((m) => m.id === id)) return;
      const m: AdminMember = { id, url: conf.urls?.[id] ?? ctx.urlOf(id), role };
      if (conf.promote?.includes(id)) m.promote = true;
      const match = id === node.id ? node.status().lastIndex : node.progress(id)?.match;
      if (match !== undefined) m.match = match;
      members.push(m);
    };
    for (const id of conf.voters) add(id, "voter");
    for (const id of conf.votersOutgoing) add(id, "leaving");
    for (const id of conf.learners) add(id, "learner");
    const body: AdminMembersBody = { leader: node.id, joint: conf.votersOutgoing.length > 0, members };
    if (index !== undefined) body.index = index;
    return body;
  }

  /**
   * Runs an admin action on the leader and logs it, with who asked and what came of it (`done`
   * gives the outcome to log and the answer); NotLeaderError (leadership moved meanwhile) becomes
   * a redirect.
   */
  async function audited<T>(c: Context, what: string, run: () => Promise<T>, done: (result: T) => [outcome: string, answer: Response]): Promise<Response> {
    let result: T;
    try {
      result = await run();
    } catch (err) {
      if (err instanceof NotLeaderError) {
        ctx.audit(c, `${what}: not done here, leadership moved to ${err.leaderId ?? "nobody yet"}`);
        return ctx.redirectToLeader(c, err.leaderId, err.leaderUrl);
      }
      const e = adminError(err);
      ctx.audit(c, `${what}: failed with ${e.status} ${e.code}`);
      throw e;
    }
    const [outcome, answer] = done(result);
    ctx.audit(c, `${what}: ${outcome}`);
    return answer;
  }

  /** A membership change, answered with the configuration it made. */
  const change = (c: Context, what: string, run: () => Promise<MembershipChange>): Promise<Response> =>
    audited(c, what, run, (d) => [`done at index ${d.index}`, c.json(membersBody(d.conf, d.index))]);

  app.get("/admin/members", (c) => ctx.unlessLeader(c) ?? c.json(membersBody(node.membership())));

  app.post("/admin/members", async (c) => {
    const redirect = ctx.unlessLeader(c);
    if (redirect) return redirect;
    const body = await ctx.readJson(c);
    const { id, url, role } = parseAddMember(body);
    const conf = node.membership();
    const known = conf.urls?.[id];
    if (known !== undefined && known !== url && (conf.voters.includes(id) || conf.learners.includes(id))) {
      throw new ApiError(400, "INVALID_CONF_CHANGE", `${id} is already a member at ${known}; remove it first to move it to ${url}`);
    }
    if (conf.voters.includes(id)) {
      if (role === "learner") throw new ApiError(400, "INVALID_CONF_CHANGE", `${id} is a voter; demoting is not supported: remove it, then add it as a learner`);
      return c.json(membersBody(conf)); // already there
    }
    if (conf.learners.includes(id)) {
      if (role === "learner") return c.json(membersBody(conf));
      if (conf.promote?.includes(id)) return c.json(membersBody(conf)); // promotion already pending
      // Only a learner that has caught up (409 LEARNER_BEHIND otherwise, with how far behind it is).
      return change(c, `promote learner ${id} to voter`, () => node.promoteLearner(id, url));
    }
    return change(c, `add ${id} at ${url} as a ${role}`, () => node.addLearner(id, url, { promote: role === "voter" }));
  });

  app.delete("/admin/members/:id", async (c) => {
    const redirect = ctx.unlessLeader(c);
    if (redirect) return redirect;
    const id = c.req.param("id"); // hono has decoded it once already
    const conf = node.membership();
    if (!conf.voters.includes(id) && !conf.learners.includes(id)) {
      throw new ApiError(404, "MEMBER_NOT_FOUND", `${JSON.stringify(id)} is not a member`);
    }
    return change(c, `remove ${JSON.stringify(id)}`, () => node.removeMember(id));
  });

  app.post("/admin/transfer-leader", async (c) => {
    const redirect = ctx.unlessLeader(c);
    if (redirect) return redirect;
    const body = await ctx.readJson(c);
    if (body !== null && (typeof body !== "object" || Array.isArray(body) || Object.keys(body).some((k) => k !== "to"))) {
      throw new ApiError(400, "BAD_REQUEST", 'the body must be empty or JSON {"to"?: string}');
    }
    const to = body === null ? undefined : (body as { to?: unknown }).to;
    if (to !== undefined && to !== null && typeof to !== "string") throw new ApiError(400, "BAD_REQUEST", "`to` must be a member id");
    const what = `transfer leadership to ${typeof to === "string" ? JSON.stringify(to) : "the most up-to-date voter"}`;
    return audited(c, what, () => node.transferLeadership(typeof to === "string" ? to : undefined), (leader) => {
      const answer: AdminTransferBody = { leader, leaderUrl: ctx.urlOf(leader) };
      return [`${leader} leads`, c.json(answer)];
    });
  });

  app.post("/admin/snapshot", (c) =>
    audited(c, `snapshot ${node.id} now`, () => node.snapshotNow(), (index) => {
      const answer: AdminSnapshotBody = { id: node.id, index };
      return [`snapshot at index ${index}`, c.json(answer)];
    }),
  );
}

function adminError(err: unknown): ApiError {
  if (err instanceof ConfChangeInProgressError) return new ApiError(409, "CONF_CHANGE_IN_PROGRESS", err.message, RETRY);
  if (err instanceof LearnerBehindError) return new ApiError(409, "LEARNER_BEHIND", err.message, RETRY);
  if (err instanceof InvalidConfChangeError) return new ApiError(400, "INVALID_CONF_CHANGE", err.message);
  if (err instanceof TransferFailedError) return new ApiError(503, "TRANSFER_FAILED", err.message, RETRY);
  return apiErrorFrom(err);
}

function parseAddMember(body: unknown): { id: string; url: string; role: "voter" | "learner" } {
  const bad = (why: string): never => {
    throw new ApiError(400, "BAD_REQUEST", `the body must be JSON {"id": string, "url": string, "role"?: "voter"|"learner"}: ${why}`);
  };
  if (typeof body !== "object" || body === null || Array.isArray(body)) return bad("not an object");
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (k !== "id" && k !== "url" && k !== "role") bad(`unexpected field ${JSON.stringify(k)}`);
  if (typeof b.id !== "string" || b.id === "") bad("id must be a non-empty string");
  if (typeof b.url !== "string" || !/^https?:\/\/\S+$/.test(b.url)) bad("url must be the member's http(s) base URL");
  const problem = memberUrlProblem(b.url as string);
  if (problem?.code === "URL_NOT_UNICODE") bad(problem.message);
  if (problem) throw new ApiError(400, "URL_TOO_LONG", `url refused: ${problem.message}`);
  const role = b.role === undefined ? "voter" : b.role;
  if (role !== "voter" && role !== "learner") bad(`role must be "voter" or "learner"`);
  return { id: b.id as string, url: (b.url as string).replace(/\/+$/, ""), role: role as "voter" | "learner" };
}
