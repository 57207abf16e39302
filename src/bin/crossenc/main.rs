//! The `crossenc` command-line tool: argument parsing and output formatting only.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod bench;
mod input;
mod progress;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use crossenc::{Builder, CrossEncoder, LongDocs, Precision, ScoreActivation, Truncation};
use serde::Serialize;
use serde_json::Value;

/// Score and rerank (query, document) pairs with a BERT cross-encoder.
#[derive(Parser)]
#[command(name = "crossenc", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score JSON Lines `{"query": ..., "document": ...}`; one JSON line out per pair, in order.
    Score {
        #[command(flatten)]
        model: ModelArgs,
        /// Input file (JSON Lines); stdin when absent.
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Rerank documents for one query; JSON Lines out, best first.
    Rerank {
        #[command(flatten)]
        model: ModelArgs,
        /// The query.
        #[arg(long)]
        query: String,
        /// Input file of documents; stdin when absent.
        #[arg(long)]
        input: Option<PathBuf>,
        /// `jsonl`: one `{"text": ..., "id": ...}` per line (`id` optional); `lines`: one document per line.
        #[arg(long, value_enum, default_value_t = Format::Jsonl)]
        format: Format,
        /// Keep only the K best documents (at least 1).
        #[arg(long, value_parser = positive_usize)]
        top_k: Option<usize>,
        /// Keep only documents scoring at least T (a number; negative for raw logits).
        #[arg(long, allow_negative_numbers = true, value_parser = finite_f32)]
        threshold: Option<f32>,
        /// Leave each document's `"text"` out of the output (the other fields still pass through).
        #[arg(long)]
        no_text: bool,
        /// When the model cannot be loaded or scoring fails: write the documents in their input
        /// order with their own `score` (kept as `original_score`), give the reason on stderr and
        /// exit 0, so that the search still answers.
        #[arg(long)]
        fallback: bool,
    },
    /// Fetch a hub model into the cache (as Python's huggingface_hub lays it out) and print its folder.
    Download {
        /// Hub id, e.g. cross-encoder/ms-marco-MiniLM-L6-v2.
        model: String,
        /// Branch, tag or commit.
        #[arg(long)]
        revision: Option<String>,
    },
    /// Sentence embeddings: JSON Lines `{"text": ...}` in, `{"embedding": [...]}` out, in order.
    Embed {
        /// A sentence-transformers model folder (modules.json, 1_Pooling/, model.safetensors, tokenizer.json) or hub id.
        #[arg(long)]
        model: String,
        /// Hub revision when --model is a hub id.
        #[arg(long)]
        revision: Option<String>,
        /// Input file (JSON Lines); stdin when absent.
        #[arg(long)]
        input: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Benchmarks: GEMM kernels, or a model end to end.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// An HTTP reranking server: TEI's /rerank and /predict, Cohere/Jina's /v1/rerank and
    /// /v2/rerank, /health, /info, /metrics. Stops on SIGTERM or Ctrl-C after answering what is
    /// in flight.
    #[cfg(feature = "server")]
    Serve(Box<ServeArgs>),
}

#[cfg(feature = "server")]
#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on (0.0.0.0 to accept other hosts).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0: any free port; the startup line names it).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Estimated tokens of queued requests scored together in one model call.
    #[arg(long, default_value_t = 16384, value_parser = positive_usize)]
    max_batch_tokens: usize,
    /// Texts (or pairs) one request may send; more is a 413.
    #[arg(long, default_value_t = 1000, value_parser = positive_usize)]
    max_client_batch_size: usize,
    /// Requests served at once; past it, 429.
    #[arg(long, default_value_t = 512, value_parser = positive_usize)]
    max_concurrent_requests: usize,
    /// Largest request body in bytes; past it, 413.
    #[arg(long, default_value_t = 2_000_000, value_parser = positive_usize)]
    payload_limit: usize,
    /// Seconds a request may take, reading its body included; past it, 408.
    #[arg(long, default_value_t = 60, value_parser = positive_usize)]
    request_timeout: usize,
    /// Require `Authorization: Bearer KEY` on every endpoint but /health (or set CROSSENC_API_KEY).
    #[arg(long)]
    api_key: Option<String>,
    /// Refuse over-long inputs (422) unless a request says `"truncate": true`, as TEI does;
    /// by default they are truncated.
    #[arg(long)]
    no_truncate: bool,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Our GEMM on BERT's shapes: GFLOP/s, % of the measured FMA peak, ratio to matrixmultiply.
    Gemm {
        /// Threads (default: 1 and all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Precision of the GEMM.
        #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
        precision: PrecisionArg,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Rounds per shape, each between two samples of the peak; `% peak` is their median.
        #[arg(long, default_value_t = bench::gemm::DEFAULT_ROUNDS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
        rounds: usize,
    },
    /// A model end to end on a built-in workload (tokenization included).
    Model {
        #[command(flatten)]
        model: ModelArgs,
        /// Workload (default: all of them).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(bench::workloads::NAMES))]
        workload: Option<String>,
        /// Timed passes per workload (default: 15 for small workloads, 5 for long, 3 for bulk).
        #[arg(long)]
        runs: Option<usize>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Print the workload's pairs as JSON Lines and exit (for tools/compare_peers.py).
        #[arg(long)]
        dump_pairs: bool,
    },
    /// `crossenc serve` on loopback under a bounded load of seed20 `/rerank` requests, beside
    /// the same model in process: requests/s, pairs/s, p50/p95/p99 per concurrency, peak RSS.
    #[cfg(feature = "server")]
    Serve {
        #[command(flatten)]
        model: ModelArgs,
        /// Concurrent clients, one row each.
        #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
        concurrency: Vec<usize>,
        /// Time limit per row, in seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Request limit per row.
        #[arg(long, default_value_t = 2000)]
        max_requests: usize,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// The options every model takes (the library's `Builder`).
#[derive(Args)]
struct RunArgs {
    /// Longest input in tokens (default: the model's own limit).
    #[arg(long)]
    max_length: Option<usize>,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = crossenc::DEFAULT_BATCH_SIZE)]
    batch_size: usize,
    /// Tokens per forward pass (bounds the activations' memory).
    #[arg(long, default_value_t = crossenc::DEFAULT_TOKEN_BUDGET)]
    token_budget: usize,
    /// How inputs longer than the max length are cut.
    #[arg(long, value_enum, default_value_t = TruncationArg::LongestFirst)]
    truncation: TruncationArg,
    /// Threads to compute on (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Precision of the encoder's linear layers: `f32` (PyTorch's results), `bf16` (bf16
    /// weights; `vdpbf16ps` on AVX512_BF16) or `int8` (8 bits, activations in blocks of 32;
    /// fastest with VNNI or Arm dotprod, about f32's speed on AVX2 alone); attention, layer
    /// norm and the head stay f32.
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    precision: PrecisionArg,
    /// Print what was loaded (ISA, max length, activation) to stderr.
    #[arg(long, short)]
    verbose: bool,
}

