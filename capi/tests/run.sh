#!/usr/bin/env bash
# The C ABI from C and C++: builds libcrossenc, compiles capi/tests/c/test_capi.c
# against it and runs it on the fixture model.
#
#     bash capi/tests/run.sh            # x86-64: static + ASan/UBSan, dynamic, C++ example
#     bash capi/tests/run.sh --aarch64  # also: aarch64 static binary under qemu-aarch64 -cpu max
#                                       # (or CROSSENC_CAPI_AARCH64=1)
#
# Works from a clean clone; installs the aarch64 cross toolchain with apt if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

aarch64=${CROSSENC_CAPI_AARCH64:-0}
for arg in "$@"; do
    case "$arg" in
        --aarch64) aarch64=1 ;;
        *) echo "usage: $0 [--aarch64]" >&2; exit 2 ;;
    esac
done

fixture=tests/data/fixtures/bert-l2-h32
out=target/capi-test
mkdir -p "$out"
# What a Rust staticlib needs from the system on glibc (rustc --print native-static-libs).
libs=(-lpthread -ldl -lm)
warn=(-Wall -Wextra -Werror)

step() { echo; echo "== capi: $*"; }

step "cargo build --release -p crossenc-capi"
cargo build --release -p crossenc-capi
ls -l target/release/libcrossenc.a target/release/libcrossenc.so

step "the header compiles on its own as C99 and C++ (-pedantic)"
echo '#include "crossenc.h"' | cc -std=c99 -pedantic "${warn[@]}" -Icapi/include -x c -fsyntax-only -
echo '#include "crossenc.h"' | c++ -std=c++11 -pedantic "${warn[@]}" -Icapi/include -x c++ -fsyntax-only -

step "C test, static, AddressSanitizer + UBSan"
cc -std=c99 "${warn[@]}" -g -fsanitize=address,undefined -fno-omit-frame-pointer \
    -fno-sanitize-recover=undefined -Icapi/include capi/tests/c/test_capi.c \
    target/release/libcrossenc.a "${libs[@]}" -o "$out/test_capi_asan"
# detect_leaks=1 is LeakSanitizer's default on x86-64 Linux; say it so a
# changed default cannot turn the leak check off unnoticed.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    "$out/test_capi_asan" "$fixture"

step "C test, dynamic (libcrossenc.so)"
cc -std=c99 "${warn[@]}" -Icapi/include capi/tests/c/test_capi.c \
    -Ltarget/release -lcrossenc -lm -lpthread -o "$out/test_capi_dyn"
# Capture first: with pipefail, `ldd | grep -q` fails whenever grep exits
# before ldd has written everything (SIGPIPE), which made this check flaky.
deps=$(LD_LIBRARY_PATH=target/release ldd "$out/test_capi_dyn")
[[ $deps == *'libcrossenc.so => target/release/'* ]] \
    || { echo "test_capi_dyn does not load target/release/libcrossenc.so:" >&2; echo "$deps" >&2; exit 1; }
LD_LIBRARY_PATH=target/release "$out/test_capi_dyn" "$fixture"
# Exported: the C API, and nothing else of ours.
exported=$(nm -D --defined-only target/release/libcrossenc.so | awk '$2 == "T" {print $3}' | sort)
echo "exported functions: $(echo $exported)"
if grep -v '^crossenc_' <<<"$exported"; then
    echo "libcrossenc.so exports functions outside the C API (above)" >&2; exit 1
fi

step "C++ example (capi/examples/rerank.cpp)"
c++ -std=c++17 "${warn[@]}" -Icapi/include capi/examples/rerank.cpp \
    target/release/libcrossenc.a "${libs[@]}" -o "$out/rerank"
"$out/rerank" "$fixture" "capital of France" \
    "Paris is the capital of France" "Berlin is in Germany" "The Seine flows through Paris" \
    | tee "$out/rerank.txt"
[ "$(wc -l <"$out/rerank.txt")" -eq 3 ] || { echo "rerank: want 3 lines" >&2; exit 1; }
if "$out/rerank" /nonexistent q d 2>"$out/rerank.err"; then
    echo "rerank: a missing model succeeded" >&2; exit 1
fi
grep -q "not found" "$out/rerank.err" || { cat "$out/rerank.err" >&2; exit 1; }
echo "ok: missing model -> $(cat "$out/rerank.err")"

step "the README's C++ example (its first cpp block) compiles and runs"
awk '/^```cpp$/ {on = 1; next} on && /^```$/ {exit} on {print}' README.md >"$out/readme.cpp"
[ -s "$out/readme.cpp" ] || { echo "no \`\`\`cpp block in README.md" >&2; exit 1; }
c++ -std=c++17 "${warn[@]}" -Icapi/include "$out/readme.cpp" \
    target/release/libcrossenc.a "${libs[@]}" -o "$out/readme"
"$out/readme" | tee "$out/readme.txt"
[ "$(wc -l <"$out/readme.txt")" -eq 2 ] || { echo "README example: want 2 lines" >&2; exit 1; }

if [ "$aarch64" = 1 ]; then
    target=aarch64-unknown-linux-gnu
    step "aarch64: toolchain ($target, aarch64-linux-gnu-gcc, qemu-aarch64)"
    rustup target add "$target"
    if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq gcc-aarch64-linux-gnu
    fi
    if ! command -v qemu-aarch64 >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq qemu-user
    fi

    step "aarch64: cargo build --release -p crossenc-capi --target $target"
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
        cargo build --release -p crossenc-capi --target "$target"

    step "aarch64: C test, static, under qemu-aarch64 -cpu max"
    # Static glibc: the linker warns that std's getaddrinfo/getpwuid_r need the
    # shared libc at run time; crossenc calls neither (no networking).
    aarch64-linux-gnu-gcc -std=c99 "${warn[@]}" -static -Icapi/include capi/tests/c/test_capi.c \
        "target/$target/release/libcrossenc.a" "${libs[@]}" -o "$out/test_capi_aarch64"
    qemu-aarch64 -cpu max "$out/test_capi_aarch64" "$fixture"
fi

step "all passed"
