#!/usr/bin/env python3
"""Load benchmark of `terpadu serve`: concurrent clients over PostgreSQL wire and Flight SQL.

Starts `terpadu serve` on the workspace of PIPELINE (which must hold a published registry),
then for each protocol runs CLIENTS client processes for SECONDS seconds, each looping over a
mix of statements:

  point    one person by person_id            (SELECT * FROM person WHERE person_id = ...)
  overlap  pairs of programs and their shared persons (an aggregate over program_membership)
  join     person joined to program_membership for one district

and prints queries per second and p50/p95/p99 latency per kind. With --publish it measures the
same again while `terpadu run PIPELINE` publishes a new version, and checks that no statement
failed. Finally it streams the whole person table to one Flight SQL client and compares the
rows per second with reading the same Delta table locally with the deltalake package.

Needs the Python packages that .ci/run installs (psycopg, adbc-driver-flightsql, pyarrow,
deltalake). Example, after `terpadu bench pipelines/sample.toml --persons 1000000 --dir /tmp/b`:

  ~/.cache/terpadu-venv/bin/python contrib/bench-serve.py /tmp/b/pipelines/sample.toml \\
      --terpadu target/debug/terpadu --publish
"""

import argparse
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

PASSWORD = "bench-serve-password"
KINDS = ("point", "overlap", "join")
# Of every 20 statements: 18 point lookups, one overlap aggregate, one join.
MIX = ["point"] * 18 + ["overlap", "join"]

OVERLAP_SQL = (
    "SELECT a.program AS program_a, b.program AS program_b, count(*) AS persons "
    "FROM program_membership a JOIN program_membership b "
    "ON a.person_id = b.person_id AND a.program < b.program "
    "GROUP BY a.program, b.program ORDER BY persons DESC"
)


def point_sql(person_id):
    return f"SELECT * FROM person WHERE person_id = '{person_id}'"


def join_sql(district):
    return (
        "SELECT p.person_id, p.nik, p.full_name, m.program "
        "FROM person p JOIN program_membership m ON m.person_id = p.person_id "
        f"WHERE p.district_code = '{district}'"
    )


def connect(protocol, addr):
    host, port = addr.rsplit(":", 1)
    if protocol == "postgres":
        import psycopg

        return psycopg.connect(host=host, port=int(port), user="bench", password=PASSWORD,
                               dbname="terpadu", connect_timeout=30, autocommit=True)
    import adbc_driver_flightsql.dbapi as flight

    return flight.connect(f"grpc://{addr}",
                          db_kwargs={"username": "bench", "password": PASSWORD},
                          autocommit=True)


def run_statement(protocol, cursor, sql):
    cursor.execute(sql)
    if protocol == "postgres":
        return len(cursor.fetchall())
    return cursor.fetch_arrow_table().num_rows


def client(protocol, addr, person_ids, districts, seconds, seed, queue):
    """One client process: loops until the deadline, reports (kind, seconds, ok) samples."""
    rng = random.Random(seed)
    samples, errors = [], []
    try:
        conn = connect(protocol, addr)
        cursor = conn.cursor()
    except Exception as error:  # reported, not raised: the parent counts failures
        queue.put(([], [f"connect: {error}"]))
        return
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        kind = rng.choice(MIX)
        if kind == "point":
            sql = point_sql(rng.choice(person_ids))
        elif kind == "overlap":
            sql = OVERLAP_SQL
        else:
            sql = join_sql(rng.choice(districts))
        start = time.perf_counter()
        try:
            run_statement(protocol, cursor, sql)
            samples.append((kind, time.perf_counter() - start))
        except Exception as error:
            errors.append(f"{kind}: {str(error).splitlines()[0][:200]}")
    try:
        conn.close()
    except Exception:
        pass
    queue.put((samples, errors))


