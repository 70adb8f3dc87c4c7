#!/bin/bash
# bench/net.py side by side with a dockerd that has its default bridge (own bip, iptables, docker-proxy);
# removes dockerd, its chains, docker0, mounts and cgroups afterwards. Args go to bench/net.py.
set -u
D=/tmp/dockernet
mkdir -p $D
cd "$(dirname "$0")/.."
echo '{}' > $D/daemon.json
dockerd --data-root $D/root --exec-root $D/exec -H unix://$D/docker.sock --pidfile $D/docker.pid \
  --config-file $D/daemon.json --bip 10.219.0.1/24 --cgroup-parent dockernet >$D/dockerd.log 2>&1 &
for i in $(seq 100); do [ -S $D/docker.sock ] && DOCKER_HOST=unix://$D/docker.sock docker version >/dev/null 2>&1 && break; sleep 0.2; done
python3 -c "
from pathlib import Path; from servin.images.seed import write_busybox_archive
write_busybox_archive(Path('$D/busybox.tar'))"
DOCKER_HOST=unix://$D/docker.sock docker load -i $D/busybox.tar
python3 bench/net.py --start-servin --host dockerd=unix://$D/docker.sock "$@"
kill $(cat $D/docker.pid); sleep 3
pkill -f "containerd.*$D" ; sleep 1
for t in nat filter; do
  iptables-save -t $t | grep -E '^-A (PREROUTING|OUTPUT|POSTROUTING|FORWARD) .*DOCKER' | sed 's/^-A/-D/' | while read -r r; do iptables -t $t $r; done
  for c in $(iptables-save -t $t | grep -oE '^:DOCKER[A-Z0-9-]*'| tr -d ':'); do iptables -t $t -F $c; done
  for c in $(iptables-save -t $t | grep -oE '^:DOCKER[A-Z0-9-]*'| tr -d ':'); do iptables -t $t -X $c; done
done
ip link del docker0 2>/dev/null
umount $(grep $D /proc/mounts | awk '{print $2}' | sort -r) 2>/dev/null
rmdir /sys/fs/cgroup/*/dockernet 2>/dev/null
rm -rf $D/root $D/exec
echo "DOCKER rules left: $(iptables-save | grep -c DOCKER)"
