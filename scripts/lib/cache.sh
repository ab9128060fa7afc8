# Sourced by scripts: the cache directory, the same rule as the harness's
# CacheDirectory: $KHARNESS_CACHE, else /var/cache/kharness for root (QEMU
# runs as libvirt's unprivileged user and must read what is kept there),
# else $XDG_CACHE_HOME/kharness, else ~/.cache/kharness.
kharness_cache() {
	if [ -n "${KHARNESS_CACHE:-}" ]; then
		echo "$KHARNESS_CACHE"
	elif [ "$(id -u)" = 0 ]; then
		echo /var/cache/kharness
	else
		echo "${XDG_CACHE_HOME:-$HOME/.cache}/kharness"
	fi
}
