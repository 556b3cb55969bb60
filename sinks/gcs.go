package sinks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"golang.org/x/oauth2/google"

	"github.com/redback-dev/redback/sinks/internal/gcsjson"
)

var gcsParams = map[string]bool{"endpoint": true}

// gcsScope is the OAuth scope of reading, writing and deleting objects.
const gcsScope = "https://www.googleapis.com/auth/devstorage.read_write"

// openGCS opens gs://bucket/prefix with application default credentials
// (GOOGLE_APPLICATION_CREDENTIALS, gcloud's credentials, or the metadata
// server). An http:// endpoint parameter, or the STORAGE_EMULATOR_HOST
// variable, selects an emulator and no authentication; an https:// endpoint
// keeps the default credentials.
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
	ep := q.Get("endpoint")
	if ep != "" {
		eu, err := url.Parse(ep)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" || eu.User != nil {
			return nil, errors.New("open storage: gs endpoint must be an http(s)://host[:port] URL without credentials")
		}
	} else if host := os.Getenv("STORAGE_EMULATOR_HOST"); host != "" {
		ep = host
		if !strings.Contains(host, "://") {
			ep = "http://" + host
		}
	}
	var client *http.Client
	if eu, err := url.Parse(ep); err == nil && eu.Scheme == "http" {
		// An emulator: no credentials, never a token over plain HTTP.
		client = &http.Client{Transport: http.DefaultTransport}
	} else {
		// The token source refreshes with this context for as long as the
		// sink lives: not the command's, which ends on SIGTERM while a
		// cancelled upload still has to be abandoned.
		client, err = google.DefaultClient(context.WithoutCancel(ctx), gcsScope)
		if err != nil {
			return nil, fmt.Errorf("open storage: gcs credentials: %s", cleanDetail(err, ""))
		}
	}
	b, err := gcsjson.OpenBucket(u.Host, gcsjson.Options{Endpoint: ep, Client: client})
	if err != nil {
		return nil, fmt.Errorf("open storage: %s", cleanDetail(err, ""))
	}
	return &Sink{
		store:  &bucketStore{b: b},
		prefix: prefix,
		desc:   describeURL(u, q, "endpoint"),
	}, nil
}
