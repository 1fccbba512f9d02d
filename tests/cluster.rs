//! A node failure under load: the component talks to node 1 of a three-node Garage cluster
//! (replication factor 3, `scripts/servers/garage-cluster`) while node 2 fails and comes back,
//! in two ways: stopped and later restarted, and frozen (SIGSTOP: it keeps its connections
//! and answers nothing) and later thawed. Writes and reads go on throughout; afterwards every
//! acknowledged write is read back, through node 1 and through node 2, and must be byte-exact.
//!
//! Needs the variables `scripts/servers/garage-cluster start` prints (`S3RS_CLUSTER_*` besides
//! the usual `S3RS_TEST_*`); on any other server the test says it is not supported.
//! `S3RS_CLUSTER_PHASE_OPS` sets the operations in each fixed phase (default 200);
//! `S3RS_CLUSTER_FAILED_SECS` how long node 2 stays down or frozen at least (default 12: longer
//! than Garage takes to notice a peer is gone, so requests meet a cluster that knows it and
//! one that does not yet).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use s3_result_store_host::{ConfigInput, Error, ResultStore, Runtime, default_component_path};
use s3_result_store_tests::{TestServer, report, server, unique_prefix};

/// Stores writing and reading at once, each on its own keys.
const WORKERS: usize = 3;
/// The node the stores talk to, and the one that fails and comes back.
const SERVING_NODE: usize = 1;
const FAILING_NODE: usize = 2;

const PHASE_COUNT: usize = 5;

/// How node 2 fails and comes back: the `garage-cluster` commands, and the run's phases.
struct Failure {
    test: &'static str,
    fail: &'static str,
    recover: &'static str,
    what: &'static str,
    phases: [&'static str; PHASE_COUNT],
}

/// Stopped as an operator would (TERM), then restarted on its data.
const STOPPED: Failure = Failure {
    test: "acknowledged_writes_survive_a_node_stopped_and_restarted",
    fail: "stop-node",
    recover: "start-node",
    what: "stopped and restarted",
    phases: [
        "3 nodes up",
        "node 2 stopping",
        "node 2 down",
        "node 2 restarting, until node 1 sees it again",
        "3 nodes up again",
    ],
};

/// Hung (SIGSTOP): its connections stay open and nothing answers on them, which is harder on
/// the others than a node that is gone; then it goes on (SIGCONT).
const FROZEN: Failure = Failure {
    test: "acknowledged_writes_survive_a_node_frozen_and_thawed",
    fail: "freeze-node",
    recover: "thaw-node",
    what: "frozen and thawed",
    phases: [
        "3 nodes up",
        "node 2 freezing",
        "node 2 frozen",
        "node 2 thawed, until node 1 sees it again",
        "3 nodes up again",
    ],
};

/// One failure at a time: both tests act on the same cluster.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Cluster {
    script: PathBuf,
    state: String,
    endpoints: Vec<String>,
}

impl Cluster {
    fn from_env() -> Option<Cluster> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let state = var("S3RS_CLUSTER_STATE")?;
        let script = var("S3RS_CLUSTER_SCRIPT")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/servers/garage-cluster")
            });
        let endpoints: Vec<String> = var("S3RS_CLUSTER_ENDPOINTS")
            .expect("S3RS_CLUSTER_STATE is set, so S3RS_CLUSTER_ENDPOINTS must be too")
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        assert!(
            endpoints.len() >= FAILING_NODE,
            "S3RS_CLUSTER_ENDPOINTS names {} node(s)",
            endpoints.len()
        );
        Some(Cluster {
            script,
            state,
            endpoints,
        })
    }

    /// Runs `garage-cluster <command> STATE N`; its progress lines go to the real stderr.
    fn node(&self, command: &str, node: usize) {
        let status = Command::new(&self.script)
            .args([command, &self.state, &node.to_string()])
            .status()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.script.display()));
        assert!(
            status.success(),
            "garage-cluster {command} {node}: {status}"
        );
    }
}

/// What a key may hold: one value once a write is acknowledged; more than one when a write
/// failed (it may or may not have been applied). `None` stands for no object.
type Acceptable = Vec<Option<Vec<u8>>>;

#[derive(Default)]
struct WorkerResult {
    expected: BTreeMap<String, Acceptable>,
    operations: [usize; PHASE_COUNT],
    failures: Vec<String>,
    /// The phase of each key's acknowledged delete, while it is the key's last write.
    deleted_in: BTreeMap<String, usize>,
    /// Reads that returned something no write put there (or lost an acknowledged write).
    wrong_reads: Vec<String>,
    /// The longest operation (retries included) of each phase.
    slowest: [Duration; PHASE_COUNT],
}

