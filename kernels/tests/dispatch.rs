//! Dispatch: `CROSSENC_ISA` forces a path, unknown or missing ISAs are refused
//! with a hint, and the choice can be described for the log.

use crossenc_kernels::{Isa, Kernels};

#[test]
fn crossenc_isa_forces_and_refuses() {
    // One test (one thread) touches the environment, so no other test races it.
    std::env::remove_var("CROSSENC_ISA");
    assert_eq!(Kernels::detect().unwrap().isa(), Isa::best());

    for isa in Isa::ALL {
        std::env::set_var("CROSSENC_ISA", isa.name().to_uppercase());
        match Kernels::detect() {
            Ok(kernels) => {
                assert!(isa.available());
                assert_eq!(kernels.isa(), isa);
                let line = kernels.describe();
                assert!(
                    line.starts_with(isa.name()) && line.contains("microkernel"),
                    "{line}"
                );
                println!("CROSSENC_ISA={isa}: {line}");
            }
            Err(err) => {
                assert!(!isa.available());
                eprintln!("skipped: {isa} not available on this CPU ({err})");
            }
        }
    }

    std::env::set_var("CROSSENC_ISA", "sse9");
    let err = Kernels::detect().unwrap_err();
    assert!(
        err.to_string()
            .contains("CROSSENC_ISA takes avx512, avx2, neon or portable"),
        "{err}"
    );
    std::env::remove_var("CROSSENC_ISA");
}

#[test]
fn portable_is_always_available() {
    assert!(Isa::Portable.available());
    assert_eq!(Kernels::portable().isa(), Isa::Portable);
    assert_eq!("Portable".parse::<Isa>().unwrap(), Isa::Portable);
}
