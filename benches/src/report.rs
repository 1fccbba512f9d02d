//! Collected measurements and the machine they ran on, as a markdown table, CSV and JSON.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::measure::{Chunk, Op, Summary, fmt_ns};

/// Everything measured for one contender × operation × size, over all rounds.
pub struct Measured {
    pub id: &'static str,
    pub label: String,
    pub op: Op,
    pub size: usize,
    latencies_ns: Vec<u64>,
    cpu_ns: u64,
    /// Calling-thread CPU, when every chunk reported it.
    thread_cpu_ns: Option<u64>,
    pub summary: Option<Summary>,
}

impl Measured {
    pub fn new(id: &'static str, label: &str, op: Op, size: usize) -> Measured {
        Measured {
            id,
            label: label.to_owned(),
            op,
            size,
            latencies_ns: Vec::new(),
            cpu_ns: 0,
            thread_cpu_ns: Some(0),
            summary: None,
        }
    }

    pub fn add(&mut self, chunk: Chunk) {
        self.latencies_ns.extend(chunk.latencies_ns);
        self.cpu_ns += chunk.cpu_ns;
        self.thread_cpu_ns = self
            .thread_cpu_ns
            .zip(chunk.thread_cpu_ns)
            .map(|(a, b)| a + b);
    }

    /// Calling-thread CPU per operation.
    fn thread_cpu_ns_per_op(&self) -> Option<f64> {
        let n = self.latencies_ns.len();
        (n > 0).then_some(self.thread_cpu_ns? as f64 / n as f64)
    }
}

/// `get_many` of N keys against N sequential `get`s: (wall ns, CPU ns) of each repetition.
pub struct Batch {
    pub keys: usize,
    /// Round-trip time added by a relay between client and server (0: loopback as it is).
    pub added_rtt_ms: u64,
    pub many: Vec<(u64, u64)>,
    pub sequential: Vec<(u64, u64)>,
}

impl Batch {
    pub fn new(keys: usize, added_rtt_ms: u64) -> Batch {
        Batch {
            keys,
            added_rtt_ms,
            many: Vec::new(),
            sequential: Vec::new(),
        }
    }

    /// How the network was: "loopback" or "loopback + 2 ms RTT".
    pub fn network(&self) -> String {
        match self.added_rtt_ms {
            0 => "loopback".to_owned(),
            ms => format!("loopback + {ms} ms RTT"),
        }
    }

    fn wall(runs: &[(u64, u64)]) -> Summary {
        let cpu = runs.iter().map(|r| r.1).sum();
        Summary::of(&runs.iter().map(|r| r.0).collect::<Vec<_>>(), cpu)
    }

    pub fn speedup(&self) -> f64 {
        Batch::wall(&self.sequential).median_ns / Batch::wall(&self.many).median_ns
    }
}

/// The machine, as far as the run can tell.
struct Machine {
    cpu_model: String,
    logical_cpus: usize,
    memory: String,
    kernel: String,
    date_utc: String,
    load_start: String,
    load_end: String,
}

