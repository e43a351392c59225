//! Installing the pinned `@waku/sds` into `js/node_modules`, once.
//!
//! The first caller in a process does the work; the others in the same process wait for
//! its result ([`OnceLock`]). Test binaries of the crate run as separate processes, so the
//! check-and-install step also holds an exclusive file lock (in the system temp directory,
//! named after the `js` folder) while it runs: two processes never run npm over the same
//! folder at once, and the second one finds the install done.
//!
//! An install is reused while its stamp (`node_modules/.sds-interop-stamp`, the SHA-256 of
//! `package.json` and `package-lock.json`) matches those files and the installed package
//! reports the pinned version. Missing Node.js or npm, or a failed install, is an error
//! naming what to fix: the tests never skip.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::{InteropError, WAKU_SDS_VERSION, to_hex};

/// The driver folder: `js/` of this crate (holds `package.json` and `driver.mjs`).
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// The driver program run by Node.js.
pub fn driver_script() -> PathBuf {
    js_dir().join("driver.mjs")
}

const STAMP: &str = ".sds-interop-stamp";

static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// Makes sure Node.js and npm run and `@waku/sds` 0.0.8 is installed in
/// `js/node_modules`, installing it with `npm ci` (or `npm install` without a lock file).
///
/// Blocks while another test (thread or process) installs. The outcome is remembered for
/// the process; a failure is reported to every caller.
pub fn ensure_installed() -> Result<(), InteropError> {
    INSTALLED
        .get_or_init(|| install_once().map_err(|err| err.to_string()))
        .clone()
        .map_err(InteropError::Setup)
}

fn install_once() -> Result<(), InteropError> {
    let dir = js_dir();
    tool_version("node")?;
    tool_version("npm")?;
    let lock_path = std::env::temp_dir().join(format!(
        "sds-interop-npm-{}.lock",
        &to_hex(&Sha256::digest(dir.display().to_string().as_bytes()))[..16]
    ));
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|err| {
            InteropError::io(format!("opening lock file {}", lock_path.display()), err)
        })?;
    let mut lock = fd_lock::RwLock::new(lock_file);
    let _guard = lock
        .write()
        .map_err(|err| InteropError::io(format!("locking {}", lock_path.display()), err))?;

    let stamp = stamp_of(&dir)?;
    if installed_stamp(&dir).as_deref() == Some(stamp.as_str())
        && installed_version(&dir).as_deref() == Some(WAKU_SDS_VERSION)
    {
        return Ok(());
    }
    let has_lock = dir.join("package-lock.json").is_file();
    let args: &[&str] = if has_lock {
        &["ci", "--no-audit", "--no-fund"]
    } else {
        &["install", "--no-audit", "--no-fund"]
    };
    run_npm(&dir, args)?;
    match installed_version(&dir) {
        Some(version) if version == WAKU_SDS_VERSION => {}
        other => {
            return Err(InteropError::InstallFailed {
                command: format!("npm {}", args.join(" ")),
                dir: dir.display().to_string(),
                detail: format!(
                    "node_modules/@waku/sds reports version {other:?}, expected {WAKU_SDS_VERSION}"
                ),
            });
        }
    }
    fs::write(dir.join("node_modules").join(STAMP), &stamp)
        .map_err(|err| InteropError::io("writing the install stamp", err))?;
    Ok(())
}

/// Runs `program --version`, failing with [`InteropError::ToolMissing`].
fn tool_version(program: &str) -> Result<String, InteropError> {
    let missing = |detail: String| InteropError::ToolMissing {
        program: program.to_string(),
        detail,
    };
    let output = Command::new(program)
        .arg("--version")
        .output()
        .map_err(|err| missing(err.to_string()))?;
    if !output.status.success() {
        return Err(missing(format!(
            "`{program} --version` exited with {}",
            output.status
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn run_npm(dir: &Path, args: &[&str]) -> Result<(), InteropError> {
    let command = format!("npm {}", args.join(" "));
    let output = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|err| InteropError::ToolMissing {
            program: "npm".into(),
            detail: err.to_string(),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(InteropError::InstallFailed {
        command,
        dir: dir.display().to_string(),
        detail: format!(
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

/// SHA-256 of `package.json` followed by `package-lock.json` (if any), in hex.
fn stamp_of(dir: &Path) -> Result<String, InteropError> {
    let mut hasher = Sha256::new();
    let manifest = dir.join("package.json");
    let bytes = fs::read(&manifest)
        .map_err(|err| InteropError::io(format!("reading {}", manifest.display()), err))?;
    hasher.update(&bytes);
    if let Ok(lock) = fs::read(dir.join("package-lock.json")) {
        hasher.update(&lock);
    }
    Ok(to_hex(&hasher.finalize()))
}

fn installed_stamp(dir: &Path) -> Option<String> {
    fs::read_to_string(dir.join("node_modules").join(STAMP)).ok()
}

/// The `version` field of the installed `@waku/sds` package.json.
fn installed_version(dir: &Path) -> Option<String> {
    let path = dir.join("node_modules/@waku/sds/package.json");
    let text = fs::read_to_string(path).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
    manifest.get("version")?.as_str().map(str::to_string)
}
