// Package sinks stores backup archives in a gocloud.dev blob bucket: a local
// folder (the default), memory (tests), Amazon S3 or an S3-compatible store,
// or Google Cloud Storage.
//
// A sink holds archives directly under its prefix, each named as ValidateName
// requires, and for each archive an optional manifest at
// ".redback/<archive name>.json" under the same prefix. Every other object
// under the prefix is ignored. An archive becomes visible under its name only
// when its Writer commits; its manifest is written after that ("the marker of
// completeness is published last"). An archive without a manifest (copied in
// by hand) is still listed and readable.
//
// The package knows nothing of Redis or of the archive format. Errors leaving
// it wrap ErrNotFound, ErrExists, ErrInvalidName or a context error where
// that applies; they never carry a gocloud or cloud SDK error type, a local
// absolute path or a credential.
package sinks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"
)

// manifestDir is the folder, under a sink's prefix, that holds manifests.
const manifestDir = ".redback/"

// maxManifestSize bounds what is read of a manifest object.
const maxManifestSize = 1 << 20

// Sink is an opened archive store. Its methods are safe for concurrent use.
type Sink struct {
	store  store  // a local folder or a bucket: see store
	prefix string // "" or "some/prefix/"
	desc   string // String(); no secrets
	// archiveOpt, when set, adjusts the backend's write request for an
	// archive (not for a manifest) through BeforeWrite's As function.
	archiveOpt func(asFunc func(any) bool) error
}

// Info describes one stored archive.
type Info struct {
	Name string
	// Size is the archive's size in bytes.
	Size int64
	// Created is the manifest's CreatedAt when there is a manifest with one,
	// else the time encoded in the name.
	Created time.Time
	// ModTime is the storage's modification time of the archive object.
	ModTime time.Time
	// Compressed and Encrypted are the layers the name declares.
	Compressed, Encrypted bool
	// Manifest is nil when the archive has no (readable) manifest.
	Manifest *Manifest
}

// Manifest is the metadata stored beside an archive once it is complete.
type Manifest struct {
	Name          string            `json:"name"`
	Size          int64             `json:"size"`
	SHA256        string            `json:"sha256"`
	KeysCount     int64             `json:"keys_count"`
	FormatVersion int               `json:"format_version"`
	Compressed    bool              `json:"compressed"`
	Encrypted     bool              `json:"encrypted"`
	Recipients    []string          `json:"recipients,omitempty"` // fingerprints
	CreatedAt     time.Time         `json:"created_at"`
	CompletedAt   time.Time         `json:"completed_at"`
	VerifiedAt    *time.Time        `json:"verified_at,omitempty"`
	Source        map[string]string `json:"source,omitempty"`
	// Adopted marks a manifest that verify wrote for an archive copied in
	// by hand: it records the check, and retention still treats the archive
	// as copied in (never pruned, counted by no rule).
	Adopted bool `json:"adopted,omitempty"`
	// Pinned archives are never pruned and count towards no retention
	// rule; PinnedAt is when, Note the user's words on the archive
	// (`redback pin NAME --note TEXT`).
	Pinned   bool       `json:"pinned,omitempty"`
	PinnedAt *time.Time `json:"pinned_at,omitempty"`
	Note     string     `json:"note,omitempty"`
	// Drill is the outcome of the newest restore drill of the archive
	// (`redback drill`), nil when it was never drilled.
	Drill *DrillRecord `json:"drill,omitempty"`
}

// DrillRecord is what a manifest keeps of a restore drill.
type DrillRecord struct {
	DrilledAt time.Time `json:"drilled_at"`
	// Result is "passed" or "failed"; Error says why a drill failed.
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
	// Keys is the number of keys restored and compared; Partial marks a
	// drill of the first drill.max_keys keys only.
	Keys            int64   `json:"keys"`
	Partial         bool    `json:"partial,omitempty"`
	DurationSeconds float64 `json:"duration_seconds"`
	// Server is the scratch server's kind and version ("redis 7.2.4").
	Server string `json:"server,omitempty"`
}

// Open opens the sink that spec names:
//
//   - a folder path without "://" (relative to the working directory, or
//     absolute), created with mode 0700 when missing;
//   - file:///absolute/path, the same as a folder path;
//   - mem://name, an in-memory sink shared by every Open of the same name in
//     this process (mem:// alone gives a private one); for tests;
//   - s3://bucket[/prefix][?region=R&endpoint=URL&use_path_style=true&
//     sse=AES256|aws:kms|aws:kms:dsse&sse_kms_key_id=ID&storage_class=C&
//     profile=P&disable_https=true], with the AWS default credential chain;
//   - gs://bucket[/prefix][?endpoint=URL], with application default
//     credentials (or none when endpoint or STORAGE_EMULATOR_HOST points at
//     an emulator).
//
// Any other scheme, and any query parameter not listed, is an error. The
// caller must Close the Sink.
func Open(ctx context.Context, spec string) (*Sink, error) { return open(ctx, spec, true) }

