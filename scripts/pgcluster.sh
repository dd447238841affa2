#!/usr/bin/env bash
# A throw-away PostgreSQL cluster on a free loopback port, from Debian's
# postgresql package (installed if missing and run as root): for CI
# (.ci/run) and `make run-province`. Usage:
#
#   scripts/pgcluster.sh start DIR   # prints the connection URL
#   scripts/pgcluster.sh stop DIR
#
# initdb refuses to run as root, so as root the cluster belongs to the
# unprivileged "postgres" user the package creates (or "nobody").
set -euo pipefail
cmd=${1:?start or stop}
dir=${2:?a directory for the cluster}

find_bin() {
	if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
	ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}
bin=$(find_bin || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "pgcluster: installing Debian's postgresql package" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
		bin=$(find_bin)
	else
		echo "pgcluster: initdb not found: install Debian's postgresql package (apt-get install postgresql)" >&2
		exit 1
	fi
fi

as_owner() {
	if [ "$(id -u)" = 0 ]; then
		local user=postgres
		id "$user" >/dev/null 2>&1 || user=nobody
		runuser -u "$user" -- "$@"
	else
		"$@"
	fi
}

case $cmd in
start)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ "$(id -u)" = 0 ]; then
		user=postgres; id "$user" >/dev/null 2>&1 || user=nobody
		chown "$user" "$dir"
		# the owner must reach the directory through its parents
		chmod o+x "$(dirname "$dir")" 2>/dev/null || true
	fi
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		as_owner "$bin/initdb" -D "$dir/data" -U rasoat --auth=trust --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; exit 1; }
	fi
	# a free loopback port, asked of the kernel
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-h 127.0.0.1 -p $port -k $dir -c fsync=on -c max_connections=200" start >&2 ||
		{ cat "$dir/server.log" >&2; exit 1; }
	echo "$port" >"$dir/port"
	echo "postgres://rasoat@127.0.0.1:$port/postgres?sslmode=disable"
	;;
stop)
	[ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
	;;
*)
	echo "pgcluster: unknown command $cmd" >&2
	exit 2
	;;
esac
