/**
 * What a member answers before it is assembled (src/runtime/member.ts startingResponse): 503
 * "starting", readable by a dashboard page served by another member (CORS), and a preflight
 * that lets that page's authorized request through to the 503.
 */
import { describe, expect, it } from "vitest";
import { startingResponse } from "../../src/runtime/member.ts";

const page = "http://127.0.0.1:7001";

describe("a starting member's answer", () => {
  it("is 503 with Retry-After, and CORS headers for the asking origin", async () => {
    const res = startingResponse(new Request("http://127.0.0.1:7002/dashboard/events", { headers: { Origin: page, Authorization: "Bearer t" } }));
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("starting");
    expect(res.headers.get("Retry-After")).toBe("1");
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe(page);
    expect(res.headers.get("Vary")).toBe("Origin");
  });

  it("answers a preflight with 204 allowing the Authorization header", () => {
    const res = startingResponse(
      new Request("http://127.0.0.1:7002/dashboard/events", {
        method: "OPTIONS",
        headers: { Origin: page, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization" },
      }),
    );
    expect(res.status).toBe(204);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe(page);
    expect(res.headers.get("Access-Control-Allow-Headers")).toMatch(/Authorization/);
  });

  it("without an Origin (not a browser's cross-origin call): a plain 503, no CORS headers", () => {
    const res = startingResponse(new Request("http://127.0.0.1:7002/status"));
    expect(res.status).toBe(503);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });
});
