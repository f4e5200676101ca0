//! Receiver variants: `server:hmac:json[:store][:slowN]`, e.g. `hyper:ring:serde`,
//! `may:aws-lc:simd` or `hyper:ring:serde:sqlite`.

/// The servers, HMAC and JSON backends a `didit-receiver` binary has, as it lists them
/// (`didit-receiver --list-backends`): the runner asks the binary it measures, not the features
/// it was built with itself.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct Backends {
    pub servers: Vec<String>,
    pub hmac: Vec<String>,
    pub json: Vec<String>,
}

/// Where a variant's receiver keeps verified events (`--store`, `--ack`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreKind {
    /// In memory: the throughput reference (the name carries no store part).
    #[default]
    Memory,
    /// SQLite, 200 after the commit (the receiver's default).
    Sqlite,
    /// SQLite, 200 once queued.
    SqliteEnqueue,
    /// NATS JetStream (a `nats-server` the runner starts), 200 after the publish acknowledgement.
    Nats,
    /// RabbitMQ (a node the runner starts), 200 after the publisher confirm.
    Rabbitmq,
    /// Kafka (a `tansu` broker the runner starts), 200 after the idempotent producer's delivery
    /// report (`acks=all`).
    Kafka,
    /// The same receiver and client on tansu's in-memory engine (not durable): measured beside
    /// `kafka` to split its cost into the client and protocol and tansu's SQLite storage.
    KafkaMemory,
    /// Keeps nothing, not even for de-duplication: `webhook-bench cost`'s layer below
    /// processing, never a receiver to choose.
    Null,
}

/// What a variant measures of someone else's software, said wherever its figures appear: the
/// broker, its version and where it ran (`None` for software of this project alone). The chart
/// label is the short form.
pub fn broker_label(variant: &str) -> Option<(&'static str, &'static str)> {
    let store = variant.rsplit(':').next()?;
    Some(match store {
        "kafka-memory" => (
            "Kafka protocol via tansu 0.6.0 (in-memory engine, not durable), on the receiver's core: the Kafka row's client and protocol without tansu's SQLite storage",
            "tansu 0.6.0, memory",
        ),
        "kafka" => (
            "Kafka protocol via tansu 0.6.0 (SQLite engine), a young Kafka-protocol broker, on the receiver's core: not Apache Kafka's or Redpanda's cost, whose storage, batching and replication differ",
            "tansu 0.6.0",
        ),
        "rabbitmq" => (
            "RabbitMQ 3.10 (Debian 12's rabbitmq-server), one node on the receiver's core",
            "RabbitMQ 3.10",
        ),
        "nats" => (
            "NATS JetStream (Debian 12's nats-server 2.9), one server on the receiver's core",
            "nats-server 2.9",
        ),
        _ => return None,
    })
}

impl StoreKind {
    pub const ALL: [(StoreKind, &'static str); 8] = [
        (StoreKind::Memory, "memory"),
        (StoreKind::Sqlite, "sqlite"),
        (StoreKind::SqliteEnqueue, "sqlite-enqueue"),
        (StoreKind::Nats, "nats"),
        (StoreKind::Rabbitmq, "rabbitmq"),
        (StoreKind::Kafka, "kafka"),
        (StoreKind::KafkaMemory, "kafka-memory"),
        (StoreKind::Null, "null"),
    ];

    pub fn token(self) -> &'static str {
        StoreKind::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("memory", |(_, t)| t)
    }
}

/// The default matrix: each server once on the common backends, the fastest HMAC on hyper, the
/// naive peer as the reference, hyper with each durable store, and the Kafka store once more on
/// tansu's in-memory engine, which splits the Kafka row's cost into client and storage.
pub const DEFAULT: [&str; 12] = [
    "may:ring:serde",
    "hyper:ring:serde",
    "hyper:aws-lc:serde",
    "axum:ring:serde",
    "actix:ring:serde",
    "axum-naive:ring:serde",
    "hyper:ring:serde:sqlite",
    "hyper:ring:serde:sqlite-enqueue",
    "hyper:ring:serde:nats",
    "hyper:ring:serde:rabbitmq",
    "hyper:ring:serde:kafka",
    "hyper:ring:serde:kafka-memory",
];

/// The naive peer, the in-run reference for "ratio to naive".
pub const NAIVE: &str = "axum-naive:ring:serde";

/// A receiver written elsewhere, run from a command (`run --receiver NAME=CMD`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct External {
    /// Run with `sh -c`, `{port}` replaced by a free loopback port.
    pub cmd: String,
    /// Its own null endpoint, if it has one (`--receiver-null NAME=PATH`): the calibration of
    /// the same HTTP stack without verification.
    pub null_path: Option<String>,
    /// Its runtime and version, for the tables (`--receiver-runtime NAME=TEXT`).
    pub runtime: Option<String>,
}

