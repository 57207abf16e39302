use crate::ops::{apply_activation, Activation};
use crate::{Isa, Kernels};
use rayon::prelude::*;
#[derive(Clone, Debug)]
pub struct PackedMatrix {
    k: usize,
    n: usize,
    isa: Isa,
    data: Vec<f32>,
}
impl PackedMatrix {
    pub fn k(&self) -> usize {
        self.k
    }
    pub fn n(&self) -> usize {
        self.n
    }
    pub fn isa(&self) -> Isa {
        self.isa
    }
}
#[derive(Clone, Copy, Debug)]
pub enum Epilogue<'a> {
    None,
    Bias(&'a [f32]),
    BiasActivation(&'a [f32], Activation),
    BiasResidual {
        bias: &'a [f32],
        residual: &'a [f32],
        ld: usize,
    },
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threading {
    Auto,
    Single,
}
const ROWS_PER_TASK: usize = 64;
impl Kernels {
    pub fn pack_linear(&self, weight: &[f32], out: usize, input: usize) -> PackedMatrix {
        self.pack_b(weight, input, out, 1, input)
    }
    pub fn pack_b(&self, b: &[f32], k: usize, n: usize, rsb: usize, csb: usize) -> PackedMatrix {
        let mut data = Vec::with_capacity(k * n);
        for row in 0..k {
            for col in 0..n {
                data.push(b[row * rsb + col * csb]);
            }
        }
        PackedMatrix {
            k,
            n,
            isa: self.isa,
            data,
        }
    }
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
        if m == 0 || n == 0 {
            return;
        }
        assert!(lda >= k && ldc >= n);
        assert!(a.len() >= (m - 1) * lda + k);
        assert!(c.len() >= (m - 1) * ldc + n);
        let rows = |first: usize, c_rows: &mut [f32]| {
            let rows = (c_rows.len() + ldc - n) / ldc;
            self.gemm_rows(first, rows, a, lda, b, c_rows, ldc, epilogue);
        };
        let c = &mut c[..(m - 1) * ldc + n];
        if threading == Threading::Auto && m > ROWS_PER_TASK && rayon::current_num_threads() > 1 {
            c.par_chunks_mut(ROWS_PER_TASK * ldc)
                .enumerate()
                .for_each(|(i, chunk)| rows(i * ROWS_PER_TASK, chunk));
        } else {
            rows(0, c);
        }
    }
    #[allow(clippy::too_many_arguments)]
    fn gemm_rows(
        &self,
        first: usize,
        rows: usize,
        a: &[f32],
        lda: usize,
        b: &PackedMatrix,
        c: &mut [f32],
        ldc: usize,
        epilogue: Epilogue<'_>,
    ) {
        let (k, n) = (b.k, b.n);
        let a = &a[first * lda..];
        // SAFETY: the callers assert the shapes fit the slices.
        unsafe {
            matrixmultiply::sgemm(
                rows,
                k,
                n,
                1.0,
                a.as_ptr(),
                lda as isize,
                1,
                b.data.as_ptr(),
                n as isize,
                1,
                0.0,
                c.as_mut_ptr(),
                ldc as isize,
                1,
            );
        }
        for r in 0..rows {
            let out = &mut c[r * ldc..r * ldc + n];
            match epilogue {
                Epilogue::None => {}
                Epilogue::Bias(bias) => add(out, &bias[..n]),
                Epilogue::BiasActivation(bias, act) => {
                    add(out, &bias[..n]);
                    apply_activation(out, act);
                }
                Epilogue::BiasResidual { bias, residual, ld } => {
                    add(out, &bias[..n]);
                    let row = first + r;
                    add(out, &residual[row * ld..row * ld + n]);
                }
            }
        }
    }
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
        // SAFETY: the callers assert the shapes fit the slices.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                alpha,
                a.as_ptr(),
                rsa as isize,
                csa as isize,
                b.as_ptr(),
                rsb as isize,
                csb as isize,
                beta,
                c.as_mut_ptr(),
                rsc as isize,
                csc as isize,
            );
        }
    }
}
fn add(out: &mut [f32], x: &[f32]) {
    for (o, x) in out.iter_mut().zip(x) {
        *o += x;
    }
}
