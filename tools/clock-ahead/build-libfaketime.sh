#!/usr/bin/env bash
# Builds libfaketime for `make test-clock-ahead` into .cache/libfaketime (once).
#
# Debian 12's packaged libfaketime 0.9.10 cannot be used: it does not intercept sem_clockwait,
# so every Python threading wait with a timeout hangs when the monotonic clock is faked, and
# with FAKETIME_DONT_FAKE_MONOTONIC=1 time.sleep fails (EINVAL) and the JVMs' timed waits spin.
# The 2024-06-05 snapshot that Debian 13 ships fixes both; its source is taken from Debian's
# archive (pinned by SHA-256) and built with the machine's C compiler.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=.cache/libfaketime
LIB="$OUT/src/libfaketime.so.1"
[ -f "$LIB" ] && exit 0
NAME="faketime_0.9.10+2024-06-05+gba9ed5b2.orig.tar.xz"
SHA256=879597d9b3469b062314dbac70b2dd3b393053086772999ed94401b8ddb412de
mkdir -p .cache
TARBALL=".cache/$NAME"
if [ ! -f "$TARBALL" ]; then
  for base in http://deb.debian.org/debian/pool/main/f/faketime \
              https://snapshot.debian.org/archive/debian/20240914T000000Z/pool/main/f/faketime; do
    if curl -fsSL -o "$TARBALL.part" "$base/${NAME//+/%2b}"; then mv "$TARBALL.part" "$TARBALL"; break; fi
  done
fi
[ -f "$TARBALL" ] || { echo "cannot download $NAME from Debian's archive" >&2; exit 1; }
echo "$SHA256  $TARBALL" | sha256sum -c --quiet -
rm -rf "$OUT" && mkdir -p "$OUT"
tar -xJf "$TARBALL" -C "$OUT" --strip-components=1
make -s -C "$OUT/src" libfaketime.so.1 >/dev/null
echo "built $LIB"