/// One receiver configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub name: String,
    /// Set for a receiver written elsewhere; `server`, `hmac` and `json` are then empty.
    pub external: Option<External>,
    pub server: String,
    pub hmac: String,
    pub json: String,
    /// Microseconds of deliberate extra work per delivery (`:slowN`, for testing the gate).
    pub slow_us: u64,
    pub store: StoreKind,
}

impl Variant {
    /// Parses `server:hmac:json[:store][:slowN]` against what the receiver has; the error names
    /// the valid choices.
    pub fn parse(s: &str, have: &Backends) -> Result<Variant, String> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        if !(3..=5).contains(&parts.len()) {
            return Err(format!(
                "`{s}` is not server:hmac:json (e.g. hyper:ring:serde)"
            ));
        }
        let check = |what: &str, v: &str, valid: &[String]| {
            if valid.iter().any(|n| n == v) {
                Ok(())
            } else {
                Err(format!(
                    "`{s}`: unknown {what} `{v}` (one of {})",
                    valid.join(", ")
                ))
            }
        };
        check("server", parts[0], &have.servers)?;
        check("HMAC backend", parts[1], &have.hmac)?;
        check("JSON backend", parts[2], &have.json)?;
        let mut slow_us = 0;
        let mut store = None;
        for p in &parts[3..] {
            if let Some(n) = p.strip_prefix("slow") {
                slow_us = n
                    .parse()
                    .map_err(|_| format!("`{s}`: `{p}` must be slowN (µs of extra work)"))?;
            } else if *p == "null" {
                return Err(format!(
                    "`{s}`: the null store keeps nothing; it is a layer of `webhook-bench cost`, not a variant to compare"
                ));
            } else if let Some((k, _)) = StoreKind::ALL.iter().find(|(_, t)| t == p) {
                if store.replace(*k).is_some() {
                    return Err(format!("`{s}`: more than one store"));
                }
            } else {
                return Err(format!(
                    "`{s}`: `{p}` is neither a store ({}) nor slowN",
                    StoreKind::ALL.map(|(_, t)| t).join(", ")
                ));
            }
        }
        let store = store.unwrap_or_default();
        if parts[0] == "axum-naive" && store != StoreKind::Memory {
            return Err(format!("`{s}`: axum-naive keeps its state in memory only"));
        }
        // A slowed variant keeps its name, so `compare` matches it with its baseline; the
        // results record the slowdown next to it. The in-memory store is the unnamed default.
        let mut name = parts[..3].join(":");
        if store != StoreKind::Memory {
            name = format!("{name}:{}", store.token());
        }
        Ok(Variant {
            name,
            external: None,
            server: parts[0].into(),
            hmac: parts[1].into(),
            json: parts[2].into(),
            slow_us,
            store,
        })
    }

    /// A receiver run from `cmd` (see [`External`]).
    pub fn external(name: &str, cmd: &str, null_path: Option<String>) -> Result<Variant, String> {
        if name.is_empty() || name.contains([':', ',', ' ']) {
            return Err(format!(
                "`{name}` cannot name a receiver: use letters, digits, - or _"
            ));
        }
        if !cmd.contains("{port}") {
            return Err(format!(
                "`{name}`: the command must take its port from `{{port}}`, e.g. `node server.js --port {{port}}`"
            ));
        }
        Ok(Variant {
            name: name.into(),
            external: Some(External {
                cmd: cmd.into(),
                null_path,
                runtime: None,
            }),
            server: String::new(),
            hmac: String::new(),
            json: String::new(),
            slow_us: 0,
            store: StoreKind::Memory,
        })
    }

    /// The receiver's arguments for this variant; `store` is the `--store` value the runner
    /// prepared (a fresh SQLite file, or the URL of the `nats-server`, RabbitMQ node or Kafka
    /// broker it started).
    pub fn args(&self, store: &str) -> Vec<String> {
        let mut a = vec![
            "--server".into(),
            self.server.clone(),
            "--hmac".into(),
            self.hmac.clone(),
            "--json".into(),
            self.json.clone(),
        ];
        a.push("--store".into());
        a.push(store.into());
        if self.store == StoreKind::SqliteEnqueue {
            a.push("--ack".into());
            a.push("after-enqueue".into());
        }
        if self.slow_us > 0 {
            a.push("--extra-work".into());
            a.push(format!("{}us", self.slow_us));
        }
        a
    }
}

