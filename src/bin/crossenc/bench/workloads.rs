//! Benchmark workloads, built deterministically from the text in
//! `benches/data/corpus.txt` (compiled in): documents are windows of the
//! corpus's words, lengths and offsets drawn from a fixed-seed generator.

/// The corpus, compiled into the binary so every build benches the same text.
const CORPUS: &str = include_str!("../../../../benches/data/corpus.txt");

/// A named set of (query, document) pairs.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Its name on the command line.
    pub name: &'static str,
    /// The pairs.
    pub pairs: Vec<(String, String)>,
}

/// The workloads `crossenc bench model` knows, in the order it runs them.
pub const NAMES: [&str; 4] = ["seed20", "bulk", "latency", "long"];

/// A small, fixed-seed generator (SplitMix64): the same numbers on every platform.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

/// `count` documents of `min..=max` words each.
fn documents(seed: u64, count: usize, min: usize, max: usize) -> Vec<String> {
    let words: Vec<&str> = CORPUS.split_whitespace().collect();
    let mut rng = SplitMix(seed);
    (0..count)
        .map(|_| {
            let len = rng.range(min, max);
            let start = rng.range(0, words.len() - 1);
            (0..len)
                .map(|i| words[(start + i) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn with_query(query: &str, docs: Vec<String>) -> Vec<(String, String)> {
    docs.into_iter().map(|d| (query.to_string(), d)).collect()
}

/// The workload called `name`, if there is one.
///
/// - `seed20`: 1 query x 20 documents of 80-250 words;
/// - `bulk`: 1 query x 1000 documents of 5-400 words;
/// - `latency`: 1 pair of about 64 tokens;
/// - `long`: 32 pairs that overflow 512 tokens (truncated by the model's max length).
pub fn workload(name: &str) -> Option<Workload> {
    let pairs = match name {
        "seed20" => with_query(
            "how does a cross-encoder rerank search results",
            documents(20, 20, 80, 250),
        ),
        "bulk" => with_query(
            "symptoms and treatment of spondylolisthesis",
            documents(1000, 1000, 5, 400),
        ),
        "latency" => with_query(
            "why does a static build fail to link",
            documents(1, 1, 48, 48),
        ),
        "long" => with_query(
            "how is a faster model evaluated",
            documents(32, 32, 600, 700),
        ),
        _ => return None,
    };
    let name = NAMES.into_iter().find(|n| *n == name)?;
    Some(Workload { name, pairs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_are_deterministic_and_sized() {
        for name in NAMES {
            let a = workload(name).unwrap();
            assert_eq!(a.pairs, workload(name).unwrap().pairs, "{name}");
        }
        let words = |w: &Workload| {
            w.pairs
                .iter()
                .map(|(_, d)| d.split(' ').count())
                .collect::<Vec<_>>()
        };
        let seed20 = workload("seed20").unwrap();
        assert_eq!(seed20.pairs.len(), 20);
        assert!(words(&seed20).iter().all(|&n| (80..=250).contains(&n)));
        let bulk = workload("bulk").unwrap();
        assert_eq!(bulk.pairs.len(), 1000);
        assert!(words(&bulk).iter().all(|&n| (5..=400).contains(&n)));
        assert_eq!(workload("latency").unwrap().pairs.len(), 1);
        assert_eq!(workload("long").unwrap().pairs.len(), 32);
        assert!(workload("nope").is_none());
    }
}
