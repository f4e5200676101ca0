//! Acknowledged means stored: receivers with the SQLite store are killed with SIGKILL under load
//! and restarted on the same file, and every `event_id` the load generator saw acknowledged must
//! be in the store, once. The same through NATS JetStream (a real `nats-server`, also killed and
//! restarted), then the consumer into SQLite, and through RabbitMQ (a real node, also killed and
//! restarted; the consumer de-duplicates by `event_id`), and through Kafka (a real `tansu` broker,
//! also killed and restarted; a consumer group killed mid-batch resumes from its committed
//! offsets). A store that cannot write (a file-size limit
//! standing in for a full disk) answers 503 and recovers when the limit is lifted. All load is on
//! loopback, to receivers and servers these tests start, bounded in time.

use crate::support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use didit_receiver::store::db::Db;
use support::{Receiver, SECRET, send};
use webhook_bench::harness::broker::Broker;
use webhook_bench::harness::command;
use webhook_bench::matrix::StoreKind;

fn tmp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("durability-tests")
        .join(format!("{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

fn scenario(name: &str) -> String {
    format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"))
}

/// The load generator as a child: the smoke mix (every class, so retries and replays of acked
/// deliveries too) at a steady rate for `secs`, logging every acknowledged `event_id`.
#[allow(
    clippy::disallowed_methods,
    reason = "a bare Child the test waits on or kills mid-run; not yet a harness Process"
)]
fn loadgen(target: SocketAddr, acked: &Path, report: &Path, secs: u64) -> Child {
    Command::new(crate::support::bin("didit-loadgen"))
        .args(["--scenario", &scenario("smoke"), "--target"])
        .arg(format!("http://{target}"))
        .args(["--rate", "400", "--warmup", "0s", "--quiet", "--duration"])
        .arg(format!("{secs}s"))
        .arg("--acked-log")
        .arg(acked)
        .arg("--report")
        .arg(report)
        .env("DIDIT_WEBHOOK_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("didit-loadgen starts")
}

/// Restarts a receiver on the port its killed predecessor had (the load generator keeps that
/// address), retrying while the kernel still holds the port.
fn restart_on(server: &str, addr: SocketAddr, store: &str) -> Receiver {
    let listen = addr.to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Receiver::try_start(
            server,
            "ring",
            "serde",
            &["--store", store, "--listen", &listen, "--max-body", "1MiB"],
            None,
        ) {
            Ok(rx) => return rx,
            Err(e) if Instant::now() > deadline => panic!("restart on {listen}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// (mismatches, shed) from a load generator report.
fn report_counts(path: &Path) -> (u64, u64) {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("JSON");
    let req = &v["requests"];
    (
        req["mismatches"].as_u64().expect("mismatches"),
        req["shed"].as_u64().expect("shed"),
    )
}

/// Every acknowledged id is stored, and none twice.
fn assert_all_stored(db: &Path, acked: &[String]) {
    let stored = Db::open_read_only(db)
        .expect("store opens")
        .event_ids()
        .expect("ids");
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    let lost: Vec<&String> = acked.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged deliveries are not in the store, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
}

#[test]
fn sqlite_kill_9_under_load_loses_nothing_acknowledged() {
    let dir = tmp_dir("kill9");
    let db = dir.join("store.db");
    let store = format!("sqlite:{}", db.display());
    let mut all_acked = Vec::new();
    // Each server in turn on the same file: a restart must also find what another server stored.
    for (round, server) in ["hyper", "may", "axum", "actix"].into_iter().enumerate() {
        // The smoke mix has a 200 KB AML payload.
        let rx = Receiver::try_start(
            server,
            "ring",
            "serde",
            &["--store", &store, "--max-body", "1MiB"],
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let addr = rx.addr;
        let acked = dir.join(format!("acked-{round}.txt"));
        let report = dir.join(format!("report-{round}.json"));
        let lg = loadgen(addr, &acked, &report, 6);
        // Two crashes mid-run, each followed by a restart on the same file and port.
        std::thread::sleep(Duration::from_millis(1500));
        rx.kill9();
        let rx = restart_on(server, addr, &store);
        std::thread::sleep(Duration::from_millis(1500));
        rx.kill9();
        let rx = restart_on(server, addr, &store);
        let out = lg.wait_with_output().expect("loadgen finishes");
        let (mismatches, _transport) = report_counts(&report);
        assert!(
            out.status.success() && mismatches == 0,
            "{server}: load generator failed ({}, {mismatches} mismatches): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        rx.stop();
        let ids = lines(&acked);
        assert!(
            ids.len() > 300,
            "{server}: only {} acknowledged deliveries; the run did not carry load",
            ids.len()
        );
        all_acked.extend(ids);
    }

    assert_all_stored(&db, &all_acked);
}

/// `Ok` when every mismatch in a load generator report is a retry or replay answered 200
/// `accepted` instead of `duplicate`.
fn only_accepted_retries(path: &Path) -> Result<(), String> {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    for l in v["by_label"].as_array().ok_or("no by_label")? {
        let wrong = l["mismatches"].as_u64().unwrap_or(0);
        let class = l["class"].as_str().unwrap_or("");
        if wrong > 0 && !matches!(class, "retry" | "replay") {
            return Err(format!("{wrong} mismatches in class {class}"));
        }
    }
    for ex in v["mismatch_examples"]
        .as_array()
        .ok_or("no mismatch_examples")?
    {
        if ex["got_status"] != 200 || ex["got_body"] != r#"{"status":"accepted"}"# {
            return Err(format!("mismatch {ex}"));
        }
    }
    Ok(())
}

/// Runs `didit-receiver consume --from <url>` until idle; returns its summary line.
fn consume_into(from: &str, db: &Path) -> String {
    let out = command(crate::support::bin("didit-receiver"))
        .args([
            "consume",
            "--from",
            from,
            "--exit-when-idle",
            "2s",
            "--sqlite",
        ])
        .arg(db)
        .output()
        .expect("consumer runs");
    assert!(
        out.status.success(),
        "consumer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(said.starts_with("consumed "), "{said}");
    said
}

/// How each broker is crashed under load: the data of the one suite below. The receiver starts
/// on `server` and comes back as may (the ticket path of both runtimes); the load runs for
/// `load_secs`, long enough to cover the broker's reboot; the broker stays down for `down_for`
/// (Kafka's longer than a request waits for its delivery report, 2 s, so the receiver must refuse
/// meanwhile even if librdkafka is slow to see the broker gone, as on a loaded machine).
struct Crash {
    store: StoreKind,
    server: &'static str,
    load_secs: u64,
    down_for: Duration,
}

const CRASHES: [Crash; 3] = [
    Crash {
        store: StoreKind::Nats,
        server: "hyper",
        load_secs: 8,
        down_for: Duration::from_millis(1500),
    },
    Crash {
        store: StoreKind::Rabbitmq,
        server: "actix",
        load_secs: 20,
        down_for: Duration::from_millis(1000),
    },
    Crash {
        store: StoreKind::Kafka,
        server: "hyper",
        load_secs: 12,
        down_for: Duration::from_millis(4000),
    },
];

/// Repeats the broker crash suite once per store, one test each, as ripgrep's `rgtest!` repeats
/// a test per engine; the last test fails when a store with a durable broker has no row.
macro_rules! broker_crash_suite {
    ($($name:ident: $store:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                broker_crash_loses_nothing_acknowledged($store);
            }
        )*

        #[test]
        fn every_store_with_a_broker_is_crashed() {
            let tested = [$($store),*];
            for store in webhook_bench::harness::broker::durable_stores_with_a_broker() {
                assert!(tested.contains(&store), "{store:?} has no crash test");
                assert!(
                    CRASHES.iter().any(|c| c.store == store),
                    "{store:?} has no row in CRASHES"
                );
            }
        }
    };
}

broker_crash_suite! {
    nats_kill_9_of_receiver_and_broker_loses_nothing_acknowledged: StoreKind::Nats,
    rabbitmq_kill_9_of_receiver_and_broker_loses_nothing_acknowledged: StoreKind::Rabbitmq,
    kafka_kill_9_of_receiver_and_broker_loses_nothing_acknowledged: StoreKind::Kafka,
}

/// The one durability suite for every broker, on a real one the harness starts:
/// 1. under load, the receiver is killed (SIGKILL) and restarted, then the broker is crashed and
///    stays down a while: the receiver refuses with 503 meanwhile, and takes deliveries again
///    once the broker is back;
/// 2. a delivery while the broker is down is refused with `Retry-After`, and its retry lands
///    once the broker is back;
/// 3. a retry that reaches a restarted receiver (which does not remember the first copy) is
///    answered `duplicate` by a broker that de-duplicates, and queued twice by one that does
///    not, for the consumer to store once;
/// 4. the consumer stores every acknowledged event once, and after it a second consumer finds
///    nothing left, also after a broker crash (offsets and acks are as durable as messages).
fn broker_crash_loses_nothing_acknowledged(store: StoreKind) {
    let crash = CRASHES
        .iter()
        .find(|c| c.store == store)
        .unwrap_or_else(|| panic!("{store:?} has no row in CRASHES"));
    let dir = tmp_dir(store.token());
    let mut broker = webhook_bench::harness::broker::start(store, &dir.join("broker"), None)
        .unwrap_or_else(|| panic!("{store:?} has no broker"))
        .unwrap_or_else(|e| panic!("{e}"));
    let url = broker.url();
    let args = ["--store", &url, "--max-body", "1MiB"];
    let rx = Receiver::try_start(crash.server, "ring", "serde", &args, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = rx.addr;
    let acked = dir.join("acked.txt");
    let report = dir.join("report.json");

    // 1. Receiver and broker crash under load.
    let lg = loadgen(addr, &acked, &report, crash.load_secs);
    std::thread::sleep(Duration::from_millis(1500));
    rx.kill9();
    let rx = restart_on("may", addr, &url);
    std::thread::sleep(Duration::from_millis(1500));
    broker
        .crash_and_restart(crash.down_for)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ids = judged_after_broker_crash(lg, &report, &acked, addr, broker.deduplicates());

    // 2. While the broker is down, a delivery is refused with Retry-After, never taken; Didit's
    // retry of it lands once the broker is back.
    broker.kill9();
    let r = send(addr, &delivery(addr, "while-the-broker-is-down", 0)).expect("answer");
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.headers.contains_key("retry-after"),
        "a 503 without Retry-After"
    );
    broker.restart().unwrap_or_else(|e| panic!("{e}"));
    accepted_once_back(addr, "while-the-broker-is-down");
    ids.push("while-the-broker-is-down".into());

    // 3. A retry that reaches a receiver which does not remember the first delivery.
    let dup = delivery(addr, "delivered-twice", 0);
    assert_eq!(send(addr, &dup).expect("answer").status, 200);
    rx.kill9();
    let rx = restart_on("hyper", addr, &url);
    let again = send(addr, &dup).expect("answer");
    let expect: &[u8] = if broker.deduplicates() {
        br#"{"status":"duplicate"}"#
    } else {
        br#"{"status":"accepted"}"#
    };
    assert_eq!(
        (again.status, again.body.as_slice()),
        (200, expect),
        "the retry after a receiver restart: {}",
        String::from_utf8_lossy(&again.body)
    );
    ids.push("delivered-twice".into());
    rx.stop();

    // 4. Receiver → broker → consumer → SQLite.
    let db = dir.join("consumed.db");
    let said = consume_into(&url, &db);
    if !broker.deduplicates() {
        assert!(
            !said.ends_with(" 0 already stored"),
            "the twice-queued event was not recognised: {said}"
        );
    }
    assert_all_stored(&db, &ids);
    let said = consume_into(&url, &db);
    assert!(said.starts_with("consumed 0 messages"), "{said}");
    broker
        .crash_and_restart(Duration::ZERO)
        .unwrap_or_else(|e| panic!("{e}"));
    let said = consume_into(&url, &db);
    assert!(said.starts_with("consumed 0 messages"), "{said}");
}

/// Sends a fresh delivery until it is taken (200) while the client reconnects to a restarted
/// broker (503 with Retry-After meanwhile, which Didit retries, as this does); a loaded machine
/// took librdkafka several seconds, a RabbitMQ node's boot as many.
fn accepted_once_back(addr: SocketAddr, event_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = send(addr, &delivery(addr, event_id, 0)).expect("answer");
        if r.status == 200 {
            return;
        }
        assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
        assert!(
            r.headers.contains_key("retry-after"),
            "a 503 without Retry-After"
        );
        assert!(
            Instant::now() < deadline,
            "no recovery after the broker's restart"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The load of a broker crash test, judged. A broker that de-duplicates got no wrong answer;
/// on one that does not, the only wrong answers are retries answered 200 `accepted` where the
/// label says `duplicate` (a restarted receiver cannot tell a retry of an event its predecessor
/// queued from a new one; the consumer drops the second copy). It was refused with 503 while
/// the broker was down, over 500 deliveries were acknowledged, and a fresh delivery is taken
/// again after the restart. Returns the acknowledged ids, that one included.
fn judged_after_broker_crash(
    lg: Child,
    report: &Path,
    acked: &Path,
    addr: SocketAddr,
    deduplicates: bool,
) -> Vec<String> {
    let out = lg.wait_with_output().expect("loadgen finishes");
    let (mismatches, shed) = report_counts(report);
    let judged = if deduplicates {
        (mismatches == 0)
            .then_some(())
            .ok_or_else(|| format!("{mismatches} mismatches"))
    } else {
        only_accepted_retries(report)
    };
    if let Err(e) = judged {
        panic!(
            "load generator ({}): {e} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        shed > 0,
        "no 503 while the broker was down: the receiver acknowledged without the broker"
    );
    let mut ids = lines(acked);
    assert!(
        ids.len() > 500,
        "only {} acknowledged deliveries",
        ids.len()
    );
    accepted_once_back(addr, "after-the-broker-restart");
    ids.push("after-the-broker-restart".into());
    ids
}

#[test]
fn rabbitmq_queue_deleted_under_the_receiver_is_never_a_silent_drop() {
    let dir = tmp_dir("rabbitmq-deleted");
    let mq = webhook_bench::harness::broker::RabbitMq::start(&dir.join("node"), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let store = mq.url();
    let rx = Receiver::try_start("hyper", "ring", "serde", &["--store", &store], None)
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = rx.addr;
    assert_eq!(
        send(addr, &delivery(addr, "before", 0))
            .expect("answer")
            .status,
        200
    );
    mq.ctl(&["delete_queue", "didit.webhooks"])
        .unwrap_or_else(|e| panic!("{e}"));
    // The default exchange cannot route to a deleted queue: the broker returns the message (it
    // is published as mandatory) and the receiver must not answer 200 for it.
    let r = send(addr, &delivery(addr, "while-gone", 0)).expect("answer");
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    // Then it reconnects, declares the queue again and keeps events once more.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = send(addr, &delivery(addr, "while-gone", 0)).expect("answer");
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", r.status);
        std::thread::sleep(Duration::from_millis(200));
    }
    rx.stop();
    let db = dir.join("consumed.db");
    consume_into(&mq.url(), &db);
    // What was kept before the deletion went with the queue (an operator's act); what was
    // acknowledged after the recovery is there.
    assert_all_stored(&db, &["while-gone".to_owned()]);
}

#[test]
fn rabbitmq_uses_a_quorum_queue_an_operator_declared() {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::{AMQPValue, FieldTable};
    let dir = tmp_dir("rabbitmq-quorum");
    let mq = webhook_bench::harness::broker::RabbitMq::start(&dir.join("node"), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let url = mq.url();
    // The README's deployment: the queue declared once, as a quorum queue, before any receiver.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let conn = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
                .await
                .expect("connect");
            let ch = conn.create_channel().await.expect("channel");
            let mut args = FieldTable::default();
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
            ch.queue_declare(
                "didit.webhooks".into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                args,
            )
            .await
            .expect("quorum queue declared");
            let _ = conn.close(200, "done".into()).await;
        });
    // A receiver that declared its own (classic) queue here would be refused by the broker
    // (inequivalent x-queue-type) and fail to start.
    let rx = Receiver::try_start("actix", "ring", "serde", &["--store", &url], None)
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = rx.addr;
    assert_eq!(
        send(addr, &delivery(addr, "into-quorum", 0))
            .expect("answer")
            .status,
        200
    );
    rx.stop();
    let db = dir.join("consumed.db");
    consume_into(&url, &db);
    assert_all_stored(&db, &["into-quorum".to_owned()]);
}

/// A real Kafka-protocol broker (`tansu`, SQLite storage), started by the harness the runner
/// uses.
fn kafka(dir: &Path) -> webhook_bench::harness::broker::Kafka {
    webhook_bench::harness::broker::Kafka::start(dir, None).unwrap_or_else(|e| panic!("{e}"))
}

/// `consume --from URL` as a child that runs until killed.
#[allow(
    clippy::disallowed_methods,
    reason = "a bare Child the test waits on or kills mid-run; not yet a harness Process"
)]
fn consumer(from: &str, db: &Path, batch: &str) -> Child {
    Command::new(crate::support::bin("didit-receiver"))
        .args(["consume", "--from", from, "--batch", batch, "--sqlite"])
        .arg(db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("consumer starts")
}

/// Events in the store, read beside a writer; 0 before it has a schema.
fn event_count(db: &Path) -> u64 {
    Db::open_read_only(db)
        .ok()
        .and_then(|d| d.event_count().ok())
        .unwrap_or(0)
}

#[test]
fn kafka_consumer_killed_mid_batch_loses_nothing_and_applies_nothing_twice() {
    let dir = tmp_dir("kafka-consumer");
    let broker = kafka(&dir.join("broker"));
    let store = broker.url();
    let args = ["--store", &store, "--max-body", "1MiB"];
    let rx = Receiver::try_start("actix", "ring", "serde", &args, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = rx.addr;
    let acked = dir.join("acked.txt");
    let report = dir.join("report.json");
    let lg = loadgen(addr, &acked, &report, 5);
    let out = lg.wait_with_output().expect("loadgen finishes");
    let (mismatches, _) = report_counts(&report);
    assert!(
        out.status.success() && mismatches == 0,
        "load generator failed ({}, {mismatches} mismatches): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    rx.stop();
    let ids = lines(&acked);
    assert!(
        ids.len() > 500,
        "only {} acknowledged deliveries",
        ids.len()
    );

    // Small batches, so that a kill lands between a batch's SQLite commit and its offset commit
    // as often as anywhere else; each consumer is killed once it has applied something new.
    let db = dir.join("consumed.db");
    let mut at_kills = Vec::new();
    for _ in 0..3 {
        let before = event_count(&db);
        let mut c = consumer(&store, &db, "10");
        let deadline = Instant::now() + Duration::from_secs(60);
        while event_count(&db) <= before {
            assert!(
                c.try_wait().expect("consumer status").is_none(),
                "the consumer exited"
            );
            assert!(Instant::now() < deadline, "the consumer applied nothing");
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = c.kill();
        let _ = c.wait();
        at_kills.push(event_count(&db));
    }
    // The last one resumes from the group's last committed offset: it reads what was not
    // committed, not the topic from its start, and recognises what it reads again.
    let said = consume_into(&store, &db);
    let total = event_count(&db);
    eprintln!(
        "{} acknowledged deliveries, {total} events; stored when each consumer was killed: {at_kills:?}; then {said}",
        ids.len()
    );
    assert!(
        at_kills.iter().all(|n| *n < total),
        "the consumers were not killed mid-run: {at_kills:?} of {total} stored"
    );
    let read: u64 = said
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        read < total,
        "the consumer read the topic from its start again ({said}, {total} events); kills at {at_kills:?}"
    );
    assert_all_stored(&db, &ids);
    let all = Db::open_read_only(&db)
        .expect("opens")
        .event_ids()
        .expect("ids");
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "an event was stored twice");
}

#[test]
fn kafka_start_up_errors_say_what_to_do() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let unreachable = format!("kafka://127.0.0.1:{free}/didit.webhooks");
    let dir = tmp_dir("kafka-startup");
    let db = dir.join("x.db");
    let cases: [(Vec<String>, &str); 4] = [
        (
            vec!["--store".into(), "kafka://127.0.0.1:9092".into()],
            "names no topic",
        ),
        (
            vec!["--store".into(), "kafka://127.0.0.1:9092/a b".into()],
            "not a Kafka topic name",
        ),
        (
            vec!["--store".into(), unreachable.clone()],
            "cannot reach Kafka at 127.0.0.1",
        ),
        (
            vec![
                "consume".into(),
                "--from".into(),
                unreachable,
                "--sqlite".into(),
                db.display().to_string(),
            ],
            "cannot reach Kafka at 127.0.0.1",
        ),
    ];
    for (args, expect) in cases {
        let listen: &[&str] = if args[0] == "consume" {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let out = command(crate::support::bin("didit-receiver"))
            .args(listen)
            .args(&args)
            .env("DIDIT_WEBHOOK_SECRET", SECRET)
            .output()
            .expect("receiver runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: started anyway");
        assert!(
            err.contains(expect),
            "{args:?}: error does not say `{expect}`: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: printed `listening on`");
    }
}

/// A signed delivery of a fresh event, as raw HTTP.
fn delivery(addr: SocketAddr, event_id: &str, pad: usize) -> Vec<u8> {
    use didit_webhook::canon::Value;
    use didit_webhook::{RingMac, Secret, Signer};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let text = format!(
        r#"{{"event_id":"{event_id}","session_id":"s-{event_id}","status":"Approved","timestamp":{now},"webhook_type":"status.updated","vendor_data":"{}"}}"#,
        "x".repeat(pad)
    );
    let value = Value::parse(text.as_bytes()).expect("valid JSON");
    let d = Signer::<RingMac>::new(&Secret::new(SECRET).expect("a non-empty secret"))
        .sign(&value)
        .expect("signable");
    let mut req = format!(
        "POST /webhooks/didit HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Signature: {}\r\nX-Timestamp: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        d.signature.as_str(),
        d.timestamp,
        d.body.len()
    )
    .into_bytes();
    req.extend_from_slice(&d.body);
    req
}

fn prlimit_fsize(pid: u32, limit: &str) {
    let st = command("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--fsize={limit}"))
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(st.success(), "prlimit --fsize={limit} failed");
}

#[test]
fn sqlite_store_that_cannot_write_answers_503_and_recovers() {
    let dir = tmp_dir("full");
    let db = dir.join("store.db");
    let store = format!("sqlite:{}", db.display());
    let log_path = dir.join("receiver.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let rx = Receiver::try_start("hyper", "ring", "serde", &["--store", &store], Some(log))
        .unwrap_or_else(|e| panic!("{e}"));
    let post = |id: &str| send(rx.addr, &delivery(rx.addr, id, 8000)).expect("answered");

    assert_eq!(post("before-1").status, 200);
    // The disk is "full": no file of the process may grow past a few pages (the soft limit
    // only, which an unprivileged process may raise again).
    prlimit_fsize(rx.pid(), "16384:unlimited");
    let mut refused = Vec::new();
    for i in 0..20 {
        let id = format!("during-{i}");
        let r = post(&id);
        match r.status {
            503 => {
                assert!(
                    r.headers.contains_key("retry-after"),
                    "a 503 without Retry-After"
                );
                refused.push(id);
            }
            200 => {}
            other => panic!("unexpected {other} while the store cannot write"),
        }
    }
    assert!(
        refused.len() >= 15,
        "the store kept acknowledging with writes failing: {} of 20 refused",
        refused.len()
    );
    prlimit_fsize(rx.pid(), "unlimited:unlimited");
    recovers(rx, &refused, 8000, &log_path, &db);
}

/// Once the store can write again: Didit's retries of the refused deliveries land as new events
/// (nothing of them was kept), the log says what happened, and everything answered 200 is stored.
fn recovers(rx: Receiver, refused: &[String], pad: usize, log_path: &Path, db: &Path) {
    for id in refused {
        let r = send(rx.addr, &delivery(rx.addr, id, pad)).expect("answered");
        assert_eq!(
            r.body, br#"{"status":"accepted"}"#,
            "{id} after recovery: {}",
            r.status
        );
    }
    rx.stop();
    let log = std::fs::read_to_string(log_path).expect("log");
    assert!(
        log.contains("SQLite commit failed") && log.contains("writable again"),
        "the receiver did not log the failure and the recovery:\n{log}"
    );
    let stored: HashSet<String> = Db::open_read_only(db)
        .expect("opens")
        .event_ids()
        .expect("ids")
        .into_iter()
        .collect();
    for id in refused {
        assert!(stored.contains(id), "{id} acknowledged but not stored");
    }
}

fn chattr(flag: &str, paths: &[PathBuf]) {
    let st = command("chattr")
        .arg(flag)
        .args(paths)
        .status()
        .expect("chattr (e2fsprogs) runs");
    assert!(
        st.success(),
        "chattr {flag} failed: this test makes the store read-only with the immutable flag, \
         which needs root and a filesystem that supports it (ext4, xfs, btrfs)"
    );
}

#[test]
fn sqlite_store_made_read_only_answers_503_and_recovers() {
    let dir = tmp_dir("readonly");
    let db = dir.join("store.db");
    let store = format!("sqlite:{}", db.display());
    let log_path = dir.join("receiver.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let rx = Receiver::try_start("may", "ring", "serde", &["--store", &store], Some(log))
        .unwrap_or_else(|e| panic!("{e}"));
    let post = |id: &str| send(rx.addr, &delivery(rx.addr, id, 100)).expect("answered");
    assert_eq!(post("ro-before").status, 200);
    // Immutable even for root: every write to the open database and WAL now fails.
    let files = vec![db.clone(), PathBuf::from(format!("{}-wal", db.display()))];
    chattr("+i", &files);
    let refused: Vec<String> = (0..5).map(|i| format!("ro-during-{i}")).collect();
    let answers: Vec<u16> = refused.iter().map(|id| post(id).status).collect();
    chattr("-i", &files);
    assert!(
        answers.iter().all(|s| *s == 503),
        "a read-only store must refuse every delivery, got {answers:?}"
    );
    recovers(rx, &refused, 100, &log_path, &db);
}

#[test]
fn sqlite_start_up_errors_say_what_to_do() {
    let dir = tmp_dir("startup");
    let not_db = dir.join("notes.txt");
    std::fs::write(&not_db, "x".repeat(4096)).expect("write");
    let versioned = dir.join("future.db");
    drop(Db::open(&versioned).expect("creates"));
    let c = command("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect({:?}); c.execute('PRAGMA user_version = 7'); c.commit()",
            versioned.display().to_string()
        ))
        .status()
        .expect("python3 runs");
    assert!(c.success());
    for (path, expect) in [
        (not_db.display().to_string(), "not a database"),
        (versioned.display().to_string(), "schema version 7"),
    ] {
        let out = command(crate::support::bin("didit-receiver"))
            .args(["--listen", "127.0.0.1:0", "--store"])
            .arg(format!("sqlite:{path}"))
            .env("DIDIT_WEBHOOK_SECRET", SECRET)
            .output()
            .expect("receiver runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{path}: started anyway");
        assert!(
            err.contains(expect) && err.contains(&path),
            "{path}: error does not say `{expect}`: {err}"
        );
        assert!(out.stdout.is_empty(), "{path}: printed `listening on`");
    }
}

/// Sends fresh deliveries to `rx` until one is answered 200 `accepted` (its id is returned, to
/// be counted as acknowledged) or `within` passes.
fn accepted_within(rx: &Receiver, tag: &str, within: Duration) -> Option<(String, Duration)> {
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed() < within {
        n += 1;
        let id = format!("probe-{tag}-{n}-{}", std::process::id());
        if let Ok(r) = send(rx.addr, &delivery(rx.addr, &id, 16))
            && r.status == 200
        {
            return Some((id, t0.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// The scale-out deployment for real: three routed `nats-server` nodes on loopback, the stream on
/// all three (`?replicas=3`), two receivers (hyper and may) publishing to it under load. A
/// SIGKILL of a follower leaves a quorum, so both receivers keep accepting; a SIGKILL of the
/// stream's leader stops acknowledgements only until the other two elect a new one. No
/// acknowledged event is lost, and the consumer drains the stream into SQLite exactly once.
#[test]
fn nats_cluster_loses_nothing_acknowledged_when_a_node_then_the_stream_leader_dies() {
    use webhook_bench::harness::broker::NatsCluster;
    const STREAM: &str = didit_receiver::store::NATS_STREAM;
    let dir = tmp_dir("nats-cluster");
    let mut cluster = NatsCluster::start(&dir.join("js"), 3).unwrap_or_else(|e| panic!("{e}"));
    let store = format!("{}?replicas=3", cluster.url());
    let args = ["--store", &store, "--max-body", "1MiB"];
    let a = Receiver::try_start("hyper", "ring", "serde", &args, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let b =
        Receiver::try_start("may", "ring", "serde", &args, None).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        cluster.wait_for(Duration::from_secs(15), |c| c
            .stream_leader(STREAM)
            .is_some()),
        "the stream has no leader"
    );
    let acked = [dir.join("acked-a.txt"), dir.join("acked-b.txt")];
    let reports = [dir.join("report-a.json"), dir.join("report-b.json")];
    let lgs = [
        loadgen(a.addr, &acked[0], &reports[0], 14),
        loadgen(b.addr, &acked[1], &reports[1], 14),
    ];
    let mut probes = Vec::new();
    std::thread::sleep(Duration::from_secs(2));

    // A follower dies: two of three replicas remain, a quorum, so both receivers accept.
    let leader = cluster.stream_leader(STREAM).expect("a stream leader");
    let follower = (leader + 1) % 3;
    cluster.kill(follower);
    std::thread::sleep(Duration::from_millis(1500));
    for (rx, tag) in [(&a, "a-follower"), (&b, "b-follower")] {
        let (id, took) = accepted_within(rx, tag, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{tag}: nothing accepted with a quorum of two nodes"));
        assert!(
            took < Duration::from_secs(3),
            "{tag}: {took:?} to accept with a quorum"
        );
        probes.push(id);
    }
    cluster.restart(follower).unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_secs(2));

    // The stream's leader dies: no acknowledgement until the other two elect a new one.
    let leader = cluster.stream_leader(STREAM).expect("a stream leader");
    cluster.kill(leader);
    for (rx, tag) in [(&a, "a-leader"), (&b, "b-leader")] {
        let (id, _) = accepted_within(rx, tag, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{tag}: no new stream leader accepted within 20 s"));
        probes.push(id);
    }
    let new_leader = cluster.stream_leader(STREAM).expect("a new stream leader");
    assert_ne!(new_leader, leader, "the dead node still leads");
    cluster.restart(leader).unwrap_or_else(|e| panic!("{e}"));

    let mut ids: Vec<String> = probes;
    for ((lg, report), log) in lgs.into_iter().zip(&reports).zip(&acked) {
        let out = lg.wait_with_output().expect("loadgen finishes");
        let (mismatches, _) = report_counts(report);
        assert!(
            out.status.success() && mismatches == 0,
            "load generator failed ({}, {mismatches} mismatches): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        ids.extend(lines(log));
    }
    assert!(
        ids.len() > 1000,
        "only {} acknowledged deliveries",
        ids.len()
    );
    a.stop();
    b.stop();

    // Receivers → the replicated stream → the consumer → SQLite, each event once.
    let db = dir.join("consumed.db");
    consume_into(&cluster.url(), &db);
    assert_all_stored(&db, &ids);
}

/// A cluster that cannot start says so with each node's own reason, after its retries: here
/// JetStream's storage folder would lie under a file, which `nats-server` refuses at once.
#[test]
fn nats_cluster_start_up_error_carries_each_attempt_and_the_node_logs() {
    use webhook_bench::harness::broker::NatsCluster;
    let err = NatsCluster::start(std::path::Path::new("/dev/null/js"), 3)
        .expect_err("a cluster whose storage lies under a file cannot start");
    assert!(err.contains("did not start in 3 attempts"), "{err}");
    assert_eq!(err.matches("; then ").count(), 2, "three attempts: {err}");
    assert!(
        err.contains("storage directory is not a directory"),
        "{err}"
    );
    assert!(
        !err.contains("is nats-server installed"),
        "it is, and it ran: {err}"
    );
}