/// Expands `--receivers`: `all`, `default`, or a comma-separated list, against what the receiver
/// has. Unknown names are returned as errors next to the valid variants, so the others still run.
pub fn expand(spec: &str, have: &Backends) -> Vec<Result<Variant, (String, String)>> {
    let names: Vec<String> = match spec.trim() {
        "default" | "" => DEFAULT.iter().map(|s| (*s).to_owned()).collect(),
        "all" => {
            let mut v = Vec::new();
            for server in have.servers.iter().filter(|s| *s != "axum-naive") {
                for h in &have.hmac {
                    for j in &have.json {
                        v.push(format!("{server}:{h}:{j}"));
                    }
                }
            }
            v.push(NAIVE.to_owned());
            v
        }
        list => list.split(',').map(|s| s.trim().to_owned()).collect(),
    };
    names
        .into_iter()
        .filter(|n| !n.is_empty())
        .map(|n| Variant::parse(&n, have).map_err(|e| (n, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What this workspace's receiver lists (`didit-receiver --list-backends`).
    fn have() -> Backends {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        Backends {
            servers: names(&["hyper", "may", "axum", "axum-naive", "actix"]),
            hmac: names(&["ring", "rustcrypto", "aws-lc"]),
            json: names(&["serde", "simd", "sonic"]),
        }
    }

    #[test]
    fn parses_and_names_bad_parts() {
        let v = Variant::parse("hyper:aws-lc:simd", &have()).expect("valid");
        assert_eq!(v.args("memory")[1], "hyper");
        assert_eq!(v.store, StoreKind::Memory);
        let slow = Variant::parse("may:ring:serde:slow200", &have()).expect("valid");
        assert_eq!(slow.slow_us, 200);
        assert_eq!(slow.name, "may:ring:serde");
        assert!(slow.args("memory").contains(&"200us".to_owned()));
        let d = Variant::parse("hyper:ring:serde:sqlite-enqueue:slow5", &have()).expect("valid");
        assert_eq!(d.name, "hyper:ring:serde:sqlite-enqueue");
        assert_eq!((d.store, d.slow_us), (StoreKind::SqliteEnqueue, 5));
        let a = d.args("sqlite:/tmp/x.db").join(" ");
        assert!(
            a.contains("--store sqlite:/tmp/x.db --ack after-enqueue"),
            "{a}"
        );
        let k = Variant::parse("hyper:ring:serde:kafka", &have()).expect("valid");
        assert_eq!(k.store, StoreKind::Kafka);
        let a = k.args("kafka://127.0.0.1:1/didit.webhooks").join(" ");
        assert!(
            a.ends_with("--store kafka://127.0.0.1:1/didit.webhooks"),
            "{a}"
        );
        // The in-memory engine's row: the same receiver flags, its own name and label.
        let m = Variant::parse("hyper:ring:serde:kafka-memory", &have()).expect("valid");
        assert_eq!(
            (m.store, m.name.as_str()),
            (StoreKind::KafkaMemory, "hyper:ring:serde:kafka-memory")
        );
        assert_eq!(m.args("kafka://h/t"), k.args("kafka://h/t"));
        let label = |v: &str| broker_label(v).map(|(long, _)| long);
        assert!(label(&m.name).is_some_and(|l| l.contains("in-memory engine, not durable")));
        assert!(label(&k.name).is_some_and(|l| l.contains("SQLite engine")));
        assert!(Variant::parse("hyper:ring:serde:sqlite:nats", &have()).is_err());
        assert!(Variant::parse("axum-naive:ring:serde:sqlite", &have()).is_err());
        assert!(Variant::parse("hyper:ring:serde:redis", &have()).is_err());
        let e = Variant::parse("nginx:ring:serde", &have()).expect_err("unknown server");
        assert!(
            e.contains("unknown server `nginx`") && e.contains("axum-naive"),
            "{e}"
        );
        assert!(Variant::parse("hyper:ring", &have()).is_err());
        assert!(Variant::parse("hyper:ring:serde:fast", &have()).is_err());
    }

    #[test]
    fn expands_lists_keeping_bad_names_as_errors() {
        assert_eq!(expand("default", &have()).len(), 12);
        assert_eq!(expand("all", &have()).len(), 37);
        // A receiver built with fewer backends runs fewer variants, and names what it has.
        let slim = Backends {
            hmac: vec!["ring".into()],
            json: vec!["serde".into()],
            ..have()
        };
        assert_eq!(expand("all", &slim).len(), 5);
        let e = Variant::parse("hyper:aws-lc:serde", &slim).expect_err("not in this build");
        assert!(
            e.contains("unknown HMAC backend `aws-lc` (one of ring)"),
            "{e}"
        );
        let mixed = expand("hyper:ring:serde, bogus:ring:serde", &have());
        assert!(mixed[0].is_ok());
        assert!(matches!(&mixed[1], Err((n, _)) if n == "bogus:ring:serde"));
    }
}
