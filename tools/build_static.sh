#!/usr/bin/env bash
# Builds the static `crossenc` binaries for edge hosts, checks that each is
# static, scores a fixture with it (aarch64 under qemu-aarch64) and prints
# their sizes; fails past the size targets (aarch64 without the hub <= 6 MiB,
# any build with the hub <= 9 MiB).
#
#     bash tools/build_static.sh            # all four: x86_64 and aarch64, with and without the hub
#     bash tools/build_static.sh x86_64     # only the x86_64 pair (no cross tools needed)
#     bash tools/build_static.sh crossenc-x86_64 crossenc-aarch64-nohub   # these two (CI's)
#
# Run from the repo root. Installs what it needs (rustup targets; with apt:
# musl-tools, gcc-aarch64-linux-gnu, qemu-user) when missing. The binaries end
# up in target/static/crossenc-<arch>[-nohub].
#
# How each is built:
#   x86_64, hub     cargo build --release --target x86_64-unknown-linux-musl
#                   (the hub's TLS stack, ring, compiles C: musl-gcc from musl-tools)
#   x86_64, no hub  ... --no-default-features --features cli
#   aarch64, no hub CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
#                   cargo build --release --target aarch64-unknown-linux-musl --no-default-features --features cli
#   aarch64, hub    the same with the default features, and ring's C compiled by the
#                   cross gcc: CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
#                   AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar (ring's C needs only the
#                   compiler's own headers; rust-lld links against Rust's bundled musl)
set -euo pipefail
cd "$(dirname "$0")/.."

# The builds asked for: an arch names its pair, crossenc-<arch>[-nohub] one build.
builds=()
for arg in "${@:-x86_64 aarch64}"; do
    for word in $arg; do
        case "$word" in
            x86_64 | aarch64) builds+=("crossenc-$word" "crossenc-$word-nohub") ;;
            crossenc-x86_64 | crossenc-x86_64-nohub | crossenc-aarch64 | crossenc-aarch64-nohub)
                builds+=("$word") ;;
            *) echo "usage: $0 [x86_64] [aarch64] [crossenc-<x86_64|aarch64>[-nohub] ...]" >&2; exit 2 ;;
        esac
    done
done
mib=$((1024 * 1024))
out=target/static
mkdir -p "$out"

need() { # need COMMAND DEBIAN-PACKAGE
    if ! command -v "$1" >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq "$2" >/dev/null
    fi
}

input='{"query": "capital of France", "document": "Paris is the capital of France"}'
fixture=tests/data/fixtures/bert-l2-h32
declare -a rows

build() { # build ARCH HUB(yes|no) MAX_BYTES
    local arch=$1 hub=$2 max=$3 target="$1-unknown-linux-musl" name="crossenc-$1" features=()
    [ "$hub" = no ] && { name+=-nohub; features=(--no-default-features --features cli); }
    echo "-- $name: cargo build --release --target $target ${features[*]}"
    cargo build --release --target "$target" --bin crossenc "${features[@]}"
    cp "target/$target/release/crossenc" "$out/$name"
    local bin="$out/$name" run=()
    [ "$arch" = aarch64 ] && run=(qemu-aarch64 -cpu max)
    # Static: no program interpreter, no shared libraries needed.
    # (Captured first: under pipefail, `readelf | grep -q` can fail by SIGPIPE.)
    local headers
    headers=$(readelf -l -d "$bin")
    if [[ $headers == *INTERP* || $headers == *NEEDED* ]]; then
        echo "build_static.sh: $bin is not statically linked:" >&2
        readelf -d "$bin" >&2
        exit 1
    fi
    local got
    got=$(echo "$input" | "${run[@]}" "$bin" score --model "$fixture")
    case "$got" in
        '{"score":'*) ;;
        *) echo "build_static.sh: $name: unexpected output: $got" >&2; exit 1 ;;
    esac
    local size
    size=$(stat -c %s "$bin")
    rows+=("$(printf '%-24s %10d bytes %6.2f MiB  (target <= %d MiB)' "$name" "$size" \
        "$(awk -v s="$size" -v m=$mib 'BEGIN {print s / m}')" $((max / mib)))")
    if [ "$size" -gt "$max" ]; then
        echo "build_static.sh: $name is $size bytes, over $((max / mib)) MiB" >&2
        exit 1
    fi
}

for name in "${builds[@]}"; do
    arch=${name#crossenc-}
    arch=${arch%-nohub}
    hub=yes
    [[ $name == *-nohub ]] && hub=no
    rustup target add "$arch-unknown-linux-musl" >/dev/null
    case "$arch" in
        x86_64)
            need musl-gcc musl-tools
            # No size target is set for x86_64 without the hub; 9 MiB bounds it too.
            build x86_64 "$hub" $((9 * mib))
            ;;
        aarch64)
            need qemu-aarch64 qemu-user
            export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld
            if [ "$hub" = no ]; then
                build aarch64 no $((6 * mib))
            else
                need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
                CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc \
                    AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar \
                    build aarch64 yes $((9 * mib))
            fi
            ;;
    esac
done

echo "static binaries (stripped, release profile):"
printf '  %s\n' "${rows[@]}"