impl RunArgs {
    fn apply<M>(&self, mut builder: Builder<M>) -> Builder<M> {
        builder = builder
            .batch_size(self.batch_size)
            .token_budget(self.token_budget)
            .truncation(match self.truncation {
                TruncationArg::LongestFirst => Truncation::LongestFirst,
                TruncationArg::OnlySecond => Truncation::OnlySecond,
            })
            .precision(self.precision.into());
        if let Some(n) = self.max_length {
            builder = builder.max_length(n);
        }
        if let Some(n) = self.threads {
            builder = builder.threads(n);
        }
        builder
    }
}

#[derive(Args)]
struct ModelArgs {
    /// Model folder (config.json, model.safetensors, tokenizer.json), or a Hugging Face hub id.
    #[arg(long, default_value = DEFAULT_MODEL)]
    model: String,
    /// Hub revision (branch, tag or commit) when --model is a hub id.
    #[arg(long)]
    revision: Option<String>,
    #[command(flatten)]
    run: RunArgs,
    /// Score activation; `auto` uses the model's (sigmoid for one label, identity for more).
    #[arg(long, value_enum, default_value_t = ActivationArg::Auto)]
    activation: ActivationArg,
    /// Documents longer than the max length: `first` scores the truncated pair; `max` / `mean`
    /// score overlapping windows of the document and take the best / mean logit.
    #[arg(long, value_enum, default_value_t = LongDocsArg::First)]
    long_docs: LongDocsArg,
    /// With --long-docs max|mean: document tokens between window starts (default: half a window).
    #[arg(long)]
    window_stride: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum PrecisionArg {
    F32,
    Bf16,
    Int8,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Precision {
        match p {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::Int8 => Precision::Int8,
            PrecisionArg::Bf16 => Precision::Bf16,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum LongDocsArg {
    First,
    Max,
    Mean,
}

#[derive(Clone, Copy, ValueEnum)]
enum ActivationArg {
    Auto,
    Identity,
    Sigmoid,
    Softmax,
}

#[derive(Clone, Copy, ValueEnum)]
enum TruncationArg {
    LongestFirst,
    OnlySecond,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Jsonl,
    Lines,
}

/// glibc serves a large allocation with its own map and returns it to the
/// system when it is freed, but after freeing such a map it raises that
/// threshold to the map's size (up to 32 MiB), so that later buffers of a
/// few MB come from its heap arenas, where a buffer that grows leaves its old
/// copy behind for the life of the process. Loading a model frees a few such
/// maps (e.g. the query, key and value weights joined before packing), and the
/// activation buffers then grew in the arenas: peak RSS of `crossenc score`
/// on the 20 seed pairs with all-MiniLM-L6-v2 was 112 MB (f32) and 79 MB
/// (int8) with glibc's default, 102 MB and 66 MB with the threshold fixed at
/// its default 128 KiB. (musl and other systems: nothing to do.)
fn keep_large_allocations_mapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::raw::c_int;
        unsafe extern "C" {
            fn mallopt(param: c_int, value: c_int) -> c_int;
        }
        const M_MMAP_THRESHOLD: c_int = -3;
        // SAFETY: mallopt takes no pointers; setting a threshold before any
        // thread is started only changes where later allocations are placed.
        unsafe { mallopt(M_MMAP_THRESHOLD, 128 << 10) };
    }
}

fn main() -> ExitCode {
    keep_large_allocations_mapped();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Score { model, input } => score(&model, input.as_deref()),
        Command::Rerank {
            model,
            query,
            input,
            format,
            top_k,
            threshold,
            no_text,
            fallback,
        } => {
            let options = RerankOptions {
                format,
                top_k,
                threshold,
                no_text,
                fallback,
            };
            rerank(&model, &query, input.as_deref(), &options)
        }
        Command::Bench { what } => bench(what),
        #[cfg(feature = "server")]
        Command::Serve(args) => serve(*args),
        Command::Embed {
            model,
            revision,
            input,
            run,
        } => embed(&model, revision, input.as_deref(), &run),
        Command::Download { model, revision } => {
            resolve_model(&model, revision).map(|dir| println!("{}", dir.display()))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`crossenc score ... | head -1`) is not an
        // error of ours: stop quietly, as grep and ripgrep do.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(args: &ModelArgs) -> Result<CrossEncoder> {
    let dir = resolve_model(&args.model, args.revision.clone())?;
    let mut builder = args.run.apply(CrossEncoder::builder());
    builder = match args.activation {
        ActivationArg::Auto => {
            // A multi-label model (NLI) that names no activation gets label
            // probabilities on the command line; the library keeps
            // sentence-transformers' default (raw logits) for it.
            let config = crossenc::BertConfig::from_file(&dir.join("config.json"))
                .with_context(|| format!("cannot load the model in {}", dir.display()))?;
            if config.num_labels() > 1 && config.activation.is_none() {
                builder.activation(ScoreActivation::Softmax)
            } else {
                builder
            }
        }
        ActivationArg::Identity => builder.activation(ScoreActivation::Identity),
        ActivationArg::Sigmoid => builder.activation(ScoreActivation::Sigmoid),
        ActivationArg::Softmax => builder.activation(ScoreActivation::Softmax),
    };
    builder = builder.long_docs(match args.long_docs {
        LongDocsArg::First => LongDocs::First,
        LongDocsArg::Max => LongDocs::Max,
        LongDocsArg::Mean => LongDocs::Mean,
    });
    if let Some(n) = args.window_stride {
        builder = builder.window_stride(n);
    }
    let model = builder
        .build(&dir)
        .with_context(|| format!("cannot load the model in {}", dir.display()))?;
    if args.run.verbose {
        let c = model.config();
        eprintln!(
            "crossenc: {} layers, hidden {}, {} label(s); max length {}; activation {}; long documents {}; precision {}; kernels {}",
            c.num_hidden_layers,
            c.hidden_size,
            c.num_labels(),
            model.max_length(),
            model.activation().name(),
            model.long_docs().name(),
            model.precision().name(),
            model.kernel_path()
        );
    }
    Ok(model)
}

/// Whether `e` comes from writing to a closed pipe.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(|json| json.io_error_kind())
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// `--top-k`: a whole number of at least 1.
fn positive_usize(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (0 keeps no document)".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// `--threshold`: a finite number (NaN would keep no document, silently).
fn finite_f32(s: &str) -> std::result::Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err("must be a finite number".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The input file, or stdin.
fn open(input: Option<&Path>) -> Result<Box<dyn BufRead>> {
    Ok(match input {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    })
}

#[cfg(feature = "server")]
fn serve(args: ServeArgs) -> Result<()> {
    use crossenc::serve::{ServeOptions, Server};
    let api_key = args
        .api_key
        .or_else(|| std::env::var("CROSSENC_API_KEY").ok())
        .filter(|k| !k.is_empty());
    let options = ServeOptions {
        host: args.host,
        port: args.port,
        max_batch_tokens: args.max_batch_tokens,
        max_client_batch_size: args.max_client_batch_size,
        max_concurrent_requests: args.max_concurrent_requests,
        payload_limit: args.payload_limit,
        request_timeout: std::time::Duration::from_secs(args.request_timeout as u64),
        api_key,
        model_id: args.model.model.clone(),
        truncate: !args.no_truncate,
    };
    let auth = if options.api_key.is_some() {
        "; API key required"
    } else {
        ""
    };
    // A sentence-transformers folder (modules.json) is an embedding model: /embed.
    let dir = resolve_model(&args.model.model, args.model.revision.clone())?;
    let (server, about) = if dir.join("modules.json").is_file() {
        let model = args
            .model
            .run
            .apply(crossenc::SentenceEmbedder::builder())
            .build(&dir)
            .with_context(|| format!("cannot load the model in {}", dir.display()))?;
        let about = format!(
            "embedding model {}, precision {}, kernels {}{auth}; POST /embed",
            args.model.model,
            model.precision().name(),
            model.kernel_path()
        );
        (Server::start_embedder(model, options)?, about)
    } else {
        let model = load(&args.model)?;
        let about = format!(
            "reranker {}, precision {}, kernels {}{auth}",
            args.model.model,
            model.precision().name(),
            model.kernel_path()
        );
        (Server::start(model, options)?, about)
    };
    eprintln!(
        "crossenc serve: listening on http://{} ({about})",
        server.addr()
    );
    server.run_until_signal()?;
    eprintln!("crossenc serve: stopped");
    Ok(())
}

fn score(args: &ModelArgs, input: Option<&Path>) -> Result<()> {
    let pairs = input::pairs(open(input)?)?;
    if pairs.is_empty() {
        // A retriever that found nothing is not an error: nothing to score, nothing written.
        return Ok(());
    }
    let model = load(args)?;
    let labels = model.labels();
    // Each line as soon as its batch is done (a line-buffered stdout), so a
    // reader downstream sees results while the rest is scored.
    let mut out = std::io::LineWriter::new(std::io::stdout());
    let mut written: std::io::Result<()> = Ok(());
    let mut bar = progress::Reporter::new("pairs", args.run.verbose);
    model.predict_each(
        &pairs,
        |p| bar.update(p),
        |_, p| {
            if written.is_ok() {
                written = write_score_line(&mut out, labels, &p);
            }
        },
    )?;
    bar.finish();
    written?;
    out.flush()?;
    leave_to_exit(model);
    Ok(())
}

/// Leaves `value`'s memory to the process's exit rather than to its
/// destructors, for a command that is about to return: a model's are tens of
/// thousands of frees (the tokenizer's vocabulary) and unmaps, 5-10 ms of a
/// one-pair `score` that the kernel does faster when the process ends.
fn leave_to_exit<T>(value: T) {
    std::mem::forget(value);
}

/// One `score` output line.
fn write_score_line(
    out: &mut impl Write,
    labels: &[String],
    p: &crossenc::Prediction,
) -> std::io::Result<()> {
    // One label: the score. Several: the best label's score and name, and every score.
    let best = (0..p.scores.len())
        .max_by(|&a, &b| p.scores[a].total_cmp(&p.scores[b]))
        .unwrap_or(0);
    let multi = p.scores.len() > 1;
    let line = ScoreLine {
        score: p.scores[best],
        label: multi.then(|| labels[best].as_str()),
        scores: multi.then_some(&p.scores),
        logits: &p.logits,
        truncated: p.truncated,
        windows: (p.windows > 1).then_some(p.windows),
    };
    serde_json::to_writer(&mut *out, &line)?;
    writeln!(out)
}

/// `rerank`'s options besides the model's.
struct RerankOptions {
    format: Format,
    top_k: Option<usize>,
    threshold: Option<f32>,
    no_text: bool,
    fallback: bool,
}

fn rerank(
    args: &ModelArgs,
    query: &str,
    input: Option<&Path>,
    options: &RerankOptions,
) -> Result<()> {
    let docs = input::documents(open(input)?, options.format == Format::Lines)?;
    if docs.is_empty() {
        return Ok(());
    }
    let texts: Vec<&str> = docs
        .iter()
        .map(|d| d["text"].as_str().expect("checked above"))
        .collect();
    let (ranked, windows) = match score_documents(args, query, &texts) {
        Ok(predictions) => {
            let scores: Vec<f32> = predictions.iter().map(|p| p.scores[0]).collect();
            let threshold = options.threshold.unwrap_or(f32::NEG_INFINITY);
            let ranked = crossenc::rank_scores(&scores, options.top_k, threshold)
                .into_iter()
                .map(|r| (r.index, Score::New(r.score)))
                .collect::<Vec<_>>();
            (ranked, predictions.iter().map(|p| p.windows).collect())
        }
        Err(e) if options.fallback => {
            eprintln!(
                "crossenc: reranking failed, so the documents keep their input order (--fallback): {e:#}"
            );
            let ranked = docs
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    (
                        i,
                        Score::Original(d.get("score").cloned().unwrap_or(Value::Null)),
                    )
                })
                .take(options.top_k.unwrap_or(usize::MAX))
                .collect();
            (ranked, vec![1; docs.len()])
        }
        Err(e) => return Err(e),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (index, score) in ranked {
        let mut line = rerank_line(&docs[index], index, score, windows[index]);
        if options.no_text {
            line.fields.remove("text");
        }
        serde_json::to_writer(&mut out, &line)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}

/// Loads the model and scores `query` against every text.
fn score_documents(
    args: &ModelArgs,
    query: &str,
    texts: &[&str],
) -> Result<Vec<crossenc::Prediction>> {
    let model = load(args)?;
    if model.config().num_labels() != 1 {
        // The library refuses too; say it before any work is done.
        bail!(crossenc::Error::MultiLabel {
            num_labels: model.config().num_labels()
        });
    }
    let pairs: Vec<(&str, &str)> = texts.iter().map(|t| (query, *t)).collect();
    let mut bar = progress::Reporter::new("documents", args.run.verbose);
    let predictions = model.predict_all_with_progress(&pairs, |p| bar.update(p))?;
    bar.finish();
    leave_to_exit(model);
    Ok(predictions)
}

/// One output line of `rerank`: every field of the input document as it
/// came, the new `score` (the input's own kept as `original_score`), the
/// document's input position as `index` (unless the input has an `index` of
/// its own) and, for a document scored in several windows, `windows`.
fn rerank_line(
    doc: &serde_json::Map<String, Value>,
    index: usize,
    score: Score,
    windows: usize,
) -> RerankLine {
    let mut fields = doc.clone();
    if let Some(original) = fields.remove("score") {
        fields.entry("original_score").or_insert(original);
    }
    fields.entry("index").or_insert(Value::from(index));
    if windows > 1 {
        fields.insert("windows".into(), Value::from(windows));
    }
    RerankLine { fields, score }
}

/// One line of `crossenc rerank` output.
#[derive(Serialize)]
struct RerankLine {
    #[serde(flatten)]
    fields: serde_json::Map<String, Value>,
    score: Score,
}

/// A `rerank` score: ours (written as the f32 it is), or with `--fallback`
/// the input's own, as it came.
#[derive(Serialize)]
#[serde(untagged)]
enum Score {
    New(f32),
    Original(Value),
}

/// The reranker used when `--model` is not given.
#[cfg(feature = "hub")]
const DEFAULT_MODEL: &str = crossenc::hub::DEFAULT_RERANKER;
/// Without the hub, the default is a local folder of that name.
#[cfg(not(feature = "hub"))]
const DEFAULT_MODEL: &str = "ms-marco-MiniLM-L6-v2";

/// A local folder as it is; a hub id through the cache (downloading what is missing).
fn resolve_model(model: &str, revision: Option<String>) -> Result<PathBuf> {
    #[cfg(feature = "hub")]
    {
        let options = crossenc::hub::HubOptions {
            revision,
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        };
        Ok(crossenc::hub::resolve(model, &options)?)
    }
    #[cfg(not(feature = "hub"))]
    {
        if revision.is_some() {
            bail!("--revision needs the `hub` feature (this build has none)");
        }
        let dir = PathBuf::from(model);
        crossenc::check_model_folder(&dir)?;
        Ok(dir)
    }
}

fn embed(model: &str, revision: Option<String>, input: Option<&Path>, run: &RunArgs) -> Result<()> {
    let texts = input::texts(open(input)?)?;
    if texts.is_empty() {
        return Ok(());
    }
    let dir = resolve_model(model, revision)?;
    let embedder = run
        .apply(crossenc::SentenceEmbedder::builder())
        .build(&dir)
        .with_context(|| format!("cannot load the model in {}", dir.display()))?;
    if run.verbose {
        eprintln!(
            "crossenc: embeddings of {} floats; pooling {:?}; normalize {}; max length {}; precision {}; kernels {}",
            embedder.dimension(),
            embedder.pooling(),
            embedder.normalize(),
            embedder.max_length(),
            embedder.precision().name(),
            embedder.kernel_path()
        );
    }
    // Each embedding is written as soon as its batch is done: memory stays
    // flat however many texts there are.
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut written: std::io::Result<()> = Ok(());
    let mut bar = progress::Reporter::new("texts", run.verbose);
    embedder.embed_each(
        &texts,
        |p| bar.update(p),
        |_, embedding| {
            if written.is_ok() {
                // f32s, written as the shortest decimal that reads back as the same f32.
                written = serde_json::to_writer(
                    &mut out,
                    &EmbedLine {
                        embedding: &embedding,
                    },
                )
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out));
            }
        },
    )?;
    bar.finish();
    written.context("cannot write the embeddings")?;
    out.flush()?;
    leave_to_exit(embedder);
    Ok(())
}

fn bench(what: BenchCommand) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match what {
        BenchCommand::Gemm {
            threads,
            json,
            precision,
            rounds,
        } => bench::gemm::run(threads, json, precision.into(), rounds, &mut out)?,
        BenchCommand::Model {
            model,
            workload,
            runs,
            json,
            dump_pairs,
        } => {
            let names: Vec<&str> = match &workload {
                Some(name) => vec![name.as_str()],
                None => bench::workloads::NAMES.to_vec(),
            };
            if dump_pairs {
                for name in names {
                    let w = bench::workloads::workload(name).expect("clap checked the name");
                    for (query, document) in &w.pairs {
                        let line = serde_json::json!({"query": query, "document": document});
                        writeln!(out, "{line}")?;
                    }
                }
                return Ok(());
            }
            let model = load(&model)?;
            bench::model::run(&model, &names, runs, json, &mut out)?;
        }
        #[cfg(feature = "server")]
        BenchCommand::Serve {
            model,
            concurrency,
            seconds,
            max_requests,
            json,
        } => {
            let model = load(&model)?;
            bench::serve::run(model, &concurrency, seconds, max_requests, json, &mut out)?;
        }
    }
    Ok(())
}

/// One line of `crossenc embed` output.
#[derive(Serialize)]
struct EmbedLine<'a> {
    embedding: &'a [f32],
}

/// One line of `crossenc score` output.
#[derive(Serialize)]
struct ScoreLine<'a> {
    score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scores: Option<&'a Vec<f32>>,
    logits: &'a [f32],
    truncated: bool,
    /// Windows the document was scored in, when more than one.
    #[serde(skip_serializing_if = "Option::is_none")]
    windows: Option<usize>,
}
