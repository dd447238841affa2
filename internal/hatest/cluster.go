// Package hatest runs the province's high-availability setup for real: a
// PostgreSQL primary and a synchronous standby made with PostgreSQL's own
// streaming replication (initdb, pg_basebackup -R, synchronous_standby_names),
// each on a free loopback port in a temporary directory, the primary killed
// with SIGKILL as a lost machine would be, and the standby promoted. The
// failover test and the province ingest benchmark use it; the README's
// operator section describes the same setup by hand.
//
// It needs the server binaries of Debian's postgresql package (initdb,
// postgres, pg_basebackup under /usr/lib/postgresql/*/bin), found as
// scripts/pgcluster.sh finds them. As root, the clusters belong to the
// package's unprivileged "postgres" user (or "nobody"): initdb refuses root.
package hatest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// StandbyName is the standby's application_name, which the primary's
// synchronous_standby_names names.
const StandbyName = "standby1"

// Database is the database the clusters make for rasoatd.
const Database = "province"

// Bin returns the directory of the PostgreSQL server binaries: initdb's
// on the PATH (through a symlink to it: the other binaries are beside the
// real one), else the newest /usr/lib/postgresql/*/bin.
func Bin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errors.New("initdb not found: install Debian's postgresql package (apt-get install postgresql; scripts/pgcluster.sh does it as root)")
}

// version is the major version in a /usr/lib/postgresql/N/bin path.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// Node is one PostgreSQL server: its data directory, its port, and the
// postmaster process, started in a process group of its own so that Kill
// takes it and every backend at once.
type Node struct {
	Name string
	Data string // the data directory
	Port int
	Log  string // the server's log file

	c    *Cluster
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	once sync.Once
}

// Cluster is the temporary directory the nodes live in, and who owns them.
type Cluster struct {
	Dir     string
	bin     string
	cred    *syscall.Credential // nil unless run as root
	Primary *Node
	Standby *Node
}

