#!/usr/bin/env bash
# Installs what the test suite needs from the distribution's packages, when
# missing: redis-server (the tests start their own throw-away servers), jq,
# python3, oathtool, curl and chromium; then the server matrix (install-servers.sh) and
# versitygw.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The API's end-to-end test computes TOTP codes with oathtool and drives the
# server with curl.
command -v oathtool >/dev/null 2>&1 || need+=(oathtool)
command -v curl >/dev/null 2>&1 || need+=(curl)
# The web console's browser tests (api/console) drive Debian's Chromium,
# headless, through chromedp; they fail without it.
[ -x /usr/bin/chromium ] || need+=(chromium)
# install-servers.sh unpacks the server matrix from Debian's archive.
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
command -v gpgv >/dev/null 2>&1 || need+=(gpgv)
[ -r /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian package starts a server on 6379; the tests never use it.
redis-server --version
# The server matrix of internal/redistest (redis 7.0 to valkey 9, unpacked
# from Debian's archive into ~/.cache/redback-servers, nothing installed
# system-wide): its tests fail when one is missing.
"$(dirname "$0")/install-servers.sh"
# versitygw, a real S3-compatible server: the sinks, agent and CLI tests start
# it on a free loopback port (internal/s3test) and find it on PATH or in the
# Go install folder ($(go env GOBIN) or $(go env GOPATH)/bin). Built with
# go install (a few minutes, once).
versitygw_version=v1.8.0
gobin="$(go env GOBIN)"
[ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
if ! command -v versitygw >/dev/null 2>&1 && [ ! -x "$gobin/versitygw" ]; then
  echo "installing: versitygw ${versitygw_version} (go install)" >&2
  go install "github.com/versity/versitygw/cmd/versitygw@${versitygw_version}"
fi
PATH="$PATH:$gobin" versitygw --version >/dev/null
