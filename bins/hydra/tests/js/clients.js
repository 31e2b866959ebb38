// Sends events to hydra with the npm Forward clients, waiting for acks.
// Usage: node clients.js <fluentorg|fluentlogger> <mode> <port> <tag> <count>
// Prints "ACKED <count>" and exits 0 once every event was acknowledged;
// exits 1 on any error or after 20 s.
const [lib, mode, port, tag, count] = process.argv.slice(2);
const n = Number(count);
const fail = (e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
};
setTimeout(() => fail("timed out"), 20000).unref();

if (lib === "fluentorg") {
  const { FluentClient } = require("@fluent-org/logger");
  const client = new FluentClient(tag, {
    eventMode: mode,
    socket: { host: "127.0.0.1", port: Number(port), timeout: 5000 },
    ack: {},
  });
  const sends = [];
  for (let i = 0; i < n; i++) sends.push(client.emit({ n: i, lib, mode }));
  Promise.all(sends)
    .then(() => client.shutdown())
    .then(() => {
      process.stdout.write(`ACKED ${n}\n`);
      process.exit(0);
    })
    .catch(fail);
} else if (lib === "fluentlogger") {
  const logger = require("fluent-logger").createFluentSender(tag, {
    host: "127.0.0.1",
    port: Number(port),
    timeout: 5.0,
    eventMode: mode,
    requireAckResponse: true,
    ackResponseTimeout: 10000,
  });
  logger.on("error", fail);
  let acked = 0;
  for (let i = 0; i < n; i++) {
    logger.emit({ n: i, lib, mode }, (err) => {
      if (err) fail(err);
      if (++acked === n) {
        process.stdout.write(`ACKED ${n}\n`);
        logger.end();
        process.exit(0);
      }
    });
  }
} else {
  fail("unknown client " + lib);
}
