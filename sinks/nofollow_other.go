//go:build !unix

package sinks

// noFollow is unavailable here; symbolic links are still refused by the
// Lstat checks done before every open.
const noFollow = 0
