//! Library half of cie-bench: the load benchmark of desktop QR logins (section 4), shared by
//! the `cie-bench` entry point and the `companion-load` binary (`--quick` for CI).

pub mod load;
