#!/usr/bin/env bash
# The province's high-availability setup, on one machine, to try the
# commands README's "A primary that can fail" gives: a PostgreSQL primary
# and a synchronous standby (streaming replication, pg_basebackup -R),
# each on a free loopback port under DIR. The test that measures it is
# internal/hatest (go test -run TestFailover -v ./internal/hatest/).
#
#   scripts/ha.sh start DIR     # prints the multi-host URL for rasoatd --db
#   scripts/ha.sh failover DIR  # the primary stops at once (immediate: no checkpoint), the standby is promoted
#   scripts/ha.sh rejoin DIR [--basebackup]
#                               # the old primary, fenced (down), rewound (pg_rewind, or a fresh copy)
#                               # and started as the new primary's synchronous standby
#   scripts/ha.sh status DIR    # each node: running, primary or standby, and what the primary streams to
#   scripts/ha.sh stop DIR
#
# failover and rejoin go either way: after start, failover then rejoin,
# the nodes under DIR/primary and DIR/standby have swapped roles, and a
# second failover moves the primary back. The URL stays the same.
#
# Needs Debian's postgresql package (scripts/pgcluster.sh installs it as
# root); as root the clusters belong to the "postgres" user.
set -euo pipefail
cmd=${1:?start, failover, rejoin, status or stop}
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
psql_at() { # port sql...
	local p=$1
	shift
	as_owner "$bin/psql" -h 127.0.0.1 -p "$p" -U rasoat -d postgres -Atq "${@/#/-c}"
}
running() { [ -f "$dir/$1/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir/$1" status >/dev/null 2>&1; }
# port_of NODE: the node's port, as start chose it (DIR/ports: primary's, standby's).
port_of() { read -r a b <"$dir/ports"; if [ "$1" = primary ]; then echo "$a"; else echo "$b"; fi; }
other() { if [ "$1" = primary ]; then echo standby; else echo primary; fi; }
# current_primary: the running node that is not in recovery.
current_primary() {
	for n in primary standby; do
		if running "$n" && [ "$(psql_at "$(port_of "$n")" "SELECT pg_is_in_recovery()")" = f ]; then
			echo "$n"
			return
		fi
	done
	return 1
}
wait_sync() { # primary's port
	local s=
	for _ in $(seq 300); do
		s=$(psql_at "$1" "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'")
		[ "$s" = sync ] && return 0
		sleep 0.1
	done
	echo "ha: the standby is not synchronous (sync_state '$s')" >&2
	return 1
}

[ "$cmd" = start ] || dir=$(cd "$dir" && pwd)

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
	# wal_log_hints: pg_rewind can rejoin this node as a standby after a
	# failover; wal_keep_size: the other node keeps the WAL since the
	# timelines split, which the rejoined node replays. In the file, which
	# the copies take, so either node can be the primary.
	printf 'wal_log_hints = on\nwal_keep_size = 512MB\nwal_retrieve_retry_interval = 500ms\n' | as_owner tee -a "$dir/primary/postgresql.conf" >/dev/null
	pg_start "$dir/primary" "$p1" "$dir/primary.log"
	as_owner "$bin/psql" -h 127.0.0.1 -p "$p1" -U rasoat -d postgres -qc "CREATE DATABASE province TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
	# The standby: a copy with standby.signal and primary_conninfo (-R),
	# named standby1, its WAL kept by a replication slot (-C -S).
	p2=$(port)
	as_owner "$bin/pg_basebackup" -D "$dir/standby" -d "host=127.0.0.1 port=$p1 user=rasoat application_name=standby1" \
		-R -X stream -C -S standby1 -c fast
	# (wal_retrieve_retry_interval, copied above: a promotion waits out the
	# standby's pause between tries of its WAL sources, 5 s by default.)
	pg_start "$dir/standby" "$p2" "$dir/standby.log"
	# Only now: the standby's copy must not wait for a standby of its own
	# once promoted.
	psql_at "$p1" "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" "SELECT pg_reload_conf()" >/dev/null
	wait_sync "$p1"
	echo "$p1 $p2" >"$dir/ports"
	echo "postgres://rasoat@127.0.0.1:$p1,127.0.0.1:$p2/province?sslmode=disable&target_session_attrs=read-write&connect_timeout=5"
	;;
failover)
	# Never two primaries: the old one is stopped before the other is
	# promoted, and stays down until rejoin makes it a standby.
	p=$(current_primary) || { echo "ha: no running primary to fail over from" >&2; exit 1; }
	as_owner "$bin/pg_ctl" -D "$dir/$p" -m immediate -w stop >&2
	as_owner "$bin/pg_ctl" -D "$dir/$(other "$p")" -w promote >&2
	echo "ha: $(other "$p") is the primary; $p is down: scripts/ha.sh rejoin $dir makes it the standby" >&2
	;;
