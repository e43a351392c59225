// Runs @waku/sds `MessageChannel` participants for the sds-interop Rust tests.
//
// Protocol: one JSON object per line on stdin (a command), one JSON object per line on
// stdout (its reply), strictly in turn. Every reply is either
//   {"ok": true, "events": [...], ...command-specific fields}
// or
//   {"ok": false, "error": "..."}.
// `events` lists, in order, what the addressed participant's channel emitted while the
// command ran, plus the bytes it asks the network to broadcast ({"type": "broadcast"}).
// Byte strings (payloads, wire messages, contents) are lowercase hex.
//
// Time is virtual: `Date.now()` (which @waku/sds reads for Lamport clocks, SDS-R timers and
// buffer timeouts) returns the value of the last "set_time" command, and `Math.random()`
// (sync message ids) is a seeded generator, so a run is deterministic.
//
// Nothing but replies is written to stdout; diagnostics go to stderr.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

import {
  Message,
  MessageChannel,
  MessageChannelEvent,
  isEphemeralMessage
} from "@waku/sds";

let virtualNow = 0;
Date.now = () => virtualNow;

// mulberry32: a small seeded generator, replacing Math.random for determinism.
let randomState = 1;
function seededRandom() {
  randomState = (randomState + 0x6d2b79f5) >>> 0;
  let t = randomState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
Math.random = seededRandom;

const toHex = (bytes) => Buffer.from(bytes ?? new Uint8Array()).toString("hex");
const fromHex = (hex) => new Uint8Array(Buffer.from(hex, "hex"));
// Stands in for the Waku message hash an application passes as retrieval hint.
const hintOf = (bytes) => new Uint8Array(createHash("sha256").update(bytes).digest());
const ids = (entries) => (entries ?? []).map((entry) => entry.messageId);

/** One participant: its channel and the events it emitted since the last reply. */
class Peer {
  constructor(id, channelId, options) {
    this.id = id;
    this.events = [];
    this.channel = new MessageChannel(channelId, id, channelOptions(options));
    this.listen();
  }

  emit(event) {
    this.events.push(event);
  }

  takeEvents() {
    return this.events.splice(0);
  }

  on(name, describe) {
    this.channel.addEventListener(name, (event) => {
      try {
        const described = describe(event.detail);
        if (described) this.emit(described);
      } catch (error) {
        this.emit({ type: "driver_error", error: String(error?.stack ?? error) });
      }
    });
  }

  listen() {
    const E = MessageChannelEvent;
    this.on(E.InMessageDelivered, (messageId) => {
      const message = this.channel.localHistory.find((m) => m.messageId === messageId);
      return {
        type: "delivered",
        message_id: messageId,
        sender_id: message?.senderId ?? null,
        lamport: message ? Number(message.lamportTimestamp) : null,
        content: toHex(message?.content),
        deps: ids(message?.causalHistory)
      };
    });
    this.on(E.InMessageReceived, (m) => ({ type: "received", message_id: m.messageId }));
    this.on(E.InSyncReceived, (m) => ({
      type: "sync_received",
      message_id: m.messageId,
      sender_id: m.senderId
    }));
    this.on(E.OutMessageSent, (m) => ({ type: "sent", message_id: m.messageId }));
    this.on(E.OutSyncSent, (m) => ({ type: "sync_sent", message_id: m.messageId }));
    this.on(E.OutMessageAcknowledged, (messageId) => ({
      type: "acknowledged",
      message_id: messageId
    }));
    this.on(E.OutMessagePossiblyAcknowledged, (detail) => ({
      type: "possibly_acknowledged",
      message_id: detail.messageId,
      count: detail.count
    }));
    // The incoming sweep emits this on every pass, usually with nothing missing.
    this.on(E.InMessageMissing, (entries) =>
      entries.length === 0
        ? null
        : {
            type: "missing",
            entries: entries.map((e) => ({
              message_id: e.messageId,
              sender_id: e.senderId ?? null
            }))
          }
    );
    this.on(E.InMessageLost, (entries) => ({ type: "lost", message_ids: ids(entries) }));
    this.on(E.ErrorTask, (detail) => ({
      type: "task_error",
      command: detail.command,
      error: String(detail.error?.stack ?? detail.error)
    }));
    // 0.0.8's RepairManager dispatches these two under the bare names "RepairRequestQueued"
    // and "RepairResponseQueued", not under MessageChannelEvent's "sds:repair:..." values.
    for (const name of [E.RepairRequestQueued, "RepairRequestQueued"]) {
      this.on(name, (d) => ({
        type: "repair_request_queued",
        message_id: d.messageId,
        t_req: d.tReq
      }));
    }
    this.on(E.RepairRequestSent, (d) => ({
      type: "repair_request_sent",
      message_ids: d.messageIds,
      carrier_id: d.carrierMessageId
    }));
    this.on(E.RepairRequestReceived, (d) => ({
      type: "repair_request_received",
      message_ids: d.messageIds,
      from: d.fromSenderId
    }));
    for (const name of [E.RepairResponseQueued, "RepairResponseQueued"]) {
      this.on(name, (d) => ({
        type: "repair_response_queued",
        message_id: d.messageId,
        t_resp: d.tResp
      }));
    }
    this.on(E.RepairResponseSent, (d) => ({
      type: "repair_response_sent",
      message_id: d.messageId
    }));
  }

  /** A send callback that hands the encoded message to the network. */
  broadcaster(kind) {
    return async (message) => {
      const bytes = message.encode();
      this.emit({ type: "broadcast", kind, message_id: message.messageId, bytes: toHex(bytes) });
      return { success: true, retrievalHint: hintOf(bytes) };
    };
  }

  async send(payloadHex) {
    const payload = fromHex(payloadHex);
    const messageId = MessageChannel.getMessageId(payload);
    // @waku/sds treats a payload still in the outgoing buffer as a retry of that message.
    const resend = this.channel.outgoingBuffer.some((m) => m.messageId === messageId);
    this.channel.pushOutgoingMessage(payload, this.broadcaster(resend ? "resend" : "content"));
    await this.channel.processTasks();
    return { message_id: messageId, resend };
  }

  async sendEphemeral(payloadHex) {
    const payload = fromHex(payloadHex);
    await this.channel.pushOutgoingEphemeralMessage(payload, this.broadcaster("ephemeral"));
    await this.channel.processTasks();
    return { message_id: MessageChannel.getMessageId(payload) };
  }

  async sendSync() {
    const broadcast = this.broadcaster("sync");
    const sent = await this.channel.pushOutgoingSyncMessage(async (message) => {
      await broadcast(message);
      return true;
    });
    return { sent };
  }

  async receive(bytesHex) {
    const bytes = fromHex(bytesHex);
    const message = Message.decode(bytes);
    if (!message) {
      this.emit({ type: "undecodable" });
      return { decoded: false };
    }
    // 0.0.8 accepts ephemeral messages without emitting anything: report them here.
    if (isEphemeralMessage(message) && message.senderId !== this.id) {
      this.emit({
        type: "ephemeral",
        message_id: message.messageId,
        sender_id: message.senderId,
        content: toHex(message.content)
      });
    }
    this.channel.pushIncomingMessage(message, hintOf(bytes));
    await this.channel.processTasks();
    return { decoded: true, message_id: message.messageId };
  }

  sweepIncoming() {
    return { missing: ids(this.channel.sweepIncomingBuffer()) };
  }

  sweepOutgoing() {
    const { unacknowledged, possiblyAcknowledged } = this.channel.sweepOutgoingBuffer();
    return {
      unacknowledged: ids(unacknowledged),
      possibly_acknowledged: ids(possiblyAcknowledged)
    };
  }

  async sweepRepairs() {
    const sent = await this.channel.sweepRepairIncomingBuffer(async (message) => {
      await this.broadcaster("repair")(message);
      return true;
    });
    return { repaired: ids(sent) };
  }

  // Reads fields TypeScript marks private: plain properties at run time.
  state() {
    const channel = this.channel;
    const repair = channel.repairManager;
    return {
      state: {
        lamport: Number(channel.lamportTimestamp),
        local_history: channel.localHistory.slice(0).map((m) => m.messageId),
        outgoing: ids(channel.outgoingBuffer),
        incoming: ids(channel.incomingBuffer),
        outgoing_repairs: (repair?.outgoingBuffer.getItems() ?? []).map((item) => ({
          message_id: item.entry.messageId,
          t_req: item.tReq,
          requested: item.requested
        })),
        incoming_repairs: (repair?.incomingBuffer.getItems() ?? []).map((item) => ({
          message_id: item.entry.messageId,
          t_resp: item.tResp
        }))
      }
    };
  }
}

/** Maps the Rust side's snake_case options onto `MessageChannelOptions`. */
function channelOptions(options = {}) {
  const out = {};
  if (options.causal_history_size != null) out.causalHistorySize = options.causal_history_size;
  if (options.possible_acks_threshold != null) {
    out.possibleAcksThreshold = options.possible_acks_threshold;
  }
  if (options.timeout_for_lost_messages_ms != null) {
    out.timeoutForLostMessagesMs = options.timeout_for_lost_messages_ms;
  }
  if (options.enable_repair != null) out.enableRepair = options.enable_repair;
  if (options.repair != null) {
    const repair = {};
    if (options.repair.t_min_ms != null) repair.tMin = options.repair.t_min_ms;
    if (options.repair.t_max_ms != null) repair.tMax = options.repair.t_max_ms;
    if (options.repair.response_groups != null) {
      repair.numResponseGroups = options.repair.response_groups;
    }
    if (options.repair.buffer_size != null) repair.bufferSize = options.repair.buffer_size;
    out.repairConfig = repair;
  }
  return out;
}

const peers = new Map();

function peer(id) {
  const found = peers.get(id);
  if (!found) throw new Error(`no participant "${id}"`);
  return found;
}

function sdsVersion() {
  const url = new URL("./node_modules/@waku/sds/package.json", import.meta.url);
  return JSON.parse(readFileSync(url, "utf8")).version;
}

async function run(command) {
  switch (command.cmd) {
    case "hello":
      return { sds_version: sdsVersion(), node_version: process.version };
    case "set_time":
      virtualNow = command.now;
      return {};
    case "seed":
      randomState = command.seed >>> 0;
      return {};
    case "create":
      if (peers.has(command.peer)) throw new Error(`participant "${command.peer}" exists`);
      peers.set(command.peer, new Peer(command.peer, command.channel, command.options));
      return {};
    case "send":
      return peer(command.peer).send(command.payload);
    case "send_ephemeral":
      return peer(command.peer).sendEphemeral(command.payload);
    case "send_sync":
      return peer(command.peer).sendSync();
    case "receive":
      return peer(command.peer).receive(command.bytes);
    case "sweep_incoming":
      return peer(command.peer).sweepIncoming();
    case "sweep_outgoing":
      return peer(command.peer).sweepOutgoing();
    case "sweep_repairs":
      return peer(command.peer).sweepRepairs();
    case "state":
      return peer(command.peer).state();
    default:
      throw new Error(`unknown command "${command.cmd}"`);
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() === "") continue;
  let reply;
  let target;
  try {
    const command = JSON.parse(line);
    if (command.cmd === "shutdown") break;
    target = peers.get(command.peer);
    const result = await run(command);
    target = target ?? peers.get(command.peer);
    reply = { ok: true, ...result, events: target ? target.takeEvents() : [] };
  } catch (error) {
    target?.takeEvents();
    reply = { ok: false, error: String(error?.stack ?? error) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
}
// Stdin may still be open after "shutdown"; replies are already written (pipes are
// synchronous on POSIX).
process.exit(0);
