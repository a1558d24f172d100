//! Test harness crate and the FFI test library.
//!
//! Built as a cdylib (`libcie_tests.so`), it carries both UniFFI components — the core
//! (`cie_core`) and the virtual card (`card_sim`, feature `ffi`) — so the Python and Kotlin
//! binding tests (`tests/bindings/`, run by `scripts/bindings-test.sh`) load one library
//! and generate bindings for both from it in library mode.

// Re-export both crates so their `extern "C"` scaffolding and `UNIFFI_META_*` symbols are
// linked into the cdylib (an unused dependency would be dropped by the linker).
pub use card_sim;
pub use cie_core;
