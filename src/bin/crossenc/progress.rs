//! Progress on stderr for the long commands (score, rerank, embed).
//!
//! On a terminal: an `indicatif` bar. Otherwise (a log file, a pipeline's
//! stderr) only with `-v`: a plain line at every tenth of the input and at
//! least every [`LOG_EVERY`], so that a 100,000-pair job shows it is alive.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use crossenc::Progress;

/// Longest silence between two plain progress lines.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Progress in `unit`s (pairs, documents, texts).
pub enum Reporter {
    /// stderr is a terminal.
    Bar(indicatif::ProgressBar),
    /// stderr is not a terminal and `-v` asked for progress.
    Lines {
        unit: &'static str,
        start: Instant,
        last: Instant,
        /// The tenth of the input the last line reported.
        tenth: usize,
    },
    /// Neither.
    Quiet,
}

impl Reporter {
    /// The reporter stderr calls for.
    pub fn new(unit: &'static str, verbose: bool) -> Reporter {
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::hidden();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "[{bar:30}] {pos}/{len} {msg} ({rate}/s, {eta} left)",
                )
                .expect("a valid template")
                .with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.1}", state.per_sec());
                    },
                )
                .progress_chars("=> "),
            );
            bar.set_message(unit);
            Reporter::Bar(bar)
        } else if verbose {
            let now = Instant::now();
            Reporter::Lines {
                unit,
                start: now,
                last: now,
                tenth: 0,
            }
        } else {
            Reporter::Quiet
        }
    }

    /// Reports `p`, called after every batch.
    pub fn update(&mut self, p: Progress) {
        match self {
            Reporter::Bar(bar) => {
                if bar.is_hidden() && p.done < p.total {
                    // Drawn from the second batch on: a one-batch run shows nothing.
                    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                }
                bar.set_length(p.total as u64);
                bar.set_position(p.done as u64);
            }
            Reporter::Lines {
                unit,
                start,
                last,
                tenth,
            } => {
                let now_tenth = 10 * p.done / p.total.max(1);
                if now_tenth > *tenth || last.elapsed() >= LOG_EVERY || p.done == p.total {
                    let secs = start.elapsed().as_secs_f64();
                    eprintln!(
                        "crossenc: {}/{} {unit} ({}%), {:.1} {unit}/s, {secs:.0} s",
                        p.done,
                        p.total,
                        100 * p.done / p.total.max(1),
                        p.done as f64 / secs.max(1e-9),
                    );
                    *tenth = now_tenth;
                    *last = Instant::now();
                }
            }
            Reporter::Quiet => {}
        }
    }

    /// Ends the bar's line.
    pub fn finish(&self) {
        if let Reporter::Bar(bar) = self {
            bar.finish();
        }
    }
}
