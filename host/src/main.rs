//! The `weir` binary.

// The batched plugin calls allocate and free many small buffers per batch; glibc malloc
// lost most of the batching gain to heap consolidation on this workload, mimalloc does not.
// Built without transparent huge pages (see host/Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    weir::cli::main()
}
