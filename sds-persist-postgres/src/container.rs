//! A PostgreSQL server in a container for tests (feature `testcontainers`), for machines
//! with a Docker engine and no server of their own.

use std::sync::OnceLock;

use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::runners::AsyncRunner;

/// The URL of a PostgreSQL container started on first use and kept for the rest of the
/// process (the container runtime's reaper removes it when the process ends). Tests run in
/// runtimes of their own, so the container lives on a thread and runtime of its own too.
pub fn container_url() -> Result<String, String> {
    static URL: OnceLock<Result<String, String>> = OnceLock::new();
    URL.get_or_init(start).clone()
}

fn start() -> Result<String, String> {
    let (reply, answer) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("sds-postgres-container".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = reply.send(Err(format!("a runtime for the container: {err}")));
                    return;
                }
            };
            runtime.block_on(async move {
                let started = async {
                    let container = Postgres::default()
                        .start()
                        .await
                        .map_err(|err| format!("starting a PostgreSQL container: {err}"))?;
                    let port = container
                        .get_host_port_ipv4(5432)
                        .await
                        .map_err(|err| format!("the container's port: {err}"))?;
                    Ok::<_, String>((
                        container,
                        format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres"),
                    ))
                };
                match started.await {
                    Ok((container, url)) => {
                        let _ = reply.send(Ok(url));
                        // Keep the container (and this runtime) for the process's lifetime.
                        std::future::pending::<()>().await;
                        drop(container);
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err));
                    }
                }
            });
        })
        .map_err(|err| format!("a thread for the container: {err}"))?;
    answer
        .recv()
        .map_err(|err| format!("the container thread ended: {err}"))?
}
