//! What the build needs from the system, looked for where the build itself looks for it.
//!
//! - libclang: `librocksdb-sys` generates RocksDB's Rust bindings at build time with bindgen,
//!   which loads libclang through clang-sys. The search below follows clang-sys 1.x
//!   (`build/common.rs`, `build/dynamic.rs`): `LIBCLANG_PATH` alone if it is set, otherwise
//!   `llvm-config --prefix`, `LD_LIBRARY_PATH`, `LIBRARY_PATH` and fixed system directories.
//!   libclang also needs clang's builtin headers (`stddef.h`, ...), which on Debian come with
//!   `libclang-dev` but not with the bare `libclang1-N` library.
//! - a C++ compiler: the `cc` crate compiles RocksDB's C++ with `$CXX`, or `c++` if unset.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory patterns clang-sys searches on Linux after the environment variables, in
/// its order. `*` matches within one path component.
pub const LINUX_LIBCLANG_DIRS: &[&str] = &[
    "/usr/local/llvm*/lib*",
    "/usr/local/lib*/*/*",
    "/usr/local/lib*/*",
    "/usr/local/lib*",
    "/usr/lib*/*/*",
    "/usr/lib*/*",
    "/usr/lib*",
];

/// Directories (besides the ones holding a found libclang) under which clang's builtin
/// headers live as `clang/<version>/include`.
const HEADER_ROOTS: &[&str] = &[
    "/usr/lib/llvm*/lib",
    "/usr/local/llvm*/lib",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
];

/// The environment the libclang search reads, gathered once so tests can supply their own.
#[derive(Debug, Default, Clone)]
pub struct SearchEnv {
    /// `LIBCLANG_PATH`: a directory holding libclang, or the library file itself.
    pub libclang_path: Option<PathBuf>,
    /// The output of `llvm-config --prefix`, if `llvm-config` runs.
    pub llvm_prefix: Option<PathBuf>,
    /// `LD_LIBRARY_PATH`.
    pub ld_library_path: Option<OsString>,
    /// `LIBRARY_PATH`.
    pub library_path: Option<OsString>,
}

impl SearchEnv {
    /// Reads the variables of this process and asks `llvm-config` for its prefix.
    pub fn from_process() -> Self {
        let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let llvm_prefix = Command::new("llvm-config")
            .arg("--prefix")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| {
                let text = String::from_utf8_lossy(&out.stdout);
                text.lines()
                    .next()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(PathBuf::from)
            });
        Self {
            libclang_path: non_empty("LIBCLANG_PATH").map(PathBuf::from),
            llvm_prefix,
            ld_library_path: non_empty("LD_LIBRARY_PATH"),
            library_path: non_empty("LIBRARY_PATH"),
        }
    }
}

/// What the libclang search looked at and what it found.
#[derive(Debug, Default)]
pub struct LibclangReport {
    /// The places searched, in order, as shown to the user.
    pub searched: Vec<String>,
    /// The libclang shared libraries found, in search order, without duplicates.
    pub libraries: Vec<PathBuf>,
    /// The `clang/<version>/include` directories found holding `stddef.h`.
    pub headers: Vec<PathBuf>,
    /// Set when `LIBCLANG_PATH` decided where to look: installing packages cannot help then.
    pub set_by_variable: bool,
}

impl LibclangReport {
    /// Whether bindgen can work: a libclang and clang's builtin headers were both found.
    pub fn is_usable(&self) -> bool {
        !self.libraries.is_empty() && !self.headers.is_empty()
    }
}

/// Whether `name` is a file name clang-sys loads as libclang at run time: `libclang.so`,
/// `libclang-*.so`, `libclang.so.*` or `libclang-*.so.*`, but never `libclang-cpp`.
pub fn is_libclang_file_name(name: &str) -> bool {
    if name.contains("-cpp.") {
        return false;
    }
    if name == "libclang.so" || name.starts_with("libclang.so.") {
        return true;
    }
    match name.strip_prefix("libclang-") {
        Some(rest) => rest.ends_with(".so") || rest.contains(".so."),
        None => false,
    }
}

