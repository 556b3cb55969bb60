// Package gcsjson is a gocloud.dev/blob driver for Google Cloud Storage that
// speaks the JSON API over plain net/http.
//
// It replaces gocloud.dev/blob/gcsblob, whose client library brings gRPC,
// OpenTelemetry and the xDS protos into the binary: 31 MB of a 82 MB
// redback, and 13 MB of resident memory in every process, whatever its
// storage. The driver does what redback's sinks need and no more: object
// attributes, listing with a delimiter, ranged reads, streaming writes
// (one request for a small object, a resumable upload in chunks for a large
// one, with a create-only precondition), server-side copies, and deletes.
// Signed URLs report gcerrors.Unimplemented, and no driver-specific type is
// exposed through As. It passes go-cloud's conformance suite
// (gocloud.dev/blob/drivertest; see conformance_test.go).
//
// Requests that can be repeated safely are retried on 408, 429, 5xx and
// transport errors with exponential backoff; a chunk of a resumable upload
// is resumed from the offset the server reports it has persisted.
package gcsjson

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
)

// DefaultEndpoint is Google's endpoint for the JSON API.
const DefaultEndpoint = "https://storage.googleapis.com"

// DefaultChunkSize is the size of a resumable upload's chunks, and so the
// memory an upload holds per chunk in flight (two at most).
const DefaultChunkSize = 8 << 20

// chunkAlign is the granularity GCS requires of every chunk but the last.
const chunkAlign = 256 << 10

// Options configure OpenBucket.
type Options struct {
	// Endpoint is the scheme and host (and optional path prefix) under which
	// /storage/v1 and /upload/storage/v1 are served; DefaultEndpoint if empty.
	Endpoint string
	// Client sends the requests; it adds the credentials (an oauth2 client
	// for Google, a plain one for an emulator). Required.
	Client *http.Client
	// ChunkSize of resumable uploads, rounded up to a multiple of 256 KiB;
	// DefaultChunkSize if zero.
	ChunkSize int
	// Retries is how many times a failed idempotent request is repeated
	// (3 if zero; negative for none).
	Retries int
	// RetryDelay is the first backoff delay, doubled for each further retry
	// (200ms if zero).
	RetryDelay time.Duration
}

// OpenBucket returns a portable *blob.Bucket for the named bucket. Nothing
// is sent until the bucket is used.
func OpenBucket(bucket string, opts Options) (*blob.Bucket, error) {
	b, err := newBucket(bucket, opts)
	if err != nil {
		return nil, err
	}
	return blob.NewBucket(b), nil
}

func newBucket(bucket string, opts Options) (*gcsBucket, error) {
	if bucket == "" {
		return nil, errors.New("gcsjson: bucket name is empty")
	}
	if opts.Client == nil {
		return nil, errors.New("gcsjson: no HTTP client")
	}
	ep := opts.Endpoint
	if ep == "" {
		ep = DefaultEndpoint
	}
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gcsjson: endpoint %q is not an http(s) URL", ep)
	}
	chunk := opts.ChunkSize
	if chunk <= 0 {
		chunk = DefaultChunkSize
	}
	chunk = (chunk + chunkAlign - 1) / chunkAlign * chunkAlign
	retries := opts.Retries
	switch {
	case retries == 0:
		retries = 3
	case retries < 0:
		retries = 0
	}
	delay := opts.RetryDelay
	if delay <= 0 {
		delay = 200 * time.Millisecond
	}
	// A resumable upload answers 308 for "go on": never a redirect to follow.
	client := *opts.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &gcsBucket{
		name:     bucket,
		endpoint: strings.TrimSuffix(ep, "/"),
		client:   &client,
		chunk:    chunk,
		retries:  retries,
		delay:    delay,
	}, nil
}

type gcsBucket struct {
	name     string
	endpoint string
	client   *http.Client
	chunk    int
	retries  int
	delay    time.Duration
}

// apiError is a response of the JSON API other than success.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("gcs: HTTP %d", e.status)
	}
	return fmt.Sprintf("gcs: HTTP %d: %s", e.status, e.msg)
}

// errBadKey is an object name that the driver refuses before sending
// anything: the empty name would address the bucket's listing, and "." and
// ".." a path that proxies and servers normalise (GCS forbids all three).
var errBadKey = errors.New("gcs: invalid object name (empty, \".\" or \"..\")")

