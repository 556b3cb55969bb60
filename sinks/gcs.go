package sinks

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"cloud.google.com/go/storage"
	"gocloud.dev/blob/gcsblob"
	"google.golang.org/api/option"
)

var gcsParams = map[string]bool{"endpoint": true}

// openGCS opens gs://bucket/prefix with application default credentials.
// An http:// endpoint parameter (or the STORAGE_EMULATOR_HOST variable, which
// the GCS client library honours itself) selects an emulator and no
// authentication; an https:// endpoint keeps the default credentials.
func openGCS(ctx context.Context, u *url.URL) (*Sink, error) {
	if u.Host == "" {
		return nil, errors.New("open storage: gs URL needs a bucket (gs://bucket/prefix)")
	}
	prefix, err := bucketPrefix(u.Path)
	if err != nil {
		return nil, err
	}
	q, err := strictQuery(u, gcsParams)
	if err != nil {
		return nil, err
	}
	var opts []option.ClientOption
	if ep := q.Get("endpoint"); ep != "" {
		eu, err := url.Parse(ep)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" || eu.User != nil {
			return nil, errors.New("open storage: gs endpoint must be an http(s)://host[:port] URL without credentials")
		}
		// Reads go through the JSON API too: emulators serve the XML API
		// only under storage.googleapis.com.
		opts = append(opts, option.WithEndpoint(strings.TrimSuffix(ep, "/")+"/storage/v1/"), storage.WithJSONReads())
		if eu.Scheme == "http" {
			opts = append(opts, option.WithoutAuthentication())
		}
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("open storage: gcs client: %s", cleanDetail(err, ""))
	}
	b, err := gcsblob.OpenBucket(ctx, nil, u.Host, &gcsblob.Options{Client: client})
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("open storage: %s", cleanDetail(err, ""))
	}
	return &Sink{
		bucket:  b,
		prefix:  prefix,
		desc:    describeURL(u, q, "endpoint"),
		closers: []func() error{client.Close},
	}, nil
}