/// Shared progress: the current phase, operations done so far, and the stop signal.
#[derive(Default)]
struct Progress {
    phase: AtomicUsize,
    operations: AtomicUsize,
    /// Operations done when the current phase began.
    phase_start: AtomicUsize,
    stop: AtomicBool,
}

impl Progress {
    fn next_phase(&self) {
        self.phase_start
            .store(self.operations.load(Ordering::SeqCst), Ordering::SeqCst);
        self.phase.fetch_add(1, Ordering::SeqCst);
    }

    /// Blocks until `n` operations have been done in the current phase.
    fn wait_for(&self, n: usize) {
        let from = self.phase_start.load(Ordering::SeqCst);
        while self.operations.load(Ordering::SeqCst) < from + n {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A value that names its key and version, then random bytes; sizes on both sides of Garage's
/// inline threshold (3 KiB: smaller objects live in the metadata, larger ones in data blocks).
fn value(rng: &mut ChaCha8Rng, key: &str, version: usize) -> Vec<u8> {
    let size = match rng.random_range(0..100) {
        0..60 => rng.random_range(0..1_024),
        60..95 => rng.random_range(1_024..16_384),
        _ => rng.random_range(16_384..131_072),
    };
    let mut bytes = format!("{key}#{version}\n").into_bytes();
    let start = bytes.len();
    bytes.resize(start + size, 0);
    rng.fill(&mut bytes[start..]);
    bytes
}

fn describe(value: &Option<Vec<u8>>) -> String {
    match value {
        None => "no object".into(),
        Some(v) => {
            let head = v.split(|&b| b == b'\n').next().unwrap_or_default();
            format!("{} bytes ({})", v.len(), String::from_utf8_lossy(head))
        }
    }
}

fn worker(
    store: &mut ResultStore,
    seed: u64,
    progress: &Progress,
    phases: &[&str; PHASE_COUNT],
) -> WorkerResult {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut result = WorkerResult::default();
    let mut keys: Vec<String> = Vec::new();
    let mut version = 0;
    while !progress.stop.load(Ordering::SeqCst) {
        let phase = progress.phase.load(Ordering::SeqCst);
        version += 1;
        let roll = rng.random_range(0..100);
        let existing = (!keys.is_empty()).then(|| keys[rng.random_range(0..keys.len())].clone());
        let started = Instant::now();
        let outcome: Result<(), (String, Error)> = match (roll, existing) {
            (0..40, _) | (_, None) => {
                let key = format!("celery-task-meta-w{seed}-{}", keys.len());
                let v = value(&mut rng, &key, version);
                keys.push(key.clone());
                let r = store.set(&key, &v);
                let acceptable = result.expected.entry(key.clone()).or_insert(vec![None]);
                record(acceptable, r.is_ok(), Some(v));
                r.map_err(|e| (key, e))
            }
            (40..55, Some(key)) => {
                let v = value(&mut rng, &key, version);
                let r = store.set(&key, &v);
                record(result.expected.get_mut(&key).unwrap(), r.is_ok(), Some(v));
                result.deleted_in.remove(&key);
                r.map_err(|e| (key, e))
            }
            (55..95, Some(key)) => match store.get(&key) {
                Ok(got) => {
                    let acceptable = &result.expected[&key];
                    if !acceptable.contains(&got) {
                        result.wrong_reads.push(format!(
                            "{key} in phase \"{}\": read {}, expected {}",
                            phases[phase],
                            describe(&got),
                            acceptable
                                .iter()
                                .map(describe)
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ));
                    }
                    Ok(())
                }
                Err(e) => Err((key, e)),
            },
            (_, Some(key)) => {
                let r = store.delete(&key);
                record(result.expected.get_mut(&key).unwrap(), r.is_ok(), None);
                if r.is_ok() {
                    result.deleted_in.insert(key.clone(), phase);
                }
                r.map_err(|e| (key, e))
            }
        };
        if let Err((key, e)) = outcome {
            result
                .failures
                .push(format!("{key} in phase \"{}\": {e}", phases[phase]));
        }
        result.slowest[phase] = result.slowest[phase].max(started.elapsed());
        result.operations[phase] += 1;
        progress.operations.fetch_add(1, Ordering::SeqCst);
    }
    result
}

/// An acknowledged write fixes the key's value; a failed one adds a possibility.
fn record(acceptable: &mut Acceptable, acknowledged: bool, value: Option<Vec<u8>>) {
    if acknowledged {
        *acceptable = vec![value];
    } else if !acceptable.contains(&value) {
        acceptable.push(value);
    }
}

fn config(server: &TestServer, endpoint: &str, base_path: &str) -> ConfigInput {
    ConfigInput {
        endpoint_url: Some(endpoint.to_owned()),
        ..server.config(base_path)
    }
}

#[test]
fn acknowledged_writes_survive_a_node_stopped_and_restarted() {
    node_failure(&STOPPED);
}

#[test]
fn acknowledged_writes_survive_a_node_frozen_and_thawed() {
    node_failure(&FROZEN);
}

fn node_failure(failure: &Failure) {
    let server = server();
    let Some(cluster) = Cluster::from_env() else {
        return server.unsupported(
            failure.test,
            "not a multi-node cluster (S3RS_CLUSTER_STATE is unset; start one with \
             scripts/servers/garage-cluster)",
        );
    };
    let _one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let phases = &failure.phases;
    let phase_ops: usize = std::env::var("S3RS_CLUSTER_PHASE_OPS")
        .ok()
        .map(|v| v.parse().expect("S3RS_CLUSTER_PHASE_OPS is a number"))
        .unwrap_or(200);
    let failed_for = Duration::from_secs(
        std::env::var("S3RS_CLUSTER_FAILED_SECS")
            .ok()
            .map(|v| v.parse().expect("S3RS_CLUSTER_FAILED_SECS is a number"))
            .unwrap_or(12),
    );
    // A runtime of its own, so that its request count is this test's alone.
    let runtime = Runtime::load(default_component_path()).unwrap_or_else(|e| panic!("{e}"));
    let prefix = unique_prefix("cluster");
    // The component's defaults (3 attempts, 60 s per operation): what a user gets.
    let load_config = config(server, &cluster.endpoints[SERVING_NODE - 1], &prefix);
    let progress = Progress::default();
    let results = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for seed in 0..WORKERS as u64 {
            let (runtime, progress, results, load_config) =
                (&runtime, &progress, &results, &load_config);
            scope.spawn(move || {
                let mut store = runtime.open(load_config).unwrap();
                let result = worker(&mut store, seed, progress, phases);
                results.lock().unwrap().push(result);
            });
        }
        // Stops the workers even if a cluster command fails, so the scope can end.
        let stop_on_unwind = StopOnDrop(&progress.stop);
        progress.wait_for(phase_ops);
        progress.next_phase();
        cluster.node(failure.fail, FAILING_NODE);
        progress.next_phase();
        let failed_at = Instant::now();
        progress.wait_for(phase_ops);
        std::thread::sleep(failed_for.saturating_sub(failed_at.elapsed()));
        progress.next_phase();
        cluster.node(failure.recover, FAILING_NODE);
        progress.next_phase();
        progress.wait_for(phase_ops);
        drop(stop_on_unwind);
    });
    let load_time = started.elapsed();
    let load_requests = runtime
        .requests_sent()
        .expect("the runtime's sender counts");

    let results = results.into_inner().unwrap();
    let mut per_phase = [0usize; PHASE_COUNT];
    let mut slowest = [Duration::ZERO; PHASE_COUNT];
    let mut expected: BTreeMap<String, Acceptable> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut wrong_reads = Vec::new();
    let mut deleted_in = BTreeMap::new();
    for r in results {
        for (total, n) in per_phase.iter_mut().zip(r.operations) {
            *total += n;
        }
        for (max, d) in slowest.iter_mut().zip(r.slowest) {
            *max = (*max).max(d);
        }
        expected.extend(r.expected);
        failures.extend(r.failures);
        wrong_reads.extend(r.wrong_reads);
        deleted_in.extend(r.deleted_in);
    }
    let operations: usize = per_phase.iter().sum();
    report(&format!(
        "cluster load: {operations} operations in {load_time:.1?} by {WORKERS} stores on node \
         {SERVING_NODE}, node {FAILING_NODE} {}",
        failure.what
    ));
    for ((name, n), slowest) in phases.iter().zip(per_phase).zip(slowest) {
        report(&format!(
            "  {n:>6} operations while {name} (slowest {slowest:.1?})"
        ));
    }
    report(&format!(
        "  {load_requests} HTTP requests for {operations} operations (one request each): {} \
         retried after an error; {} operation(s) failed after retries",
        load_requests.saturating_sub(operations as u64),
        failures.len()
    ));
    for failure in failures.iter().take(10) {
        report(&format!("  failed: {failure}"));
    }

    // Every key, read back through the serving node and through the restarted one.
    let present: BTreeSet<&String> = expected
        .iter()
        .filter(|(_, acceptable)| acceptable.iter().all(Option::is_some))
        .map(|(key, _)| key)
        .collect();
    let mut verified = 0;
    let mut lost = Vec::new();
    let verify_requests_before = runtime.requests_sent().unwrap();
    let verify_started = Instant::now();
    for node in [SERVING_NODE, FAILING_NODE] {
        let mut store = runtime
            .open(&config(server, &cluster.endpoints[node - 1], &prefix))
            .unwrap();
        // Batches keep 32 GETs in flight (the component's get-many), so this stays quick.
        let entries: Vec<(&String, &Acceptable)> = expected.iter().collect();
        for batch in entries.chunks(256) {
            let keys: Vec<&String> = batch.iter().map(|(key, _)| *key).collect();
            let results = store.get_many(&keys).unwrap();
            for ((key, acceptable), got) in batch.iter().zip(results) {
                let got =
                    got.unwrap_or_else(|e| panic!("read back {key} through node {node}: {e}"));
                if acceptable.contains(&got) {
                    verified += 1;
                } else {
                    lost.push(format!(
                        "{key} through node {node}: read {}, expected {}",
                        describe(&got),
                        acceptable
                            .iter()
                            .map(describe)
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ));
                }
            }
        }
    }
    let verify_requests = runtime.requests_sent().unwrap() - verify_requests_before;
    let verify_time = verify_started.elapsed();
    // An independent client's listing (boto3, through node 1).
    let listed: BTreeSet<String> = server
        .list_keys(&prefix)
        .iter()
        .map(|k| k.strip_prefix(&prefix).unwrap_or(k).to_owned())
        .collect();
    let surely_absent: BTreeSet<&String> = expected
        .iter()
        .filter(|(_, acceptable)| acceptable.iter().all(Option::is_none))
        .map(|(key, _)| key)
        .collect();
    report(&format!(
        "  verified {verified} reads of {} keys ({} objects, {} deleted) through nodes \
         {SERVING_NODE} and {FAILING_NODE} ({verify_requests} requests, {verify_time:.1?}): \
         {} lost or wrong",
        expected.len(),
        present.len(),
        surely_absent.len(),
        lost.len(),
    ));
    // Garage's listings merge the replicas' indexes, and a node that missed deletes while it
    // was away can bring the deleted keys back into a listing until anti-entropy repairs it;
    // a GET of each (above) finds none. Said here, since only the server can change it.
    let mut stale_by_phase = [0usize; PHASE_COUNT];
    for key in surely_absent.iter().filter(|k| listed.contains(**k)) {
        if let Some(&phase) = deleted_in.get(*key) {
            stale_by_phase[phase] += 1;
        }
    }
    let stale: usize = stale_by_phase.iter().sum();
    let stale_phases: Vec<String> = phases
        .iter()
        .zip(stale_by_phase)
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{n} while {name}"))
        .collect();
    report(&format!(
        "  boto3 lists {} objects: {} of the {} live ones, and {stale} deleted earlier{}",
        listed.len(),
        present.iter().filter(|k| listed.contains(**k)).count(),
        present.len(),
        if stale_phases.is_empty() {
            String::new()
        } else {
            format!(
                " (deleted {}; each GET above finds none)",
                stale_phases.join(", ")
            )
        }
    ));
    for line in lost.iter().chain(&wrong_reads).take(10) {
        report(&format!("  wrong: {line}"));
    }

    assert!(lost.is_empty(), "{} keys lost or wrong", lost.len());
    assert!(
        wrong_reads.is_empty(),
        "{} reads during the run returned a wrong value",
        wrong_reads.len()
    );
    let unlisted: Vec<&&String> = present.iter().filter(|k| !listed.contains(**k)).collect();
    assert!(
        unlisted.is_empty(),
        "objects missing from the listing: {unlisted:?}"
    );
    let unknown: Vec<&String> = listed
        .iter()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(unknown.is_empty(), "listed keys never written: {unknown:?}");
    assert!(
        failures.is_empty(),
        "operations failed after retries: {failures:#?}"
    );
}

/// Sets the flag when dropped: on the normal path and when a panic unwinds.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
