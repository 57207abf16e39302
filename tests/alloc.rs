//! The forward pass allocates nothing in steady state: once a `Scratch` has
//! seen a batch this large, `CrossEncoder::forward` does not touch the heap.
//! (A test binary of its own: the counting allocator is process-wide.)

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{fixture_dir, reference};
use crossenc::{CrossEncoder, PackedBatch, Scratch};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn repeated_forward_allocates_nothing() {
    for (name, threads) in [
        ("bert-l2-h32", 2),
        ("tinybert-h128", 1),
        ("bert-3labels", 2),
    ] {
        let r = reference(name);
        let model = CrossEncoder::builder()
            .threads(threads)
            .build(fixture_dir(name))
            .unwrap();
        let pairs: Vec<(&str, &str)> = r
            .pairs
            .iter()
            .map(|p| (p.query.as_str(), p.document.as_str()))
            .collect();
        let encoded = model.encode_pairs(&pairs).unwrap();
        let mut big = PackedBatch::new();
        let mut small = PackedBatch::new();
        for (i, e) in encoded.iter().enumerate() {
            big.push(&e.input_ids, &e.token_type_ids);
            if i % 3 == 0 {
                small.push(&e.input_ids, &e.token_type_ids);
            }
        }
        let mut scratch = Scratch::new();
        let first = model.forward(&big, &mut scratch).unwrap().to_vec();
        // Warm up until a pass of both shapes allocates nothing: every pool
        // thread sizes its packing buffers the first time rayon hands it work,
        // and which thread gets which task first is up to the scheduler.
        let count = |batch: &PackedBatch, scratch: &mut Scratch| {
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            model.forward(batch, scratch).unwrap();
            ALLOCATIONS.load(Ordering::SeqCst) - before
        };
        let mut warm_passes = 0;
        while count(&big, &mut scratch) + count(&small, &mut scratch) > 0 {
            warm_passes += 1;
            assert!(warm_passes < 50, "{name}: still allocating after 50 passes");
        }
        // Steady state: many passes, alternating batch shapes, allocate nothing.
        let (mut during_big, mut during_small) = (0, 0);
        for _ in 0..20 {
            during_big += count(&big, &mut scratch);
            during_small += count(&small, &mut scratch);
        }
        let again = model.forward(&big, &mut scratch).unwrap();
        assert_eq!(again, &first[..], "{name}: same batch, same logits");
        println!(
            "{name}: warmed after {warm_passes} extra pass(es); allocations in 20 repeated passes: {during_big}; in 20 smaller batches: {during_small}"
        );
        assert_eq!(during_big, 0, "{name}: a repeated forward pass allocated");
        assert_eq!(
            during_small, 0,
            "{name}: a smaller batch allocated after warm-up"
        );
    }
}