def percentile(sorted_values, fraction):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def load_phase(label, protocol, addr, person_ids, districts, clients, seconds):
    queue = mp.Queue()
    processes = [
        mp.Process(target=client,
                   args=(protocol, addr, person_ids, districts, seconds, 1000 + i, queue))
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    samples, errors = [], []
    for _ in processes:
        got, failed = queue.get()
        samples.extend(got)
        errors.extend(failed)
    for process in processes:
        process.join()
    total = len(samples)
    print(f"{label}: {clients} clients for {seconds} s over {protocol}: {total} statements, "
          f"{total / seconds:.1f} statements/s, {len(errors)} errors")
    print(f"  {'kind':<8} {'count':>7} {'per s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for kind in KINDS:
        latencies = sorted(s for k, s in samples if k == kind)
        print(f"  {kind:<8} {len(latencies):>7} {len(latencies) / seconds:>8.1f} "
              f"{percentile(latencies, 0.50) * 1000:>8.1f} "
              f"{percentile(latencies, 0.95) * 1000:>8.1f} "
              f"{percentile(latencies, 0.99) * 1000:>8.1f}")
    for error in sorted(set(errors))[:5]:
        print(f"  error: {error}")
    sys.stdout.flush()
    return errors


def start_server(terpadu, pipeline, workdir):
    hashed = subprocess.run([terpadu, "hash-password"], input=PASSWORD + "\n", text=True,
                            capture_output=True, check=True).stdout.strip()
    config = os.path.join(workdir, "serve.toml")
    with open(config, "w") as out:
        out.write(f"""[server]
postgres = "127.0.0.1:0"
flight = "127.0.0.1:0"
max_concurrent_statements = 16
timeout_seconds = 120

[[users]]
name = "bench"
role = "planner"
{hashed}
""")
    server = subprocess.Popen([terpadu, "--quiet", "serve", pipeline, "--config", config],
                              stdout=subprocess.PIPE, text=True)
    addrs = {}
    while len(addrs) < 2:
        line = server.stdout.readline()
        if not line:
            sys.exit("terpadu serve exited before it listened")
        words = line.split()
        if len(words) >= 3 and words[0] == "listening":
            addrs[words[1]] = words[2]
    threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
    return server, addrs


def stream_flight(addr, workspace):
    """Rows/s of the whole person table over Flight SQL against a local Delta read."""
    import deltalake

    with connect("flight", addr) as conn:
        cursor = conn.cursor()
        start = time.perf_counter()
        cursor.execute("SELECT * FROM person")
        table = cursor.fetch_arrow_table()
        flight_seconds = time.perf_counter() - start
    rows = table.num_rows
    print(f"stream:   SELECT * FROM person over Flight SQL: {rows} rows, "
          f"{table.nbytes / 1e6:.0f} MB of Arrow in {flight_seconds:.2f} s: "
          f"{rows / flight_seconds:,.0f} rows/s")
    start = time.perf_counter()
    local = deltalake.DeltaTable(os.path.join(workspace, "store", "registry", "person"))
    local_rows = local.to_pyarrow_table().num_rows
    local_seconds = time.perf_counter() - start
    print(f"          the same Delta table read locally (deltalake, pyarrow): {local_rows} rows "
          f"in {local_seconds:.2f} s: {local_rows / local_seconds:,.0f} rows/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline", help="a pipeline whose workspace holds a published registry")
    parser.add_argument("--terpadu", default="terpadu", help="the terpadu binary")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--protocols", default="postgres,flight")
    parser.add_argument("--publish", action="store_true",
                        help="also measure while `terpadu run` publishes a new version")
    parser.add_argument("--workspace",
                        help="the pipeline's workspace, for the local read "
                             "(default: ../workspace/NAME beside the pipeline's directory)")
    args = parser.parse_args()

    import psycopg  # noqa: F401  (fail early when the clients are missing)
    import adbc_driver_flightsql.dbapi  # noqa: F401

    workspace = subprocess.run(
        [args.terpadu, "--quiet", "sql", args.pipeline, "--format", "csv",
         "SELECT 1"], capture_output=True, text=True)
    if workspace.returncode != 0:
        sys.exit(f"the pipeline's workspace has no registry to serve: {workspace.stderr}")

    with tempfile.TemporaryDirectory(prefix="terpadu-bench-serve-") as workdir:
        server, addrs = start_server(args.terpadu, args.pipeline, workdir)
        try:
            with connect("postgres", addrs["postgres"]) as conn:
                ids = [r[0] for r in conn.execute(
                    "SELECT person_id FROM person ORDER BY person_id").fetchall()]
                districts = [r[0] for r in conn.execute(
                    "SELECT DISTINCT district_code FROM person "
                    "WHERE district_code IS NOT NULL").fetchall()]
                persons = len(ids)
                memberships = conn.execute(
                    "SELECT count(*) FROM program_membership").fetchone()[0]
            rng = random.Random(7)
            person_ids = rng.sample(ids, min(20000, len(ids)))
            print(f"registry: {persons} persons, {memberships} program memberships, "
                  f"{len(districts)} districts; {os.cpu_count()} cores")
            failures = []
            for protocol in args.protocols.split(","):
                failures += load_phase("steady", protocol, addrs[protocol], person_ids,
                                       districts, args.clients, args.seconds)
                if args.publish:
                    run = subprocess.Popen([args.terpadu, "--quiet", "run", "--force", args.pipeline],
                                           stdout=subprocess.DEVNULL)
                    failures += load_phase("publish", protocol, addrs[protocol], person_ids,
                                           districts, args.clients, args.seconds)
                    code = run.wait()
                    print(f"  `terpadu run` during the phase exited {code}")
            if "flight" in args.protocols:
                workspace_dir = args.workspace or os.path.join(
                    os.path.dirname(os.path.dirname(os.path.abspath(args.pipeline))),
                    "workspace", os.path.splitext(os.path.basename(args.pipeline))[0])
                stream_flight(addrs["flight"], workspace_dir)
        finally:
            server.terminate()
            server.wait(timeout=60)
    if failures:
        sys.exit(f"{len(failures)} statements failed")


if __name__ == "__main__":
    main()
