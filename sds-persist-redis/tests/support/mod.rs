//! Test support: the shared server's URL, and Redis servers of a test's own (one with AOF
//! for the restart test, three Cluster primaries), started on free loopback ports and
//! stopped when their guard drops or the test process exits.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The server the tests use unless told otherwise.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// `SDS_TEST_REDIS_URL`, or the local server.
pub fn redis_url() -> String {
    std::env::var("SDS_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// How long a server may take to come up (or a Cluster to agree).
const READY_WITHIN: Duration = Duration::from_secs(20);

/// Polls `condition` until it holds, failing the test past [`READY_WITHIN`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < READY_WITHIN,
            "{what} did not happen within {READY_WITHIN:?}"
        );
        // Polling a condition; the interval only bounds how often it is checked.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port that is free, and whose Cluster bus port (+10000) is free too.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let Ok(listener) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let port = listener.local_addr().expect("local address").port();
        // Keep the bus port in range: ephemeral ports above 55535 have none.
        if port > 55_535 {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port pair found");
}

/// Answers `PING` on `port`.
pub fn answers_ping(port: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else {
        return false;
    };
    let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200)) else {
        return false;
    };
    redis::cmd("PING").query::<String>(&mut conn).is_ok()
}

/// Runs one command on the server at `port` (blocking), for set-up checks.
pub fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    cmd.query(&mut conn)
}

/// A `redis-server` of the test's own. It runs under a small shell that kills it when its
/// stdin closes, so it stops when the guard drops and also when the test process exits
/// without dropping it (a guard in a `static`).
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
    wrapper: Option<(Child, ChildStdin)>,
    pid: u32,
    /// Whether the wrapper deletes `dir` once the server is gone (for servers kept in a
    /// `static`, whose guard never drops).
    remove_dir: bool,
}

impl RedisServer {
    /// Starts `redis-server` on a free port in `dir` with `args`, and waits for `PING`.
    pub fn start(dir: &Path, args: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            dir: dir.to_path_buf(),
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            wrapper: None,
            pid: 0,
            remove_dir: false,
        };
        server.launch();
        server
    }

    /// [`RedisServer::start`] in a directory of its own that the server's wrapper deletes
    /// when it stops the server.
    pub fn start_in_own_dir(args: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().expect("temporary directory").keep();
        let mut server = RedisServer {
            port: free_port(),
            dir,
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            wrapper: None,
            pid: 0,
            remove_dir: true,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let port = self.port.to_string();
        let dir = self.dir.display().to_string();
        let mut child = Command::new("sh")
            .arg("-c")
            // The server logs to stdout: away from the pipe, which closes once the pid is read.
            .arg(r#"redis-server "$@" >/dev/null 2>&1 & pid=$!; echo "$pid"; cat >/dev/null; kill -9 "$pid" 2>/dev/null; wait; if [ -n "$SDS_TEST_REMOVE_DIR" ]; then rm -rf "$SDS_TEST_REMOVE_DIR"; fi"#)
            .arg("sh")
            .args(["--port", &port, "--bind", "127.0.0.1", "--dir", &dir])
            .args(["--save", "", "--protected-mode", "no", "--loglevel", "warning"])
            .args(&self.args)
            .env(
                "SDS_TEST_REMOVE_DIR",
                if self.remove_dir { dir.as_str() } else { "" },
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed to run this test (apt install redis-server)");
        let stdin = child.stdin.take().expect("piped stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the wrapper prints the server's pid");
        self.pid = line.trim().parse().expect("a pid");
        self.wrapper = Some((child, stdin));
        let port = self.port;
        wait_until(
            &format!("redis-server on port {port} answering PING"),
            || answers_ping(port),
        );
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL (a crash: no shutdown save, no final fsync) and waits
    /// until it is gone.
    pub fn kill(&mut self) {
        let status = Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -9 {} failed", self.pid);
        if let Some((mut child, stdin)) = self.wrapper.take() {
            drop(stdin);
            child.wait().expect("wrapper exits");
        }
        let port = self.port;
        wait_until(&format!("redis-server on port {port} gone"), || {
            !answers_ping(port)
        });
    }

    /// Starts the server again, same port, directory and arguments (it reloads its AOF).
    pub fn restart(&mut self) {
        assert!(
            self.wrapper.is_none(),
            "restart a server that is not running"
        );
        self.launch();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.wrapper.take() {
            // Closing stdin makes the wrapper kill the server.
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// A three-primary Redis Cluster of the test's own, no replicas.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three `--cluster-enabled` servers, joins them with `redis-cli --cluster
    /// create`, and waits until every node says `cluster_state:ok`.
    pub fn start() -> RedisCluster {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            // The Cluster lives in a `static`: its servers' wrappers delete the directories.
            nodes.push(RedisServer::start_in_own_dir(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
                "--appendonly",
                "no",
            ]));
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli must be installed to run this test");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        for node in &nodes {
            let port = node.port();
            wait_until(&format!("cluster_state:ok on port {port}"), || {
                query::<String>(port, redis::cmd("CLUSTER").arg("INFO"))
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
            });
        }
        RedisCluster { nodes }
    }

    /// `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,…`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The slot `CLUSTER KEYSLOT` computes for `key`.
    pub fn slot_of(&self, key: &[u8]) -> i64 {
        query(
            self.nodes[0].port(),
            redis::cmd("CLUSTER").arg("KEYSLOT").arg(key),
        )
        .expect("CLUSTER KEYSLOT")
    }
}

/// Fails (in CI, or always with a clear message) unless the shared server answers.
pub async fn require_shared_server(url: &str) {
    let reachable = match redis::Client::open(url) {
        Ok(client) => match tokio::time::timeout(
            Duration::from_secs(3),
            client.get_multiplexed_async_connection(),
        )
        .await
        {
            Ok(Ok(mut conn)) => redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .is_ok(),
            _ => false,
        },
        Err(_) => false,
    };
    assert!(
        reachable,
        "the Redis server at {url} (SDS_TEST_REDIS_URL) is not reachable: start one \
         (redis-server) or point SDS_TEST_REDIS_URL at one"
    );
}