// OpenExisting is Open for commands that only read what is stored, or
// change what is there (list, verify, restore, delete, prune): a folder
// that does not exist is not created, and is an error wrapping
// ErrNoStorage. Buckets are opened as Open does (neither creates one).
func OpenExisting(ctx context.Context, spec string) (*Sink, error) { return open(ctx, spec, false) }

// open opens spec, creating a missing folder when create is set.
func open(ctx context.Context, spec string, create bool) (*Sink, error) {
	if spec == "" {
		return nil, errors.New("open storage: empty location")
	}
	if strings.ContainsRune(spec, 0) {
		return nil, errors.New("open storage: location contains a NUL byte")
	}
	if !strings.Contains(spec, "://") {
		return openLocal(spec, spec, create)
	}
	u, err := url.Parse(spec)
	if err != nil {
		// url's error text echoes the input, which may hold a secret.
		return nil, errors.New("open storage: malformed URL")
	}
	if u.User != nil {
		return nil, errors.New("open storage: credentials in the URL are not supported")
	}
	if u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("open storage: malformed %s URL", u.Scheme)
	}
	switch u.Scheme {
	case "file":
		return openFileURL(u, create)
	case "mem":
		return openMem(u)
	case "s3":
		return openS3(ctx, u)
	case "gs":
		return openGCS(ctx, u)
	default:
		return nil, fmt.Errorf("open storage: unsupported scheme %q (use a folder, file://, s3://, gs:// or mem://)", truncate(u.Scheme, 16))
	}
}

// bucketPrefix returns the object prefix encoded in a URL's path: "" or a
// clean "a/b/" with no empty, "." or ".." segments and no control bytes.
func bucketPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", errors.New("open storage: bad prefix in URL path")
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f || r == '\\' {
				return "", errors.New("open storage: bad prefix in URL path")
			}
		}
	}
	return p + "/", nil
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Close releases the sink. Writers and readers must be finished first.
func (s *Sink) Close() error {
	return translate("close storage", "", s.store.root(), s.store.close())
}

// String describes the sink for humans (e.g. "folder backups",
// "s3://bucket/prefix?region=eu-west-1"); it never contains credentials.
func (s *Sink) String() string { return s.desc }

func (s *Sink) archiveKey(name string) string  { return s.prefix + name }
func (s *Sink) manifestKey(name string) string { return s.prefix + manifestDir + name + ".json" }

// wrap translates err for operation op on archive name.
func (s *Sink) wrap(op, name string, err error) error {
	return translate(op, name, s.store.root(), err)
}

// Stat returns the archive's Info (with its manifest when one is readable).
// It returns ErrNotFound when there is no such archive, ErrInvalidName for a
// bad name.
func (s *Sink) Stat(ctx context.Context, name string) (Info, error) {
	ni, err := ParseName(name)
	if err != nil {
		return Info{}, err
	}
	attrs, err := s.store.attributes(ctx, s.archiveKey(name))
	if err != nil {
		return Info{}, s.wrap("stat", name, err)
	}
	info := Info{
		Name:       name,
		Size:       attrs.Size,
		Created:    ni.Time,
		ModTime:    attrs.ModTime,
		Compressed: ni.Compressed,
		Encrypted:  ni.Encrypted,
	}
	m, err := s.readManifest(ctx, name)
	if err != nil {
		return Info{}, err
	}
	info.setManifest(m)
	return info, nil
}

// setManifest attaches m (may be nil) and takes Created from it.
func (i *Info) setManifest(m *Manifest) {
	i.Manifest = m
	if m != nil && !m.CreatedAt.IsZero() {
		i.Created = m.CreatedAt
	}
}

// Open opens the archive for reading from its start. The caller must close
// the reader. It returns ErrNotFound when there is no such archive.
func (s *Sink) Open(ctx context.Context, name string) (io.ReadCloser, Info, error) {
	info, err := s.Stat(ctx, name)
	if err != nil {
		return nil, Info{}, err
	}
	r, err := s.newReader(ctx, "open", name, 0, -1)
	if err != nil {
		return nil, Info{}, err
	}
	return r, info, nil
}

// OpenRange opens length bytes of the archive starting at offset (length -1
// means to the end). A range reaching past the end is cut at the end; an
// offset at or past the end gives an empty reader. Negative offsets, or
// lengths below -1, are errors. It returns ErrNotFound when there is no such
// archive. The caller must close the reader.
func (s *Sink) OpenRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 || length < -1 {
		return nil, errorf("open", name, nil, "invalid range")
	}
	info, err := s.Stat(ctx, name)
	if err != nil {
		return nil, err
	}
	if offset >= info.Size || length == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if length < 0 || length > info.Size-offset {
		length = info.Size - offset
	}
	return s.newReader(ctx, "open", name, offset, length)
}

func (s *Sink) newReader(ctx context.Context, op, name string, offset, length int64) (io.ReadCloser, error) {
	r, err := s.store.reader(ctx, s.archiveKey(name), offset, length)
	if err != nil {
		return nil, s.wrap(op, name, err)
	}
	return &reader{r: r, s: s, name: name}, nil
}

