//! The README's demo command (`./demo`) on a machine without cmake and nasm on PATH: it
//! provides cmake for the build itself, builds the C codecs in a target directory of its own
//! (fresh on a new machine, so the whole release build runs the first time) and reaches the
//! demo's banner. The build is made at `opt-level = 0` with 16 code-generation units here
//! (219 s cold on two cores, against 423 s at `opt-level = 1` with one unit; the demo at
//! scale 0.1 still starts in seconds): what is under test is that the codecs build without the
//! tools and the demo starts, not how fast the code runs (the full optimization's build time is
//! `bench/build_time.sh`'s), and the suite has half an hour.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A directory of links to every program on PATH except cmake and nasm.
fn path_without_build_tools(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = std::env::var_os("PATH").unwrap();
    for folder in std::env::split_paths(&path) {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let hidden = ["cmake", "nasm", "ndisasm", "ctest", "cpack"].iter().any(|t| name == *t);
            let link = bin.join(&name);
            if !hidden && !link.exists() {
                let _ = std::os::unix::fs::symlink(entry.path(), link);
            }
        }
    }
    bin
}

#[test]
fn the_readme_demo_command_starts_without_cmake_or_nasm() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    assert!(readme.contains("\n./demo\n"), "the README names ./demo as the demo command");
    let scratch = tempfile::tempdir().unwrap();
    let bin = path_without_build_tools(scratch.path());
    assert!(
        Command::new("sh")
            .args(["-c", "command -v cmake || command -v nasm"])
            .env("PATH", &bin)
            .status()
            .map(|s| !s.success())
            .unwrap()
    );

    let mut child = Command::new(repo.join("demo"))
        .args(["--data"])
        .arg(scratch.path().join("data"))
        .args(["--http", "127.0.0.1:0", "--dimse", "127.0.0.1:0", "--scale", "0.1"])
        .env("PATH", &bin)
        .env_remove("CMAKE")
        .env("CARGO_TARGET_DIR", repo.join("target/demo-without-build-tools"))
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
        .env("CLOUDFILM_LOG", "warn")
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // A fresh release build on two cores takes minutes: bounded at 25.
    let deadline = std::time::Instant::now() + Duration::from_secs(25 * 60);
    let mut banner = None;
    while std::time::Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(line) if line.contains("http://127.0.0.1:") => {
                banner = Some(line);
                break;
            }
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
    }
    // The whole group: the script's cargo and the server it started.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
    let _ = child.wait();
    let banner = banner.expect("the demo reached its banner");
    let url = banner.rsplit(' ').next().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{banner}");
    assert!(repo.join("target/build-tools/cmake/data/bin/cmake").exists(), "the script provided cmake for the build");
}
