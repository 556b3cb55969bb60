package archiving

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"regexp"
	"strconv"
	"time"

	"filippo.io/age"

	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/sinks"
)

// The segment format (docs/FORMAT.md, "Segments"). Inside its layers
// (gzip, then age when encrypted) a segment is:
//
//	a JSON header line: {"format":"redback-wal","format_version":1,
//	    "replid":...,"first_offset":N,"db":D,"first_time":RFC 3339}
//	records, each starting with its kind:
//	  '*'  a command of the replication stream, byte for byte as received
//	       (a RESP array of bulk strings); offsets count these bytes only
//	  'T'  8 bytes, big-endian: the receive time (Unix nanoseconds) of
//	       the commands that follow
//	  'E'  the JSON trailer line, then the end:
//	       {"last_offset":N,"last_time":...,"commands":N,"crc32c":N}
//
// A MULTI/EXEC block is written whole, after the time mark of its EXEC.
const (
	formatName    = "redback-wal"
	formatVersion = 1
)

// Header opens a segment.
type Header struct {
	Format        string    `json:"format"`
	FormatVersion int       `json:"format_version"`
	ReplID        string    `json:"replid"`
	FirstOffset   int64     `json:"first_offset"`
	DB            int       `json:"db"`
	FirstTime     time.Time `json:"first_time"`
}

// Trailer ends a segment.
type Trailer struct {
	LastOffset int64     `json:"last_offset"`
	LastTime   time.Time `json:"last_time"`
	Commands   int64     `json:"commands"`
	// CRC32C is the Castagnoli CRC-32 of the commands' bytes.
	CRC32C uint32 `json:"crc32c"`
}