// New makes an empty cluster directory (no node yet), removed when tb
// ends, after stopping what it started.
func New(tb testing.TB) *Cluster {
	tb.Helper()
	bin, err := Bin()
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "rasoat-ha-")
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{Dir: dir, bin: bin}
	tb.Cleanup(func() {
		for _, n := range []*Node{c.Standby, c.Primary} {
			if n != nil {
				n.Kill()
			}
		}
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		name := "postgres"
		u, err := user.Lookup(name)
		if err != nil {
			name = "nobody"
			if u, err = user.Lookup(name); err != nil {
				tb.Fatalf("running as root, and neither a postgres nor a nobody user to own the cluster: %v", err)
			}
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
		// the owner must reach the directory through its parent
		if err := os.Chmod(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	return c
}

// command is a PostgreSQL binary run as the cluster's owner.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGCONNECT_TIMEOUT=10", "HOME="+c.Dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	return cmd
}

func (c *Cluster) run(name string, args ...string) error {
	out, err := c.command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// settings are every node's, in its postgresql.conf (which
// pg_basebackup and pg_rewind copy), so that either node can be the
// primary after a failover, and so that pg_rewind's crash recovery of a
// killed node, in single-user mode, which reads only the file, runs with
// them too: a recovery run with other values records them, and a
// standby refuses to start below its primary's max_connections or
// max_wal_senders.
const settings = `
synchronous_commit = on
max_wal_senders = 4
max_replication_slots = 4
max_connections = 200
# pg_rewind must know which pages changed after the timelines split,
# and the new primary must still hold its WAL from the split on, which
# the rejoined node replays (no slot held it for a node that was down).
wal_log_hints = on
wal_keep_size = 512MB
# A standby whose primary is gone retries its WAL sources every
# wal_retrieve_retry_interval, and a promotion waits out the current
# pause: at the default 5 s, promoting took 5.4 s in the failover test;
# at 500 ms, 0.5 s.
wal_retrieve_retry_interval = 500ms
`

// StartPrimary makes and starts the primary, alone (StartStandby gives it
// its synchronous standby), and creates Database.
func (c *Cluster) StartPrimary(ctx context.Context) (*Node, error) {
	n := &Node{Name: "primary", Data: filepath.Join(c.Dir, "primary"), c: c}
	if err := c.run("initdb", "-D", n.Data, "-U", "rasoat", "--auth=trust", "--encoding=UTF8", "--locale=C"); err != nil {
		return nil, err
	}
	if err := appendConf(filepath.Join(n.Data, "postgresql.conf"), settings); err != nil {
		return nil, err
	}
	if err := n.start(ctx); err != nil {
		return nil, err
	}
	c.Primary = n
	conn, err := pgx.Connect(ctx, n.URL("postgres"))
	if err != nil {
		return nil, fmt.Errorf("connect to the primary: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+Database+" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"); err != nil {
		return nil, fmt.Errorf("create database %s: %w", Database, err)
	}
	return n, nil
}

// StartStandby copies the running primary with pg_basebackup -R (a
// standby.signal and a primary_conninfo naming it, application_name
// StandbyName), keeping its WAL in a replication slot, and starts it; then
// makes it the primary's synchronous standby (ALTER SYSTEM SET
// synchronous_standby_names, reloaded) and waits until the primary
// reports it streaming and synchronous. From then on, with
// synchronous_commit = on, a COMMIT returns once the standby has flushed
// it to its own disk: no push rasoatd acknowledged is lost with the
// primary.
func (c *Cluster) StartStandby(ctx context.Context) (*Node, error) {
	p := c.Primary
	n := &Node{Name: "standby", Data: filepath.Join(c.Dir, "standby"), c: c}
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=rasoat application_name=%s", p.Port, StandbyName)
	if err := c.run("pg_basebackup", "-D", n.Data, "-d", conninfo, "-R", "-X", "stream", "-C", "-S", StandbyName, "-c", "fast"); err != nil {
		return nil, err
	}
	if err := n.start(ctx); err != nil {
		return nil, err
	}
	c.Standby = n
	// Set after the copy, so the standby does not inherit it: promoted, it
	// must not wait for a standby of its own that does not exist.
	return n, makeSynchronous(ctx, p)
}

// makeSynchronous makes the standby named StandbyName the primary p's
// synchronous standby and waits until p reports it streaming and
// synchronous.
func makeSynchronous(ctx context.Context, p *Node) error {
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = '"+StandbyName+"'"); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return err
	}
	return waitSync(ctx, conn)
}

// Rejoin makes old, a primary that failed over to primary (stopped,
// killed or crashed), primary's synchronous standby, as an operator
// does after a failover (scripts/ha.sh rejoin):
//
//  1. a CHECKPOINT on primary, then pg_rewind old from it: it first finishes old's crash recovery
//     (old was killed), then copies back the pages old changed after the
//     timelines split — transactions that were never acknowledged, since
//     a COMMIT waited for the standby — and what primary wrote since;
//     with fresh, a new pg_basebackup instead (a rewind can fail: old's
//     WAL since the split recycled, or wal_log_hints off);
//  2. old's recovery settings: standby.signal, primary_conninfo to
//     primary under StandbyName, a replication slot on primary;
//  3. old started, on its own port again, as a standby: read-only, so
//     that rasoatd's multi-host URL, which still names it first, never
//     writes to it (target_session_attrs=read-write passes it over);
//  4. primary's synchronous_standby_names naming it again.
//
// Never start old as it was (a primary) after a failover: two primaries
// take writes, and rasoatd's URL names old first.
func (c *Cluster) Rejoin(ctx context.Context, old, primary *Node, fresh bool) error {
	old.Kill() // it must be down; a no-op if it is
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=rasoat application_name=%s", primary.Port, StandbyName)
	pc, err := pgx.Connect(ctx, primary.URL("postgres"))
	if err != nil {
		return fmt.Errorf("rejoin: %w", err)
	}
	defer pc.Close(ctx)
	// The slot keeps on primary the WAL the rejoined standby has not yet
	// received. A primary that was itself a standby inherited no slot.
	if _, err := pc.Exec(ctx, "SELECT pg_create_physical_replication_slot($1) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", StandbyName); err != nil {
		return fmt.Errorf("rejoin: replication slot: %w", err)
	}
	// A primary promoted a moment ago may not have written its new
	// timeline to its control file yet, where pg_rewind reads it: without
	// this checkpoint it can find both on one timeline, rewind nothing,
	// and the old primary then streams in a loop it cannot leave.
	if _, err := pc.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("rejoin: checkpoint: %w", err)
	}
	if fresh {
		if err := os.RemoveAll(old.Data); err != nil {
			return err
		}
		if err := c.run("pg_basebackup", "-D", old.Data, "-d", conninfo, "-R", "-X", "stream", "-S", StandbyName, "-c", "fast"); err != nil {
			return fmt.Errorf("rejoin: %w", err)
		}
	} else {
		if err := c.run("pg_rewind", "--target-pgdata="+old.Data, "--source-server="+conninfo+" dbname=postgres", "--write-recovery-conf"); err != nil {
			return fmt.Errorf("rejoin: %w", err)
		}
		// pg_rewind copied primary's postgresql.auto.conf, with whatever
		// primary_conninfo it had as a standby, then appended its own;
		// the last setting wins: name the slot and the standby here.
		if err := appendConf(filepath.Join(old.Data, "postgresql.auto.conf"), fmt.Sprintf("primary_conninfo = '%s'\nprimary_slot_name = '%s'\n", conninfo, StandbyName)); err != nil {
			return err
		}
		// pg_rewind leaves the node's own replication slots (it copies
		// no pg_replslot/): the slot it kept for its standby while
		// primary would hold back its WAL until the next failover.
		slots, _ := filepath.Glob(filepath.Join(old.Data, "pg_replslot", "*"))
		for _, s := range slots {
			if err := os.RemoveAll(s); err != nil {
				return fmt.Errorf("rejoin: %w", err)
			}
		}
	}
	if err := old.start(ctx); err != nil {
		return fmt.Errorf("rejoin: %w", err)
	}
	return makeSynchronous(ctx, primary)
}

// appendConf appends lines to a PostgreSQL configuration file (owned by
// the cluster's owner; appending keeps it so).
func appendConf(path, lines string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(lines)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// waitSync waits until the primary streams to the standby synchronously.
func waitSync(ctx context.Context, conn *pgx.Conn) error {
	deadline := time.Now().Add(time.Minute)
	for {
		var state, sync string
		err := conn.QueryRow(ctx, "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = $1", StandbyName).Scan(&state, &sync)
		if err == nil && state == "streaming" && sync == "sync" {
			return nil
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("standby %s not streaming synchronously after a minute (state %q, sync_state %q)", StandbyName, state, sync)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// start runs the node's postmaster on a free loopback port with the
// settings, and waits until it accepts connections.
func (n *Node) start(ctx context.Context, extra ...string) error {
	// A node started again keeps its port: the operator's URL names it.
	if n.Port == 0 {
		port, err := freePort()
		if err != nil {
			return err
		}
		n.Port = port
	}
	port := n.Port
	n.once = sync.Once{}
	n.Log = filepath.Join(n.c.Dir, n.Name+".log")
	logf, err := os.OpenFile(n.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"-D", n.Data, "-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port),
		"-c", "unix_socket_directories=" + n.c.Dir, "-c", "fsync=on"}
	for _, s := range extra {
		args = append(args, "-c", s)
	}
	cmd := n.c.command("postgres", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: Kill signals the postmaster and all its
	// backends together, as the loss of the machine would stop them.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	go func() { n.err = cmd.Wait(); close(n.done) }()
	deadline := time.Now().Add(time.Minute)
	for {
		conn, err := pgx.Connect(ctx, n.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-n.done:
			log, _ := os.ReadFile(n.Log)
			return fmt.Errorf("%s exited at start: %v\n%s", n.Name, n.err, log)
		default:
		}
		if time.Now().After(deadline) {
			n.Kill()
			return fmt.Errorf("%s does not accept connections after a minute: %w", n.Name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL is a connection URL to db on this node alone.
func (n *Node) URL(db string) string {
	return fmt.Sprintf("postgres://rasoat@127.0.0.1:%d/%s?sslmode=disable", n.Port, db)
}

// Kill sends SIGKILL to the node's process group: the postmaster and its
// backends stop at once, nothing flushed, no goodbye to clients or the
// standby.
func (n *Node) Kill() {
	n.once.Do(func() {
		if n.cmd == nil {
			return
		}
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
	})
}

// Promote makes the standby a primary (pg_promote, waiting for it) and
// returns once it accepts writes.
func (c *Cluster) Promote(ctx context.Context) error { return c.Standby.Promote(ctx) }

// Promote makes n, a standby, a primary (pg_promote, waiting for it) and
// returns once it accepts writes.
func (n *Node) Promote(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, n.URL("postgres"))
	if err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	defer conn.Close(ctx)
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_promote(true, 60)").Scan(&ok); err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	if !ok {
		return errors.New("promote: pg_promote gave up after 60 s")
	}
	return nil
}

// URL is the multi-host URL an operator gives rasoatd: the primary, then
// the standby, taking whichever accepts writes (target_session_attrs =
// read-write, which pgx implements as libpq does), each try bounded by
// connect_timeout so a vanished host does not stall a reconnect.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://rasoat@127.0.0.1:%d,127.0.0.1:%d/%s?sslmode=disable&target_session_attrs=read-write&connect_timeout=5",
		c.Primary.Port, c.Standby.Port, Database)
}
