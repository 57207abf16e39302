//! f32 GEMM: `C[m, n] = A[m, k] · B[k, n]`, then an [`Epilogue`].
//!
//! * `blocking.rs`: the BLIS loop nest (KC/MC/NC from the cache sizes) and the
//!   rayon split.
//! * `kernel.rs`: the microkernel trait and the generic register-tile kernel.
//! * `pack.rs`: the packed layouts of A and B.
//! * `x86_64/avx512.rs`, `x86_64/avx2.rs`, `aarch64/neon.rs`, `portable.rs`:
//!   one microkernel per ISA, each a tile shape plus a `#[target_feature]`
//!   instance of the generic kernel.

pub(crate) mod blocking;
pub(crate) mod kernel;
pub(crate) mod pack;
pub(crate) mod portable;

#[cfg(target_arch = "aarch64")]
pub(crate) mod aarch64;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

use blocking::Problem;
use kernel::Microkernel;
use pack::{with_scratch, AlignedBuf};

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
    // [n.div_ceil(nr)][k][nr]
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

thread_local! {
    /// `gemm_strided`'s packed B, reused across calls.
    static PACK_B: std::cell::RefCell<AlignedBuf> = std::cell::RefCell::new(AlignedBuf::default());
}

/// Sizes the calling thread's packing buffers (about 0.5 MiB: packed A for
/// every GEMM, packed B for [`Kernels::gemm_strided`]) now, so that its later
/// GEMMs of BERT shapes (hidden and FFN sizes up to a few thousand, strided
/// operands up to 512 x 64) never allocate.
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
    PACK_B.with(|buf| {
        if let Ok(mut buf) = buf.try_borrow_mut() {
            buf.reserve_floor();
        }
    });
    blocking::reserve_thread_buffers();
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
        let problem = Problem {
            m,
            k,
            n,
            a: a.as_ptr(),
            rsa: lda,
            csa: 1,
            b: b.data.as_slice().as_ptr(),
            b_depth: k,
            c: c.as_mut_ptr(),
            ldc,
            alpha: 1.0,
            beta: 0.0,
            bias: bias.map_or(std::ptr::null(), <[f32]>::as_ptr),
            residual: residual.map_or(std::ptr::null(), <[f32]>::as_ptr),
            ld_residual,
            act,
        };
        // SAFETY: the asserts above bound every access the problem describes
        // (A, packed B of [n.div_ceil(NR)][k][NR], C, bias, residual), and `c`
        // is borrowed mutably for the whole call.
        with_microkernel!(self.backend, |kernel| unsafe {
            blocking::run(kernel, &problem, threading)
        })
    }

    /// General strided `C = alpha · A·B + beta · C` on unpacked operands, for
    /// products of two activations (attention's `Q·Kᵀ` and `P·V`). Packs B
    /// into a reused per-thread buffer and runs on the calling thread.
    ///
    /// Element `(i, p)` of A is `a.0[i·a.1 + p·a.2]`, and likewise for B and C.
    /// `beta = 0` means C is not read.
    ///
    /// # Panics
    /// If a slice is too short for its shape and strides.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_strided(
        &self,
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: (&[f32], usize, usize),
        b: (&[f32], usize, usize),
        beta: f32,
        c: (&mut [f32], usize, usize),
    ) {
        if m == 0 || n == 0 {
            return;
        }
        let (a, rsa, csa) = a;
        let (b, rsb, csb) = b;
        let (c, rsc, csc) = c;
        assert!(a.len() >= span(m, rsa, k, csa), "gemm_strided: A too short");
        assert!(b.len() >= span(k, rsb, n, csb), "gemm_strided: B too short");
        assert!(c.len() >= span(m, rsc, n, csc), "gemm_strided: C too short");
        if csc != 1 {
            // The microkernels store rows of C; scatter through a dense copy.
            let mut dense = vec![0.0; m * n];
            self.gemm_strided(
                m,
                k,
                n,
                alpha,
                (a, rsa, csa),
                (b, rsb, csb),
                0.0,
                (&mut dense, n, 1),
            );
            for i in 0..m {
                for j in 0..n {
                    let dst = &mut c[i * rsc + j * csc];
                    let old = if beta == 0.0 { 0.0 } else { beta * *dst };
                    *dst = dense[i * n + j] + old;
                }
            }
            return;
        }
        let nr = self.gemm_blocking().nr;
        with_scratch(&PACK_B, n.div_ceil(nr) * k * nr, |packed| {
            pack::pack_b(packed, b, k, n, rsb, csb, nr);
            let problem = Problem {
                m,
                k,
                n,
                a: a.as_ptr(),
                rsa,
                csa,
                b: packed.as_ptr(),
                b_depth: k,
                c: c.as_mut_ptr(),
                ldc: rsc,
                alpha,
                beta,
                bias: std::ptr::null(),
                residual: std::ptr::null(),
                ld_residual: 0,
                act: None,
            };
            // SAFETY: the asserts above bound A and C (unit column stride),
            // `packed` holds B in panel layout, and `c` is borrowed mutably.
            with_microkernel!(self.backend, |kernel| unsafe {
                blocking::run(kernel, &problem, Threading::Single)
            })
        });
    }
}
