#!/usr/bin/env bash
# Builds what the integration-test harness runs, idempotently (seconds when warm):
#   .venv/                      moto in server mode, pinned with hashes (tools/harness/moto)
#   $CACHE/bin/kube-apiserver-<version>, $CACHE/bin/etcd-<version>   from the Go module proxy
# CACHE is ${HWAI_CACHE_DIR:-$HOME/.cache/hwai}: outside the repository, so a fresh clone on the
# same machine starts warm. A cold build of kube-apiserver takes tens of minutes on two cores.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HARNESS="$ROOT/tools/harness"
CACHE="${HWAI_CACHE_DIR:-$HOME/.cache/hwai}"
BIN="$CACHE/bin"
mkdir -p "$BIN"

log() { printf '[harness] %s\n' "$*" >&2; }

# One build at a time per cache (make and the vitest global setup may both call this script).
exec 9>"$CACHE/.build.lock"
flock 9

# Version of a module required in a go.mod: `gomod_version <go.mod> <module>`.
gomod_version() { awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1"; }

# `go_build <name> <version> <module dir> <package> [ldflags...]` builds into $BIN/<name>-<version>.
go_build() {
  local name="$1" version="$2" dir="$3" pkg="$4" ldflags="$5"
  local out="$BIN/$name-$version"
  if [[ -x "$out" ]]; then return 0; fi
  log "building $name $version from the Go module proxy (once per version; kube-apiserver takes ~15 min on 2 cores)"
  local start=$SECONDS tmp="$out.tmp.$$"
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w $ldflags" -o "$tmp" "$pkg") &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    if (( (SECONDS - start) % 60 < 5 && SECONDS - start >= 60 )); then
      log "  still building $name ($(( (SECONDS - start) / 60 )) min)"
    fi
  done
  if ! wait "$pid"; then rm -f "$tmp"; log "building $name failed"; return 1; fi
  mv "$tmp" "$out"
  log "built $name $version in $(( SECONDS - start )) s ($(du -h "$out" | cut -f1))"
}

# moto: a project-local virtualenv, reinstalled only when requirements.txt changes.
VENV="$ROOT/.venv"
REQ="$HARNESS/moto/requirements.txt"
STAMP="$VENV/.hwai-moto-$(sha256sum "$REQ" | cut -c1-16)"
if [[ ! -f "$STAMP" ]]; then
  start=$SECONDS
  log "installing moto into .venv from PyPI (pinned with hashes)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps -r "$REQ"
  rm -f "$VENV"/.hwai-moto-*
  touch "$STAMP"
  log "installed moto in $(( SECONDS - start )) s"
fi

KUBE_VERSION="$(gomod_version "$HARNESS/kube/go.mod" k8s.io/kubernetes)"
KUBE_MINOR="$(cut -d. -f2 <<<"$KUBE_VERSION")"
KUBE_LDFLAGS=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  KUBE_LDFLAGS+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$KUBE_MINOR -X $pkg.gitTreeState=clean"
done
go_build kube-apiserver "$KUBE_VERSION" "$HARNESS/kube" k8s.io/kubernetes/cmd/kube-apiserver "$KUBE_LDFLAGS"

ETCD_VERSION="$(gomod_version "$HARNESS/etcd/go.mod" go.etcd.io/etcd/server/v3)"
go_build etcd "$ETCD_VERSION" "$HARNESS/etcd" . ""

# What the TypeScript global setup reads, on stdout (logs go to stderr): name=path lines.
cat <<EOF
MOTO_SERVER=$VENV/bin/moto_server
KUBE_APISERVER=$BIN/kube-apiserver-$KUBE_VERSION
KUBE_VERSION=$KUBE_VERSION
ETCD=$BIN/etcd-$ETCD_VERSION
ETCD_VERSION=$ETCD_VERSION
EOF
