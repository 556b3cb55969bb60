#!/usr/bin/env bash
# Installs the server matrix of the tests (internal/redistest.Matrix): one
# redis-server or valkey-server of each version people run, taken from
# Debian's package archive and unpacked into a cache folder, never installed
# system-wide:
#
#   redis-7.0   bookworm's redis-server (the system /usr/bin/redis-server when
#               it is a 7.0, as install-test-deps.sh installs it on bookworm)
#   valkey-8.0  bookworm-backports' valkey-server
#   redis-8.0   trixie's redis-server
#   valkey-8.1  trixie's valkey-server
#   redis-8     the newest redis-server 8.x of forky and sid
#   valkey-9    the newest valkey-server 9.x of forky and sid
#
# Each server is unpacked with the C library and the other libraries of its
# own suite (resolved from the Packages index: its Depends, followed through
# the lib* packages) into CACHE/NAME/VERSION, and CACHE/bin/NAME (and
# CACHE/bin/NAME-cli) runs it through that suite's dynamic loader, so a
# server built for a newer glibc runs on an older machine. The versions are
# not pinned: each run takes the newest one of the suite whose version still
# matches the name, and records what it fetched in CACHE/servers.tsv and
# CACHE/NAME/VERSION/.redback-manifest.
#
# The chain of trust is apt's: InRelease is checked with gpgv against
# debian-archive-keyring, Packages.xz against InRelease's SHA256, each .deb
# against Packages' SHA256.
#
# CACHE is $REDBACK_SERVER_CACHE, by default ~/.cache/redback-servers. Safe to
# run again: what is cached is reused (a warm run costs one small InRelease
# download per suite), a run stopped half-way leaves only *.part files and
# .tmp folders that the next run replaces. When the archive cannot be reached
# and everything is already cached, the cached servers are used.
set -euo pipefail

CACHE="${REDBACK_SERVER_CACHE:-$HOME/.cache/redback-servers}"
MIRROR="${REDBACK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
KEYRING="${REDBACK_DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}"

# NAME KIND VERSION-PREFIX SUITES (where the server may come from, in no
# particular order: the newest matching version wins).
MATRIX="
redis-7.0  redis  7.0. bookworm
valkey-8.0 valkey 8.0. bookworm-backports
redis-8.0  redis  8.0. trixie
valkey-8.1 valkey 8.1. trixie
redis-8    redis  8.   forky,sid
valkey-9   valkey 9.   forky,sid
"

log() { echo "install-servers: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

for tool in curl xz dpkg-deb dpkg gpgv sha256sum flock; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (run scripts/install-test-deps.sh, or apt-get install curl xz-utils gpgv)"
done
[ -r "$KEYRING" ] || die "$KEYRING is missing (apt-get install debian-archive-keyring)"

arch="$(dpkg --print-architecture)"
case "$arch" in
  amd64) triplet=x86_64-linux-gnu ;;
  arm64) triplet=aarch64-linux-gnu ;;
  *) die "architecture $arch is not supported" ;;
esac

case "$CACHE" in *"'"*) die "the cache path must not hold a single quote: $CACHE" ;; esac
mkdir -p "$CACHE/lists" "$CACHE/debs" "$CACHE/bin"
exec 9>"$CACHE/.lock"
flock 9 # one run at a time per cache

# fetch URL DEST: downloads to DEST.part, then renames. Returns non-zero on
# failure, leaving DEST as it was.
fetch() {
  local url="$1" dest="$2"
  rm -f "$dest.part"
  if curl -fsSL --retry 2 --connect-timeout 10 --max-time 600 -o "$dest.part" "$url"; then
    mv -f "$dest.part" "$dest"
  else
    rm -f "$dest.part"
    return 1
  fi
}

sha256() { sha256sum "$1" | cut -d' ' -f1; }

offline=0 # set when the archive could not be reached and the cache is used

