// Package engine moves keys between Redis and archive records: the dump
// (SCAN, pipelined reads, big keys in windows) and the restore (pipelined,
// per-key atomic writes). It speaks to Redis through go-redis and to archives
// through the small interfaces declared here; it knows nothing of storage.
//
// The files: dump*.go the dump, restore*.go the restore, streams.go and
// fieldttls.go what both do for streams and hash field expiry times; each
// begins with what it holds. docs/DESIGN-NOTES.md tells how it works.
package engine
