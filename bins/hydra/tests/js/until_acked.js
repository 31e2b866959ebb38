// The @fluent-org/logger client as an application runs it across an agent
// crash: ack on, reconnecting, retrying every event until it is acked.
// Usage: node until_acked.js <port> <tag> <chunks> <per_chunk> <seconds>
// Emits `chunks` chunks of `per_chunk` events {"n": i}, 50 ms apart, without
// waiting for acks, then prints "ACKED <n>" the moment event n is acked.
// Exits 0 once every event was acked, 1 on giving up or after `seconds`.
const { FluentClient } = require("@fluent-org/logger");
const [port, tag, chunks, perChunk, seconds] = process.argv.slice(2);
const total = Number(chunks) * Number(perChunk);
const fail = (e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
};
setTimeout(() => fail("timed out"), Number(seconds) * 1000).unref();

const client = new FluentClient(tag, {
  eventMode: "PackedForward",
  socket: {
    host: "127.0.0.1",
    port: Number(port),
    timeout: 60000,
    reconnect: { delay: 200, backoff: 1, maxDelay: 200 },
  },
  // Long enough that a chunk held by an agent waiting on its aggregator
  // is not resent every half second, short enough to resend after a crash.
  ack: { ackTimeout: 5000 },
  eventRetry: { attempts: 1000, delay: 200, backoff: 1 },
});

let acked = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  const sends = [];
  for (let c = 0; c < Number(chunks); c++) {
    for (let i = 0; i < Number(perChunk); i++) {
      const n = c * Number(perChunk) + i;
      sends.push(
        client.emit({ n }).then(() => {
          acked += 1;
          process.stdout.write(`ACKED ${n}\n`);
        })
      );
    }
    await sleep(50);
  }
  await Promise.all(sends);
  if (acked !== total) fail(`acked ${acked} of ${total}`);
  await client.shutdown();
  process.exit(0);
})().catch(fail);