# update_suite SUITE: makes CACHE/lists/SUITE.tsv current, a digest of the
# suite's Packages for the libraries (Section: libs) and the redis* and
# valkey* packages: one line per package: Package Version Filename SHA256
# Section Depends (with Pre-Depends).
update_suite() {
  local suite="$1" dir="$CACHE/lists"
  local rel="$dir/$suite.Release" tsv="$dir/$suite.tsv" xzf="$dir/$suite.Packages.xz"
  # Once the archive failed to answer, the other suites do not wait for it.
  if [ "$offline" = 0 ] && fetch "$MIRROR/dists/$suite/InRelease" "$dir/$suite.InRelease.new"; then
    # Verified cleartext only: the unsigned part of the file is never read.
    if ! gpgv --keyring "$KEYRING" --output "$dir/$suite.Release.new" "$dir/$suite.InRelease.new" 2>"$dir/$suite.gpgv"; then
      cat "$dir/$suite.gpgv" >&2
      rm -f "$dir/$suite.InRelease.new" "$dir/$suite.Release.new"
      die "$suite: InRelease signature does not verify against $KEYRING"
    fi
    mv -f "$dir/$suite.Release.new" "$rel"
    rm -f "$dir/$suite.InRelease.new"
  elif [ -s "$rel" ] && [ -s "$tsv" ]; then
    [ "$offline" = 1 ] || log "warning: cannot reach $MIRROR; using the cached indexes"
    offline=1
    return 0
  else
    die "cannot download $MIRROR/dists/$suite/InRelease"
  fi
  local want
  want="$(awk '/^SHA256:/ {s=1; next} /^[^ ]/ {s=0} s && $3 == "main/binary-'"$arch"'/Packages.xz" {print $1}' "$rel")"
  [ -n "$want" ] || die "$suite: InRelease lists no main/binary-$arch/Packages.xz"
  if [ -s "$tsv" ] && [ "$(cat "$tsv.sha256" 2>/dev/null)" = "$want" ]; then
    return 0 # unchanged
  fi
  if [ ! -s "$xzf" ] || [ "$(sha256 "$xzf")" != "$want" ]; then
    log "downloading $suite Packages.xz"
    fetch "$MIRROR/dists/$suite/main/binary-$arch/Packages.xz" "$xzf" || die "cannot download $suite Packages.xz"
    [ "$(sha256 "$xzf")" = "$want" ] || {
      rm -f "$xzf"
      die "$suite: Packages.xz does not match InRelease's SHA256 (the mirror may be updating; run again)"
    }
  fi
  xz -dc "$xzf" | awk '
    BEGIN { RS = ""; FS = "\n"; OFS = "\t" }
    {
      p = v = f = s = sec = d = pd = ""
      for (i = 1; i <= NF; i++) {
        l = $i
        if (l ~ /^Package: /) p = substr(l, 10)
        else if (l ~ /^Version: /) v = substr(l, 10)
        else if (l ~ /^Filename: /) f = substr(l, 11)
        else if (l ~ /^SHA256: /) s = substr(l, 9)
        else if (l ~ /^Section: /) sec = substr(l, 10)
        else if (l ~ /^Depends: /) d = substr(l, 10)
        else if (l ~ /^Pre-Depends: /) pd = substr(l, 14)
      }
      if (pd != "") d = (d == "" ? pd : pd ", " d)
      if (d == "") d = "-"
      if (sec == "") sec = "-"
      if ((sec == "libs" || p ~ /^(redis|valkey)/) && v != "" && f != "" && s != "") print p, v, f, s, sec, d
    }' >"$tsv.part"
  [ -s "$tsv.part" ] || die "$suite: no packages parsed from Packages.xz"
  mv -f "$tsv.part" "$tsv"
  echo "$want" >"$tsv.sha256"
  rm -f "$xzf" # the digest is all that is used
}

# newest SUITES PACKAGE PREFIX: prints "SUITE VERSION" of the newest PACKAGE
# among SUITES (comma separated) whose upstream version starts with PREFIX.
newest() {
  local suites="$1" pkg="$2" prefix="$3" best_s="" best_v="" s v up
  for s in ${suites//,/ }; do
    while IFS=$'\t' read -r v; do
      up="${v#*:}"
      up="${up%-*}"
      case "$up" in "$prefix"*) ;; *) continue ;; esac
      if [ -z "$best_v" ] || dpkg --compare-versions "$v" gt "$best_v"; then
        best_s="$s"
        best_v="$v"
      fi
    done < <(awk -F'\t' -v p="$pkg" '$1 == p {print $2}' "$CACHE/lists/$s.tsv")
  done
  [ -n "$best_v" ] && echo "$best_s $best_v"
}