impl Machine {
    fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse::<f64>().ok())
            .map(|kb| format!("{:.0} GiB", kb / (1024.0 * 1024.0)))
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu_model,
            logical_cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory,
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            date_utc: utc_now(),
            load_start: load_average(),
            load_end: String::new(),
        }
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    read_trimmed("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `2026-05-04 17:03 UTC`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = s3_result_store::calendar::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

pub struct Report {
    machine: Machine,
    server: String,
    endpoint: String,
    pub celery_info: Option<Value>,
    pub contenders: Vec<(&'static str, String)>,
    pub results: Vec<Measured>,
    /// Over HTTPS through a TLS front that runs in the bench process: compared by latency and
    /// by the calling thread's CPU, which leaves the front's work out.
    pub https: Vec<Measured>,
    pub batches: Vec<Batch>,
    /// The component's builds (default, store-only) and their sizes in bytes.
    pub component_sizes: Vec<(&'static str, u64)>,
    pub parameters: Value,
    duration: Duration,
}

/// Median latency over the floor's: at most this up to 64 KiB, and `LATENCY_LARGE` above.
const LATENCY_SMALL: f64 = 1.2;
const LATENCY_LARGE: f64 = 1.5;
/// CPU per operation over the floor's, at 1 KiB and at 8 MiB.
const CPU_1K: f64 = 1.5;
const CPU_8M: f64 = 2.0;
const BATCH_SPEEDUP: f64 = 8.0;
const COMPONENT_BYTES: u64 = 300 * 1024;

/// The HTTPS table's rows, in order.
const HTTPS_CONTENDERS: [&str; 6] = [
    "component",
    "component-nopool",
    "floor",
    "aws-sdk-s3",
    "object_store",
    "celery",
];

/// A row of the targets: "get 1 KiB", "set 8 MiB HTTPS".
fn row_name(https: bool, op: Op, size: usize) -> String {
    let transport = if https { " HTTPS" } else { "" };
    format!("{} {}{transport}", op.name(), size_label(size))
}

/// One target: its wording, what was measured, met or not.
struct Target {
    name: String,
    measured: String,
    met: bool,
}

impl Report {
    pub fn new(server: &str, endpoint: &str) -> Report {
        Report {
            machine: Machine::probe(),
            server: server.to_owned(),
            endpoint: endpoint.to_owned(),
            celery_info: None,
            contenders: Vec::new(),
            results: Vec::new(),
            https: Vec::new(),
            batches: Vec::new(),
            component_sizes: Vec::new(),
            parameters: Value::Null,
            duration: Duration::ZERO,
        }
    }

    pub fn finish(&mut self, duration: Duration) {
        self.duration = duration;
        self.machine.load_end = load_average();
        for m in self.results.iter_mut().chain(&mut self.https) {
            m.summary = Some(Summary::of(&m.latencies_ns, m.cpu_ns));
        }
    }

    pub fn summary(&self, id: &str, op: Op, size: usize) -> Option<&Summary> {
        self.results
            .iter()
            .find(|m| m.id == id && m.op == op && m.size == size)
            .and_then(|m| m.summary.as_ref())
    }

    /// (median latency, CPU per op) of `id` over those of `base`.
    fn ratios(&self, id: &str, base: &str, op: Op, size: usize) -> Option<(f64, f64)> {
        let s = self.summary(id, op, size)?;
        let b = self.summary(base, op, size)?;
        Some((s.median_ns / b.median_ns, s.cpu_ns_per_op / b.cpu_ns_per_op))
    }

    /// An HTTPS row and its (median latency, calling-thread CPU) over the HTTPS floor's.
    fn https_row(&self, id: &str, op: Op, size: usize) -> Option<(&Measured, Option<(f64, f64)>)> {
        let find = |id: &str| {
            self.https
                .iter()
                .find(|m| m.id == id && m.op == op && m.size == size)
        };
        let row = find(id)?;
        let ratios = find("floor").and_then(|floor| {
            let (s, f) = (row.summary.as_ref()?, floor.summary.as_ref()?);
            Some((
                s.median_ns / f.median_ns,
                row.thread_cpu_ns_per_op()? / floor.thread_cpu_ns_per_op()?,
            ))
        });
        Some((row, ratios))
    }

    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes: Vec<usize> = self.results.iter().map(|m| m.size).collect();
        sizes.dedup();
        sizes
    }

    /// (median latency, CPU per operation) of a row: over plain HTTP the process's CPU,
    /// over HTTPS the calling thread's (the TLS front runs in the bench process).
    fn figures(&self, https: bool, id: &str, op: Op, size: usize) -> Option<(f64, f64)> {
        if https {
            let (m, _) = self.https_row(id, op, size)?;
            Some((m.summary.as_ref()?.median_ns, m.thread_cpu_ns_per_op()?))
        } else {
            let s = self.summary(id, op, size)?;
            Some((s.median_ns, s.cpu_ns_per_op))
        }
    }

    /// Every (transport, op, size) measured for the component.
    fn component_rows(&self) -> Vec<(bool, Op, usize)> {
        let mut rows = Vec::new();
        for (https, measured) in [(false, &self.results), (true, &self.https)] {
            for m in measured.iter().filter(|m| m.id == "component") {
                rows.push((https, m.op, m.size));
            }
        }
        rows
    }

    /// The targets of the component with its pool, each row a ratio or a comparison.
    fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        let mut ratio = |name: String, rows: Vec<(bool, Op, usize)>, limit: f64, cpu: bool| {
            let measured: Vec<(String, f64)> = rows
                .iter()
                .filter_map(|&(https, op, size)| {
                    let c = self.figures(https, "component", op, size)?;
                    let f = self.figures(https, "floor", op, size)?;
                    let r = if cpu { c.1 / f.1 } else { c.0 / f.0 };
                    Some((row_name(https, op, size), r))
                })
                .collect();
            if measured.is_empty() {
                return;
            }
            targets.push(Target {
                name,
                measured: measured
                    .iter()
                    .map(|(row, r)| format!("{row} {r:.2}×{}", if *r <= limit { "" } else { " ✗" }))
                    .collect::<Vec<_>>()
                    .join(", "),
                met: measured.iter().all(|(_, r)| *r <= limit),
            });
        };
        let rows = self.component_rows();
        let pick = |f: &dyn Fn(bool, Op, usize) -> bool| -> Vec<(bool, Op, usize)> {
            rows.iter()
                .copied()
                .filter(|&(h, o, s)| f(h, o, s))
                .collect()
        };
        // A large set over plain HTTP hashes its body with SHA-256 for the signature, which the
        // native floor does with the CPU's SHA instructions: reported, not a target.
        let latency_applies = |https: bool, op: Op, size: usize| match op {
            Op::Get => true,
            Op::Set => https || size <= 64 << 10,
            Op::Delete => false,
        };
        ratio(
            format!("median latency ≤ {LATENCY_SMALL}× floor (1 KiB, 64 KiB)"),
            pick(&|h, o, s| s <= 64 << 10 && latency_applies(h, o, s)),
            LATENCY_SMALL,
            false,
        );
        ratio(
            format!("median latency ≤ {LATENCY_LARGE}× floor (1 MiB, 8 MiB)"),
            pick(&|h, o, s| s > 64 << 10 && latency_applies(h, o, s)),
            LATENCY_LARGE,
            false,
        );
        ratio(
            "median latency of large sets over HTTP, over the floor's (no target)".into(),
            pick(&|h, o, s| !latency_applies(h, o, s) && o == Op::Set),
            f64::INFINITY,
            false,
        );
        ratio(
            format!("CPU/op ≤ {CPU_1K}× floor (1 KiB)"),
            pick(&|_, _, s| s == 1024),
            CPU_1K,
            true,
        );
        ratio(
            format!("CPU/op ≤ {CPU_8M}× floor (8 MiB)"),
            pick(&|_, _, s| s == 8 << 20),
            CPU_8M,
            true,
        );
        for (other, faster, name) in [
            ("celery", true, "faster than Celery's S3Backend (median)"),
            ("aws-sdk-s3", false, "no slower than aws-sdk-s3 (median)"),
        ] {
            let measured: Vec<(String, f64)> = rows
                .iter()
                .filter_map(|&(https, op, size)| {
                    let c = self.figures(https, "component", op, size)?;
                    let o = self.figures(https, other, op, size)?;
                    Some((row_name(https, op, size), c.0 / o.0))
                })
                .collect();
            if measured.is_empty() {
                continue;
            }
            let ok = |r: f64| if faster { r < 1.0 } else { r <= 1.0 };
            targets.push(Target {
                name: name.into(),
                measured: measured
                    .iter()
                    .map(|(row, r)| format!("{row} {r:.2}×{}", if ok(*r) { "" } else { " ✗" }))
                    .collect::<Vec<_>>()
                    .join(", "),
                met: measured.iter().all(|(_, r)| ok(*r)),
            });
        }
        for batch in &self.batches {
            let speedup = batch.speedup();
            targets.push(Target {
                name: format!(
                    "{}-key get_many ≥ {BATCH_SPEEDUP}× faster than sequential gets ({})",
                    batch.keys,
                    batch.network()
                ),
                measured: format!("{speedup:.1}×"),
                met: speedup >= BATCH_SPEEDUP,
            });
        }
        // The default build's size is reported with the run, not held to a target.
        for &(build, bytes) in self
            .component_sizes
            .iter()
            .filter(|(b, _)| *b == "store-only")
        {
            targets.push(Target {
                name: format!(
                    "component size ≤ {} KiB ({build} build)",
                    COMPONENT_BYTES / 1024
                ),
                measured: format!(
                    "{} bytes ({:.1} KiB)",
                    fmt_count(bytes as f64),
                    bytes as f64 / 1024.0
                ),
                met: bytes <= COMPONENT_BYTES,
            });
        }
        targets
    }

    /// One line for the chart: when, where, against what.
    pub fn footnote(&self) -> String {
        let m = &self.machine;
        format!(
            "{}; {}, {} logical CPUs; server: {}; {} iterations per bar",
            m.date_utc, m.cpu_model, m.logical_cpus, self.server, self.parameters["iterations_1k"]
        )
    }

    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let p = &self.parameters;
        let mut out = String::new();
        let _ = writeln!(out, "### Results\n");
        let _ = writeln!(
            out,
            "- Machine: {}, {} logical CPUs, {} RAM, Linux {}; load average {} at the start, {} at the end",
            m.cpu_model, m.logical_cpus, m.memory, m.kernel, m.load_start, m.load_end
        );
        let _ = writeln!(
            out,
            "- Date: {}; the run took {:.0} s",
            m.date_utc,
            self.duration.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "- Server: {} at {} (its own process)",
            self.server, self.endpoint
        );
        if let Some(info) = &self.celery_info {
            let _ = writeln!(
                out,
                "- Celery {} with boto3 {} on Python {}",
                info["celery"].as_str().unwrap_or("?"),
                info["boto3"].as_str().unwrap_or("?"),
                info["python"].as_str().unwrap_or("?")
            );
        }
        let _ = writeln!(
            out,
            "- Iterations per contender and operation: {} at 1 KiB, {} at 64 KiB, {} at 1 MiB, \
             {} at 8 MiB, after {} warm-up ({} at 1 and 8 MiB), in {} rounds with the contenders \
             taking turns",
            p["iterations_1k"],
            p["iterations_64k"],
            p["iterations_1m"],
            p["iterations_8m"],
            p["warmup"],
            p["warmup_8m"],
            p["rounds"]
        );
        let _ = writeln!(
            out,
            "- CPU/op: user + system CPU time of the client process per operation \
             (getrusage RUSAGE_SELF, all threads; for Celery, its Python process)"
        );
        for size in self.sizes() {
            let _ = writeln!(out, "\n#### {}\n", size_label(size));
            let _ = writeln!(
                out,
                "| op | contender | median | p99 | ops/s | CPU/op | median ÷ floor | CPU ÷ floor |"
            );
            let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|");
            for op in [Op::Get, Op::Set, Op::Delete] {
                for (id, label) in &self.contenders {
                    let Some(s) = self.summary(id, op, size) else {
                        continue;
                    };
                    let (rl, rc) = self
                        .ratios(id, "floor", op, size)
                        .map_or(("–".into(), "–".into()), |(l, c)| {
                            (format!("{l:.2}×"), format!("{c:.2}×"))
                        });
                    let _ = writeln!(
                        out,
                        "| {} | {label} | {} | {} | {} | {} | {rl} | {rc} |",
                        op.name(),
                        fmt_ns(s.median_ns),
                        fmt_ns(s.p99_ns),
                        fmt_count(s.ops_per_s),
                        fmt_ns(s.cpu_ns_per_op),
                    );
                }
            }
        }
        let mut https_sizes: Vec<usize> = self.https.iter().map(|m| m.size).collect();
        https_sizes.dedup();
        for size in https_sizes {
            let _ = writeln!(
                out,
                "\n#### {} over HTTPS (a TLS front on loopback, in the bench process)\n\n\
                 CPU/op here is the calling thread's, which leaves the front's TLS work out.\n",
                size_label(size)
            );
            let _ = writeln!(
                out,
                "| op | contender | median | p99 | ops/s | CPU/op | median ÷ floor | CPU ÷ floor |"
            );
            let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|");
            for op in [Op::Get, Op::Set, Op::Delete] {
                for id in HTTPS_CONTENDERS {
                    let Some((m, ratios)) = self.https_row(id, op, size) else {
                        continue;
                    };
                    let Some(s) = &m.summary else { continue };
                    let (rl, rc) = ratios.map_or(("–".into(), "–".into()), |(l, c)| {
                        (format!("{l:.2}×"), format!("{c:.2}×"))
                    });
                    let cpu = m.thread_cpu_ns_per_op().map_or("–".into(), fmt_ns);
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | {} | {cpu} | {rl} | {rc} |",
                        op.name(),
                        m.label,
                        fmt_ns(s.median_ns),
                        fmt_ns(s.p99_ns),
                        fmt_count(s.ops_per_s),
                    );
                }
            }
        }
        for batch in &self.batches {
            let many = Batch::wall(&batch.many);
            let seq = Batch::wall(&batch.sequential);
            let _ = writeln!(
                out,
                "\n#### Batch: {} keys of 1 KiB, component (pool), {}, {} repetitions\n",
                batch.keys,
                batch.network(),
                many.iterations
            );
            let _ = writeln!(out, "| read | median | p99 | CPU |");
            let _ = writeln!(out, "|---|---:|---:|---:|");
            let _ = writeln!(
                out,
                "| one get_many({}) | {} | {} | {} |",
                batch.keys,
                fmt_ns(many.median_ns),
                fmt_ns(many.p99_ns),
                fmt_ns(many.cpu_ns_per_op)
            );
            let _ = writeln!(
                out,
                "| {} sequential gets | {} | {} | {} |",
                batch.keys,
                fmt_ns(seq.median_ns),
                fmt_ns(seq.p99_ns),
                fmt_ns(seq.cpu_ns_per_op)
            );
            let _ = writeln!(
                out,
                "\nget_many is {:.1}× faster (median over median).",
                batch.speedup()
            );
        }
        let targets = self.targets();
        if !targets.is_empty() {
            let _ = writeln!(
                out,
                "\n#### Targets (the component with its pool)\n\n| target | measured | met |\n|---|---|---|"
            );
            for t in &targets {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    t.name,
                    t.measured,
                    if t.met { "yes" } else { "no" }
                );
            }
        }
        out
    }

    pub fn csv(&self) -> String {
        let mut out = String::from(
            "contender_id,contender,op,size_bytes,iterations,median_us,p99_us,mean_us,ops_per_s,\
             cpu_us_per_op,thread_cpu_us_per_op,median_vs_floor,cpu_vs_floor\n",
        );
        for m in &self.results {
            csv_row(
                &mut out,
                m.id,
                &m.label,
                m,
                self.ratios(m.id, "floor", m.op, m.size),
            );
        }
        for batch in &self.batches {
            let rtt = match batch.added_rtt_ms {
                0 => String::new(),
                ms => format!("_rtt{ms}ms"),
            };
            for (op, runs) in [
                (format!("get_many_{}{rtt}", batch.keys), &batch.many),
                (
                    format!("sequential_get_{}{rtt}", batch.keys),
                    &batch.sequential,
                ),
            ] {
                let s = Batch::wall(runs);
                let _ = writeln!(
                    out,
                    "component,\"component (pool)\",{op},1024,{},{:.1},{:.1},{:.1},{:.3},{:.2},,,",
                    s.iterations,
                    s.median_ns / 1e3,
                    s.p99_ns / 1e3,
                    s.mean_ns / 1e3,
                    s.ops_per_s,
                    s.cpu_ns_per_op / 1e3,
                );
            }
        }
        // HTTPS rows: `-https` ids, ratios over the HTTPS floor by calling-thread CPU.
        for m in &self.https {
            let ratios = self
                .https_row(m.id, m.op, m.size)
                .and_then(|(_, ratios)| ratios);
            csv_row(
                &mut out,
                &format!("{}-https", m.id),
                &format!("{} over HTTPS", m.label),
                m,
                ratios,
            );
        }
        out
    }

    pub fn json(&self) -> Value {
        let m = &self.machine;
        let results: Vec<Value> = self
            .results
            .iter()
            .filter_map(|r| {
                let ratios = self.ratios(r.id, "floor", r.op, r.size);
                json_row(r, ratios, "cpu_vs_floor")
            })
            .collect();
        let https: Vec<Value> = self
            .https
            .iter()
            .filter_map(|r| {
                let (_, ratios) = self.https_row(r.id, r.op, r.size)?;
                json_row(r, ratios, "calling_thread_cpu_vs_floor")
            })
            .collect();
        let batch: Vec<_> = self.batches.iter().map(|b| {
            let many = Batch::wall(&b.many);
            let seq = Batch::wall(&b.sequential);
            json!({
                "contender": "component",
                "keys": b.keys,
                "added_rtt_ms": b.added_rtt_ms,
                "value_bytes": 1024,
                "repetitions": many.iterations,
                "get_many": {"median_ns": many.median_ns, "p99_ns": many.p99_ns, "cpu_ns": many.cpu_ns_per_op},
                "sequential": {"median_ns": seq.median_ns, "p99_ns": seq.p99_ns, "cpu_ns": seq.cpu_ns_per_op},
                "speedup": b.speedup(),
            })
        }).collect();
        json!({
            "machine": {
                "cpu_model": m.cpu_model,
                "logical_cpus": m.logical_cpus,
                "memory": m.memory,
                "kernel": m.kernel,
                "date_utc": m.date_utc,
                "load_average_start": m.load_start,
                "load_average_end": m.load_end,
            },
            "server": {"name": self.server, "endpoint": self.endpoint},
            "celery": self.celery_info,
            "duration_s": self.duration.as_secs_f64(),
            "parameters": self.parameters,
            "contenders": self.contenders.iter().map(|(id, label)| json!({"id": id, "label": label})).collect::<Vec<_>>(),
            "results": results,
            "https": https,
            "batch": batch,
            "component_bytes": self.component_sizes.iter().map(|(build, bytes)| json!({"build": build, "bytes": bytes})).collect::<Vec<_>>(),
            "targets": self.targets().iter().map(|t| json!({"target": t.name, "measured": t.measured, "met": t.met})).collect::<Vec<_>>(),
        })
    }
}