rejoin)
	new=$(current_primary) || { echo "ha: no running primary to rejoin" >&2; exit 1; }
	old=$(other "$new")
	pn=$(port_of "$new")
	po=$(port_of "$old")
	# Fenced: the old primary must be down (a primary started as it was
	# would take writes: rasoatd's URL names it).
	if running "$old"; then
		[ "$(psql_at "$po" "SELECT pg_is_in_recovery()")" = t ] && { echo "ha: $old is a standby already" >&2; exit 0; }
		echo "ha: $old is running as a primary beside $new: stop it (pg_ctl -m immediate stop) before anything else" >&2
		exit 1
	fi
	conninfo="host=127.0.0.1 port=$pn user=rasoat application_name=standby1"
	# The slot keeps on the new primary the WAL the standby has not had.
	psql_at "$pn" "SELECT pg_create_physical_replication_slot('standby1') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'standby1')" >/dev/null
	# A primary promoted a moment ago may not have written its new timeline
	# to its control file, where pg_rewind reads it.
	psql_at "$pn" "CHECKPOINT"
	if [ "${3:-}" != --basebackup ]; then
		# A failed rewind (a connection refused, WAL gone) stops here: the
		# old primary's files are the operator's to throw away, with
		# --basebackup, never this script's on its own.
		as_owner "$bin/pg_rewind" --target-pgdata="$dir/$old" --source-server="$conninfo dbname=postgres" --write-recovery-conf >&2 ||
			{ echo "ha: pg_rewind failed; $old is untouched and down. Retry, or take a fresh copy: scripts/ha.sh rejoin $dir --basebackup" >&2; exit 1; }
		# pg_rewind copied the new primary's postgresql.auto.conf, with
		# what it had as a standby; the last setting wins.
		printf "primary_conninfo = '%s'\nprimary_slot_name = 'standby1'\n" "$conninfo" | as_owner tee -a "$dir/$old/postgresql.auto.conf" >/dev/null
		# pg_rewind leaves the node's own replication slots (it copies no
		# pg_replslot/): the slot it kept for its standby while primary
		# would hold back its WAL until the next failover.
		as_owner rm -rf "$dir/$old/pg_replslot"/* 2>/dev/null || true
	else
		echo "ha: a fresh copy of $new for $old (pg_basebackup)" >&2
		rm -rf "${dir:?}/$old"
		as_owner "$bin/pg_basebackup" -D "$dir/$old" -d "$conninfo" -R -X stream -S standby1 -c fast
	fi
	pg_start "$dir/$old" "$po" "$dir/$old.log"
	psql_at "$pn" "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" "SELECT pg_reload_conf()" >/dev/null
	wait_sync "$pn"
	echo "ha: $old is $new's synchronous standby" >&2
	;;
status)
	for n in primary standby; do
		if running "$n"; then
			r=$(psql_at "$(port_of "$n")" "SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE 'primary' END")
			echo "$n	port $(port_of "$n")	running	$r"
		else
			echo "$n	port $(port_of "$n")	down"
		fi
	done
	if p=$(current_primary); then
		psql_at "$(port_of "$p")" "SELECT 'streams to ' || application_name || ': ' || state || ', ' || sync_state FROM pg_stat_replication"
	fi
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
