// Sends events to hydra with the npm Forward clients, waiting for acks.
// Usage: node clients.js <fluentorg|fluentlogger> <mode> <port> <tag> <count>
// Prints "ACKED <count>" and exits 0 once every event was acknowledged;
// exits 1 on any error or after 20 s. With SHARED_KEY set, the client runs
// the shared-key handshake; with TLS_CA (a PEM path), it connects over TLS.
const [lib, mode, port, tag, count] = process.argv.slice(2);
const n = Number(count);
const fail = (e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
};
setTimeout(() => fail("timed out"), 20000).unref();
// A client that gives up quietly (a refused handshake) must not look like
// success: exiting without every ack is a failure.
let done = false;
process.on("exit", (code) => {
  if (!done && code === 0) {
    process.stderr.write("exited before every event was acknowledged\n");
    process.exitCode = 1;
  }
});

if (lib === "fluentorg") {
  const { FluentClient } = require("@fluent-org/logger");
  const socket = { host: "127.0.0.1", port: Number(port), timeout: 5000 };
  if (process.env.TLS_CA) socket.tls = { ca: require("fs").readFileSync(process.env.TLS_CA) };
  const options = { eventMode: mode, socket, ack: {} };
  if (process.env.SHARED_KEY) options.security = { clientHostname: "node-client", sharedKey: process.env.SHARED_KEY };
  const client = new FluentClient(tag, options);
  const sends = [];
  for (let i = 0; i < n; i++) sends.push(client.emit({ n: i, lib, mode }));
  Promise.all(sends)
    .then(() => client.shutdown())
    .then(() => {
      done = true;
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
        done = true;
        process.stdout.write(`ACKED ${n}\n`);
        logger.end();
        process.exit(0);
      }
    });
  }
} else {
  fail("unknown client " + lib);
}
