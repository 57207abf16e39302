//! f32 GEMM: `C[m, n] = A[m, k] · B[k, n]`, then an [`Epilogue`].
//!
//! * `params.rs`: the cache sizes and the KC/MC/NC derived from them.
//! * `blocking.rs`: the BLIS loop nest and the rayon split.
//! * `kernel.rs`: the microkernel trait and the generic register-tile kernel.
//! * `pack.rs`: the packed layouts of A and B.
//! * `x86_64/avx512.rs`, `x86_64/avx2.rs`, `aarch64/neon.rs`, `portable.rs`:
//!   one microkernel per ISA, each a tile shape plus a `#[target_feature]`
//!   instance of the generic kernel.

pub mod bf16;
pub(crate) mod blocking;
pub(crate) mod kernel;
pub(crate) mod pack;
pub(crate) mod params;
pub(crate) mod portable;

#[cfg(target_arch = "aarch64")]
pub(crate) mod aarch64;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

use blocking::Problem;
use kernel::Microkernel;
use pack::AlignedBuf;

use crate::ops::Activation;
use crate::{Isa, Kernels};

/// Runs `$body` with `$kernel` bound to the microkernel of `$backend`.
macro_rules! with_microkernel {
    ($backend:expr, |$kernel:ident| $body:expr) => {
        match $backend {
            #[cfg(target_arch = "x86_64")]
            $crate::Backend::Avx512(token) => {
                let $kernel = $crate::gemm::x86_64::avx512::Avx512Kernel(token);
                $body
            }
            #[cfg(target_arch = "x86_64")]
            $crate::Backend::Avx2(token) => {
                let $kernel = $crate::gemm::x86_64::avx2::Avx2Kernel(token);
                $body
            }
            #[cfg(target_arch = "aarch64")]
            $crate::Backend::Neon(token) => {
                let $kernel = $crate::gemm::aarch64::neon::NeonKernel(token);
                $body
            }
            $crate::Backend::Portable => {
                let $kernel = $crate::gemm::portable::PortableKernel;
                $body
            }
        }
    };
}
pub(crate) use with_microkernel;

/// The microkernel's tile and deepest K block, for [`Kernels::describe`] and
/// tests. MC and NC are derived per call, from the K block and the columns
/// each thread owns (see `gemm/blocking.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmBlocking {
    /// Rows of the register tile.
    pub mr: usize,
    /// Columns of the register tile (and of a packed B panel).
    pub nr: usize,
    /// The deepest K block; a longer K is split into equal blocks.
    pub kc: usize,
}

fn blocking_of<K: Microkernel>(_: K) -> GemmBlocking {
    GemmBlocking {
        mr: K::MR,
        nr: K::NR,
        kc: K::KC,
    }
}

/// The right-hand operand of [`Kernels::gemm`], packed once (when a model is
/// built) into the panel layout of one ISA's microkernel.
///
/// Layout: `n.div_ceil(NR)` panels of `NR` columns, each `[k][NR]` contiguous,
/// the last padded with zero columns, on a 64-byte boundary (see the crate
/// docs for how reduced-precision formats extend this).
#[derive(Clone, Debug)]
pub struct PackedMatrix {
    k: usize,
    n: usize,
    isa: Isa,
    nr: usize,
    /// Whether the words are bf16 pairs (`bf16.rs`): `[n.div_ceil(nr)][k/2][nr]`.
    bf16: bool,
    // [n.div_ceil(nr)][k][nr] f32, or as above
    data: AlignedBuf,
}

impl PackedMatrix {
    /// Rows of `B` (the reduction length).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of `B` (the output width).
    pub fn n(&self) -> usize {
        self.n
    }

    /// The ISA whose layout this matrix is packed in.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Whether the weights are stored as bf16 ([`Kernels::pack_linear_bf16`]).
    pub fn is_bf16(&self) -> bool {
        self.bf16
    }

    /// Bytes held, padding included.
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of_val(self.data.as_slice())
    }
}