// checkKey refuses the names that cannot be put in an object URL.
func checkKey(key string) error {
	if key == "" || key == "." || key == ".." {
		return errBadKey
	}
	return nil
}

// objectURL is the JSON API's URL of an object's metadata (or, with
// alt=media, of its bytes). Slashes in the name are escaped, as the API
// requires.
func (b *gcsBucket) objectURL(key string) string {
	return b.endpoint + "/storage/v1/b/" + url.PathEscape(b.name) + "/o/" + url.PathEscape(key)
}

func (b *gcsBucket) uploadURL(q url.Values) string {
	return b.endpoint + "/upload/storage/v1/b/" + url.PathEscape(b.name) + "/o?" + q.Encode()
}

// ErrorCode implements driver.Bucket.
func (b *gcsBucket) ErrorCode(err error) gcerrors.ErrorCode {
	var ae *apiError
	switch {
	case errors.Is(err, context.Canceled):
		return gcerrors.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return gcerrors.DeadlineExceeded
	case errors.Is(err, errBadKey):
		return gcerrors.InvalidArgument
	case !errors.As(err, &ae):
		return gcerrors.Unknown
	}
	switch ae.status {
	case http.StatusNotFound:
		return gcerrors.NotFound
	case http.StatusPreconditionFailed:
		return gcerrors.FailedPrecondition
	case http.StatusConflict:
		return gcerrors.AlreadyExists
	case http.StatusBadRequest, http.StatusRequestedRangeNotSatisfiable:
		return gcerrors.InvalidArgument
	case http.StatusUnauthorized, http.StatusForbidden:
		return gcerrors.PermissionDenied
	case http.StatusTooManyRequests:
		return gcerrors.ResourceExhausted
	case http.StatusNotImplemented:
		return gcerrors.Unimplemented
	}
	return gcerrors.Internal
}

// As implements driver.Bucket: no driver-specific types are exposed.
func (b *gcsBucket) As(any) bool { return false }

// ErrorAs implements driver.Bucket.
func (b *gcsBucket) ErrorAs(error, any) bool { return false }

// Close implements driver.Bucket.
func (b *gcsBucket) Close() error { return nil }