/// Searches libclang as clang-sys does. The fixed system directories are taken under
/// `root` (`/` on a real system, a fake tree in tests); paths from the environment are
/// used as they are.
pub fn find_libclang(env: &SearchEnv, root: &Path) -> LibclangReport {
    let mut report = LibclangReport::default();
    let mut lib_dirs: Vec<PathBuf> = Vec::new();

    if let Some(path) = &env.libclang_path {
        // clang-sys searches only LIBCLANG_PATH when it is set: a matching file, or a
        // directory holding one.
        report.set_by_variable = true;
        report.searched.push(format!(
            "LIBCLANG_PATH={} (nothing else when set)",
            path.display()
        ));
        let is_named_file = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(is_libclang_file_name)
            && path.is_file();
        if is_named_file {
            push_unique(&mut report.libraries, path.clone());
        } else {
            lib_dirs.push(path.clone());
        }
    } else {
        report.searched.push("LIBCLANG_PATH (unset)".to_owned());
        match &env.llvm_prefix {
            Some(prefix) => {
                report.searched.push(format!(
                    "`llvm-config --prefix` = {} (bin, lib, lib64)",
                    prefix.display()
                ));
                for sub in ["bin", "lib", "lib64"] {
                    lib_dirs.push(prefix.join(sub));
                }
            }
            None => report
                .searched
                .push("`llvm-config --prefix` (not available)".to_owned()),
        }
        for (name, value) in [
            ("LD_LIBRARY_PATH", &env.ld_library_path),
            ("LIBRARY_PATH", &env.library_path),
        ] {
            match value {
                Some(value) => {
                    report.searched.push(format!("{name} directories"));
                    lib_dirs.extend(std::env::split_paths(value));
                }
                None => report.searched.push(format!("{name} (unset)")),
            }
        }
        for pattern in LINUX_LIBCLANG_DIRS {
            report.searched.push((*pattern).to_owned());
            lib_dirs.extend(expand_dirs(root, pattern));
        }
    }

    for dir in &lib_dirs {
        for library in libclang_files_in(dir) {
            push_unique(&mut report.libraries, library);
        }
    }
    report.headers = find_builtin_headers(&report.libraries, env.llvm_prefix.as_deref(), root);
    report
}

/// The libclang shared libraries directly inside `dir`, sorted by name.
fn libclang_files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(is_libclang_file_name)
        })
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    found.sort();
    found
}

/// The `clang/<version>/include` directories holding `stddef.h`, next to the libraries found
/// (as named and as resolved through symlinks), under the LLVM prefix, and in the usual
/// system places under `root`.
fn find_builtin_headers(
    libraries: &[PathBuf],
    llvm_prefix: Option<&Path>,
    root: &Path,
) -> Vec<PathBuf> {
    let mut bases: Vec<PathBuf> = Vec::new();
    for library in libraries {
        if let Some(parent) = library.parent() {
            push_unique(&mut bases, parent.to_path_buf());
        }
        if let Some(parent) = fs::canonicalize(library)
            .ok()
            .as_deref()
            .and_then(Path::parent)
        {
            push_unique(&mut bases, parent.to_path_buf());
        }
    }
    if let Some(prefix) = llvm_prefix {
        push_unique(&mut bases, prefix.join("lib"));
    }
    for pattern in HEADER_ROOTS {
        for dir in expand_dirs(root, pattern) {
            push_unique(&mut bases, dir);
        }
    }
    let mut headers = Vec::new();
    for base in &bases {
        for include in expand_dirs(base, "clang/*/include") {
            if include.join("stddef.h").is_file() {
                push_unique(&mut headers, include);
            }
        }
    }
    headers
}

