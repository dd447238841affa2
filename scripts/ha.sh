#!/usr/bin/env bash
# The province's high-availability setup, on one machine, to try the
# commands README's "A primary that can fail" gives: a PostgreSQL primary
# and a synchronous standby (streaming replication, pg_basebackup -R),
# each on a free loopback port under DIR. The test that measures it is
# internal/hatest (go test -run TestFailover -v ./internal/hatest/).
#
#   scripts/ha.sh start DIR     # prints the multi-host URL for rasoatd --db
#   scripts/ha.sh failover DIR  # the primary stops at once (immediate: no checkpoint), the standby is promoted
#   scripts/ha.sh stop DIR
#
# Needs Debian's postgresql package (scripts/pgcluster.sh installs it as
# root); as root the clusters belong to the "postgres" user.
set -euo pipefail
cmd=${1:?start, failover or stop}
dir=${2:?a directory for the clusters}

bin=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")")
[ -x "$bin/initdb" ] || { echo "ha: initdb not found: apt-get install postgresql" >&2; exit 1; }
owner=$(id -un)
[ "$(id -u)" = 0 ] && { owner=postgres; id "$owner" >/dev/null 2>&1 || owner=nobody; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u "$owner" -- "$@"; else "$@"; fi; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pg_start() { # data-dir port log
	as_owner "$bin/pg_ctl" -D "$1" -l "$3" -w -t 60 -o "-h 127.0.0.1 -p $2 -k $dir" start >&2
}

case $cmd in
start)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	[ "$(id -u)" = 0 ] && { chown "$owner" "$dir"; chmod o+x "$(dirname "$dir")" 2>/dev/null || true; }
	p1=$(port)
	as_owner "$bin/initdb" -D "$dir/primary" -U rasoat --auth=trust --encoding=UTF8 --locale=C >"$dir/initdb.log"
	# wal_level=replica and max_wal_senders=10 are PostgreSQL's defaults;
	# synchronous_commit=on: a COMMIT returns once the standby has the WAL
	# on its disk.
	echo "synchronous_commit = on" | as_owner tee -a "$dir/primary/postgresql.conf" >/dev/null
	pg_start "$dir/primary" "$p1" "$dir/primary.log"
	as_owner "$bin/psql" -h 127.0.0.1 -p "$p1" -U rasoat -d postgres -qc "CREATE DATABASE province TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
	# The standby: a copy with standby.signal and primary_conninfo (-R),
	# named standby1, its WAL kept by a replication slot (-C -S).
	p2=$(port)
	as_owner "$bin/pg_basebackup" -D "$dir/standby" -d "host=127.0.0.1 port=$p1 user=rasoat application_name=standby1" \
		-R -X stream -C -S standby1 -c fast
	# A promotion waits out the standby's pause between tries of its WAL
	# sources (wal_retrieve_retry_interval, 5 s by default).
	echo "wal_retrieve_retry_interval = 500ms" | as_owner tee -a "$dir/standby/postgresql.conf" >/dev/null
	pg_start "$dir/standby" "$p2" "$dir/standby.log"
	# Only now: the standby's copy must not wait for a standby of its own
	# once promoted.
	as_owner "$bin/psql" -h 127.0.0.1 -p "$p1" -U rasoat -d postgres -qc "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" -c "SELECT pg_reload_conf()" >/dev/null
	for _ in $(seq 100); do
		s=$(as_owner "$bin/psql" -h 127.0.0.1 -p "$p1" -U rasoat -d postgres -Atc "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'")
		[ "$s" = sync ] && break
		sleep 0.1
	done
	[ "$s" = sync ] || { echo "ha: the standby is not synchronous (sync_state '$s')" >&2; exit 1; }
	echo "$p1 $p2" >"$dir/ports"
	echo "postgres://rasoat@127.0.0.1:$p1,127.0.0.1:$p2/province?sslmode=disable&target_session_attrs=read-write&connect_timeout=5"
	;;
failover)
	as_owner "$bin/pg_ctl" -D "$dir/primary" -m immediate -w stop >&2
	as_owner "$bin/pg_ctl" -D "$dir/standby" -w promote >&2
	;;
stop)
	for n in standby primary; do
		[ -f "$dir/$n/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir/$n" -m fast -w stop >&2 || true
	done
	;;
*)
	echo "ha: unknown command $cmd" >&2
	exit 2
	;;
esac
