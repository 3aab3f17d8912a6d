# SecureAuth tasks. Each recipe is a thin alias of a cargo command.

# Run the server (development profile; reads .env if present).
run:
    cargo run --release -p auth-http -- serve

# Run every test: starts PostgreSQL/Redis when down, installs Chromium, wrk and the browser
# test's npm packages when missing (or prints the commands, without root); see README.
# Extra arguments go to `cargo test` (e.g. `just test -p auth-memory`).
test *ARGS:
    cargo xtask test {{ARGS}}

# Format check, clippy and auth-core's rustdoc, with warnings as errors.
lint:
    cargo xtask lint

# Apply database migrations and exit.
migrate:
    cargo run --release -p auth-http -- migrate

# Load benchmark: release build of the server, real PostgreSQL and Redis on loopback, wrk as the
# load generator (installed when missing); table on stdout, JSON in target/bench/report.json.
# See docs/BENCHMARKS.md. Extra arguments go to auth-bench (e.g. `just bench --duration 20`).
bench *ARGS:
    command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
    cargo build --release -p auth-bench -p auth-http
    cargo run --release -q -p auth-bench -- --server-bin auth-http {{ARGS}}

# Scenario 8, the cost curves (docs/SCALING.md): 10k, 100k and 1M users and sessions.
bench-curves *ARGS:
    command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
    cargo build --release -p auth-bench -p auth-http
    cargo run --release -q -p auth-bench -- curves --server-bin auth-http {{ARGS}}
