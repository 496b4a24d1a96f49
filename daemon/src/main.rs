//! The `tributary` binary: everything it does lives in the library.

fn main() -> anyhow::Result<()> {
    tributary::cli::main()
}
