#!/usr/bin/env bash
# How long a deployment takes to go live: from `kairos deploy` to the staging runtime of a
# fresh `kairos up` serving the new version, five times.   bench/propagation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p kairos-cli
K="$PWD/target/release/kairos"
work=$(mktemp -d)
export KAIROS_CONFIG_DIR="$work/config" KAIROS_ADMIN_PASSWORD=propagation-bench KAIROS_PASSWORD=propagation-bench
"$K" up --data "$work/data" >"$work/up.log" 2>&1 &
up=$!
trap 'kill $up 2>/dev/null; rm -rf "$work"' EXIT
until curl -sf 127.0.0.1:7701/readyz >/dev/null; do sleep 0.1; done
"$K" login --user admin >/dev/null
cp examples/bank/channel.yaml "$work/channel.yaml"
for n in 1 2 3 4 5; do
    # A real change each time, so each deploy is a new version.
    sed -i "s/score: 8[0-9] }/score: 8$n }/" "$work/channel.yaml"
    "$K" apply "$work/channel.yaml" >/dev/null
    start=$(date +%s%N)
    version=$("$K" deploy --channel web --group staging | grep -o 'version [0-9]*' | cut -d' ' -f2)
    until curl -s 127.0.0.1:7701/v1/version | grep -q "\"deployment\":$version"; do sleep 0.002; done
    echo "version $version live on staging $(( ($(date +%s%N) - start) / 1000000 )) ms after kairos deploy started"
done
