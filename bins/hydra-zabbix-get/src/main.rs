// The binary talks to people: printing is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]
//! `hydra-zabbix-get`: asks a Zabbix agent for items, like `zabbix_get`.
//!
//! Exit codes, as `zabbix_get`: 0 when the agent answered (a value, or
//! `ZBX_NOTSUPPORTED`); 1 when it did not (refused, timed out, no header,
//! closed). `eval` exits with its expression's status, or 2 (critical) when
//! an item could not be fetched.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand, ValueEnum};
use hydra_zabbix::{Client, Reply};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// The value, or `ZBX_NOTSUPPORTED: reason`, as zabbix_get prints it.
    Zabbix,
    /// `name<TAB>value<TAB>unixtime`, the metric line Sensu and Mackerel read.
    Sensu,
    /// One JSON object per item.
    Json,
}

/// Ask a Zabbix agent for items (passive checks), like zabbix_get.
#[derive(Debug, Parser)]
#[command(version = env!("HYDRA_VERSION"), about)]
struct Args {
    /// Agent host.
    #[arg(short = 's', long, default_value = "127.0.0.1", global = true)]
    host: String,
    /// Agent port.
    #[arg(short = 'p', long, default_value_t = 10050, global = true)]
    port: u16,
    /// Item key; repeat for several items, printed one per line.
    #[arg(short = 'k', long = "key")]
    keys: Vec<String>,
    /// Timeout in seconds, for each item.
    #[arg(short = 't', long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600), global = true)]
    timeout: u64,
    /// Source address to connect from.
    #[arg(short = 'I', long = "source-address", global = true)]
    source: Option<IpAddr>,
    /// Output format.
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Zabbix)]
    format: Format,
    /// Metric name for sensu and json output instead of the key (with
    /// several keys: NAME.KEY).
    #[arg(short = 'o', long = "output-name")]
    name: Option<String>,
    /// Print a man page or a shell completion script, and exit.
    #[arg(long, value_enum, hide = true)]
    generate: Option<hydra_cmdline::Generate>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch KEYs, then run `bash -c EXPR -- VALUES...` and exit with its
    /// status (0 ok, 1 warning, 2 critical, for Consul or Nagios checks).
    Eval {
        /// Item keys; their values become $1, $2, ...
        #[arg(required = true)]
        keys: Vec<String>,
        /// The bash expression, after `--`.
        #[arg(last = true, required = true)]
        expr: Vec<String>,
    },
}

fn resolve(args: &Args) -> Result<SocketAddr, String> {
    (args.host.as_str(), args.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", args.host))?
        .next()
        .ok_or_else(|| format!("cannot resolve {}", args.host))
}

fn describe(e: &hydra_zabbix::Error, addr: SocketAddr) -> String {
    match e {
        hydra_zabbix::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!(
                "Get value error: cannot connect to [[{}]:{}]: {io}",
                addr.ip(),
                addr.port()
            )
        }
        hydra_zabbix::Error::Timeout(t) => format!(
            "Timeout while connecting to or receiving from [[{}]:{}] after {}s",
            addr.ip(),
            addr.port(),
            t.as_secs()
        ),
        other => format!("Get value error: {other}"),
    }
}

fn name_for(args: &Args, key: &str, many: bool) -> String {
    match (&args.name, many) {
        (Some(n), false) => n.clone(),
        (Some(n), true) => format!("{n}.{key}"),
        (None, _) => key.to_owned(),
    }
}

fn print(args: &Args, key: &str, reply: &Reply, many: bool) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match args.format {
        Format::Zabbix => println!("{reply}"),
        Format::Sensu => match reply {
            Reply::Value(v) => println!("{}\t{v}\t{now}", name_for(args, key, many)),
            // Not a metric: said on stderr, as a check plugin would.
            Reply::NotSupported(r) => {
                eprintln!("{}: ZBX_NOTSUPPORTED: {r}", name_for(args, key, many));
            }
        },
        Format::Json => {
            let mut o = serde_json::Map::new();
            o.insert("key".into(), key.into());
            o.insert("name".into(), name_for(args, key, many).into());
            match reply {
                Reply::Value(v) => o.insert("value".into(), v.as_str().into()),
                Reply::NotSupported(r) => o.insert("not_supported".into(), r.as_str().into()),
            };
            o.insert("time".into(), now.into());
            println!("{}", serde_json::Value::Object(o));
        }
    }
}

async fn run(args: Args) -> ExitCode {
    let addr = match resolve(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hydra-zabbix-get: {e}");
            return ExitCode::from(1);
        }
    };
    let client = Client {
        addr,
        source: args.source,
        timeout: Duration::from_secs(args.timeout),
        max_reply: 16 << 20,
    };
    if let Some(Command::Eval { keys, expr }) = &args.command {
        let mut values = Vec::new();
        for key in keys {
            match client.get(key).await {
                Ok(Reply::Value(v)) => values.push(v),
                Ok(Reply::NotSupported(r)) => {
                    eprintln!("hydra-zabbix-get: {key}: ZBX_NOTSUPPORTED: {r}");
                    return ExitCode::from(2);
                }
                Err(e) => {
                    eprintln!("hydra-zabbix-get: {key}: {}", describe(&e, addr));
                    return ExitCode::from(2);
                }
            }
        }
        let status = std::process::Command::new("bash")
            .arg("-c")
            .arg(expr.join(" "))
            .arg("--")
            .args(&values)
            .status();
        return match status {
            Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(2)).unwrap_or(2)),
            Err(e) => {
                eprintln!("hydra-zabbix-get: cannot run bash: {e}");
                ExitCode::from(2)
            }
        };
    }
    if args.keys.is_empty() {
        eprintln!("hydra-zabbix-get: no item key: use -k KEY (or eval KEY... -- EXPR)");
        return ExitCode::from(1);
    }
    let many = args.keys.len() > 1;
    let mut failed = false;
    for key in &args.keys {
        match client.get(key).await {
            Ok(reply) => print(&args, key, &reply, many),
            Err(e) => {
                eprintln!("hydra-zabbix-get: {}", describe(&e, addr));
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(kind) = args.generate {
        return hydra_cmdline::print(kind, <Args as clap::CommandFactory>::command());
    }
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run(args)),
        Err(e) => {
            eprintln!("hydra-zabbix-get: {e}");
            ExitCode::from(1)
        }
    }
}
