#!/usr/bin/env bash
# Load run: weir (fsync on commit) and MinIO (single drive) on loopback, same machine, same
# client (`weir bench`, 16 aws-sdk-go-v2 workers), measured in turn: weir, MinIO, weir, MinIO.
# Needs MinIO: CGO_ENABLED=0 go install github.com/minio/minio@latest
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONC=${CONC:-16}
ROUNDS=${ROUNDS:-2}
export CGO_ENABLED=0
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/weir" .
MINIO=${MINIO:-$(command -v minio || echo "$(go env GOPATH)/bin/minio")}

WEIR_ACCESS_KEY=benchkey WEIR_SECRET_KEY=benchsecret123 "$work/weir" --addr 127.0.0.1:19000 --data "$work/weir-data" --log-level warn >/dev/null 2>"$work/weir.log" &
MINIO_ROOT_USER=benchkey MINIO_ROOT_PASSWORD=benchsecret123 "$MINIO" server --quiet --address 127.0.0.1:19001 --console-address 127.0.0.1:19002 "$work/minio-data" >/dev/null 2>&1 &
for port in 19000 19001; do
	for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/minio/health/live" && break; curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.2; done
done

echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo "# weir bench -workload put,get -size 4KiB,1MiB -concurrency $CONC -duration $DURATION"
for round in $(seq "$ROUNDS"); do
	for peer in weir:19000 minio:19001; do
		name=${peer%%:*} port=${peer##*:}
		echo "## round $round: $name"
		"$work/weir" bench -endpoint "http://127.0.0.1:$port" -access-key benchkey -secret-key benchsecret123 \
			-bucket "bench-$round" -workload put,get -size 4KiB,1MiB -concurrency "$CONC" -duration "$DURATION"
	done
done
