#!/usr/bin/env bash
# Fuzzes the aws-chunked decoder and the SigV4 Authorization/query parser of
# osp-core for a bounded time with cargo-fuzz (libFuzzer). Not part of
# `npm test`.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   default: 60 seconds for each of chunked_decoder and sigv4_authorization.
#
# cargo-fuzz is installed into .tools/cargo when missing. cargo fuzz builds
# with nightly-only rustc flags (-Zsanitizer=address and the -Z options of
# libFuzzer's coverage). Without a nightly toolchain the targets are only
# compiled with the default toolchain, the script prints why, and it exits 2.
#
# Inputs that crash are saved under fuzz/artifacts/TARGET/; replay one with
#   .tools/cargo/bin/cargo-fuzz run TARGET fuzz/artifacts/TARGET/FILE
# (with `cargo +nightly`), and print it as a Rust value with `cargo fuzz fmt`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(chunked_decoder sigv4_authorization)
fi

cargo_root="$root/.tools/cargo"
export PATH="$cargo_root/bin:$PATH"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "[fuzz] installing cargo-fuzz into .tools/cargo"
  cargo install cargo-fuzz --locked --root "$cargo_root"
fi

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "[fuzz] no nightly toolchain; trying: rustup toolchain install nightly --profile minimal"
  if ! rustup toolchain install nightly --profile minimal; then
    echo "[fuzz] cargo fuzz needs a nightly toolchain for libFuzzer's sanitizer" >&2
    echo "[fuzz] instrumentation, and none could be installed here. Compiling the" >&2
    echo "[fuzz] targets with the default toolchain instead, to show that they build;" >&2
    echo "[fuzz] nothing was fuzzed." >&2
    cargo build --manifest-path fuzz/Cargo.toml --release --bins
    exit 2
  fi
fi

failed=()
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  if [ -d "fuzz/seeds/$target" ]; then
    cp -n "fuzz/seeds/$target"/* "$corpus"/ 2>/dev/null || true
  fi
  dict=()
  case "$target" in
    chunked_decoder) dict=(-dict=fuzz/chunked.dict) ;;
    sigv4_authorization) dict=(-dict=fuzz/sigv4.dict) ;;
  esac
  echo "[fuzz] $target for ${seconds}s"
  if cargo +nightly fuzz run "$target" "$corpus" -- -max_total_time="$seconds" "${dict[@]}" -print_final_stats=1; then
    echo "[fuzz] $target: no crash in ${seconds}s"
  else
    echo "[fuzz] $target: crashed; the input is under fuzz/artifacts/$target/" >&2
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "[fuzz] crashes in: ${failed[*]}" >&2
  exit 1
fi
echo "[fuzz] no crashes"
