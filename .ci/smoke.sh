#!/usr/bin/env bash
# Smoke test of the release server with the real Redis tools: redis-cli
# (plain, --no-raw, RESP3, --pipe) and redis-benchmark. Needs redis-cli and
# redis-benchmark on PATH (.ci/run installs Debian's redis-tools).
# Prints one closing line "N passed, M failed"; exits non-zero on a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in redis-cli redis-benchmark; do
    command -v "$tool" >/dev/null || { echo "smoke: $tool not found (apt-get install redis-tools)"; exit 1; }
done

echo "== smoke: building the release server"
cargo build --release --quiet -p fastcache-server
bin="${CARGO_TARGET_DIR:-target}/release/fastcache-server"

work="$(mktemp -d)"
pid=""
cleanup() {
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        # Bounded wait, then force.
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ENABLE_PERSISTENCE=false FASTCACHE_METRICS_ADDR=off FASTCACHE_PORT=0 FASTCACHE_BIND=127.0.0.1 PERSISTENCE_DIR="$work/data" \
    "$bin" >"$work/stdout" 2>"$work/stderr" </dev/null &
pid=$!

port=""
for _ in $(seq 1 200); do
    port="$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$work/stdout" | head -n 1)"
    [[ -n "$port" ]] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "smoke: the server exited before listening:"; cat "$work/stderr"; exit 1
    fi
    sleep 0.1
done
[[ -n "$port" ]] || { echo "smoke: no listening line within 20 s"; cat "$work/stderr"; exit 1; }
echo "== smoke: server pid $pid on port $port"

passed=0
failed=0
# check NAME EXPECTED CMD... — runs CMD (bounded by timeout) and compares its output.
check() {
    local name="$1" expected="$2"
    shift 2
    local actual
    actual="$(timeout 30 "$@" 2>&1)" || true
    if [[ "$actual" == "$expected" ]]; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name"
        echo "     expected: $(printf '%q' "$expected")"
        echo "     actual:   $(printf '%q' "$actual")"
    fi
}
cli=(redis-cli -p "$port")
nr=(redis-cli --no-raw -p "$port")
r3=(redis-cli -3 --no-raw -p "$port")

check "PING" "PONG" "${cli[@]}" PING
check "SET" "OK" "${cli[@]}" SET greeting "hello world"
check "GET" "hello world" "${cli[@]}" GET greeting
check "GET missing (--no-raw)" "(nil)" "${nr[@]}" GET missing
check "INCR (--no-raw)" "(integer) 1" "${nr[@]}" INCR counter
check "RPUSH" "(integer) 3" "${nr[@]}" RPUSH list a b c
check "LRANGE (--no-raw)" $'1) "a"\n2) "b"\n3) "c"' "${nr[@]}" LRANGE list 0 -1
check "HSET" "(integer) 2" "${nr[@]}" HSET hash f1 v1 f2 v2
check "HGET" '"v1"' "${nr[@]}" HGET hash f1
check "SADD" "(integer) 2" "${nr[@]}" SADD set x y
check "SISMEMBER" "(integer) 1" "${nr[@]}" SISMEMBER set x
check "ZADD" "(integer) 2" "${nr[@]}" ZADD zset 1.5 a 2 b
check "ZRANGE WITHSCORES (--no-raw)" $'1) "a"\n2) "1.5"\n3) "b"\n4) "2"' "${nr[@]}" ZRANGE zset 0 -1 WITHSCORES
check "WRONGTYPE (--no-raw)" "(error) WRONGTYPE Operation against a key holding the wrong kind of value" "${nr[@]}" LPUSH greeting x
check "unknown command" "ERR unknown command 'NOSUCH', with args beginning with: 'x' " "${cli[@]}" NOSUCH x
check "EXPIRE/TTL" $'(integer) 1\n(integer) 100' bash -c "redis-cli --no-raw -p $port EXPIRE greeting 100 && redis-cli --no-raw -p $port TTL greeting"
check "RESP3 double" "(double) 1.5" "${r3[@]}" ZSCORE zset a
check "RESP3 map" $'1# "f1" => "v1"\n2# "f2" => "v2"' "${r3[@]}" HGETALL hash
check "RESP3 null" "(nil)" "${r3[@]}" GET missing
check "RESP3 empty set" "(empty set)" "${r3[@]}" SMEMBERS noset
check "TYPE" $'string\nlist\nhash\nset\nzset' bash -c "for k in greeting list hash set zset; do redis-cli -p $port TYPE \$k; done"

# Mass insertion through --pipe (pipelining plus its closing ECHO).
pipe_out="$(for i in $(seq 1 10000); do printf 'SET pipe:%d %d\r\n' "$i" "$i"; done | timeout 60 redis-cli -p "$port" --pipe 2>&1 || true)"
check "redis-cli --pipe" "errors: 0, replies: 10000" bash -c "printf '%s\n' \"\$1\" | tail -n 1" _ "$pipe_out"
check "DBSIZE after --pipe" "10006" "${cli[@]}" DBSIZE

echo "== smoke: redis-benchmark"
bench_rc=0
timeout 300 redis-benchmark -p "$port" -t set,get,lpush,lpop,sadd,hset,zadd -n 20000 -q \
    >"$work/bench.out" 2>"$work/bench.err" || bench_rc=$?
# Progress updates are separated by \r; keep each line's final text.
tr '\r' '\n' <"$work/bench.out" | grep -E 'requests per second' >"$work/bench.lines" || true
cat "$work/bench.lines"
bench_ok=1
[[ "$bench_rc" == 0 ]] || { echo "redis-benchmark exited with $bench_rc"; bench_ok=0; }
for t in SET GET LPUSH LPOP SADD HSET ZADD; do
    grep -Eq "^$t: [0-9.]+ requests per second" "$work/bench.lines" || { echo "no result line for $t"; bench_ok=0; }
done
if grep -Eiq 'error' "$work/bench.out" "$work/bench.err"; then
    echo "redis-benchmark reported errors:"; tr '\r' '\n' <"$work/bench.out" | grep -i error | head; cat "$work/bench.err"
    bench_ok=0
fi
if [[ "$bench_ok" == 1 ]]; then
    passed=$((passed + 1)); echo "ok   redis-benchmark"
else
    failed=$((failed + 1)); echo "FAIL redis-benchmark"; cat "$work/bench.err"
fi
check "server alive after the benchmark" "PONG" "${cli[@]}" PING

if ! kill -0 "$pid" 2>/dev/null; then
    echo "smoke: the server died; its stderr:"; cat "$work/stderr"; failed=$((failed + 1))
fi
echo "smoke: $passed passed, $failed failed"
[[ "$failed" == 0 ]]