/// What happens to `A·B` before it is stored in `C`, while the tile is still
/// in registers.
#[derive(Clone, Copy, Debug)]
pub enum Epilogue<'a> {
    /// `C = A·B`.
    None,
    /// `C = A·B + bias`, `bias: [n]`.
    Bias(&'a [f32]),
    /// `C = act(A·B + bias)`, `bias: [n]`.
    BiasActivation(&'a [f32], Activation),
    /// `C = A·B + bias + residual`, `bias: [n]`, `residual: [m, n]` with row stride `ld`.
    BiasResidual {
        /// `[n]`
        bias: &'a [f32],
        /// `[m, n]`, row stride `ld`
        residual: &'a [f32],
        /// Row stride of `residual`.
        ld: usize,
    },
}

/// Whether a GEMM may spread its work over rayon's threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threading {
    /// Split over the current rayon pool (inside `pool.install`, that pool):
    /// the weight's panels (N) first, so each thread streams its own share of
    /// B, then the rows (M) when tall enough. Small products stay on the
    /// calling thread.
    Auto,
    /// Run on the calling thread: the caller is already parallel.
    Single,
}

/// Sizes the calling thread's packing buffers (packed A and widened bf16 B,
/// about 0.25 MiB each, and the int8 GEMM's quantized A, about 1.1 MiB) now, so that its later GEMMs
/// of BERT shapes (hidden and FFN sizes up to a few thousand) never allocate.
///
/// Without it each thread grows its buffers the first time it packs, and
/// which pool thread first meets work is up to the scheduler. Run it on every
/// thread of a pool with `rayon::broadcast` before timing or counting
/// allocations:
///
/// ```
/// rayon::broadcast(|_| crossenc_kernels::gemm::reserve_thread_buffers());
/// ```
pub fn reserve_thread_buffers() {
    blocking::reserve_thread_buffers();
    crate::qgemm::reserve_thread_buffers();
}

/// Elements a strided operand spans: the index of its last element, plus one.
fn span(rows: usize, rs: usize, cols: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

impl Kernels {
    /// The GEMM tile and blocking these kernels use.
    pub fn gemm_blocking(&self) -> GemmBlocking {
        with_microkernel!(self.backend, |kernel| blocking_of(kernel))
    }

    /// Packs a PyTorch `nn.Linear` weight (`[out, in]`, row-major) as the `B`
    /// of `x · Wᵀ`: `k = in`, `n = out`.
    ///
    /// # Panics
    /// If `weight` is shorter than `out · input`.
    pub fn pack_linear(&self, weight: &[f32], out: usize, input: usize) -> PackedMatrix {
        self.pack_b(weight, input, out, 1, input)
    }

    /// Packs `B: [k, n]`, element `(p, j)` at `b[p·rsb + j·csb]`.
    ///
    /// # Panics
    /// If `b` is too short for the shape and strides.
    pub fn pack_b(&self, b: &[f32], k: usize, n: usize, rsb: usize, csb: usize) -> PackedMatrix {
        assert!(
            b.len() >= span(k, rsb, n, csb),
            "pack_b: B too short for [{k}, {n}]"
        );
        let nr = self.gemm_blocking().nr;
        let mut data = AlignedBuf::zeroed(n.div_ceil(nr) * k * nr);
        pack::pack_b(data.as_mut_slice(), b, k, n, rsb, csb, nr);
        PackedMatrix {
            k,
            n,
            isa: self.isa(),
            nr,
            bf16: false,
            data,
        }
    }

    /// `C[m, n] = epilogue(A[m, k] · B[k, n])`.
    ///
    /// `a` has row stride `lda >= k`, `c` row stride `ldc >= n`; `b` must have
    /// been packed by kernels of the same ISA.
    ///
    /// # Panics
    /// If a slice is too short for its shape, the epilogue's operands do not
    /// match `n` / `m`, or `b` was packed for another ISA.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(
        &self,
        m: usize,
        a: &[f32],
        lda: usize,
        b: &PackedMatrix,
        c: &mut [f32],
        ldc: usize,
        epilogue: Epilogue<'_>,
        threading: Threading,
    ) {
        let (k, n) = (b.k, b.n);
        assert_eq!(
            b.isa,
            self.isa(),
            "gemm: B was packed for {} but these kernels are {}",
            b.isa,
            self.isa()
        );
        assert_eq!(b.nr, self.gemm_blocking().nr, "gemm: B's panel width");
        if m == 0 || n == 0 {
            return;
        }
        assert!(lda >= k && ldc >= n, "gemm: row stride shorter than a row");
        assert!(
            a.len() >= span(m, lda, k, 1),
            "gemm: A too short for [{m}, {k}]"
        );
        assert!(
            c.len() >= span(m, ldc, n, 1),
            "gemm: C too short for [{m}, {n}]"
        );
        let TileOuts {
            bias,
            residual,
            ld_residual,
            act,
        } = tile_out(m, n, epilogue);
        let problem = Problem {
            m,
            k,
            n,
            a: a.as_ptr(),
            rsa: lda,
            csa: 1,
            b: b.data.as_slice().as_ptr(),
            b_depth: k,
            b_pairs: false,
            c: c.as_mut_ptr(),
            ldc,
            alpha: 1.0,
            beta: 0.0,
            bias,
            residual,
            ld_residual,
            act,
        };
        if b.bf16 {
            // SAFETY: as below, with B of [n.div_ceil(NR)][k/2][NR] pair words.
            return unsafe { bf16::run(self, problem, threading) };
        }
        // SAFETY: the asserts above bound every access the problem describes
        // (A, packed B of [n.div_ceil(NR)][k][NR], C, bias, residual), and `c`
        // is borrowed mutably for the whole call.
        with_microkernel!(self.backend, |kernel| unsafe {
            blocking::run(kernel, &problem, threading)
        })
    }
}

