//! # auth-deploy-check
//!
//! No code: this crate holds `tests/compose.rs`, which checks the container files of the
//! repository without a Docker engine:
//!
//! - `docker/compose.yaml` is parsed (with compose's `${VAR:-default}` interpolation resolved to
//!   its defaults) and the environment of the `auth-http` service, over the `ENV` of the
//!   Dockerfile's runtime stage, is fed to `auth_http::settings::Settings::from_lookup`: it
//!   must be accepted, and every setting the service needs in a container is set explicitly
//!   (the development fallbacks point at `127.0.0.1`, which is the container itself);
//! - `DATABASE_URL`, `REDIS_URL` and `SMTP_HOST` name compose services on their ports, with the
//!   credentials those services are started with (`POSTGRES_*`, `--requirepass`);
//! - the published port, the health checks and `EXPOSE` agree with `BIND_ADDR`;
//! - every service has a health check and every `depends_on` waits for `service_healthy`;
//! - `docker/Dockerfile` builds, copies and runs the binary target of `auth-http`, as a
//!   non-root user, with a Rust toolchain new enough for the locked dependencies;
//! - `.dockerignore` keeps the workspace in the build context and secrets out of it;
//! - the production overrides described in the README ("Run with Docker") are accepted.
//!
//! Run with `cargo test -p auth-deploy-check`. What it cannot check: that the images build,
//! that the containers start, and that the health checks pass in practice.
