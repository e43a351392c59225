// The protocol workload of `benches/benches/protocol.rs`, on @waku/sds under Node.js: two
// participants, alice and bob, on one channel; each step alice wraps a 100-byte message
// and bob unwraps it, then bob wraps one and alice unwraps it (which acknowledges alice's).
// "Wrap" is pushOutgoingMessage + processTasks up to the encoded bytes (the payload's
// SHA-256 as id, as @waku/sds computes it); "unwrap" is Message.decode +
// pushIncomingMessage + processTasks. No persistence: @waku/sds keeps its state in memory.
//
// Usage: node waku_sds_protocol.mjs <node_modules dir> <warmup steps> <timed steps>
//        <causal history size> <rounds>
// Prints one JSON object: nanoseconds per message for wrap, unwrap and the round trip
// (wrap + unwrap), the median over `rounds` rounds of `timed steps` steps each.

import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [nodeModules, warmupArg, stepsArg, historyArg, roundsArg] = process.argv.slice(2);
const sds = await import(pathToFileURL(join(nodeModules, "@waku/sds/dist/index.js")).href);
const { Message, MessageChannel } = sds;

const warmup = Number(warmupArg ?? 1000);
const steps = Number(stepsArg ?? 2000);
const causalHistorySize = Number(historyArg ?? 10);
const rounds = Number(roundsArg ?? 5);

const options = { causalHistorySize };
const alice = new MessageChannel("bench", "alice", options);
const bob = new MessageChannel("bench", "bob", options);

let counter = 0;
function payload() {
  const text = `message ${String(counter++).padStart(8, "0")} `;
  const bytes = new Uint8Array(100);
  bytes.fill(0x5a);
  bytes.set(new TextEncoder().encode(text));
  return bytes;
}

async function wrap(channel) {
  let encoded;
  channel.pushOutgoingMessage(payload(), async (message) => {
    encoded = message.encode();
    return { success: true };
  });
  await channel.processTasks();
  return encoded;
}

async function unwrap(channel, bytes) {
  const message = Message.decode(bytes);
  channel.pushIncomingMessage(message);
  await channel.processTasks();
}

// One step: two messages, one each way. Returns [wrap ns, unwrap ns].
async function step() {
  const t0 = process.hrtime.bigint();
  const fromAlice = await wrap(alice);
  const t1 = process.hrtime.bigint();
  await unwrap(bob, fromAlice);
  const t2 = process.hrtime.bigint();
  const fromBob = await wrap(bob);
  const t3 = process.hrtime.bigint();
  await unwrap(alice, fromBob);
  const t4 = process.hrtime.bigint();
  return [t1 - t0 + (t3 - t2), t2 - t1 + (t4 - t3)];
}

for (let i = 0; i < warmup; i++) await step();

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
const wraps = [];
const unwraps = [];
for (let round = 0; round < rounds; round++) {
  let wrapNs = 0n;
  let unwrapNs = 0n;
  for (let i = 0; i < steps; i++) {
    const [w, u] = await step();
    wrapNs += w;
    unwrapNs += u;
  }
  wraps.push(Number(wrapNs) / (2 * steps));
  unwraps.push(Number(unwrapNs) / (2 * steps));
}
const wrapNs = median(wraps);
const unwrapNs = median(unwraps);
process.stdout.write(
  JSON.stringify({
    sds_version: JSON.parse(
      (await import("node:fs")).readFileSync(join(nodeModules, "@waku/sds/package.json"), "utf8")
    ).version,
    node_version: process.version,
    causal_history_size: causalHistorySize,
    messages: 2 * steps * rounds,
    wrap_ns: wrapNs,
    unwrap_ns: unwrapNs,
    round_trip_ns: wrapNs + unwrapNs
  }) + "\n"
);
