#!/usr/bin/env bash
# Install a real Apptainer runtime on Debian 12 from Debian's own packages (run as root).
# Debian 12 ships no apptainer; Debian unstable's package needs glibc >= 2.38, so it is unpacked
# into $PREFIX (not dpkg-installed) and its two programs are pointed at a private glibc from
# Debian 13's libc6 with patchelf. The system's apt sources are not touched. Idempotent: exits at
# once when `apptainer --version` already works. Takes ~10-30 s.
set -euo pipefail
PREFIX=${APPTAINER_PREFIX:-/opt/apptainer}
GLIBC_DIR=${APPTAINER_GLIBC_DIR:-/opt/apptainer-glibc}
log() { echo "[install-apptainer] $*" >&2; }

if apptainer --version >/dev/null 2>&1; then
    log "already installed: $(apptainer --version)"
    exit 0
fi
[ "$(id -u)" = 0 ] || { log "run as root"; exit 1; }
work=$(mktemp -d)
chmod 0755 "$work"  # apt downloads as the _apt user
trap 'rm -rf "$work"' EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends squashfs-tools squashfuse fuse2fs fuse-overlayfs \
    uidmap debootstrap patchelf libseccomp2 libsqlite3-0 libcap2-bin ca-certificates binutils >/dev/null

# a private apt state that indexes trixie and sid, for `apt-get download` only
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
printf 'deb %s trixie main\ndeb %s sid main\n' "$mirror" "$mirror" >"$work/sources.list"
apt_private=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/nonexistent
             -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
apt-get "${apt_private[@]}" update -qq
(cd "$work" && apt-get "${apt_private[@]}" download apptainer/sid libc6/trixie >/dev/null 2>&1)
dpkg-deb -x "$work"/apptainer_*.deb "$work/app"
dpkg-deb -x "$work"/libc6_*.deb "$work/glibc"

rm -rf "$GLIBC_DIR" "$PREFIX"
mkdir -p "$GLIBC_DIR" "$PREFIX"
cp -a "$work"/glibc/usr/lib/x86_64-linux-gnu/. "$GLIBC_DIR"/
cp -a "$work"/app/usr/. "$PREFIX"/
cp -a "$work"/app/etc "$work"/app/var "$PREFIX"/
mkdir -p "$PREFIX"/var/lib/apptainer/mnt/session
# the starter finds its prefix three levels above itself (= PREFIX/lib with Debian's layout)
ln -s ../var "$PREFIX"/lib/var
ln -s ../etc "$PREFIX"/lib/etc
ln -s ../bin "$PREFIX"/lib/bin
for f in "$PREFIX"/bin/apptainer "$PREFIX"/lib/x86_64-linux-gnu/apptainer/bin/starter; do
    patchelf --set-interpreter "$GLIBC_DIR"/ld-linux-x86-64.so.2 --set-rpath "$GLIBC_DIR" --force-rpath "$f"
done
ln -sf "$PREFIX"/bin/apptainer /usr/local/bin/apptainer

# Root may lack some capabilities in a VM (here CAP_SYS_RESOURCE): grant root exactly those it
# has, instead of the default "full" set the starter would fail to get.
conf="$PREFIX"/etc/apptainer/apptainer.conf
sed -i 's/^root default capabilities = full/root default capabilities = file/' "$conf"
have=$(capsh --decode="$(awk '/^CapBnd/{print $2}' /proc/self/status)" | cut -d= -f2 | tr 'a-z,' 'A-Z\n')
known=$(apptainer capability avail 2>&1 | grep -o '^CAP_[A-Z_]*')
caps=$(comm -12 <(sort <<<"$have") <(sort <<<"$known") | paste -sd, -)
apptainer capability add --user root "$caps" 2>/dev/null
grep -q '^root:' /etc/subuid || echo 'root:100000:65536' >>/etc/subuid
grep -q '^root:' /etc/subgid || echo 'root:100000:65536' >>/etc/subgid
log "installed: $(apptainer --version)"
