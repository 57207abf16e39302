//! Packing: operands rearranged into the order a microkernel reads them.
//!
//! * B (the weight) is packed once, panel by panel: panel `j` holds columns
//!   `j·NR..(j+1)·NR` for every row of B, `[k][NR]` contiguous, the last panel
//!   padded with zero columns. A K block `p0..p0+kc` of a panel is then the
//!   contiguous run at `j·k·NR + p0·NR`.
//! * A (the activations) is packed per `MC x KC` block into micro-panels of
//!   `MR` rows, `[kc][MR]` contiguous, the last padded with zero rows.

use std::cell::RefCell;
use std::thread::LocalKey;

use rayon::prelude::*;

/// Floats on 64-byte boundaries (one cache line, one zmm register), so that
/// packed panels never straddle a line at their start.
///
/// Stored as a `Vec<f32>` with up to 15 spare floats in front, rather than as
/// 64-byte-aligned lines: the allocator can only hand out zeroed memory
/// without clearing it (`calloc` of fresh pages) at its own alignment, and a
/// memset of the packed weights was a third of a cold start.
#[derive(Default)]
pub(crate) struct AlignedBuf {
    data: Vec<f32>,
    // Index of the first 64-byte-aligned float of `data`.
    offset: usize,
    len: usize,
}

/// Floats per 64-byte line.
pub(crate) const LINE: usize = 16;

impl AlignedBuf {
    /// `len` zeros.
    pub(crate) fn zeroed(len: usize) -> AlignedBuf {
        let mut buf = AlignedBuf::default();
        buf.allocate(len);
        buf.len = len;
        buf
    }

    /// Replaces the storage with zeroed room for `len` aligned floats.
    fn allocate(&mut self, len: usize) {
        // `vec![0.0; n]` asks the allocator for zeroed memory.
        self.data = vec![0.0; len + LINE - 1];
        let misalign = (self.data.as_ptr() as usize / 4) % LINE;
        self.offset = (LINE - misalign) % LINE;
    }

    /// Aligned floats the storage holds.
    fn capacity(&self) -> usize {
        self.data.len().saturating_sub(LINE - 1)
    }

    /// Grows to at least `len` floats (contents unspecified), keeping the allocation otherwise.
    pub(crate) fn ensure(&mut self, len: usize) {
        if self.capacity() < len {
            // Grow once to a size that covers every BERT-shaped need (an A
            // block is at most L2/2 bytes), so which thread meets which shape
            // first does not decide whether a later call allocates.
            self.allocate(len.max(FLOOR_FLOATS).next_power_of_two());
        }
        self.len = self.len.max(len);
    }

    /// Grows the allocation to the floor if it is smaller; the length stays.
    pub(crate) fn reserve_floor(&mut self) {
        if self.capacity() < FLOOR_FLOATS {
            self.allocate(FLOOR_FLOATS);
        }
    }

    pub(crate) fn as_slice(&self) -> &[f32] {
        &self.data[self.offset..self.offset + self.len]
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data[self.offset..self.offset + self.len]
    }
}

impl Clone for AlignedBuf {
    /// A copy at its own aligned offset (a derived clone would keep the
    /// original's offset into a differently aligned allocation).
    fn clone(&self) -> AlignedBuf {
        let mut copy = AlignedBuf::zeroed(self.len);
        copy.as_mut_slice().copy_from_slice(self.as_slice());
        copy
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} floats)", self.len)
    }
}

/// The smallest per-thread packing buffer: 64 Ki floats (256 KiB, half of L2).
const FLOOR_FLOATS: usize = 1 << 16;

/// Runs `f` on `len` floats of this thread's `key` buffer, grown once and then
/// reused, so steady-state GEMMs allocate nothing. A re-entrant use (the
/// buffer already borrowed on this thread) gets a fresh buffer instead.
pub(crate) fn with_scratch<R>(
    key: &'static LocalKey<RefCell<AlignedBuf>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.ensure(len);
            f(&mut buf.as_mut_slice()[..len])
        }
        Err(_) => f(AlignedBuf::zeroed(len).as_mut_slice()),
    })
}

/// Weight panels each task packs (or converts, or quantizes) at load, on the
/// current rayon pool: a weight's panels are independent, and packing a
/// model's linears is most of its start (~45 ms for MiniLM-L6 on one Zen 4
/// core, much of it first-touch page faults). Eight 16-column panels of
/// K = 384 are ~50k weights, tens of microseconds.
pub(crate) const LOAD_PANELS_PER_TASK: usize = 8;

