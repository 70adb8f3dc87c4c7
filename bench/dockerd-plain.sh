#!/bin/bash
# Runs a bench script (default bench/registry.py) side by side with a throwaway dockerd that has no
# bridge and no iptables rules; removes dockerd, its containerd, mounts and cgroups afterwards.
#   bash bench/dockerd-plain.sh [bench/registry.py] [args...]
set -u
D=/tmp/dockerbench
SCRIPT=${1:-bench/registry.py}
[ $# -gt 0 ] && shift
mkdir -p $D
cd "$(dirname "$0")/.."
echo '{}' > $D/daemon.json
dockerd --data-root $D/root --exec-root $D/exec -H unix://$D/docker.sock --pidfile $D/docker.pid \
  --config-file $D/daemon.json --bridge=none --iptables=false --ip-masq=false --ip-forward=false \
  --cgroup-parent dockerbench >$D/dockerd.log 2>&1 &
for i in $(seq 100); do [ -S $D/docker.sock ] && DOCKER_HOST=unix://$D/docker.sock docker version >/dev/null 2>&1 && break; sleep 0.2; done
python3 "$SCRIPT" --start-servin --host dockerd=unix://$D/docker.sock "$@"
kill "$(cat $D/docker.pid)"; sleep 3
for p in $(pgrep -f "containerd.*$D"); do kill "$p"; done; sleep 1
umount $(grep $D /proc/mounts | awk '{print $2}' | sort -r) 2>/dev/null
rmdir /sys/fs/cgroup/*/dockerbench 2>/dev/null
rm -rf $D/root $D/exec
