//! `cloudfilm`: the archive's one binary (the commands are in the library, `lib.rs`).

fn main() -> std::process::ExitCode {
    cloudfilm::run()
}
