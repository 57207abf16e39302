//! The forward pass allocates nothing in steady state: once a `Scratch` has
//! seen a batch this large, `CrossEncoder::forward` does not touch the heap.
//! (A test binary of its own: the counting allocator is process-wide.)

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{emulated, fixture_dir, reference};
use crossenc::{CrossEncoder, PackedBatch, Precision, Scratch};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread's allocations count: the test's own thread and the
    /// model's pool threads. Not libtest's main thread, which allocates when it
    /// reports a test running for over 60 s (seen under qemu).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count_this_thread() {
    COUNTED.with(|c| c.set(true));
}

fn note() {
    // `try_with`: a thread being torn down has no thread-locals left.
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: defers to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn repeated_forward_allocates_nothing() {
    count_this_thread();
    // Under an emulator a pass is ~100x slower: 3 passes still see a
    // steady-state allocation (any would happen in every pass).
    let passes: usize = if emulated() { 3 } else { 100 };
    if passes < 100 {
        eprintln!("emulated: {passes} passes per configuration instead of 100");
    }
    for (name, threads, precision) in [
        ("bert-l2-h32", Some(2), Precision::F32),
        ("tinybert-h128", Some(1), Precision::F32),
        ("bert-3labels", Some(2), Precision::F32),
        ("bert-l2-h32", None, Precision::F32),
        ("tinybert-h128", Some(2), Precision::Int8),
        ("bert-l2-h32", None, Precision::Int8),
        ("tinybert-h128", Some(2), Precision::Bf16),
        ("bert-l2-h32", None, Precision::Bf16),
    ] {
        let r = reference(name);
        let mut builder = CrossEncoder::builder().precision(precision);
        if let Some(threads) = threads {
            builder = builder.threads(threads);
        }
        let model = builder.build(fixture_dir(name)).unwrap();
        model.install(|| rayon::broadcast(|_| count_this_thread()));
        let pairs: Vec<(&str, &str)> = r
            .pairs
            .iter()
            .map(|p| (p.query.as_str(), p.document.as_str()))
            .collect();
        let encoded = model.encode_pairs(&pairs).unwrap();
        let mut big = PackedBatch::new();
        let mut small = PackedBatch::new();
        for (i, e) in encoded.iter().enumerate() {
            big.push(&e.input_ids, &e.token_type_ids).unwrap();
            if i % 3 == 0 {
                small.push(&e.input_ids, &e.token_type_ids).unwrap();
            }
        }
        let mut scratch = Scratch::new();
        let first = model.forward(&big, &mut scratch).unwrap().to_vec();
        let count = |batch: &PackedBatch, scratch: &mut Scratch| {
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            model.forward(batch, scratch).unwrap();
            ALLOCATIONS.load(Ordering::SeqCst) - before
        };
        // The first pass sized `scratch`; building the model sized every pool
        // thread's packing buffers. From here on no pass may allocate,
        // whichever threads the scheduler hands the work to.
        let (passes, two_passes) = (passes, 2 * passes);
        let (inside_big, inside_small) = model.install(|| {
            let (mut big_allocs, mut small_allocs) = (0, 0);
            for _ in 0..passes {
                big_allocs += count(&big, &mut scratch);
                small_allocs += count(&small, &mut scratch);
            }
            (big_allocs, small_allocs)
        });
        // Called from outside the pool, each pass is one hand-off through
        // rayon's injector queue, which allocates a block per 63 of them.
        let mut outside = 0;
        for _ in 0..passes {
            outside += count(&big, &mut scratch) + count(&small, &mut scratch);
        }
        let again = model.forward(&big, &mut scratch).unwrap();
        assert_eq!(again, &first[..], "{name}: same batch, same logits");
        eprintln!(
            "{name} ({}, threads {threads:?}): allocations in {passes} passes on the pool: {inside_big}, \
             in {passes} smaller batches: {inside_small}; in {two_passes} passes from outside: {outside}",
            precision.name(),
        );
        assert_eq!(inside_big, 0, "{name}: a repeated forward pass allocated");
        assert_eq!(
            inside_small, 0,
            "{name}: a smaller batch allocated after a larger one"
        );
        assert!(
            outside <= two_passes.div_ceil(63),
            "{name}: {outside} allocations in {two_passes} passes from outside the pool, more than rayon's hand-offs",
        );
    }
}