// reader translates read errors at the package boundary.
type reader struct {
	r    *blob.Reader
	s    *Sink
	name string
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = r.s.wrap("read", r.name, err)
	}
	return n, err
}

func (r *reader) Close() error {
	return r.s.wrap("close", r.name, r.r.Close())
}

// List returns every archive stored directly under the sink's prefix, with
// its manifest when one exists, sorted by Created (then by name), oldest
// first. Objects whose names are not valid archive names (temporary files,
// manifests, sub-folders, other files) are skipped, and so are symbolic links
// in a local folder.
func (s *Sink) List(ctx context.Context) ([]Info, error) {
	var infos []Info
	objs, err := s.store.list(ctx, s.prefix)
	if err != nil {
		return nil, s.wrap("list", "", err)
	}
	for _, obj := range objs {
		name := strings.TrimPrefix(obj.Key, s.prefix)
		ni, err := ParseName(name)
		if err != nil {
			continue
		}
		infos = append(infos, Info{
			Name:       name,
			Size:       obj.Size,
			Created:    ni.Time,
			ModTime:    obj.ModTime,
			Compressed: ni.Compressed,
			Encrypted:  ni.Encrypted,
		})
	}
	if len(infos) > 0 {
		have, err := s.manifestNames(ctx)
		if err != nil {
			return nil, err
		}
		for i := range infos {
			if !have[infos[i].Name] {
				continue
			}
			m, err := s.readManifest(ctx, infos[i].Name)
			if err != nil {
				return nil, err
			}
			infos[i].setManifest(m)
		}
	}
	sort.SliceStable(infos, func(i, j int) bool {
		if !infos[i].Created.Equal(infos[j].Created) {
			return infos[i].Created.Before(infos[j].Created)
		}
		return infos[i].Name < infos[j].Name
	})
	return infos, nil
}

// manifestNames returns the archive names that have a manifest object.
func (s *Sink) manifestNames(ctx context.Context) (map[string]bool, error) {
	have := map[string]bool{}
	objs, err := s.store.list(ctx, s.prefix+manifestDir)
	if err != nil {
		return nil, s.wrap("list manifests", "", err)
	}
	for _, obj := range objs {
		name, ok := strings.CutSuffix(strings.TrimPrefix(obj.Key, s.prefix+manifestDir), ".json")
		if ok && ValidateName(name) == nil {
			have[name] = true
		}
	}
	return have, nil
}

// readManifest returns the archive's manifest, or nil when it has none or
// when the stored one is unreadable, malformed or names another archive (an
// archive is usable without its manifest). Only storage failures other than
// "not found" are errors.
func (s *Sink) readManifest(ctx context.Context, name string) (*Manifest, error) {
	r, err := s.store.reader(ctx, s.manifestKey(name), 0, -1)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, s.wrap("read manifest", name, err)
		}
		var oe *opError
		if errors.As(err, &oe) {
			// Refused by beforeRead (e.g. a symlink swapped in): ignore.
			return nil, nil
		}
		if e := s.wrap("read manifest", name, err); errors.Is(e, ErrNotFound) {
			return nil, nil
		}
		return nil, s.wrap("read manifest", name, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxManifestSize+1))
	if err != nil {
		return nil, s.wrap("read manifest", name, err)
	}
	if len(data) > maxManifestSize {
		return nil, nil
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil || m.Name != name {
		return nil, nil
	}
	return &m, nil
}

// WriteManifest stores m as the manifest of the existing archive m.Name,
// replacing any previous one (e.g. to record VerifiedAt). It returns
// ErrInvalidName for a bad name, ErrNotFound when the archive does not
// exist, and an error when m.Size differs from the archive's size.
func (s *Sink) WriteManifest(ctx context.Context, m Manifest) error {
	if err := ValidateName(m.Name); err != nil {
		return err
	}
	info, err := s.Stat(ctx, m.Name)
	if err != nil {
		return err
	}
	if info.Size != m.Size {
		return errorf("write manifest", m.Name, nil, fmt.Sprintf("manifest size %d does not match archive size %d", m.Size, info.Size))
	}
	return s.putManifest(ctx, m)
}

func (s *Sink) putManifest(ctx context.Context, m Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return errorf("write manifest", m.Name, nil, err.Error())
	}
	data = append(data, '\n')
	if err := s.store.put(ctx, s.manifestKey(m.Name), "application/json", data); err != nil {
		return s.wrap("write manifest", m.Name, err)
	}
	return nil
}

// Delete removes the archive and then its manifest. It returns ErrNotFound
// when there is no such archive (a local symbolic link counts as none).
func (s *Sink) Delete(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := s.store.delete(ctx, s.archiveKey(name)); err != nil {
		return s.wrap("delete", name, err)
	}
	if err := s.store.delete(ctx, s.manifestKey(name)); err != nil {
		if e := s.wrap("delete manifest", name, err); !errors.Is(e, ErrNotFound) {
			return e
		}
	}
	return nil
}
