package sinks

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/blob/s3blob"
)

// s3Params are the query parameters an s3:// URL may carry.
var s3Params = map[string]bool{
	"region": true, "endpoint": true, "use_path_style": true, "s3ForcePathStyle": true,
	"disable_https": true, "sse": true, "sse_kms_key_id": true, "storage_class": true,
	"profile": true,
}

var storageClassRE = regexp.MustCompile(`^[A-Z][A-Z_]{0,63}$`)

// openS3 opens s3://bucket/prefix with the AWS default credential chain
// (environment, shared files, web identity, container and instance roles).
// With a custom endpoint, request checksums are computed and response
// checksums validated only when the operation requires it, which
// S3-compatible stores (MinIO, Ceph, R2, B2, ...) need; the region then
// defaults to us-east-1.
func openS3(ctx context.Context, u *url.URL) (*Sink, error) {
	if u.Host == "" {
		return nil, errors.New("open storage: s3 URL needs a bucket (s3://bucket/prefix)")
	}
	prefix, err := bucketPrefix(u.Path)
	if err != nil {
		return nil, err
	}
	q, err := strictQuery(u, s3Params)
	if err != nil {
		return nil, err
	}
	var loadOpts []func(*config.LoadOptions) error
	if r := q.Get("region"); r != "" {
		loadOpts = append(loadOpts, config.WithRegion(r))
	}
	if p := q.Get("profile"); p != "" {
		loadOpts = append(loadOpts, config.WithSharedConfigProfile(p))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("open storage: load AWS configuration: %s", cleanDetail(err, ""))
	}
	endpoint := q.Get("endpoint")
	if endpoint != "" {
		eu, err := url.Parse(endpoint)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" || eu.User != nil {
			return nil, errors.New("open storage: s3 endpoint must be an http(s)://host[:port] URL without credentials")
		}
		cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		if cfg.Region == "" {
			cfg.Region = "us-east-1"
		}
	}
	if cfg.Region == "" {
		return nil, errors.New("open storage: s3 needs a region (?region= or AWS_REGION)")
	}
	pathStyle, err := boolParam(q, "use_path_style", "s3ForcePathStyle")
	if err != nil {
		return nil, err
	}
	noHTTPS, err := boolParam(q, "disable_https")
	if err != nil {
		return nil, err
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = pathStyle
		o.EndpointOptions.DisableHTTPS = noHTTPS
	})
	opts := &s3blob.Options{RequestChecksumCalculation: cfg.RequestChecksumCalculation}
	if sse := q.Get("sse"); sse != "" {
		found := false
		for _, v := range types.ServerSideEncryptionAes256.Values() {
			if strings.EqualFold(string(v), sse) {
				opts.EncryptionType, found = v, true
			}
		}
		if !found {
			return nil, errors.New("open storage: sse must be AES256, aws:kms or aws:kms:dsse")
		}
	}
	if k := q.Get("sse_kms_key_id"); k != "" {
		if !strings.HasPrefix(string(opts.EncryptionType), "aws:kms") {
			return nil, errors.New("open storage: sse_kms_key_id needs sse=aws:kms or aws:kms:dsse")
		}
		opts.KMSEncryptionID = k
	}
	s := &Sink{prefix: prefix}
	if sc := q.Get("storage_class"); sc != "" {
		if !storageClassRE.MatchString(sc) {
			return nil, errors.New("open storage: bad storage_class")
		}
		// Only archives get the class: manifests must stay readable at once.
		s.archiveOpt = func(as func(any) bool) error {
			var in *transfermanager.UploadObjectInput
			if as(&in) {
				in.StorageClass = tmtypes.StorageClass(sc)
			}
			return nil
		}
	}
	b, err := s3blob.OpenBucket(ctx, client, u.Host, opts)
	if err != nil {
		return nil, fmt.Errorf("open storage: %s", cleanDetail(err, ""))
	}
	s.store = &bucketStore{
		b:       b,
		abandon: func(key string, err error) { abortUpload(client, u.Host, key, err) },
		sweeper: newUploadSweeper(client, u.Host, prefix).sweep,
	}
	s.desc = describeURL(u, q, "region", "endpoint")
	return s, nil
}

// strictQuery parses u's query, refusing parameters outside allowed and
// repeated ones. Error messages name the parameter, never its value.
func strictQuery(u *url.URL, allowed map[string]bool) (url.Values, error) {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("open storage: malformed %s URL query", u.Scheme)
	}
	for k, v := range q {
		if !allowed[k] {
			return nil, fmt.Errorf("open storage: unsupported %s URL parameter %q", u.Scheme, truncate(k, 32))
		}
		if len(v) != 1 {
			return nil, fmt.Errorf("open storage: %s URL parameter %q given more than once", u.Scheme, k)
		}
	}
	return q, nil
}

