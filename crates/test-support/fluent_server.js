// Runs @fluent-org/logger's FluentServer, an independent Forward receiver,
// for hydra's tests: prints "PORT <n>", then one JSON line per entry
// ({tag, time, record}, time in whole seconds).
// Options (argv): --port N, --shared-key K, --hostname H, --tls-cert PEM
// --tls-key PEM. Exits when stdin closes.
const { FluentServer } = require("@fluent-org/logger");

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const options = { listenOptions: { port: Number(opt("--port") || 0), host: "127.0.0.1" } };
if (opt("--shared-key")) {
  options.security = {
    serverHostname: opt("--hostname") || "fluent-server",
    sharedKey: opt("--shared-key"),
    authorize: false,
    userDict: {},
  };
}
if (opt("--tls-cert")) {
  const fs = require("fs");
  options.tlsOptions = { cert: fs.readFileSync(opt("--tls-cert")), key: fs.readFileSync(opt("--tls-key")) };
}
const server = new FluentServer(options);
server.on("entry", (tag, time, record) => {
  // Whole seconds of an integer time or of an EventTime.
  const secs = typeof time === "number" ? time : time && time.epoch;
  process.stdout.write(JSON.stringify({ tag, time: secs, record }) + "\n");
});
server.listen().then(() => {
  process.stdout.write(`PORT ${server.port}\n`);
});
process.stdin.on("end", () => server.close().then(() => process.exit(0)));
process.stdin.resume();
