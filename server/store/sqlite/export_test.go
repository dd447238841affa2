package sqlite

// SetWALMaxPages sets walMaxPages for a test and returns the restore.
func SetWALMaxPages(n int64) (restore func()) {
	old := walMaxPages
	walMaxPages = n
	return func() { walMaxPages = old }
}
