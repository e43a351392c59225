//! Checking the build's system requirements and installing the missing ones with apt-get.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use crate::checks::{self, CxxReport, LibclangReport, SearchEnv};

/// Something the build needs that is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// libclang and clang's builtin headers, for bindgen.
    Libclang,
    /// A C++ compiler, for RocksDB itself.
    Cxx,
}

impl Need {
    /// The Debian/Ubuntu package that provides it.
    pub fn debian_package(self) -> &'static str {
        match self {
            // Depends on libclang1-N (the library) and libclang-common-N-dev (the headers).
            Self::Libclang => "libclang-dev",
            // Provides `c++` (through update-alternatives) as well as `g++`.
            Self::Cxx => "g++",
        }
    }

    /// Why the build needs it.
    pub fn why(self) -> &'static str {
        match self {
            Self::Libclang => {
                "bindgen in librocksdb-sys needs libclang to generate RocksDB's bindings"
            }
            Self::Cxx => "librocksdb-sys compiles RocksDB's C++ sources with it",
        }
    }

    /// What to install where apt-get is not available.
    pub fn elsewhere(self) -> &'static str {
        match self {
            Self::Libclang => {
                "libclang with clang's headers (Fedora: clang-devel; Arch: clang; Alpine: \
                 clang-dev; macOS: the Xcode command line tools), or set LIBCLANG_PATH to \
                 the directory holding libclang.so"
            }
            Self::Cxx => {
                "a C++17 compiler as `c++` (Fedora: gcc-c++; Arch: gcc; Alpine: g++), or set \
                 CXX to one"
            }
        }
    }
}

/// Everything the checks found.
#[derive(Debug)]
pub struct Findings {
    /// The libclang search.
    pub libclang: LibclangReport,
    /// The C++ compiler search.
    pub cxx: CxxReport,
}

impl Findings {
    /// Runs every check on this machine.
    pub fn gather() -> Self {
        let path = std::env::var_os("PATH");
        let cxx = std::env::var("CXX").ok().filter(|v| !v.trim().is_empty());
        Self {
            libclang: checks::find_libclang(&SearchEnv::from_process(), Path::new("/")),
            cxx: checks::find_cxx(cxx.as_deref(), path.as_ref()),
        }
    }

    /// What is missing, in a fixed order.
    pub fn missing(&self) -> Vec<Need> {
        let mut missing = Vec::new();
        if !self.libclang.is_usable() {
            missing.push(Need::Libclang);
        }
        if self.cxx.found.is_none() {
            missing.push(Need::Cxx);
        }
        missing
    }

    /// The missing requirements that an environment variable points at, as messages: apt-get
    /// cannot fix those, the variable must be fixed or unset.
    pub fn misdirected(&self) -> Vec<String> {
        let mut messages = Vec::new();
        if self.libclang.set_by_variable && !self.libclang.is_usable() {
            messages.push(
                "LIBCLANG_PATH is set, so bindgen looks for libclang there only, and there is \
                 no usable libclang there (the library, with clang/<version>/include/stddef.h \
                 beside it); fix LIBCLANG_PATH or unset it"
                    .to_owned(),
            );
        }
        if self.cxx.set_by_variable && self.cxx.found.is_none() {
            messages.push(format!(
                "CXX is set, so the cc crate compiles RocksDB with {}, which is not an \
                 executable; fix CXX or unset it",
                self.cxx.looked_for
            ));
        }
        messages
    }

    /// Prints what was checked and what was found, on stderr.
    pub fn print(&self) {
        let libclang = &self.libclang;
        eprintln!("xtask: libclang ({})", Need::Libclang.why());
        eprintln!(
            "xtask:   searched, as clang-sys does: {}",
            libclang.searched.join(", ")
        );
        match libclang.libraries.split_first() {
            Some((first, [])) => {
                eprintln!("xtask:   found {}", first.display());
            }
            Some((first, rest)) => {
                eprintln!(
                    "xtask:   found {} (and {} more)",
                    first.display(),
                    rest.len()
                );
            }
            None => eprintln!("xtask:   NOT FOUND"),
        }
        if !libclang.libraries.is_empty() {
            match libclang.headers.first() {
                Some(dir) => eprintln!("xtask:   clang's builtin headers: {}", dir.display()),
                None => eprintln!(
                    "xtask:   clang's builtin headers (clang/<version>/include/stddef.h): NOT \
                     FOUND; bindgen would fail with \"'stddef.h' file not found\""
                ),
            }
        }
        eprintln!("xtask: C++ compiler ({})", Need::Cxx.why());
        match &self.cxx.found {
            Some(found) => eprintln!(
                "xtask:   looked for {}: found {}",
                self.cxx.looked_for,
                found.display()
            ),
            None => eprintln!("xtask:   looked for {}: NOT FOUND", self.cxx.looked_for),
        }
    }
}

