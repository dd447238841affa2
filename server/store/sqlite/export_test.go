package sqlite

// SetWALBounds sets walMaxPages and checkpointEvery for a test and
// returns the restore.
func SetWALBounds(pages int64, every int) (restore func()) {
	oldPages, oldEvery := walMaxPages, checkpointEvery
	walMaxPages, checkpointEvery = pages, every
	return func() { walMaxPages, checkpointEvery = oldPages, oldEvery }
}
