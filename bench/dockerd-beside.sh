#!/bin/bash
# Runs a bench script side by side with a throwaway dockerd (busybox loaded into it), then removes
# that dockerd, its containerd, mounts, cgroups and, with --bridge, its iptables chains and docker0.
#   bash bench/dockerd-beside.sh bench/registry.py [args...]            dockerd without networking
#   bash bench/dockerd-beside.sh --bridge bench/net.py [args...]        dockerd on its default bridge
#   bash bench/dockerd-beside.sh --tls bench/access.py [args...]        and on tcp://127.0.0.1:23760 --tlsverify
#        (exports DOCKERD_TLS and DOCKERD_CERTS, the client's ca.pem, cert.pem and key.pem)
set -u
BRIDGE=0
TLS=()
while [ "${1:-}" = "--bridge" ] || [ "${1:-}" = "--tls" ]; do
  if [ "$1" = "--bridge" ]; then BRIDGE=1; else TLS=(tls); fi
  shift
done
SCRIPT=${1:?usage: dockerd-beside.sh [--bridge] SCRIPT [args...]}
shift
D=/tmp/dockerbench
mkdir -p $D
cd "$(dirname "$0")/.."
echo '{}' > $D/daemon.json
if [ $BRIDGE = 1 ]; then
  NET=(--bip 10.219.0.1/24)
else
  NET=(--bridge=none --iptables=false --ip-masq=false --ip-forward=false)
fi
if [ ${#TLS[@]} = 1 ]; then
  python3 -m servin.cli.main certs generate $D/certs >/dev/null
  TLS=(-H tcp://127.0.0.1:23760 --tlsverify --tlscacert $D/certs/ca.pem --tlscert $D/certs/server-cert.pem
       --tlskey $D/certs/server-key.pem)
  export DOCKERD_TLS=tcp://127.0.0.1:23760 DOCKERD_CERTS=$D/certs
fi
dockerd "${TLS[@]}" --data-root $D/root --exec-root $D/exec -H unix://$D/docker.sock --pidfile $D/docker.pid \
  --config-file $D/daemon.json "${NET[@]}" --cgroup-parent dockerbench >$D/dockerd.log 2>&1 &
for i in $(seq 100); do [ -S $D/docker.sock ] && DOCKER_HOST=unix://$D/docker.sock docker version >/dev/null 2>&1 && break; sleep 0.2; done
python3 -c "from pathlib import Path; from servin.images.seed import write_busybox_archive
write_busybox_archive(Path('$D/busybox.tar'))"
DOCKER_HOST=unix://$D/docker.sock docker load -q -i $D/busybox.tar >/dev/null
python3 "$SCRIPT" --start-servin --host dockerd=unix://$D/docker.sock "$@"
kill "$(cat $D/docker.pid)"; sleep 3
for p in $(pgrep -f "containerd.*$D"); do kill "$p"; done; sleep 1
if [ $BRIDGE = 1 ]; then
  for t in nat filter; do
    # the jumps to dockerd's chains, and its rules in the built-in chains that name docker0 or its subnet
    iptables-save -t $t | grep -E '^-A (PREROUTING|OUTPUT|POSTROUTING|FORWARD) .*(DOCKER|docker0|10\.219\.0\.0/24)' |
      sed 's/^-A/-D/' |
      while read -r r; do iptables -t $t $r; done
    for c in $(iptables-save -t $t | grep -oE '^:DOCKER[A-Z0-9-]*' | tr -d ':'); do iptables -t $t -F $c; done
    for c in $(iptables-save -t $t | grep -oE '^:DOCKER[A-Z0-9-]*' | tr -d ':'); do iptables -t $t -X $c; done
  done
  ip link del docker0 2>/dev/null
  echo "DOCKER rules left: $(iptables-save | grep -ciE 'docker|10\.219\.0\.0/24')"
fi
umount $(grep $D /proc/mounts | awk '{print $2}' | sort -r) 2>/dev/null
rmdir /sys/fs/cgroup/*/dockerbench 2>/dev/null
rm -rf $D
