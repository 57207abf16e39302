//! The one place that asks the CPU what it has.
//!
//! Each SIMD instruction set has a *token* type ([`Avx512Token`], [`Avx2Token`],
//! [`NeonToken`]): a zero-sized value whose only constructor checks the CPU.
//! Holding a token is the proof that its instructions may run, so code that
//! takes one needs no further checks (and the `unsafe` calls into
//! `#[target_feature]` functions are justified by it).

use std::sync::OnceLock;

use crate::IsaError;

/// An instruction set crossenc has kernels for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// x86-64 with AVX-512F (and AVX2 + FMA).
    Avx512,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// aarch64 with NEON (Advanced SIMD).
    Neon,
    /// Plain Rust; runs on any CPU.
    Portable,
}

impl Isa {
    /// Every ISA, best first.
    pub const ALL: [Isa; 4] = [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Portable];

    /// The name `CROSSENC_ISA` uses for this ISA.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Neon => "neon",
            Isa::Portable => "portable",
        }
    }

    /// Whether this CPU can run this ISA's kernels and this build has them.
    pub fn available(self) -> bool {
        match self {
            Isa::Avx512 => Avx512Token::detect().is_some(),
            Isa::Avx2 => Avx2Token::detect().is_some(),
            Isa::Neon => NeonToken::detect().is_some(),
            Isa::Portable => true,
        }
    }

    /// The best ISA available here. The CPU is asked once per process.
    pub fn best() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            Isa::ALL
                .into_iter()
                .find(|isa| isa.available())
                .unwrap_or(Isa::Portable)
        })
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Isa {
    type Err = IsaError;

    fn from_str(s: &str) -> Result<Isa, IsaError> {
        Isa::ALL
            .into_iter()
            .find(|isa| isa.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| IsaError {
                requested: s.to_string(),
                reason: "unknown instruction set".to_string(),
            })
    }
}

/// Proof that this CPU runs AVX-512F, AVX2 and FMA. Only [`Avx512Token::detect`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Avx512Token {
    _proof: (),
}

impl Avx512Token {
    /// The AVX2 + FMA token its features include.
    pub fn avx2(self) -> Avx2Token {
        Avx2Token { _proof: () }
    }

    /// A token if this CPU (and the OS, which must save the zmm registers) supports AVX-512F.
    pub fn detect() -> Option<Avx512Token> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            return Some(Avx512Token { _proof: () });
        }
        None
    }
}

/// Proof that this CPU runs AVX-512F, AVX-512BW and AVX-512 VNNI (and AVX2 + FMA):
/// `vpdpbusd` on zmm. Only [`Avx512VnniToken::detect`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Avx512VnniToken {
    _proof: (),
}

impl Avx512VnniToken {
    /// A token if this CPU supports AVX-512 VNNI with AVX-512F and BW.
    pub fn detect() -> Option<Avx512VnniToken> {
        #[cfg(target_arch = "x86_64")]
        if Avx512Token::detect().is_some()
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
        {
            return Some(Avx512VnniToken { _proof: () });
        }
        None
    }

    /// The AVX-512F token its features include.
    pub fn avx512(self) -> Avx512Token {
        Avx512Token { _proof: () }
    }
}

/// Proof that this CPU runs AVX-512F and AVX512_BF16 (and AVX2 + FMA):
/// `vdpbf16ps` and `vcvtne2ps2bf16` on zmm. Only [`Avx512Bf16Token::detect`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Avx512Bf16Token {
    _proof: (),
}

impl Avx512Bf16Token {
    /// A token if this CPU supports AVX512_BF16 with AVX-512F and BW.
    pub fn detect() -> Option<Avx512Bf16Token> {
        #[cfg(target_arch = "x86_64")]
        if Avx512Token::detect().is_some()
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512bf16")
        {
            return Some(Avx512Bf16Token { _proof: () });
        }
        None
    }

    /// The AVX-512F token its features include.
    pub fn avx512(self) -> Avx512Token {
        Avx512Token { _proof: () }
    }
}

