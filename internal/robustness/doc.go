// Package robustness holds the convergence test of sync (DESIGN.md "Sync
// model", "Principles"), in the manner of etcd's tests/robustness: random
// traffic and random faults against real components, then a checker that
// knows from first principles what every replica must hold.
//
// TestConvergence runs, per seed, one real server (the rasoatd assembly,
// server.New with WithSync over a SQLite store file and WithAuth, served
// over bufconn) with authentication and scopes on, and three or four
// tablets (client.Open on their own files), each enrolled through
// client.Enrol for a person of authtest's commune (people_test.go): an
// officer over the commune, collaborators of one or two of its villages,
// some sharing a village and some not, sometimes two devices of one
// person. Each tablet has a clock skewed by up to eight hours, within the
// drift bound; all clocks are virtual, so a seed replays. Several tablets
// edit the same fields of a shared set of households (in every village,
// each tablet those of its villages), add and remove members, start and
// submit reviews and resolve the conflicts they list, writing only in
// their person's villages, and sync at random moments in batches of 1 to 50
// through a gRPC client interceptor that loses push answers after the
// server committed, drops pushes before they reach it, sends them twice,
// cuts pull and snapshot streams after a few responses and cancels syncs
// midway. Tablets enrol before their first write or after it (the file
// then moves to a fresh replica id), are closed and reopened, or
// reinstalled (a new file, enrolled as a new device of the same person,
// once everything is pushed), and the server store is closed and
// reopened, between operations. Beside that traffic come the faults that
// broke earlier versions:
//
//   - restored tablet files (restore_test.go): a tablet's file is copied
//     (closed, or open with its -wal), the tablet goes on writing and
//     syncing, then the copy is put back and it goes on writing; the
//     client must find out at its next push and move to a fresh replica
//     id, re-issuing its unacknowledged changes (client/refused.go);
//   - enrolled devices in the wrong hands (hostile_test.go) pushing raw
//     gRPC batches with one bad change among honest ones. A commune
//     server's device, which the scope lets relay any replica's changes,
//     pushes bases naming stamps nobody wrote, a day in the future, or a
//     stored stamp of another field; values, replica ids and bases over
//     their bounds; an (origin, seq) stored with other content; a replica
//     id not bound to it. A collaborator's device pushes a change of a
//     village not its person's, one stamped by another device's replica,
//     an approval. Each must be refused with its reason, naming the
//     change, and nothing of the batch stored;
//   - stalled readers: Snapshot streams that read one response and stop
//     reading, held open for the whole run (opened again after a server
//     restart), from an enrolled reader's device; in one seed in eight they
//     read a bulk village of a few MiB that only their person may read (no
//     tablet's person, nor the checker's, has it), so that the server's
//     handlers block mid-snapshot, four or five of them, more than the
//     store has read connections. Every Sync must still end within a
//     minute.
//
// At the end every tablet syncs without faults until a round moves
// nothing, and the checker verifies, from the writes the tablets
// acknowledged and the server's log:
//
//  1. every tablet holds the same entity states as the server, byte for
//     byte, for the villages of its person, and no entity of any other
//     village; the same materialised households and the same conflict
//     list, of its villages;
//  2. the log holds every acknowledged local write exactly once, with its
//     value, and nothing else — but for the writes a restore threw away
//     before any server stored them, and with the writes made after a
//     restore under the fresh replica id the client moved to; no tablet
//     sets a change aside as refused;
//  3. every field shows the greatest-stamped change no author has seen,
//     and lists a conflict exactly when such changes disagree — computed
//     from the per-replica coverage rule of internal/merge and checked
//     against what each author could, and must, have seen when writing
//     (the log prefix each tablet had synced, known from the test's side;
//     an author's own earlier writes are those of its file's history, which
//     a restore cuts back).
//
// restore_repro_test.go holds the failures these faults found, each
// reduced to a deterministic test of a few steps.
//
// The package has no code outside its tests. Flags: -robustness.seeds=N
// runs seeds 1..N, -robustness.seed=S replays one seed,
// -robustness.ops=K sets the operations per seed, and
// -robustness.wildclocks also sets tablet clocks beyond the drift bound
// and corrects them later, so that Sync re-stamps (client/restamp.go).
// A failure prints the seed, the command that replays it and the last
// operations.
package robustness