/// An epilogue as pointers, checked against the shape of C once per GEMM;
/// [`TileOuts::offset`] gives each tile its part.
pub(crate) struct TileOuts {
    bias: *const f32,
    residual: *const f32,
    ld_residual: usize,
    act: Option<Activation>,
}

/// Checks `epilogue` against `C: [m, n]` and takes its pointers.
///
/// # Panics
/// If the bias is shorter than `n`, or the residual too short for `[m, n]`.
pub(crate) fn tile_out(m: usize, n: usize, epilogue: Epilogue<'_>) -> TileOuts {
    let (bias, residual, ld_residual, act) = match epilogue {
        Epilogue::None => (None, None, 0, None),
        Epilogue::Bias(bias) => (Some(bias), None, 0, None),
        Epilogue::BiasActivation(bias, act) => (Some(bias), None, 0, Some(act)),
        Epilogue::BiasResidual { bias, residual, ld } => {
            assert!(ld >= n, "gemm: residual row stride shorter than a row");
            assert!(
                residual.len() >= span(m, ld, n, 1),
                "gemm: residual too short for [{m}, {n}]"
            );
            (Some(bias), Some(residual), ld, None)
        }
    };
    if let Some(bias) = bias {
        assert!(bias.len() >= n, "gemm: bias shorter than n = {n}");
    }
    TileOuts {
        bias: bias.map_or(std::ptr::null(), <[f32]>::as_ptr),
        residual: residual.map_or(std::ptr::null(), <[f32]>::as_ptr),
        ld_residual,
        act,
    }
}

// SAFETY: the pointers are into the bias and residual slices the GEMM
// borrows for its whole run, which tasks on other threads only read.
unsafe impl Send for TileOuts {}
// SAFETY: as above.
unsafe impl Sync for TileOuts {}

impl TileOuts {
    /// The whole epilogue for the tile whose first element is `C[row, col]`
    /// (`C = act(A·B + bias + residual)`, C not read).
    pub(crate) fn offset(&self, row: usize, col: usize) -> kernel::TileOut {
        let mut out = kernel::TileOut::plain(1.0, 0.0);
        if !self.bias.is_null() {
            out.bias = self.bias.wrapping_add(col);
        }
        if !self.residual.is_null() {
            out.residual = self.residual.wrapping_add(row * self.ld_residual + col);
            out.ld_residual = self.ld_residual;
        }
        out.act = self.act;
        out.prefetch_c = true;
        out
    }
}