// boolParam parses the first of keys that is present (false when none is).
func boolParam(q url.Values, keys ...string) (bool, error) {
	for _, k := range keys {
		if v := q.Get(k); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return false, fmt.Errorf("open storage: %s must be true or false", k)
			}
			return b, nil
		}
	}
	return false, nil
}

// describeURL renders scheme://bucket/prefix with only the listed query
// parameters (which carry no secrets).
func describeURL(u *url.URL, q url.Values, keep ...string) string {
	d := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	kept := url.Values{}
	for _, k := range keep {
		if v := q.Get(k); v != "" {
			kept.Set(k, v)
		}
	}
	d.RawQuery = kept.Encode()
	return d.Redacted()
}

// abortUpload aborts the multipart upload that a failed or cancelled write
// left behind. The transfer manager tries too, but with the write's own
// context, which is already cancelled when the write was aborted; this uses
// a fresh one. Errors are ignored (a lifecycle rule that aborts incomplete
// multipart uploads is the backstop).
func abortUpload(client *s3.Client, bucket, key string, err error) {
	var mu interface{ UploadID() string }
	if !errors.As(err, &mu) || mu.UploadID() == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	_, _ = client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(bucket),
		Key:      aws.String(key),
		UploadId: aws.String(mu.UploadID()),
	})
}

// abortTimeout bounds the clean-up of an aborted multipart upload.
const abortTimeout = 30 * time.Second

// Stale multipart uploads. A backup killed mid-upload (SIGKILL, OOM, power
// loss) cannot abort its multipart upload, whose parts are then billed until
// a lifecycle rule (if any) removes them. Create sweeps them, as it sweeps
// a local folder's temporary files: it lists the uploads in progress directly
// under the prefix and aborts those whose key is an archive name and that
// have been idle for staleUploadAge.
//
// Idle means that neither the upload's initiation nor any of its parts is
// that recent. S3 lists only the initiation time, so an upload initiated
// long enough ago is a candidate, confirmed by ListParts: a live writer
// uploads a part every 8 MiB of archive. The threshold is an hour rather
// than the local folder's quarter of an hour because a part lands only every
// 8 MiB of (compressed) output, which a backup throttled by keys_per_second
// or bytes_per_second may take many minutes to produce; an hour costs little,
// since a killed backup's parts then wait at most an hour longer for the
// next backup's sweep. Times are compared on the server's clock (its Date
// header) when it sends one, so a skewed local clock changes nothing.
//
// The sweep runs at Create, not at Open: read-only commands (list, restore,
// verify) then never list or abort uploads, nor need the permissions. Its
// failures are ignored (the backup goes on), and it is bounded by
// sweepTimeout. When nothing is stale it costs one ListMultipartUploads.

var (
	// staleUploadAge is how long a multipart upload must have been idle
	// before Create aborts it.
	staleUploadAge = time.Hour
	// sweepTimeout bounds a sweep, which delays Create.
	sweepTimeout = 10 * time.Second
	// sweepPageSize is the MaxUploads and MaxParts of the sweep's listings.
	sweepPageSize int32 = 1000
	// sweepClock is the clock a sweep falls back on when the server's
	// responses carry no Date.
	sweepClock = time.Now
)

// maxSweepPages bounds the listing pages of one sweep (of uploads, and of
// the parts of one upload).
const maxSweepPages = 20

