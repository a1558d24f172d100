#!/usr/bin/env bash
# Benchmarks: a thin wrapper kept for old habits. The one entry point is
# `cargo xtask report` (xtask/): it runs every benchmark (card flows, eMRTD, load, QR,
# PKCS#11, library size per ABI, fuzz table, soak), prints the report and, with --write,
# rewrites BENCHMARKS.md. Arguments pass through, e.g.
#
#   bash scripts/bench.sh                        # cargo xtask report --write
#   bash scripts/bench.sh --sections qr,size     # rerun two sections, keep the others
#
# Honours CARGO_TARGET_DIR and CIE_TEST_POSTGRES_URL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo xtask report --write "$@"
