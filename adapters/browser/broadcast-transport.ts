/**
 * BroadcastChannelTransport: a Transport between members in tabs (or workers) of one origin.
 *
 * Every member of a cluster opens the channel `meshraft:<clusterId>` (one per cluster, so two
 * clusters on one origin never see each other's traffic). A frame is posted to all of them as
 *
 *   { to, from, frame }    frame: the mesh's wire codec bytes (../../src/transport/codec.ts)
 *
 * and each member drops, without decoding, every frame whose `to` is not its own id. The header
 * repeats what the frame says so that test is cheap; a frame whose decoded `to`/`from` disagree
 * with the header, or that does not decode, is counted as malformed and dropped, never thrown:
 * any script of the origin can post on the channel.
 *
 * BroadcastChannel keeps each sender's order (per-link FIFO, as Raft's transports provide) and
 * buffers nothing for a member that is not listening yet: such frames are lost, which Raft's
 * retransmission covers. Which tab runs which id is decided elsewhere (Web Locks); two transports
 * started with one id on one channel would both receive that id's frames.
 */
import type { Message, NodeId } from "../../src/core/types.ts";
import { Codec, type CodecLimits } from "../../src/transport/codec.ts";
import type { MeshLogger } from "../../src/transport/connection.ts";
import type { Transport } from "../../src/transport/transport.ts";

export interface BroadcastChannelTransportOptions {
  clusterId: string;
  nodeId: NodeId;
  /** Limits for decoding received frames (and encoding sent ones). Default: the mesh's. */
  codecLimits?: Partial<CodecLimits>;
  /** Default `globalThis.BroadcastChannel`. */
  BroadcastChannel?: typeof BroadcastChannel;
  /** Default: errors and warnings to the console. */
  logger?: MeshLogger;
}

export interface BroadcastChannelTransportStats {
  /** Frames posted. */
  sent: number;
  /** Messages handed to the handler. */
  received: number;
  /** Frames for other members, dropped unread (every member sees every frame of the channel). */
  notAddressed: number;
  /** Frames that did not decode, or whose header disagrees with their content; dropped. */
  malformed: number;
  /** Messages the codec refused to encode (a bug upstream; logged), or addressed to this node itself. */
  droppedUnencodable: number;
  /** `send` calls after `close()`. */
  droppedClosed: number;
  /** Handler calls that threw; logged, and the transport went on. */
  handlerErrors: number;
}

/** The channel a cluster's members share. */
export function channelName(clusterId: string): string {
  return `meshraft:${clusterId}`;
}

interface Envelope {
  to: NodeId;
  from: NodeId;
  frame: Uint8Array;
}

const consoleLogger: MeshLogger = (level, message, fields) => {
  if (level === "error") console.error(`meshraft broadcast: ${message}`, fields);
  else if (level === "warn") console.warn(`meshraft broadcast: ${message}`, fields);
};

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export class BroadcastChannelTransport implements Transport {
  readonly nodeId: NodeId;
  readonly channelName: string;
  readonly #channel: BroadcastChannel;
  readonly #codec: Codec;
  readonly #log: MeshLogger;
  #handler: ((message: Message) => void) | null = null;
  #closed = false;
  readonly #stats: BroadcastChannelTransportStats = { sent: 0, received: 0, notAddressed: 0, malformed: 0, droppedUnencodable: 0, droppedClosed: 0, handlerErrors: 0 };

  /** @throws RangeError for an empty cluster or node id; TypeError where BroadcastChannel does not exist. */
  constructor(options: BroadcastChannelTransportOptions) {
    for (const key of ["clusterId", "nodeId"] as const) {
      if (typeof options[key] !== "string" || options[key] === "") throw new RangeError(`BroadcastChannelTransport: ${key} must be a non-empty string`);
    }
    const Channel = options.BroadcastChannel ?? globalThis.BroadcastChannel;
    if (typeof Channel !== "function") throw new TypeError("BroadcastChannelTransport: this environment has no BroadcastChannel");
    this.nodeId = options.nodeId;
    this.channelName = channelName(options.clusterId);
    this.#codec = new Codec(options.codecLimits);
    this.#log = options.logger ?? consoleLogger;
    this.#channel = new Channel(this.channelName);
  }

  start(handler: (message: Message) => void): void {
    if (this.#closed) return;
    this.#handler = handler;
    this.#channel.onmessage = (event: MessageEvent) => this.#receive(event.data);
    this.#channel.onmessageerror = () => this.#stats.malformed++;
  }

  send(message: Message): void {
    if (this.#closed) {
      this.#stats.droppedClosed++;
      return;
    }
    let frame: Uint8Array;
    try {
      if (message.to === this.nodeId) throw new Error("a member does not send to itself");
      frame = this.#codec.encode(message);
    } catch (error) {
      this.#stats.droppedUnencodable++;
      this.#log("error", `cannot send a ${message?.type} to ${message?.to}: ${errorText(error)}`, { peer: message?.to, type: message?.type });
      return;
    }
    const envelope: Envelope = { to: message.to, from: this.nodeId, frame };
    this.#channel.postMessage(envelope);
    this.#stats.sent++;
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#handler = null;
      this.#channel.onmessage = null;
      this.#channel.onmessageerror = null;
      this.#channel.close();
    }
    return Promise.resolve();
  }

  stats(): BroadcastChannelTransportStats {
    return { ...this.#stats };
  }

  #receive(data: unknown): void {
    const handler = this.#handler;
    if (handler === null) return;
    const envelope = data as Partial<Envelope> | null;
    if (typeof envelope !== "object" || envelope === null || typeof envelope.to !== "string") {
      this.#stats.malformed++;
      return;
    }
    if (envelope.to !== this.nodeId) {
      this.#stats.notAddressed++;
      return;
    }
    let message: Message;
    try {
      if (!(envelope.frame instanceof Uint8Array)) throw new Error("the frame is not a Uint8Array");
      message = this.#codec.decode(envelope.frame);
      if (message.to !== this.nodeId || message.from !== envelope.from) {
        throw new Error(`the frame is from ${message.from} to ${message.to}, its header from ${String(envelope.from)} to ${envelope.to}`);
      }
    } catch (error) {
      this.#stats.malformed++;
      this.#log("warn", `dropped a malformed frame: ${errorText(error)}`, { from: envelope.from });
      return;
    }
    this.#stats.received++;
    try {
      handler(message);
    } catch (error) {
      this.#stats.handlerErrors++;
      this.#log("error", `the handler threw on a ${message.type} from ${message.from}: ${errorText(error)}`, { peer: message.from, type: message.type });
    }
  }
}
