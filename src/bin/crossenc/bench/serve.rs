//! `crossenc bench serve`: the HTTP server under a bounded load on loopback,
//! beside the same model in process.
//!
//! Measures, in one run and on the same model:
//! - in process: `predict` on the seed20 pairs (what `crossenc score` does),
//!   pairs/s; one-pair latency (the `latency` workload);
//! - the server (started in this process on 127.0.0.1, any free port): one
//!   request of that one pair at a time on an idle server, p50; then, per
//!   concurrency, clients each sending seed20-style `/rerank` requests (one
//!   query, 20 documents) back to back: requests/s, pairs/s, p50/p95/p99
//!   latency; and the process's peak RSS.
//!
//! Every client loop is bounded by a request count and a time limit.
//!
//!     crossenc bench serve --model DIR [--concurrency 1,4,16] [--seconds 10] [--json]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use crossenc::serve::{ServeOptions, Server};
use crossenc::CrossEncoder;
use serde_json::json;

use super::workloads::workload;

/// One POST on a fresh connection; the status and the body.
fn post(addr: SocketAddr, path: &str, body: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    stream.set_nodelay(true)?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status line")?;
    let mut rest = String::new();
    reader.read_to_string(&mut rest)?;
    let body = rest
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((code, body))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn median_of(mut times: Vec<Duration>) -> Duration {
    times.sort();
    percentile(&times, 0.5)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The load run; `model` is moved into the server after the in-process figures.
pub fn run(
    model: CrossEncoder,
    concurrency: &[usize],
    seconds: f64,
    max_requests: usize,
    json_out: bool,
    out: &mut impl Write,
) -> Result<()> {
    let seed20 = workload("seed20").expect("built in").pairs;
    let one = workload("latency").expect("built in").pairs;

    // In process: the same pairs, the same model.
    let _ = model.predict(&seed20)?;
    let score_time = median_of(
        (0..7)
            .map(|_| {
                let t = Instant::now();
                model.predict(&seed20).map(|_| t.elapsed())
            })
            .collect::<crossenc::Result<_>>()?,
    );
    let score_pairs_per_s = seed20.len() as f64 / score_time.as_secs_f64();
    let one_in_process = median_of(
        (0..30)
            .map(|_| {
                let t = Instant::now();
                model.predict(&one).map(|_| t.elapsed())
            })
            .collect::<crossenc::Result<_>>()?,
    );
    let about = format!(
        "precision {}, kernels {}, {} thread(s)",
        model.precision().name(),
        model.kernel_path(),
        model.threads()
    );

    let server = Server::start(
        model,
        ServeOptions {
            port: 0,
            ..ServeOptions::default()
        },
    )?;
    let addr = server.addr();
    let (query, docs): (String, Vec<String>) = (
        seed20[0].0.clone(),
        seed20.iter().map(|(_, d)| d.clone()).collect(),
    );
    let seed20_body = json!({"query": query, "texts": docs}).to_string();
    let one_body = json!({"query": one[0].0, "texts": [one[0].1]}).to_string();

    // Idle server, one pair at a time.
    let mut idle = Vec::new();
    for _ in 0..31 {
        let t = Instant::now();
        let (status, body) = post(addr, "/rerank", &one_body)?;
        if status != 200 {
            bail!("the server answered {status}: {body}");
        }
        idle.push(t.elapsed());
    }
    idle.remove(0); // the first connects a cold path
    let idle_p50 = median_of(idle);

    let mut rows = Vec::new();
    for &clients in concurrency {
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let per_client = max_requests.div_ceil(clients.max(1));
        let start = Instant::now();
        let latencies: Vec<Duration> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..clients)
                .map(|_| {
                    scope.spawn(|| -> Result<Vec<Duration>> {
                        let mut times = Vec::new();
                        while times.len() < per_client && Instant::now() < deadline {
                            let t = Instant::now();
                            let (status, body) = post(addr, "/rerank", &seed20_body)?;
                            if status != 200 {
                                bail!("the server answered {status}: {body}");
                            }
                            times.push(t.elapsed());
                        }
                        Ok(times)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("client thread"))
                .collect::<Result<Vec<_>>>()
                .map(|v| v.into_iter().flatten().collect())
        })?;
        let wall = start.elapsed().as_secs_f64();
        let mut sorted = latencies;
        sorted.sort();
        let requests = sorted.len();
        rows.push(json!({
            "concurrency": clients,
            "requests": requests,
            "seconds": wall,
            "requests_per_s": requests as f64 / wall,
            "pairs_per_s": (requests * seed20.len()) as f64 / wall,
            "p50_ms": ms(percentile(&sorted, 0.5)),
            "p95_ms": ms(percentile(&sorted, 0.95)),
            "p99_ms": ms(percentile(&sorted, 0.99)),
        }));
    }
    server.shutdown()?;
    let rss = peak_rss_kib();

    let report = json!({
        "about": about,
        "score_pairs_per_s": score_pairs_per_s,
        "one_pair_in_process_ms": ms(one_in_process),
        "one_pair_idle_server_p50_ms": ms(idle_p50),
        "load": rows,
        "peak_rss_kib": rss,
    });
    if json_out {
        writeln!(out, "{report}")?;
        return Ok(());
    }
    writeln!(
        out,
        "crossenc bench serve: {about}; seed20 requests (1 query x 20 documents) on 127.0.0.1"
    )?;
    writeln!(
        out,
        "in process: seed20 {score_pairs_per_s:.1} pairs/s (predict, as `crossenc score`); one pair {:.2} ms",
        ms(one_in_process)
    )?;
    writeln!(
        out,
        "idle server: one pair p50 {:.2} ms (+{:.2} ms over in process)",
        ms(idle_p50),
        ms(idle_p50) - ms(one_in_process)
    )?;
    writeln!(
        out,
        "{:>11} {:>9} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8}",
        "concurrency", "requests", "req/s", "pairs/s", "p50 ms", "p95 ms", "p99 ms", "vs score"
    )?;
    for r in &rows {
        let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
        writeln!(
            out,
            "{:>11} {:>9} {:>10.2} {:>10.1} {:>9.1} {:>9.1} {:>9.1} {:>7.0}%",
            r["concurrency"].as_u64().unwrap_or(0),
            r["requests"].as_u64().unwrap_or(0),
            f("requests_per_s"),
            f("pairs_per_s"),
            f("p50_ms"),
            f("p95_ms"),
            f("p99_ms"),
            100.0 * f("pairs_per_s") / score_pairs_per_s
        )?;
    }
    if let Some(kib) = rss {
        writeln!(
            out,
            "peak RSS of this process (server, model, clients): {kib} KiB"
        )?;
    }
    Ok(())
}