/// Expands `pattern` (components separated by `/`, `*` matching within one component, case
/// insensitively as clang-sys does) under `root` into the existing directories it names,
/// sorted within each component.
pub fn expand_dirs(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut current = vec![root.to_path_buf()];
    for component in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for dir in &current {
            if component.contains('*') {
                let Ok(entries) = fs::read_dir(dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .filter_map(|entry| entry.file_name().into_string().ok())
                    .filter(|name| {
                        wildcard_match(&component.to_ascii_lowercase(), &name.to_ascii_lowercase())
                    })
                    .collect();
                names.sort();
                next.extend(
                    names
                        .iter()
                        .map(|name| dir.join(name))
                        .filter(|p| p.is_dir()),
                );
            } else {
                let path = dir.join(component);
                if path.is_dir() {
                    next.push(path);
                }
            }
        }
        current = next;
    }
    current
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (none included)
/// and every other character matches itself.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // The last `*` seen and the text position it was tried from, to backtrack to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// The C++ compiler the `cc` crate would use.
#[derive(Debug)]
pub struct CxxReport {
    /// What was looked for, e.g. "`c++` on PATH (CXX unset)".
    pub looked_for: String,
    /// The executable found, if any.
    pub found: Option<PathBuf>,
    /// Set when `CXX` named the compiler: installing packages cannot help then.
    pub set_by_variable: bool,
}

/// Looks for the compiler named by `cxx` (the value of `CXX`, whose first word is the
/// program), or for `c++` when `cxx` is `None`, on `path` (the value of `PATH`).
pub fn find_cxx(cxx: Option<&str>, path: Option<&OsString>) -> CxxReport {
    match cxx.and_then(|value| value.split_whitespace().next()) {
        Some(program) => CxxReport {
            looked_for: format!("`{program}` (from CXX)"),
            found: find_program(program, path),
            set_by_variable: true,
        },
        None => CxxReport {
            looked_for: "`c++` on PATH (CXX unset)".to_owned(),
            found: find_program("c++", path),
            set_by_variable: false,
        },
    }
}

/// The executable `program` resolves to: itself if it holds a `/`, else the first match in
/// the directories of `path`.
pub fn find_program(program: &str, path: Option<&OsString>) -> Option<PathBuf> {
    if program.contains('/') {
        let candidate = PathBuf::from(program);
        return is_executable(&candidate).then_some(candidate);
    }
    let path = path?;
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is a file this user may execute (any execute bit on Unix).
fn is_executable(path: &Path) -> bool {
    let Ok(metadata) = fs::metadata(path) else {
        return false;
    };
    if !metadata.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        metadata.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        true
    }
}

fn push_unique(list: &mut Vec<PathBuf>, item: PathBuf) {
    if !list.contains(&item) {
        list.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"").unwrap();
    }

    /// A Debian-like tree: libclang1-14, plus the builtin headers of libclang-common-14-dev
    /// when `with_headers`.
    fn debian_tree(with_headers: bool) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let lib = root.path().join("usr/lib/llvm-14/lib");
        touch(&lib.join("libclang-14.so.1"));
        touch(&lib.join("libclang-cpp.so.14"));
        touch(&lib.join("libclangAST.a"));
        if with_headers {
            touch(&lib.join("clang/14.0.6/include/stddef.h"));
        }
        root
    }

    #[test]
    fn wildcards_match_within_a_component() {
        assert!(wildcard_match("lib*", "lib"));
        assert!(wildcard_match("lib*", "lib64"));
        assert!(wildcard_match("llvm*", "llvm-14"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
        assert!(wildcard_match("a*c", "abcbc"));
        assert!(!wildcard_match("lib*", "include"));
        assert!(!wildcard_match("a*c", "abcb"));
        assert!(!wildcard_match("lib", "lib64"));
    }

    #[test]
    fn libclang_file_names_follow_clang_sys() {
        for name in [
            "libclang.so",
            "libclang.so.1",
            "libclang-14.so",
            "libclang-14.so.1",
            "libclang-14.so.14.0.6",
        ] {
            assert!(is_libclang_file_name(name), "{name}");
        }
        for name in [
            "libclang-cpp.so.14",
            "libclang-cpp.so",
            "libclangAST.a",
            "libclang.a",
            "libclang_rt.asan-x86_64.so",
            "libclang-14.a",
            "liblibclang.so",
        ] {
            assert!(!is_libclang_file_name(name), "{name}");
        }
    }

    #[test]
    fn finds_libclang_and_headers_in_a_debian_tree() {
        let root = debian_tree(true);
        let report = find_libclang(&SearchEnv::default(), root.path());
        let lib = root.path().join("usr/lib/llvm-14/lib");
        assert_eq!(report.libraries, vec![lib.join("libclang-14.so.1")]);
        assert_eq!(report.headers, vec![lib.join("clang/14.0.6/include")]);
        assert!(report.is_usable());
        assert!(report.searched.iter().any(|s| s == "/usr/lib*/*/*"));
    }

    #[test]
    fn a_library_without_builtin_headers_is_not_usable() {
        let root = debian_tree(false);
        let report = find_libclang(&SearchEnv::default(), root.path());
        assert_eq!(report.libraries.len(), 1);
        assert!(report.headers.is_empty());
        assert!(!report.is_usable());
    }

    #[test]
    fn an_empty_system_has_no_libclang() {
        let root = tempfile::tempdir().unwrap();
        touch(
            &root
                .path()
                .join("usr/lib/x86_64-linux-gnu/libclang-cpp.so.14"),
        );
        let report = find_libclang(&SearchEnv::default(), root.path());
        assert!(report.libraries.is_empty());
        assert!(!report.is_usable());
    }

    #[test]
    fn libclang_path_is_searched_alone() {
        let root = debian_tree(true);
        let elsewhere = tempfile::tempdir().unwrap();
        let env = SearchEnv {
            libclang_path: Some(elsewhere.path().to_path_buf()),
            ..SearchEnv::default()
        };
        assert!(find_libclang(&env, root.path()).libraries.is_empty());

        // A custom LLVM: the library and its headers side by side.
        touch(&elsewhere.path().join("libclang.so"));
        touch(&elsewhere.path().join("clang/18/include/stddef.h"));
        let report = find_libclang(&env, root.path());
        assert_eq!(report.libraries, vec![elsewhere.path().join("libclang.so")]);
        assert!(
            report
                .headers
                .contains(&elsewhere.path().join("clang/18/include"))
        );

        // LIBCLANG_PATH may also name the file itself.
        let file = SearchEnv {
            libclang_path: Some(elsewhere.path().join("libclang.so")),
            ..SearchEnv::default()
        };
        assert_eq!(
            find_libclang(&file, root.path()).libraries,
            vec![elsewhere.path().join("libclang.so")]
        );
    }

    #[test]
    fn library_path_variables_are_searched() {
        let root = tempfile::tempdir().unwrap();
        let custom = tempfile::tempdir().unwrap();
        touch(&custom.path().join("libclang.so.18"));
        let env = SearchEnv {
            ld_library_path: Some(custom.path().as_os_str().to_owned()),
            ..SearchEnv::default()
        };
        let report = find_libclang(&env, root.path());
        assert_eq!(report.libraries, vec![custom.path().join("libclang.so.18")]);
    }

    #[cfg(unix)]
    #[test]
    fn programs_are_found_on_path_when_executable() {
        use std::os::unix::fs::PermissionsExt as _;
        let bin = tempfile::tempdir().unwrap();
        let cxx = bin.path().join("c++");
        touch(&cxx);
        let path = Some(bin.path().as_os_str().to_owned());
        assert_eq!(find_cxx(None, path.as_ref()).found, None, "not executable");
        fs::set_permissions(&cxx, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_cxx(None, path.as_ref()).found, Some(cxx.clone()));
        // CXX names another compiler, possibly with arguments.
        let report = find_cxx(Some("clang++ -stdlib=libc++"), path.as_ref());
        assert_eq!(report.found, None);
        assert!(report.looked_for.contains("clang++"));
        let absolute = cxx.to_str().unwrap();
        assert_eq!(find_cxx(Some(absolute), None).found, Some(cxx.clone()));
    }
}