// Manifest is stored beside a segment (.redback/wal/NAME.json) once it is
// complete.
type Manifest struct {
	Name          string    `json:"name"`
	FormatVersion int       `json:"format_version"`
	ReplID        string    `json:"replid"`
	FirstOffset   int64     `json:"first_offset"`
	LastOffset    int64     `json:"last_offset"`
	FirstTime     time.Time `json:"first_time"`
	LastTime      time.Time `json:"last_time"`
	// Until is when the segment was closed, when the archiver knows that
	// nothing else was received between LastTime and then (else
	// LastTime): the state of any moment up to Until is restorable.
	Until time.Time `json:"until"`
	DB    int       `json:"db"`
	// LastDB is the database selected after the last command.
	LastDB     int    `json:"last_db"`
	Commands   int64  `json:"commands"`
	CRC32C     uint32 `json:"crc32c"`
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256"`
	Compressed bool   `json:"compressed"`
	Encrypted  bool   `json:"encrypted"`
	// PrevReplID, set on the first segment after a failover, is the
	// replication ID the stream had before (the new primary's secondary
	// ID): the offsets go on across the change.
	PrevReplID string `json:"prev_replid,omitempty"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// nameTime is the layout of a segment name's time (UTC, milliseconds).
const nameTime = "20060102T150405.000Z"

// segNameRE parses a segment name: first receive time, replication ID,
// first and last offset, layers.
var segNameRE = regexp.MustCompile(`^([0-9]{8}T[0-9]{6}\.[0-9]{3}Z)_([0-9a-f]{40})_([0-9]{20})_([0-9]{20})\.wal\.gz(\.age)?$`)

// SegmentName is what a segment's name says.
type SegmentName struct {
	Name        string
	FirstTime   time.Time
	ReplID      string
	First, Last int64
	Encrypted   bool
}

// segmentName builds the name: listing orders segments by their first
// receive time, then offset.
func segmentName(first time.Time, replid string, firstOff, lastOff int64, encrypted bool) string {
	n := fmt.Sprintf("%s_%s_%020d_%020d.wal.gz", first.UTC().Format(nameTime), replid, firstOff, lastOff)
	if encrypted {
		n += ".age"
	}
	return n
}

// ParseSegmentName parses a name segmentName made.
func ParseSegmentName(name string) (SegmentName, error) {
	m := segNameRE.FindStringSubmatch(name)
	if m == nil {
		return SegmentName{}, fmt.Errorf("%w: %q is not a segment name", sinks.ErrInvalidName, clip([]byte(name)))
	}
	t, err := time.Parse(nameTime, m[1])
	if err != nil {
		return SegmentName{}, fmt.Errorf("%w: %q: bad time", sinks.ErrInvalidName, clip([]byte(name)))
	}
	first, err1 := strconv.ParseInt(m[3], 10, 64)
	last, err2 := strconv.ParseInt(m[4], 10, 64)
	if err1 != nil || err2 != nil || last < first {
		return SegmentName{}, fmt.Errorf("%w: %q: bad offsets", sinks.ErrInvalidName, clip([]byte(name)))
	}
	return SegmentName{Name: name, FirstTime: t, ReplID: m[2], First: first, Last: last, Encrypted: m[5] != ""}, nil
}

// segmentWriter builds one segment in memory, through its layers (the
// name holds the last offset, known only at the end; a segment is bounded
// by archiving.segment_bytes of commands, and stored in one write).
type segmentWriter struct {
	hdr      Header
	out      bytes.Buffer // the stored bytes
	enc      io.WriteCloser
	bw       *bufio.Writer
	crc      uint32
	bytes    int64 // command bytes
	commands int64
	lastMark int64 // Unix ns of the last time mark
	lastTime time.Time
	encrypt  bool
}

// openSegment starts a segment whose first command is at hdr.FirstOffset,
// in database hdr.DB, received at hdr.FirstTime.
func openSegment(hdr Header, recipients []age.Recipient) (*segmentWriter, error) {
	s := &segmentWriter{lastMark: -1, encrypt: len(recipients) > 0}
	enc, err := codec.NewEncoder(&s.out, codec.EncodeOptions{Gzip: true, Recipients: recipients})
	if err != nil {
		return nil, err
	}
	s.enc, s.bw = enc, bufio.NewWriterSize(enc, 64<<10)
	hdr.Format, hdr.FormatVersion = formatName, formatVersion
	s.hdr = hdr
	b, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	s.bw.Write(b)
	s.bw.WriteByte('\n')
	return s, nil
}

// add writes commands (whole, concatenated) received at t.
func (s *segmentWriter) add(cmds []byte, n int, t time.Time) error {
	if ns := t.UnixNano(); ns != s.lastMark {
		var b [9]byte
		b[0] = 'T'
		binary.BigEndian.PutUint64(b[1:], uint64(ns))
		s.bw.Write(b[:])
		s.lastMark = ns
	}
	_, err := s.bw.Write(cmds)
	s.crc = crc32.Update(s.crc, castagnoli, cmds)
	s.bytes += int64(len(cmds))
	s.commands += int64(n)
	s.lastTime = t
	return err
}

// lastOffset is the offset of the segment's last byte.
func (s *segmentWriter) lastOffset() int64 { return s.hdr.FirstOffset + s.bytes - 1 }

// finish writes the trailer and closes the layers; the caller commits.
func (s *segmentWriter) finish() (Trailer, error) {
	tr := Trailer{LastOffset: s.lastOffset(), LastTime: s.lastTime, Commands: s.commands, CRC32C: s.crc}
	b, err := json.Marshal(tr)
	if err != nil {
		return tr, err
	}
	s.bw.WriteByte('E')
	s.bw.Write(b)
	s.bw.WriteByte('\n')
	if err := s.bw.Flush(); err != nil {
		return tr, err
	}
	return tr, s.enc.Close()
}

// errCorrupt is a segment that does not read as the format says.
var errCorrupt = errors.New("corrupt segment")

// segmentReader reads one segment's records.
type segmentReader struct {
	br     *bufio.Reader
	Header Header
	// Trailer is set once Next returned io.EOF.
	Trailer Trailer
	crc     uint32
	bytes   int64
	n       int64
	time    time.Time
	buf     []byte
}

// readSegment opens the layers of a stored segment and reads its header.
func readSegment(r io.Reader, ids []age.Identity) (*segmentReader, error) {
	plain, _, err := codec.NewDecoder(r, codec.DecodeOptions{Identities: ids})
	if err != nil {
		return nil, err
	}
	sr := &segmentReader{br: bufio.NewReaderSize(plain, 64<<10)}
	line, err := sr.br.ReadSlice('\n')
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", errCorrupt, err)
	}
	if err := json.Unmarshal(line, &sr.Header); err != nil || sr.Header.Format != formatName {
		return nil, fmt.Errorf("%w: not a redback segment header", errCorrupt)
	}
	if sr.Header.FormatVersion > formatVersion {
		return nil, fmt.Errorf("%w: segment format %d is newer than this redback (%d)", codec.ErrNewerFormat, sr.Header.FormatVersion, formatVersion)
	}
	return sr, nil
}

// Next returns the next command (aliasing an internal buffer, valid until
// the next call), the receive time of it, and the offset of its last
// byte. At the end it checks the trailer against what was read and
// returns io.EOF.
func (sr *segmentReader) Next() (cmd []byte, t time.Time, end int64, err error) {
	for {
		kind, err := sr.br.ReadByte()
		if err != nil {
			return nil, t, 0, fmt.Errorf("%w: truncated (no trailer): %v", errCorrupt, err)
		}
		switch kind {
		case 'T':
			var b [8]byte
			if _, err := io.ReadFull(sr.br, b[:]); err != nil {
				return nil, t, 0, fmt.Errorf("%w: time mark: %v", errCorrupt, err)
			}
			sr.time = time.Unix(0, int64(binary.BigEndian.Uint64(b[:]))).UTC()
		case '*':
			if err := sr.br.UnreadByte(); err != nil {
				return nil, t, 0, err
			}
			sr.buf, _, _, err = readCommand(sr.br, sr.buf[:0])
			if err != nil {
				return nil, t, 0, fmt.Errorf("%w: command: %v", errCorrupt, err)
			}
			sr.crc = crc32.Update(sr.crc, castagnoli, sr.buf)
			sr.bytes += int64(len(sr.buf))
			sr.n++
			return sr.buf, sr.time, sr.Header.FirstOffset + sr.bytes - 1, nil
		case 'E':
			line, err := sr.br.ReadSlice('\n')
			if err != nil {
				return nil, t, 0, fmt.Errorf("%w: trailer: %v", errCorrupt, err)
			}
			if err := json.Unmarshal(line, &sr.Trailer); err != nil {
				return nil, t, 0, fmt.Errorf("%w: trailer: %v", errCorrupt, err)
			}
			if sr.Trailer.CRC32C != sr.crc || sr.Trailer.Commands != sr.n || sr.Trailer.LastOffset != sr.Header.FirstOffset+sr.bytes-1 {
				return nil, t, 0, fmt.Errorf("%w: the trailer does not match the commands (checksum, count or offset)", errCorrupt)
			}
			if _, err := sr.br.ReadByte(); err != io.EOF {
				return nil, t, 0, fmt.Errorf("%w: bytes after the trailer", errCorrupt)
			}
			return nil, t, 0, io.EOF
		default:
			return nil, t, 0, fmt.Errorf("%w: unknown record %q", errCorrupt, kind)
		}
	}
}

// manifest describes the finished segment (Size and SHA256 are the
// sink's to fill).
func (s *segmentWriter) manifest(tr Trailer) Manifest {
	return Manifest{
		Name:          segmentName(s.hdr.FirstTime, s.hdr.ReplID, s.hdr.FirstOffset, tr.LastOffset, s.encrypt),
		FormatVersion: formatVersion,
		ReplID:        s.hdr.ReplID,
		FirstOffset:   s.hdr.FirstOffset,
		LastOffset:    tr.LastOffset,
		FirstTime:     s.hdr.FirstTime,
		LastTime:      tr.LastTime,
		DB:            s.hdr.DB,
		Commands:      tr.Commands,
		CRC32C:        tr.CRC32C,
		Compressed:    true,
		Encrypted:     s.encrypt,
	}
}

// storeSegment writes a finished segment held in data to the sink under
// its final name with its manifest.
func storeSegment(ctx context.Context, sink *sinks.Sink, m Manifest, data []byte) (Manifest, error) {
	sw, err := sink.CreateSegment(ctx, m.Name)
	if err != nil {
		return m, err
	}
	defer sw.Abort()
	if _, err := sw.Write(data); err != nil {
		return m, err
	}
	err = sw.Commit(func(size int64, sha string) ([]byte, error) {
		m.Size, m.SHA256 = size, sha
		return json.MarshalIndent(m, "", "  ")
	})
	return m, err
}