/// Proof that this CPU runs AVX-VNNI (`vpdpbusd` on ymm, VEX-encoded: Alder
/// Lake and later, Zen 5) with AVX2 and FMA. Only [`AvxVnniToken::detect`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AvxVnniToken {
    _proof: (),
}

impl AvxVnniToken {
    /// A token if this CPU supports AVX-VNNI, AVX2 and FMA.
    pub fn detect() -> Option<AvxVnniToken> {
        #[cfg(target_arch = "x86_64")]
        if Avx2Token::detect().is_some() && std::arch::is_x86_feature_detected!("avxvnni") {
            return Some(AvxVnniToken { _proof: () });
        }
        None
    }

    /// The AVX2 + FMA token its features include.
    pub fn avx2(self) -> Avx2Token {
        Avx2Token { _proof: () }
    }
}

/// Proof that this CPU runs AVX-512 VNNI on ymm registers (AVX-512VL,
/// EVEX-encoded `vpdpbusd`), with AVX2 and FMA: the same operation as
/// AVX-VNNI, so the ymm int8 kernel runs on AVX-512 CPUs too. Only
/// [`Avx512VlVnniToken::detect`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Avx512VlVnniToken {
    _proof: (),
}

impl Avx512VlVnniToken {
    /// A token if this CPU supports AVX-512F, VL and VNNI.
    pub fn detect() -> Option<Avx512VlVnniToken> {
        #[cfg(target_arch = "x86_64")]
        if Avx512VnniToken::detect().is_some() && std::arch::is_x86_feature_detected!("avx512vl") {
            return Some(Avx512VlVnniToken { _proof: () });
        }
        None
    }

    /// The AVX2 + FMA token its features include.
    pub fn avx2(self) -> Avx2Token {
        Avx2Token { _proof: () }
    }
}

/// Proof that this CPU runs AVX2 and FMA. Only [`Avx2Token::detect`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Avx2Token {
    _proof: (),
}

impl Avx2Token {
    /// A token if this CPU supports AVX2 and FMA.
    pub fn detect() -> Option<Avx2Token> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Some(Avx2Token { _proof: () });
        }
        None
    }
}

/// Proof that this CPU runs NEON. Only [`NeonToken::detect`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NeonToken {
    _proof: (),
}

impl NeonToken {
    /// A token if this is an aarch64 CPU with NEON (every aarch64 Linux CPU has it).
    pub fn detect() -> Option<NeonToken> {
        #[cfg(target_arch = "aarch64")]
        if std::arch::is_aarch64_feature_detected!("neon") {
            return Some(NeonToken { _proof: () });
        }
        None
    }
}

/// Proof that this CPU runs NEON with the dot-product extension (`sdot`,
/// FEAT_DotProd, Armv8.2+). Only [`NeonDotToken::detect`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NeonDotToken {
    _proof: (),
}

impl NeonDotToken {
    /// A token if this is an aarch64 CPU with NEON and `dotprod`.
    pub fn detect() -> Option<NeonDotToken> {
        #[cfg(target_arch = "aarch64")]
        if std::arch::is_aarch64_feature_detected!("neon")
            && std::arch::is_aarch64_feature_detected!("dotprod")
        {
            return Some(NeonDotToken { _proof: () });
        }
        None
    }

    /// The NEON token its features include.
    pub fn neon(self) -> NeonToken {
        NeonToken { _proof: () }
    }
}

/// Proof that this CPU runs NEON with the bf16 extension (`bfdot`,
/// FEAT_BF16, Armv8.6+). Only [`NeonBf16Token::detect`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NeonBf16Token {
    _proof: (),
}

impl NeonBf16Token {
    /// A token if this is an aarch64 CPU with NEON and `bf16`.
    pub fn detect() -> Option<NeonBf16Token> {
        #[cfg(target_arch = "aarch64")]
        if std::arch::is_aarch64_feature_detected!("neon")
            && std::arch::is_aarch64_feature_detected!("bf16")
        {
            return Some(NeonBf16Token { _proof: () });
        }
        None
    }

    /// The NEON token its features include.
    pub fn neon(self) -> NeonToken {
        NeonToken { _proof: () }
    }
}