# closure KIND SUITE-TSV...: from KIND-server, follows Depends through
# KIND-tools and the libraries (Section: libs; not adduser, systemd and the
# like), the first of the given suites that has a package winning, an
# alternative "a | b" taking the first eligible one that exists, and prints
# "Package Version Filename SHA256" for each.
closure() {
  local kind="$1"
  shift
  awk -F'\t' -v kind="$kind" '
    function eligible(n) { return sec[n] == "libs" || n == kind "-server" || n == kind "-tools" }
    !($1 in ver) { ver[$1] = $2; file[$1] = $3; sum[$1] = $4; sec[$1] = $5; dep[$1] = $6 }
    END {
      q[1] = kind "-server"; seen[kind "-server"] = 1; n = 1
      if (!((kind "-server") in ver)) { print "missing " kind "-server" > "/dev/stderr"; exit 1 }
      for (i = 1; i <= n; i++) {
        p = q[i]
        print p "\t" ver[p] "\t" file[p] "\t" sum[p]
        if (dep[p] == "-") continue
        ng = split(dep[p], groups, ",")
        for (g = 1; g <= ng; g++) {
          na = split(groups[g], alts, "|")
          for (a = 1; a <= na; a++) {
            x = alts[a]
            sub(/\(.*\)/, "", x); gsub(/[ \t]/, "", x); sub(/:.*/, "", x)
            if ((x in ver) && eligible(x)) {
              if (!(x in seen)) { seen[x] = 1; q[++n] = x }
              break
            }
          }
        }
      }
    }' "$@"
}

# get_deb FILENAME SHA256: prints the path of the verified .deb in the cache,
# downloading it when needed.
get_deb() {
  local file="$1" want="$2" dest
  dest="$CACHE/debs/$(basename "$file")"
  if [ -s "$dest" ] && [ "$(sha256 "$dest")" = "$want" ]; then
    echo "$dest"
    return 0
  fi
  fetch "$MIRROR/$file" "$dest" || die "cannot download $MIRROR/$file (if the index is stale, run again)"
  if [ "$(sha256 "$dest")" != "$want" ]; then
    rm -f "$dest"
    die "$file does not match the SHA256 of Packages"
  fi
  echo "$dest"
}

# write_wrapper PATH LINE...: writes an executable shell script atomically.
write_wrapper() {
  local path="$1"
  shift
  {
    echo "#!/bin/sh"
    printf '%s\n' "$@"
  } >"$path.tmp"
  chmod 755 "$path.tmp"
  mv -f "$path.tmp" "$path"
}

# check_version WRAPPER PREFIX: the server's --version must report v=PREFIX...
check_version() {
  local out
  out="$("$1" --version 2>&1)" || die "$1 --version failed: $out"
  case "$out" in
    *" v=$2"*) echo "$out" ;;
    *) die "$1 --version says \"$out\", not v=$2*" ;;
  esac
}

# The suites to index: each server's, plus the base suite of a backports one
# (its libraries come from there).
suites=""
add_suite() { case " $suites " in *" $1 "*) ;; *) suites="$suites $1" ;; esac }
while read -r name kind prefix where; do
  [ -n "$name" ] || continue
  for s in ${where//,/ }; do
    add_suite "$s"
    case "$s" in *-backports) add_suite "${s%-backports}" ;; esac
  done
done <<<"$MATRIX"
for s in $suites; do update_suite "$s"; done

