package sinks

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	s.bucket = b
	s.cleanup = func(key string, err error) { abortUpload(client, u.Host, key, err) }
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