/// One contender's JSON row, if it was measured; the CPU ratio under `cpu_ratio_key`.
fn json_row(m: &Measured, ratios: Option<(f64, f64)>, cpu_ratio_key: &str) -> Option<Value> {
    let s = m.summary.as_ref()?;
    let mut row = json!({
        "contender": m.id,
        "label": m.label,
        "op": m.op.name(),
        "size_bytes": m.size,
        "iterations": s.iterations,
        "median_ns": s.median_ns,
        "p99_ns": s.p99_ns,
        "mean_ns": s.mean_ns,
        "ops_per_s": s.ops_per_s,
        "cpu_ns_per_op": s.cpu_ns_per_op,
        "calling_thread_cpu_ns_per_op": m.thread_cpu_ns_per_op(),
        "median_vs_floor": ratios.map(|r| r.0),
    });
    row[cpu_ratio_key] = json!(ratios.map(|r| r.1));
    Some(row)
}

/// One contender's CSV row, if it was measured.
fn csv_row(out: &mut String, id: &str, label: &str, m: &Measured, ratios: Option<(f64, f64)>) {
    let Some(s) = &m.summary else { return };
    let (rl, rc) = ratios.map_or((String::new(), String::new()), |(l, c)| {
        (format!("{l:.3}"), format!("{c:.3}"))
    });
    let thread = m
        .thread_cpu_ns_per_op()
        .map_or(String::new(), |t| format!("{:.2}", t / 1e3));
    let _ = writeln!(
        out,
        "{id},\"{label}\",{},{},{},{:.1},{:.1},{:.1},{:.1},{:.2},{thread},{rl},{rc}",
        m.op.name(),
        m.size,
        s.iterations,
        s.median_ns / 1e3,
        s.p99_ns / 1e3,
        s.mean_ns / 1e3,
        s.ops_per_s,
        s.cpu_ns_per_op / 1e3,
    );
}

pub fn size_label(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// `1,234`, `12.5`.
fn fmt_count(x: f64) -> String {
    if x < 100.0 {
        return format!("{x:.1}");
    }
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(size_label(1024), "1 KiB");
        assert_eq!(size_label(8 << 20), "8 MiB");
        assert_eq!(fmt_count(1234.4), "1,234");
        assert_eq!(fmt_count(123_456.0), "123,456");
        assert_eq!(fmt_count(12.46), "12.5");
    }

    #[test]
    fn civil_date_is_plausible() {
        let d = utc_now();
        assert!(d.starts_with("20") && d.ends_with(" UTC"), "{d}");
    }
}
