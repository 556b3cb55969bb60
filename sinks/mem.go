package sinks

import (
	"errors"
	"net/url"
	"sync"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
)

// memBuckets holds the named in-memory buckets of this process.
var (
	memMu      sync.Mutex
	memBuckets = map[string]*blob.Bucket{}
)

// openMem opens mem://name: the same bucket for every Open of one name in
// this process (it lives until the process exits); mem:// alone opens a new,
// private bucket that Close releases.
func openMem(u *url.URL) (*Sink, error) {
	if u.RawQuery != "" || (u.Path != "" && u.Path != "/") {
		return nil, errors.New("open storage: mem URL takes only a name")
	}
	name := u.Host
	if name == "" {
		return &Sink{store: &bucketStore{b: memblob.OpenBucket(nil)}, desc: "mem://"}, nil
	}
	memMu.Lock()
	defer memMu.Unlock()
	b, ok := memBuckets[name]
	if !ok {
		b = memblob.OpenBucket(nil)
		memBuckets[name] = b
	}
	return &Sink{store: &bucketStore{b: b, shared: true}, desc: "mem://" + name}, nil
}
