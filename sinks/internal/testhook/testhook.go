// Package testhook lets sinks/sinktest reach below the sinks API (to plant
// foreign objects and to see every stored key) without widening that API.
// Package sinks sets the functions in its init.
package testhook

import "context"

var (
	// RawPut stores data under key (relative to the sink's prefix, any key
	// at all), bypassing every check. sink is a *sinks.Sink.
	RawPut func(ctx context.Context, sink any, key string, data []byte) error
	// RawKeys returns every key stored under the sink's prefix, recursively,
	// relative to the prefix, temporary files included.
	RawKeys func(ctx context.Context, sink any) ([]string, error)
)
