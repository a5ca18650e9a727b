/**
 * The Node side of the local demo's controls (src/http/demo-controls.ts): the member processes
 * the `meshraft demo` supervisor spawned, killed with SIGKILL, paused with SIGSTOP, resumed with
 * SIGCONT, restarted from their data directory; a cut link is a message over the IPC channel to
 * both members (adapters/node/demo-member.ts), whose mesh then refuses the other.
 */
import type { ChildProcess } from "node:child_process";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { createDemoControlApp, DemoControls, type DemoMemberState, type DemoProcesses } from "../../src/http/demo-controls.ts";

export interface DemoSupervisorOptions {
  ids: string[];
  urlOf: (id: string) => string;
  /** The member's current process (undefined before its first start). */
  child: (id: string) => ChildProcess | undefined;
  /** Starts the member again (a new process on the same data directory). */
  respawn: (id: string) => void;
  /** The admin token the members take; the controls want it too. */
  adminToken?: string;
  /** The members' API token: the load generator's writes carry it. */
  token?: string;
}

export interface DemoSupervisor {
  /** Where the controls are served (`http://127.0.0.1:<port>`); members announce it to the page. */
  url: string;
  controls: DemoControls;
  /** Stops the load, resumes paused members (so they can stop), closes the server. */
  close(): Promise<void>;
}

class NodeDemoProcesses implements DemoProcesses {
  private readonly paused = new Set<string>();
  /** Killed on request: drawn killed at once, before its process has gone. */
  private readonly killed = new Set<string>();

  constructor(private readonly o: DemoSupervisorOptions) {}

  get ids(): readonly string[] {
    return this.o.ids;
  }

  urlOf(id: string): string {
    return this.o.urlOf(id);
  }

  private running(id: string): ChildProcess | null {
    const c = this.o.child(id);
    return c && !this.killed.has(id) && c.exitCode === null && c.signalCode === null ? c : null;
  }

  state(id: string): DemoMemberState {
    if (!this.running(id)) return "killed";
    return this.paused.has(id) ? "paused" : "running";
  }

  kill(id: string): void {
    const c = this.running(id);
    if (!c) return;
    c.kill("SIGKILL");
    this.killed.add(id);
    this.paused.delete(id);
  }

  restart(id: string): void {
    const c = this.o.child(id);
    if (c && c.exitCode === null && c.signalCode === null) {
      // Its process has not gone yet: start it once it has (its port and data directory free).
      c.once("exit", () => this.respawn(id));
      this.kill(id);
      return;
    }
    this.respawn(id);
  }

  private respawn(id: string): void {
    this.killed.delete(id);
    this.o.respawn(id);
  }

  pause(id: string): void {
    const c = this.running(id);
    if (!c || this.paused.has(id)) return;
    c.kill("SIGSTOP");
    this.paused.add(id);
  }

  resume(id: string): void {
    const c = this.running(id);
    this.paused.delete(id);
    c?.kill("SIGCONT");
  }

  refuse(id: string, peer: string, refused: boolean): void {
    const c = this.running(id);
    // A paused member reads it when resumed; a killed one learns it again at restart (DemoControls).
    if (c?.connected) c.send({ type: "refuse", peer, refused });
  }

  resumeAll(): void {
    for (const id of [...this.paused]) this.resume(id);
  }
}

/** Serves the controls on an ephemeral port of 127.0.0.1. */
export async function startDemoSupervisor(o: DemoSupervisorOptions): Promise<DemoSupervisor> {
  const processes = new NodeDemoProcesses(o);
  const controls = new DemoControls(processes, { token: o.token });
  const origins = o.ids.map((id) => new URL(o.urlOf(id)).origin);
  const app = createDemoControlApp({ controls, adminToken: o.adminToken, origins });
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
    s.once("error", reject);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    controls,
    close: async () => {
      controls.stop();
      processes.resumeAll();
      await new Promise<void>((done) => {
        server.close(() => done());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    },
  };
}