manifest="$CACHE/servers.tsv"
: >"$manifest.tmp"
summary=""
while read -r name kind prefix where; do
  [ -n "$name" ] || continue
  wrapper="$CACHE/bin/$name"
  cli="$CACHE/bin/$name-cli"

  # redis-7.0 is the system's redis-server when that is a 7.0.
  if [ "$name" = redis-7.0 ] && [ -x /usr/bin/redis-server ] &&
    /usr/bin/redis-server --version 2>/dev/null | grep -q " v=$prefix"; then
    write_wrapper "$wrapper" "# redback test server $name: the system's redis-server (scripts/install-servers.sh)" \
      'exec /usr/bin/redis-server "$@"'
    if [ -x /usr/bin/redis-cli ]; then
      write_wrapper "$cli" 'exec /usr/bin/redis-cli "$@"'
    fi
    out="$(check_version "$wrapper" "$prefix")"
    v="$(echo "$out" | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
    debv="$(dpkg-query -W -f '${Version}' redis-server 2>/dev/null || echo '?')"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$v" "system" "/usr/bin/redis-server ($debv)" >>"$manifest.tmp"
    summary="$summary$name $v (system redis-server $debv)"$'\n'
    continue
  fi

  pick="$(newest "$where" "$kind-server" "$prefix")" ||
    die "$name: no $kind-server $prefix* in ${where//,/ } any more; update MATRIX in $0 and redistest.Matrix"
  suite="${pick% *}"
  debver="${pick#* }"
  tsvs=("$CACHE/lists/$suite.tsv")
  case "$suite" in *-backports) tsvs+=("$CACHE/lists/${suite%-backports}.tsv") ;; esac

  rootver="${debver#*:}"
  root="$CACHE/$name/$rootver"
  if [ ! -e "$root/.redback-manifest" ]; then
    log "$name: $kind-server $debver from $suite"
    pkgs="$(closure "$kind" "${tsvs[@]}")" || die "$name: cannot resolve $kind-server in $suite"
    tmp="$CACHE/$name/.$rootver.tmp"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    while IFS=$'\t' read -r p v f s; do
      deb="$(get_deb "$f" "$s")"
      dpkg-deb -x "$deb" "$tmp"
      printf '%s\t%s\t%s\t%s\n' "$p" "$v" "$f" "$s" >>"$tmp/.redback-packages"
    done <<<"$pkgs"
    # What a test server never uses: documentation, iconv modules, the
    # benchmark; check-aof is the server binary again.
    rm -rf "${tmp:?}/usr/share" "$tmp/usr/lib/$triplet/gconv" "$tmp/usr/bin/$kind-benchmark"
    if cmp -s "$tmp/usr/bin/$kind-check-aof" "$tmp/usr/bin/$kind-check-rdb"; then
      ln -sf "$kind-check-rdb" "$tmp/usr/bin/$kind-check-aof"
    fi
    # Checked at its final path below; .redback-manifest, written once the
    # checks pass, marks it complete.
    rm -rf "$root"
    mv "$tmp" "$root"
  fi

  loader="$(find "$root" -name 'ld-linux*.so*' -type f | head -n1)"
  [ -n "$loader" ] || die "$name: no dynamic loader in $root"
  libpath="$root/usr/lib/$triplet:$root/lib/$triplet"
  bin="$root/usr/bin/$kind-server"
  [ -e "$bin" ] || die "$name: $bin is missing"
  # Every library must come from the tree, none from the machine.
  list="$("$loader" --library-path "$libpath" --list "$bin" 2>&1)" || die "$name: the loader cannot load $bin: $list"
  if echo "$list" | grep -q 'not found'; then
    die "$name: libraries missing from $root (add their package to the resolution): $(echo "$list" | grep 'not found')"
  fi
  outside="$(echo "$list" | awk -v r="$root/" '$2 == "=>" && index($3, r) != 1 {print $1 " => " $3}')"
  [ -z "$outside" ] || die "$name: libraries resolved outside $root: $outside"

  if [ ! -e "$root/.redback-manifest" ]; then
    {
      echo "# $name: $kind-server $debver from Debian $suite ($MIRROR), fetched $(date -u +%Y-%m-%dT%H:%M:%SZ)"
      echo "# package version filename sha256"
      cat "$root/.redback-packages"
    } >"$root/.redback-manifest"
  fi

  write_wrapper "$wrapper" "# redback test server $name: $kind-server $debver from Debian $suite (scripts/install-servers.sh)" \
    "exec '$loader' --library-path '$libpath' --argv0 $kind-server '$bin' \"\$@\""
  if [ -e "$root/usr/bin/$kind-cli" ]; then
    write_wrapper "$cli" "# redback test client $name: $kind-cli $debver from Debian $suite" \
      "exec '$loader' --library-path '$libpath' --argv0 $kind-cli '$root/usr/bin/$kind-cli' \"\$@\""
  fi
  out="$(check_version "$wrapper" "$prefix")"
  v="$(echo "$out" | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$v" "$suite" "$kind-server $debver" >>"$manifest.tmp"
  summary="$summary$name $v ($kind-server $debver, $suite)"$'\n'

  # Older versions of this server, and leftovers of interrupted runs.
  for old in "$CACHE/$name"/* "$CACHE/$name"/.*.tmp; do
    [ -e "$old" ] || continue
    [ "$old" = "$root" ] || rm -rf "$old"
  done
done <<<"$MATRIX"
mv -f "$manifest.tmp" "$manifest"

# The .deb files are unpacked: only a new version needs them again.
rm -f "$CACHE/debs"/*
[ "$offline" = 0 ] || log "warning: $MIRROR could not be reached: these are the cached servers, not checked for newer versions"

printf '%s' "$summary"
