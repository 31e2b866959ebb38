// A good client beside hostile ones: @fluent-org/logger as applications
// run it (PackedForward, acks, 5 s ack and socket timeouts), sending
// batches of events one after another and timing each until its last ack.
// Usage: node batches.js <port> <tag> <batches> <per_batch>
// Batches are 500 ms apart. Prints "BATCH <i> <ms>" per batch and exits 0 once every event was acked;
// exits 1 when an ack times out (the client gives the batch up) or after
// 120 s.
const { FluentClient } = require("@fluent-org/logger");
const [port, tag, batches, perBatch] = process.argv.slice(2).map((v, i) => (i === 1 ? v : Number(v)));
const fail = (e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
};
setTimeout(() => fail("timed out"), 120000).unref();

const client = new FluentClient(tag, {
  eventMode: "PackedForward",
  socket: { host: "127.0.0.1", port, timeout: 5000 },
  ack: { ackTimeout: 5000 },
});

(async () => {
  let n = 0;
  for (let b = 0; b < batches; b++) {
    const start = process.hrtime.bigint();
    const sends = [];
    for (let i = 0; i < perBatch; i++) sends.push(client.emit({ n: n++ }));
    await Promise.all(sends);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    process.stdout.write(`BATCH ${b} ${ms.toFixed(1)}\n`);
    // A pause between batches, so that they meet the attack at different
    // moments.
    await new Promise((r) => setTimeout(r, 500));
  }
  await client.shutdown();
  process.exit(0);
})().catch(fail);