// Copy implements driver.Bucket with the rewrite method: the server copies
// the bytes and the source's metadata (content type and encoding, cache
// control, disposition, language, custom metadata) over dstKey, in as many
// calls as it needs (large objects across locations or storage classes
// take several, each carrying the token of the last). Repeating a call
// whose answer was lost rewrites the same bytes, so calls are retried.
func (b *gcsBucket) Copy(ctx context.Context, dstKey, srcKey string, opts *driver.CopyOptions) error {
	if err := checkKey(srcKey); err != nil {
		return err
	}
	if err := checkKey(dstKey); err != nil {
		return err
	}
	if opts.BeforeCopy != nil {
		if err := opts.BeforeCopy(func(any) bool { return false }); err != nil {
			return err
		}
	}
	base := b.objectURL(srcKey) + "/rewriteTo/b/" + url.PathEscape(b.name) + "/o/" + url.PathEscape(dstKey)
	token := ""
	for calls := 0; ; calls++ {
		if calls == maxRewriteCalls {
			return fmt.Errorf("gcs: the copy was not done after %d rewrite calls", calls)
		}
		u := base
		if token != "" {
			u += "?" + url.Values{"rewriteToken": {token}}.Encode()
		}
		resp, err := b.do(ctx, true, func() (*http.Request, error) {
			// An empty object resource: the copy keeps the source's
			// metadata.
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader("{}"))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/json; charset=UTF-8")
			return req, nil
		})
		if err != nil {
			return err
		}
		var out struct {
			Done         bool   `json:"done"`
			RewriteToken string `json:"rewriteToken"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out)
		drain(resp)
		if err != nil {
			return fmt.Errorf("gcs: decode response: %w", err)
		}
		if out.Done {
			return nil
		}
		if out.RewriteToken == "" {
			return errors.New("gcs: an unfinished rewrite came without a token to go on")
		}
		token = out.RewriteToken
	}
}

// maxRewriteCalls bounds the calls of one Copy, against a server that would
// never say it is done.
const maxRewriteCalls = 10_000

// SignedURL implements driver.Bucket; it is not supported.
func (b *gcsBucket) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", &apiError{status: http.StatusNotImplemented, msg: "signed URLs are not supported"}
}

// object is the part of the API's object resource that the driver reads.
type object struct {
	Name               string            `json:"name"`
	Size               string            `json:"size"`
	Updated            time.Time         `json:"updated"`
	TimeCreated        time.Time         `json:"timeCreated"`
	MD5Hash            string            `json:"md5Hash"`
	ETag               string            `json:"etag"`
	ContentType        string            `json:"contentType"`
	CacheControl       string            `json:"cacheControl"`
	ContentDisposition string            `json:"contentDisposition"`
	ContentEncoding    string            `json:"contentEncoding"`
	ContentLanguage    string            `json:"contentLanguage"`
	Metadata           map[string]string `json:"metadata"`
	Generation         string            `json:"generation"`
}

func (o *object) size() int64 {
	n, _ := strconv.ParseInt(o.Size, 10, 64)
	return n
}

func (o *object) md5() []byte {
	m, _ := base64.StdEncoding.DecodeString(o.MD5Hash)
	return m
}

// Attributes implements driver.Bucket.
func (b *gcsBucket) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	var o object
	if err := b.getJSON(ctx, b.objectURL(key), &o); err != nil {
		return nil, err
	}
	ct := o.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	return &driver.Attributes{
		CacheControl:       o.CacheControl,
		ContentDisposition: o.ContentDisposition,
		ContentEncoding:    o.ContentEncoding,
		ContentLanguage:    o.ContentLanguage,
		ContentType:        ct,
		Metadata:           o.Metadata,
		CreateTime:         o.TimeCreated,
		ModTime:            o.Updated,
		Size:               o.size(),
		MD5:                o.md5(),
		ETag:               quoteETag(o.ETag),
	}, nil
}

// quoteETag gives the JSON API's bare etag the quotes of an HTTP entity tag
// ("xxxx"), as the portable API documents it.
func quoteETag(tag string) string {
	if tag == "" || strings.HasPrefix(tag, `"`) || strings.HasPrefix(tag, `W/"`) {
		return tag
	}
	return strconv.Quote(tag)
}

// ListPaged implements driver.Bucket.
func (b *gcsBucket) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if opts.BeforeList != nil {
		if err := opts.BeforeList(func(any) bool { return false }); err != nil {
			return nil, err
		}
	}
	q := url.Values{}
	if opts.Prefix != "" {
		q.Set("prefix", opts.Prefix)
	}
	if opts.Delimiter != "" {
		q.Set("delimiter", opts.Delimiter)
	}
	if opts.PageSize > 0 {
		q.Set("maxResults", strconv.Itoa(opts.PageSize))
	}
	if len(opts.PageToken) > 0 {
		q.Set("pageToken", string(opts.PageToken))
	}
	var resp struct {
		Items         []object `json:"items"`
		Prefixes      []string `json:"prefixes"`
		NextPageToken string   `json:"nextPageToken"`
	}
	u := b.endpoint + "/storage/v1/b/" + url.PathEscape(b.name) + "/o?" + q.Encode()
	if err := b.getJSON(ctx, u, &resp); err != nil {
		return nil, err
	}
	page := &driver.ListPage{Objects: make([]*driver.ListObject, 0, len(resp.Items)+len(resp.Prefixes))}
	for i := range resp.Items {
		o := &resp.Items[i]
		page.Objects = append(page.Objects, &driver.ListObject{
			Key: o.Name, ModTime: o.Updated, Size: o.size(), MD5: o.md5(),
		})
	}
	for _, p := range resp.Prefixes {
		page.Objects = append(page.Objects, &driver.ListObject{Key: p, IsDir: true})
	}
	sort.Slice(page.Objects, func(i, j int) bool { return page.Objects[i].Key < page.Objects[j].Key })
	if resp.NextPageToken != "" {
		page.NextPageToken = []byte(resp.NextPageToken)
	}
	return page, nil
}

// Delete implements driver.Bucket.
func (b *gcsBucket) Delete(ctx context.Context, key string, opts *driver.DeleteOptions) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if opts.BeforeDelete != nil {
		if err := opts.BeforeDelete(func(any) bool { return false }); err != nil {
			return err
		}
	}
	resp, retried, err := b.doN(ctx, true, func() (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodDelete, b.objectURL(key), nil)
	})
	var ae *apiError
	if retried && errors.As(err, &ae) && ae.status == http.StatusNotFound {
		return nil // an earlier attempt deleted it; its answer was lost
	}
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

// NewRangeReader implements driver.Bucket.
func (b *gcsBucket) NewRangeReader(ctx context.Context, key string, offset, length int64, opts *driver.ReaderOptions) (driver.Reader, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if length == 0 {
		// A zero-length range cannot be asked for; the attributes say
		// whether the object exists.
		a, err := b.Attributes(ctx, key)
		if err != nil {
			return nil, err
		}
		if opts.BeforeRead != nil {
			if err := opts.BeforeRead(func(any) bool { return false }); err != nil {
				return nil, err
			}
		}
		return &reader{body: http.NoBody, attrs: driver.ReaderAttributes{ContentType: a.ContentType, ModTime: a.ModTime, Size: a.Size}}, nil
	}
	resp, err := b.do(ctx, true, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.objectURL(key)+"?alt=media", nil)
		if err != nil {
			return nil, err
		}
		switch {
		case length > 0:
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
		case offset > 0:
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		}
		// No compression in transit (Go would otherwise ask for gzip and
		// undo it itself). An object stored with Content-Encoding: gzip,
		// which redback never writes, would come back decompressed and
		// whole: see the check of the status below.
		req.Header.Set("Accept-Encoding", "identity")
		return req, nil
	})
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusRequestedRangeNotSatisfiable {
			// Reading from the end (or past it) yields nothing, as for
			// the other drivers.
			a, aerr := b.Attributes(ctx, key)
			if aerr != nil {
				return nil, aerr
			}
			if offset >= a.Size {
				if opts.BeforeRead != nil {
					if err := opts.BeforeRead(func(any) bool { return false }); err != nil {
						return nil, err
					}
				}
				return &reader{body: http.NoBody, attrs: driver.ReaderAttributes{ContentType: a.ContentType, ModTime: a.ModTime, Size: a.Size}}, nil
			}
		}
		return nil, err
	}
	body := resp.Body
	if resp.StatusCode != http.StatusPartialContent && (offset > 0 || length > 0) {
		// The range was ignored: the body starts at byte 0.
		if offset > 0 {
			drain(resp)
			return nil, &apiError{status: http.StatusRequestedRangeNotSatisfiable, msg: "the server ignored the byte range (an object stored with Content-Encoding?)"}
		}
		body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, length), resp.Body}
	}
	if opts.BeforeRead != nil {
		if err := opts.BeforeRead(func(any) bool { return false }); err != nil {
			drain(resp)
			return nil, err
		}
	}
	attrs := driver.ReaderAttributes{ContentType: resp.Header.Get("Content-Type"), Size: resp.ContentLength}
	if attrs.ContentType == "" {
		attrs.ContentType = "application/octet-stream"
	}
	if s := resp.Header.Get("X-Goog-Stored-Content-Length"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			attrs.Size = n
		}
	} else if cr := resp.Header.Get("Content-Range"); cr != "" {
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			if n, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
				attrs.Size = n
			}
		}
	}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		attrs.ModTime = lm
	}
	return &reader{body: body, attrs: attrs}, nil
}

type reader struct {
	body  io.ReadCloser
	attrs driver.ReaderAttributes
}

func (r *reader) Read(p []byte) (int, error)           { return r.body.Read(p) }
func (r *reader) Close() error                         { return r.body.Close() }
func (r *reader) Attributes() *driver.ReaderAttributes { return &r.attrs }
func (r *reader) As(any) bool                          { return false }
func (b *gcsBucket) getJSON(ctx context.Context, u string, v any) error {
	resp, err := b.do(ctx, true, func() (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	})
	if err != nil {
		return err
	}
	defer drain(resp)
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("gcs: decode response: %w", err)
	}
	return nil
}

// do sends the request that newReq builds, retrying an idempotent one, and
// returns a 2xx or 308 response; any other status is an *apiError (with the
// body's message) and the body is closed.
func (b *gcsBucket) do(ctx context.Context, idempotent bool, newReq func() (*http.Request, error)) (*http.Response, error) {
	resp, _, err := b.doN(ctx, idempotent, newReq)
	return resp, err
}

// doN is do that also reports whether the request was sent more than once.
func (b *gcsBucket) doN(ctx context.Context, idempotent bool, newReq func() (*http.Request, error)) (*http.Response, bool, error) {
	delay := b.delay
	for attempt := 0; ; attempt++ {
		req, err := newReq()
		if err != nil {
			return nil, attempt > 0, err
		}
		resp, err := b.send(req)
		if err == nil && (resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusPermanentRedirect) {
			return resp, attempt > 0, nil
		}
		if err == nil {
			err = responseError(resp)
		}
		if ctx.Err() != nil {
			return nil, attempt > 0, ctx.Err()
		}
		if !idempotent || attempt >= b.retries || !retryable(err) {
			return nil, attempt > 0, err
		}
		if err := sleep(ctx, &delay); err != nil {
			return nil, true, err
		}
	}
}

// send sends one request. A transport error loses its URL, which for an
// upload holds the session's id: whoever has it can write to the upload.
func (b *gcsBucket) send(req *http.Request) (*http.Response, error) {
	req.Header.Set("User-Agent", "redback")
	resp, err := b.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, &transportError{method: req.Method, err: ue.Err}
		}
		return nil, err
	}
	return resp, nil
}

// transportError is a request that got no response.
type transportError struct {
	method string
	err    error
}

func (e *transportError) Error() string { return "gcs: " + e.method + ": " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// sleep waits about *delay (with jitter), then doubles it.
func sleep(ctx context.Context, delay *time.Duration) error {
	t := time.NewTimer(*delay/2 + rand.N(*delay))
	defer t.Stop()
	*delay *= 2
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// responseError reads an error response's message and closes its body.
func responseError(resp *http.Response) error {
	defer drain(resp)
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	msg := ""
	if json.Unmarshal(raw, &body) == nil {
		msg = body.Error.Message
	} else {
		msg = strings.TrimSpace(string(raw))
	}
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return &apiError{status: resp.StatusCode, msg: msg}
}

// retryable reports whether a failed request may succeed when repeated: a
// 408, 429 or 5xx answer, or a network failure (not a certificate or a
// credentials error, and not the driver's own findings).
func retryable(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status == http.StatusRequestTimeout || ae.status == http.StatusTooManyRequests || ae.status >= 500
	}
	var te *transportError
	if !errors.As(err, &te) {
		return false
	}
	var ne net.Error
	return errors.As(te.err, &ne) || errors.Is(te.err, io.EOF) || errors.Is(te.err, io.ErrUnexpectedEOF) ||
		errors.Is(te.err, syscall.ECONNRESET) || errors.Is(te.err, syscall.EPIPE)
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// NewTypedWriter implements driver.Bucket. What is written is buffered up to
// one chunk; an object that fits is sent in one request when the writer is
// closed; a larger one starts a resumable upload and sends each full chunk
// in the background while the next one fills (two chunks in memory at
// most).
func (b *gcsBucket) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if opts.BeforeWrite != nil {
		if err := opts.BeforeWrite(func(any) bool { return false }); err != nil {
			return nil, err
		}
	}
	meta := map[string]any{"name": key, "contentType": contentType}
	if len(opts.Metadata) > 0 {
		meta["metadata"] = opts.Metadata
	}
	for k, v := range map[string]string{
		"cacheControl": opts.CacheControl, "contentDisposition": opts.ContentDisposition,
		"contentEncoding": opts.ContentEncoding, "contentLanguage": opts.ContentLanguage,
	} {
		if v != "" {
			meta[k] = v
		}
	}
	if len(opts.ContentMD5) > 0 {
		meta["md5Hash"] = base64.StdEncoding.EncodeToString(opts.ContentMD5)
	}
	mj, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if opts.IfNotExist {
		q.Set("ifGenerationMatch", "0")
	}
	return &writer{ctx: ctx, b: b, key: key, contentType: contentType, meta: mj, query: q, buf: make([]byte, 0, b.chunk)}, nil
}

type writer struct {
	ctx context.Context
	b   *gcsBucket
	key string
	// contentType is also the media part's type of a one-request upload.
	contentType string
	meta        []byte     // the object resource's JSON
	query       url.Values // preconditions
	buf         []byte     // the chunk being filled

	session string      // the resumable upload's URI, once started
	sent    int64       // bytes handed to the uploader
	inbox   chan []byte // full chunks for the uploader
	done    chan error  // the uploader's result, once inbox is closed
	free    chan []byte // chunks the uploader has sent
	err     error
}

func (w *writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		m := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+m]
		n += m
		p = p[m:]
		if len(w.buf) == cap(w.buf) && len(p) > 0 {
			// Only a chunk known not to be the last is sent now: the last
			// one carries the total size.
			if err := w.flushChunk(); err != nil {
				w.err = err
				return n, err
			}
		}
	}
	return n, nil
}

// flushChunk hands the full buffer to the uploader (starting the resumable
// upload the first time) and takes a free buffer to fill next.
func (w *writer) flushChunk() error {
	if w.session == "" {
		s, err := w.b.startResumable(w.ctx, w.meta, w.query)
		if err != nil {
			return err
		}
		w.session = s
		w.inbox = make(chan []byte)
		w.done = make(chan error, 1)
		w.free = make(chan []byte, 1)
		w.free <- make([]byte, 0, w.b.chunk)
		go w.upload()
	}
	select {
	case w.inbox <- w.buf:
	case err := <-w.done:
		w.done <- err
		if err == nil {
			err = errors.New("gcs: uploader stopped")
		}
		return err
	}
	w.sent += int64(len(w.buf))
	select {
	case w.buf = <-w.free:
		w.buf = w.buf[:0]
	case err := <-w.done:
		w.done <- err
		return err
	}
	return nil
}

// upload sends the chunks of inbox, in order, as parts of an unfinished
// object, recycling each buffer through free.
func (w *writer) upload() {
	var off int64
	for c := range w.inbox {
		if err := w.b.putChunk(w.ctx, w.session, c, off, -1); err != nil {
			w.done <- err
			for range w.inbox {
			}
			return
		}
		off += int64(len(c))
		w.free <- c
	}
	w.done <- nil
}

// Close implements driver.Writer: it sends what is left and commits the
// object, or, when the context was cancelled or a chunk failed, cancels
// the upload and returns the error.
func (w *writer) Close() error {
	if w.session == "" {
		if w.err != nil {
			return w.err
		}
		if err := w.ctx.Err(); err != nil {
			return err
		}
		return w.b.uploadMultipart(w.ctx, w.meta, w.contentType, w.query, w.buf)
	}
	close(w.inbox)
	err := <-w.done
	if err == nil {
		err = w.err
	}
	if err == nil {
		err = w.ctx.Err()
	}
	if err == nil {
		err = w.b.putChunk(w.ctx, w.session, w.buf, w.sent, w.sent+int64(len(w.buf)))
	}
	if err != nil {
		w.b.cancelResumable(w.session)
	}
	return err
}

// uploadMultipart stores a small object with one request.
func (b *gcsBucket) uploadMultipart(ctx context.Context, meta []byte, contentType string, q url.Values, data []byte) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", "application/json; charset=UTF-8")
	pw, _ := mw.CreatePart(h)
	_, _ = pw.Write(meta)
	h = textproto.MIMEHeader{}
	h.Set("Content-Type", contentType)
	pw, _ = mw.CreatePart(h)
	_, _ = pw.Write(data)
	_ = mw.Close()
	q2 := url.Values{"uploadType": {"multipart"}}
	for k, v := range q {
		q2[k] = v
	}
	resp, retried, err := b.doN(ctx, true, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.uploadURL(q2), bytes.NewReader(body.Bytes()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "multipart/related; boundary="+mw.Boundary())
		return req, nil
	})
	var ae *apiError
	if retried && errors.As(err, &ae) && ae.status == http.StatusPreconditionFailed {
		// With a create-only precondition, a repeat of a request whose
		// answer was lost fails: the object is there, maybe ours.
		if b.holds(ctx, metaName(meta), data) {
			return nil
		}
	}
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

// metaName is the object name in an object resource's JSON.
func metaName(meta []byte) string {
	var m struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(meta, &m)
	return m.Name
}

// holds reports whether the stored object key has exactly data (by MD5).
func (b *gcsBucket) holds(ctx context.Context, key string, data []byte) bool {
	a, err := b.Attributes(ctx, key)
	if err != nil || a.Size != int64(len(data)) {
		return false
	}
	sum := md5.Sum(data)
	return bytes.Equal(a.MD5, sum[:])
}

// startResumable opens a resumable upload session and returns its URI.
func (b *gcsBucket) startResumable(ctx context.Context, meta []byte, q url.Values) (string, error) {
	q2 := url.Values{"uploadType": {"resumable"}}
	for k, v := range q {
		q2[k] = v
	}
	resp, err := b.do(ctx, true, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.uploadURL(q2), bytes.NewReader(meta))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
		return req, nil
	})
	if err != nil {
		return "", err
	}
	drain(resp)
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", errors.New("gcs: resumable upload started without a session URI")
	}
	return loc, nil
}

// errCommitted is an upload that the server completed before its last
// chunk: what follows cannot be stored.
var errCommitted = errors.New("gcs: the upload was completed before its last chunk")

// putChunk sends data as the bytes from off of the upload; total is the
// object's size when this is the last chunk, -1 otherwise. It returns when
// the server holds all of data (and, for the last chunk, the object is
// complete): a part that the server did not keep (its answer says how much
// it has) is sent again, and after a failure it asks the server how much
// it has and goes on from there, within the bucket's retries.
func (b *gcsBucket) putChunk(ctx context.Context, session string, data []byte, off, total int64) error {
	delay := b.delay
	end := off + int64(len(data))
	failures := 0
	for {
		persisted, done, err := b.putOnce(ctx, session, data, off, total)
		answered := err == nil
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if failures >= b.retries || !retryable(err) {
				return err
			}
			failures++
			if err := sleep(ctx, &delay); err != nil {
				return err
			}
			if persisted, done, err = b.uploadStatus(ctx, session, total); err != nil {
				continue // send the same bytes again
			}
		}
		switch {
		case done && total < 0:
			return errCommitted
		case done:
			return nil
		case persisted < off || persisted > end:
			return fmt.Errorf("gcs: the server holds %d bytes of the upload, expected %d to %d", persisted, off, end)
		case persisted == end && total >= 0:
			return fmt.Errorf("gcs: the server holds all %d bytes but did not complete the object", end)
		case persisted == end:
			return nil
		}
		if persisted == off && answered {
			// An answer that kept nothing of what was sent counts as a
			// failure, so that a server that never keeps anything ends it.
			if failures >= b.retries {
				return fmt.Errorf("gcs: the server keeps none of the bytes from %d", off)
			}
			failures++
		}
		data, off = data[persisted-off:], persisted
	}
}

// putOnce sends one PUT of the upload. It returns done when the object is
// complete, else how many bytes of the upload the server holds.
func (b *gcsBucket) putOnce(ctx context.Context, session string, data []byte, off, total int64) (persisted int64, done bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, session, bytes.NewReader(data))
	if err != nil {
		return 0, false, err
	}
	req.ContentLength = int64(len(data))
	size := "*"
	if total >= 0 {
		size = strconv.FormatInt(total, 10)
	}
	if len(data) == 0 {
		req.Header.Set("Content-Range", "bytes */"+size)
	} else {
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%s", off, off+int64(len(data))-1, size))
	}
	resp, err := b.send(req)
	if err != nil {
		return 0, false, err
	}
	return uploadProgress(resp)
}

// uploadStatus asks how many bytes of an upload the server holds, and
// whether the object is complete.
func (b *gcsBucket) uploadStatus(ctx context.Context, session string, total int64) (persisted int64, done bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, session, http.NoBody)
	if err != nil {
		return 0, false, err
	}
	size := "*"
	if total >= 0 {
		size = strconv.FormatInt(total, 10)
	}
	req.Header.Set("Content-Range", "bytes */"+size)
	resp, err := b.send(req)
	if err != nil {
		return 0, false, err
	}
	return uploadProgress(resp)
}

// uploadProgress reads the answer to a PUT of a resumable upload: 2xx is a
// complete object; 308 carries the bytes held in its Range header
// ("bytes=0-N", absent when none); anything else is an error.
func uploadProgress(resp *http.Response) (persisted int64, done bool, err error) {
	switch {
	case resp.StatusCode/100 == 2:
		drain(resp)
		return 0, true, nil
	case resp.StatusCode != http.StatusPermanentRedirect:
		return 0, false, responseError(resp)
	}
	drain(resp)
	r := resp.Header.Get("Range")
	if r == "" {
		return 0, false, nil
	}
	i := strings.LastIndexByte(r, '-')
	if i < 0 {
		return 0, false, fmt.Errorf("gcs: bad Range %q in an upload's answer", r)
	}
	n, perr := strconv.ParseInt(r[i+1:], 10, 64)
	if perr != nil {
		return 0, false, fmt.Errorf("gcs: bad Range %q in an upload's answer", r)
	}
	return n + 1, false, nil
}

// cancelResumable abandons an upload session, with a context of its own:
// the writer's may be the reason it is abandoned.
func (b *gcsBucket) cancelResumable(session string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, session, nil)
	if err != nil {
		return
	}
	if resp, err := b.client.Do(req); err == nil {
		drain(resp)
	}
}
