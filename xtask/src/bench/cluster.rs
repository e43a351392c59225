//! A throw-away three-master Redis Cluster on local ports, for the report's cluster row:
//! started with `redis-server` and `redis-cli --cluster create`, stopped when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the nodes get to answer and the cluster to agree on its slots.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running cluster; its servers are stopped (and their files removed) on drop.
pub(crate) struct LocalCluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    dir: PathBuf,
}

impl LocalCluster {
    /// The URL `sds bench` takes for it.
    pub(crate) fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// Starts three masters in `dir`, with the AOF setting of the standalone server on port
    /// 6379 where one answers (else Redis's default), so the two rows compare.
    pub(crate) fn start(dir: &Path) -> Result<LocalCluster, String> {
        for tool in ["redis-server", "redis-cli"] {
            if Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
            {
                return Err(format!("`{tool}` is not installed"));
            }
        }
        std::fs::create_dir_all(dir)
            .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        let appendonly = standalone_config("appendonly").unwrap_or_else(|| "no".to_owned());
        let mut cluster = LocalCluster {
            nodes: Vec::new(),
            ports: Vec::new(),
            dir: dir.to_path_buf(),
        };
        for _ in 0..3 {
            let port = free_port()?;
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir)
                .map_err(|err| format!("cannot create {}: {err}", node_dir.display()))?;
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--save", ""])
                .args(["--appendonly", &appendonly])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|err| format!("cannot start redis-server: {err}"))?;
            cluster.nodes.push(child);
            cluster.ports.push(port);
        }
        for port in cluster.ports.clone() {
            wait_until(|| cli(port, &["ping"]).is_some_and(|reply| reply.trim() == "PONG"))
                .map_err(|()| format!("redis-server on port {port} did not answer"))?;
        }
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for port in &cluster.ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let created = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|err| format!("cannot run redis-cli --cluster create: {err}"))?;
        if !created.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&created.stderr).trim()
            ));
        }
        for port in cluster.ports.clone() {
            wait_until(|| {
                cli(port, &["cluster", "info"])
                    .is_some_and(|info| info.contains("cluster_state:ok"))
            })
            .map_err(|()| format!("the cluster node on port {port} never reached state ok"))?;
        }
        Ok(cluster)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            // Only the servers this value started, by their own handles.
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free right now on the loopback interface.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|err| format!("no free port: {err}"))
}

/// `redis-cli -p PORT ARGS...`'s output, if it ran and succeeded.
fn cli(port: u16, args: &[&str]) -> Option<String> {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A setting of the standalone server on the default port, if one answers.
fn standalone_config(name: &str) -> Option<String> {
    let reply = cli(6379, &["config", "get", name])?;
    reply.lines().nth(1).map(|value| value.trim().to_owned())
}

/// Polls `ready` until it holds or [`READY_TIMEOUT`] passes (a process we started is
/// coming up: there is nothing to wait on but its answers).
fn wait_until(mut ready: impl FnMut() -> bool) -> Result<(), ()> {
    let start = Instant::now();
    while start.elapsed() < READY_TIMEOUT {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(())
}