/// The facts about the machine that decide how to install.
#[derive(Debug, Clone, Copy)]
pub struct System {
    /// `apt-get` is on PATH (Debian, Ubuntu and derivatives).
    pub has_apt_get: bool,
    /// `id -u` says 0.
    pub is_root: bool,
    /// `sudo -n true` succeeds: sudo works without asking for a password.
    pub has_passwordless_sudo: bool,
}

impl System {
    /// Probes this machine. `sudo -n` is only tried when it could be needed.
    pub fn probe() -> Self {
        let path = std::env::var_os("PATH");
        let has_apt_get = checks::find_program("apt-get", path.as_ref()).is_some();
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .is_some_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
        let has_passwordless_sudo = has_apt_get
            && !is_root
            && checks::find_program("sudo", path.as_ref()).is_some()
            && Command::new("sudo")
                .args(["-n", "true"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
        Self {
            has_apt_get,
            is_root,
            has_passwordless_sudo,
        }
    }
}

/// What to do about the missing requirements.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing is missing.
    Nothing,
    /// Run these commands (program and arguments), in order.
    Install {
        /// The packages the commands install.
        packages: Vec<&'static str>,
        /// `apt-get update`, then `apt-get install`, prefixed with `sudo -n` if needed.
        commands: Vec<Vec<String>>,
    },
    /// apt-get exists but this user cannot run it unattended: the user must run `command`.
    AskUser {
        /// The packages to install.
        packages: Vec<&'static str>,
        /// The exact command line to run.
        command: String,
    },
    /// No apt-get: say what to install.
    Unsupported {
        /// One line per missing requirement.
        hints: Vec<String>,
    },
}

/// Decides how to provide `missing` on `system`.
pub fn plan(missing: &[Need], system: System) -> Plan {
    if missing.is_empty() {
        return Plan::Nothing;
    }
    if !system.has_apt_get {
        return Plan::Unsupported {
            hints: missing
                .iter()
                .map(|need| need.elsewhere().to_owned())
                .collect(),
        };
    }
    let mut packages: Vec<&'static str> = Vec::new();
    for need in missing {
        if !packages.contains(&need.debian_package()) {
            packages.push(need.debian_package());
        }
    }
    let update = ["apt-get", "update"];
    let install = ["apt-get", "install", "-y", "--no-install-recommends"];
    if system.is_root || system.has_passwordless_sudo {
        // sudo resets the environment; `env` passes DEBIAN_FRONTEND through it.
        let prefix: &[&str] = if system.is_root {
            &[]
        } else {
            &["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive"]
        };
        let with = |command: &[&str], extra: &[&str]| -> Vec<String> {
            prefix
                .iter()
                .chain(command)
                .chain(extra)
                .map(|s| (*s).to_owned())
                .collect()
        };
        Plan::Install {
            commands: vec![with(&update, &[]), with(&install, &packages)],
            packages,
        }
    } else {
        Plan::AskUser {
            command: format!(
                "sudo apt-get update && sudo apt-get install -y --no-install-recommends {}",
                packages.join(" ")
            ),
            packages,
        }
    }
}

/// Why setup stopped.
#[derive(Debug)]
pub struct SetupError(pub String);

/// Checks the requirements, installs what is missing when allowed and possible, and checks
/// again. With `install` false it only checks.
pub fn run(install: bool) -> Result<(), SetupError> {
    if !cfg!(target_os = "linux") {
        eprintln!(
            "xtask: the system checks know Linux only; skipping them here (bindgen and the cc \
             crate report what they miss during the build)"
        );
        return Ok(());
    }
    eprintln!("xtask: checking what building RocksDB needs");
    let findings = Findings::gather();
    findings.print();
    let missing = findings.missing();
    if missing.is_empty() {
        eprintln!("xtask: the build requirements are all present");
        return Ok(());
    }
    for need in &missing {
        eprintln!("xtask: missing: {} ({})", need.debian_package(), need.why());
    }
    let misdirected = findings.misdirected();
    if !misdirected.is_empty() {
        return Err(SetupError(misdirected.join("\n")));
    }
    match plan(&missing, System::probe()) {
        Plan::Nothing => Ok(()),
        Plan::Unsupported { hints } => {
            let mut message =
                String::from("apt-get is not available here; install these, then run again:");
            for hint in hints {
                message.push_str("\n  - ");
                message.push_str(&hint);
            }
            Err(SetupError(message))
        }
        Plan::AskUser { command, .. } => Err(SetupError(format!(
            "installing the missing packages needs root, and `sudo -n` cannot run without a \
             password here. Run:\n  {command}\nthen run this command again."
        ))),
        Plan::Install { packages, commands } => {
            if !install {
                let lines: Vec<String> = commands.iter().map(|c| c.join(" ")).collect();
                return Err(SetupError(format!(
                    "missing {} (checking only; without --check this would run: {})",
                    packages.join(", "),
                    lines.join(" && ")
                )));
            }
            eprintln!("xtask: installing {} with apt-get", packages.join(" "));
            for command in &commands {
                run_install_command(command)?;
            }
            let after = Findings::gather();
            let still = after.missing();
            if still.is_empty() {
                eprintln!("xtask: installed; the build requirements are all present");
                Ok(())
            } else {
                after.print();
                let names: Vec<&str> = still.iter().map(|n| n.debian_package()).collect();
                Err(SetupError(format!(
                    "still missing after installing {}: {}",
                    packages.join(" "),
                    names.join(", ")
                )))
            }
        }
    }
}

fn run_install_command(command: &[String]) -> Result<(), SetupError> {
    let line = command.join(" ");
    let Some((program, args)) = command.split_first() else {
        return Ok(());
    };
    eprintln!("xtask: running: {line}");
    let status = Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", OsString::from("noninteractive"))
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| SetupError(format!("cannot run `{line}`: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(SetupError(format!("`{line}` failed ({status})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: System = System {
        has_apt_get: true,
        is_root: true,
        has_passwordless_sudo: false,
    };

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn nothing_missing_needs_nothing() {
        assert_eq!(plan(&[], ROOT), Plan::Nothing);
    }

    #[test]
    fn root_runs_apt_get_directly() {
        assert_eq!(
            plan(&[Need::Libclang, Need::Cxx], ROOT),
            Plan::Install {
                packages: vec!["libclang-dev", "g++"],
                commands: vec![
                    strings(&["apt-get", "update"]),
                    strings(&[
                        "apt-get",
                        "install",
                        "-y",
                        "--no-install-recommends",
                        "libclang-dev",
                        "g++"
                    ]),
                ],
            }
        );
    }

    #[test]
    fn a_user_with_passwordless_sudo_goes_through_sudo_n() {
        let system = System {
            is_root: false,
            has_passwordless_sudo: true,
            ..ROOT
        };
        let Plan::Install { packages, commands } = plan(&[Need::Cxx], system) else {
            panic!("expected an install plan");
        };
        assert_eq!(packages, vec!["g++"]);
        for command in &commands {
            assert_eq!(
                command[..4],
                strings(&["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive"])
            );
        }
        assert_eq!(commands[1].last().map(String::as_str), Some("g++"));
    }

    #[test]
    fn a_user_without_sudo_gets_the_command_to_run() {
        let system = System {
            is_root: false,
            has_passwordless_sudo: false,
            ..ROOT
        };
        assert_eq!(
            plan(&[Need::Libclang], system),
            Plan::AskUser {
                packages: vec!["libclang-dev"],
                command: "sudo apt-get update && sudo apt-get install -y \
                          --no-install-recommends libclang-dev"
                    .to_owned(),
            }
        );
    }

    #[test]
    fn without_apt_get_the_hints_name_what_to_install() {
        let system = System {
            has_apt_get: false,
            ..ROOT
        };
        let Plan::Unsupported { hints } = plan(&[Need::Libclang, Need::Cxx], system) else {
            panic!("expected hints");
        };
        assert_eq!(hints.len(), 2);
        assert!(hints[0].contains("LIBCLANG_PATH"));
        assert!(hints[1].contains("C++"));
    }

    #[test]
    fn findings_list_what_is_missing() {
        let findings = Findings {
            libclang: LibclangReport {
                libraries: vec!["/usr/lib/llvm-14/lib/libclang-14.so.1".into()],
                ..LibclangReport::default()
            },
            cxx: CxxReport {
                looked_for: "`c++`".to_owned(),
                found: Some("/usr/bin/c++".into()),
                set_by_variable: false,
            },
        };
        // A library without its headers is still missing libclang-dev.
        assert_eq!(findings.missing(), vec![Need::Libclang]);
        assert!(findings.misdirected().is_empty());
    }

    #[test]
    fn variables_pointing_nowhere_are_not_fixed_by_packages() {
        let findings = Findings {
            libclang: LibclangReport {
                set_by_variable: true,
                ..LibclangReport::default()
            },
            cxx: CxxReport {
                looked_for: "`clang++` (from CXX)".to_owned(),
                found: None,
                set_by_variable: true,
            },
        };
        assert_eq!(findings.missing(), vec![Need::Libclang, Need::Cxx]);
        let messages = findings.misdirected();
        assert_eq!(messages.len(), 2);
        assert!(messages[0].starts_with("LIBCLANG_PATH is set"));
        assert!(messages[1].contains("`clang++` (from CXX)"));
    }
}