/// Packs `B: [k, n]` (element `(p, j)` at `b[p·rsb + j·csb]`) into `nr`-column
/// panels, [`LOAD_PANELS_PER_TASK`] to a task.
///
/// # Panics
/// If `dst` is shorter than `n.div_ceil(nr) · k · nr` or `b` too short.
pub(crate) fn pack_b(
    dst: &mut [f32],
    b: &[f32],
    k: usize,
    n: usize,
    rsb: usize,
    csb: usize,
    nr: usize,
) {
    let panels = n.div_ceil(nr);
    let dst = &mut dst[..panels * k * nr];
    if k == 0 {
        return;
    }
    dst.par_chunks_exact_mut(k * nr)
        .enumerate()
        .with_min_len(LOAD_PANELS_PER_TASK)
        .for_each(|(j, panel)| {
            let cols = nr.min(n - j * nr);
            for (p, row) in panel.chunks_exact_mut(nr).enumerate() {
                let src = p * rsb + j * nr * csb;
                if csb == 1 {
                    row[..cols].copy_from_slice(&b[src..src + cols]);
                } else {
                    for (jj, x) in row[..cols].iter_mut().enumerate() {
                        *x = b[src + jj * csb];
                    }
                }
                row[cols..].fill(0.0);
            }
        });
}

/// Packs an `mc x kc` block of A into `MR`-row micro-panels at `dst`.
///
/// # Safety
/// `a[i·rsa + p·csa]` is readable for `i < mc`, `p < kc`; `dst` has room for
/// `mc.div_ceil(MR) · MR · kc` floats.
#[inline(always)]
pub(crate) unsafe fn pack_a<const MR: usize>(
    dst: *mut f32,
    a: *const f32,
    rsa: usize,
    csa: usize,
    mc: usize,
    kc: usize,
) {
    for i0 in (0..mc).step_by(MR) {
        let rows = MR.min(mc - i0);
        // SAFETY: i0 < mc, so the micro-panel starts inside dst.
        let panel = unsafe { dst.add(i0 * kc) };
        if rows == MR && csa == 1 {
            // The common case: MR whole rows, each contiguous. Read them as MR
            // sequential streams, write the panel sequentially.
            let src: [*const f32; MR] = std::array::from_fn(|r| a.wrapping_add((i0 + r) * rsa));
            for p in 0..kc {
                for (r, row) in src.iter().enumerate() {
                    // SAFETY: row i0 + r < mc and p < kc are inside the block;
                    // p·MR + r < kc·MR is inside the panel.
                    unsafe { *panel.add(p * MR + r) = *row.add(p) };
                }
            }
        } else if rows == MR && rsa == 1 {
            // A transposed (attention's Vᵀ): each p is MR adjacent floats.
            for p in 0..kc {
                // SAFETY: rows i0..i0 + MR < mc and p < kc are inside the
                // block; p·MR..p·MR + MR is inside the panel.
                unsafe {
                    let src = a.add(i0 + p * csa);
                    for r in 0..MR {
                        *panel.add(p * MR + r) = *src.add(r);
                    }
                }
            }
        } else {
            for p in 0..kc {
                for r in 0..MR {
                    let x = if r < rows {
                        // SAFETY: i0 + r < mc and p < kc are inside the block.
                        unsafe { *a.add((i0 + r) * rsa + p * csa) }
                    } else {
                        0.0
                    };
                    // SAFETY: p·MR + r < kc·MR is inside the panel.
                    unsafe { *panel.add(p * MR + r) = x };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AlignedBuf;

    fn aligned(buf: &AlignedBuf) -> bool {
        (buf.as_slice().as_ptr() as usize).is_multiple_of(64)
    }

    #[test]
    fn buffers_start_on_a_line_and_hold_what_they_promise() {
        for len in [1, 15, 16, 17, 1000, 1 << 16, (1 << 20) + 3] {
            let buf = AlignedBuf::zeroed(len);
            assert!(aligned(&buf), "zeroed({len})");
            assert_eq!(buf.as_slice().len(), len);
            assert!(buf.as_slice().iter().all(|&x| x == 0.0));
            let mut copy = buf.clone();
            assert!(aligned(&copy), "clone of {len}");
            copy.as_mut_slice()[len - 1] = 1.0;
            let mut grown = copy.clone();
            grown.ensure(len * 3);
            assert!(aligned(&grown), "ensure({})", len * 3);
            assert_eq!(grown.as_slice().len(), len * 3);
        }
        let mut scratch = AlignedBuf::default();
        scratch.reserve_floor();
        assert!(aligned(&scratch) && scratch.as_slice().is_empty());
        scratch.ensure(100);
        assert!(aligned(&scratch) && scratch.as_slice().len() == 100);
    }
}