// uploadAPI is the part of *s3.Client a sweep uses.
type uploadAPI interface {
	ListMultipartUploads(context.Context, *s3.ListMultipartUploadsInput, ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error)
	ListParts(context.Context, *s3.ListPartsInput, ...func(*s3.Options)) (*s3.ListPartsOutput, error)
	AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

// uploadSweeper aborts the stale multipart uploads of one sink.
type uploadSweeper struct {
	client   uploadAPI
	bucket   string
	prefix   string // the sink's: "" or "a/b/"
	staleAge time.Duration
	timeout  time.Duration
	pageSize int32
	now      func() time.Time // fallback when the server sends no Date
	busy     atomic.Bool      // a sweep is running: concurrent Creates skip theirs
}

func newUploadSweeper(client uploadAPI, bucket, prefix string) *uploadSweeper {
	return &uploadSweeper{
		client:   client,
		bucket:   bucket,
		prefix:   prefix,
		staleAge: staleUploadAge,
		timeout:  sweepTimeout,
		pageSize: sweepPageSize,
		now:      sweepClock,
	}
}

// sweep aborts the sink's stale multipart uploads. It never fails: errors
// end the sweep (or skip an upload) silently. It is bounded by the sweep's
// timeout. Listings also stop when ctx is done, and no abort starts then;
// an abort under way runs on a fresh context (to the same deadline), so that
// the caller's cancellation does not cut it off.
func (w *uploadSweeper) sweep(ctx context.Context) {
	if !w.busy.CompareAndSwap(false, true) {
		return
	}
	defer w.busy.Store(false)
	deadline := time.Now().Add(w.timeout)
	lctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	actx, acancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer acancel()
	stale, now := w.candidates(lctx)
	for _, u := range stale {
		if !w.idle(lctx, u, now) {
			continue
		}
		if lctx.Err() != nil {
			return
		}
		_, _ = w.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket:   aws.String(w.bucket),
			Key:      u.Key,
			UploadId: u.UploadId,
		})
	}
}

// candidates lists the uploads in progress directly under the prefix and
// returns those whose key is an archive name and that were initiated at
// least staleAge before now, the server's time of the first listing. The
// whole listing is read before anything is aborted: aborting the upload
// that a page ends with would invalidate the next page's marker on some
// servers. A page that fails ends the listing.
func (w *uploadSweeper) candidates(ctx context.Context) ([]types.MultipartUpload, time.Time) {
	var (
		stale      []types.MultipartUpload
		now        time.Time
		keyMarker  *string
		idMarker   *string
		prefix     *string
		seenMarker = map[[2]string]bool{}
	)
	if w.prefix != "" {
		prefix = aws.String(w.prefix)
	}
	for page := 0; page < maxSweepPages; page++ {
		in := &s3.ListMultipartUploadsInput{
			Bucket:         aws.String(w.bucket),
			Prefix:         prefix,
			Delimiter:      aws.String("/"),
			KeyMarker:      keyMarker,
			UploadIdMarker: idMarker,
			MaxUploads:     aws.Int32(w.pageSize),
		}
		out, err := w.client.ListMultipartUploads(ctx, in)
		if err != nil && idMarker != nil && ctx.Err() == nil {
			// Some servers (versitygw 1.8) refuse the upload-ID marker
			// that they returned. Go on after the key instead: its
			// remaining uploads wait for a later sweep.
			in.UploadIdMarker = nil
			out, err = w.client.ListMultipartUploads(ctx, in)
		}
		if err != nil {
			break
		}
		if page == 0 {
			now = w.now()
			if t, ok := awsmiddleware.GetServerTime(out.ResultMetadata); ok && !t.IsZero() {
				now = t
			}
		}
		for _, u := range out.Uploads {
			if u.Key == nil || u.UploadId == nil || u.Initiated == nil {
				continue
			}
			name, ok := strings.CutPrefix(*u.Key, w.prefix)
			if !ok {
				continue
			}
			if _, err := ParseName(name); err != nil {
				continue
			}
			if now.Sub(*u.Initiated) >= w.staleAge {
				stale = append(stale, u)
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		next := [2]string{aws.ToString(out.NextKeyMarker), aws.ToString(out.NextUploadIdMarker)}
		if next[0] == "" || seenMarker[next] {
			break // a server that would page forever
		}
		seenMarker[next] = true
		keyMarker, idMarker = out.NextKeyMarker, out.NextUploadIdMarker
		if next[1] == "" {
			idMarker = nil
		}
	}
	return stale, now
}

// idle reports whether upload u has no part uploaded within staleAge of
// now. Any doubt (a failed or endless listing) keeps the upload.
func (w *uploadSweeper) idle(ctx context.Context, u types.MultipartUpload, now time.Time) bool {
	p := s3.NewListPartsPaginator(w.client, &s3.ListPartsInput{
		Bucket:   aws.String(w.bucket),
		Key:      u.Key,
		UploadId: u.UploadId,
	}, func(o *s3.ListPartsPaginatorOptions) {
		o.Limit = w.pageSize
		o.StopOnDuplicateToken = true
	})
	for page := 0; p.HasMorePages(); page++ {
		if page == maxSweepPages {
			return false
		}
		out, err := p.NextPage(ctx)
		if err != nil {
			return false
		}
		for _, part := range out.Parts {
			if part.LastModified == nil || now.Sub(*part.LastModified) < w.staleAge {
				return false
			}
		}
	}
	return true
}
