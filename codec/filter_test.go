package codec

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// TestFilterRoundTrip: a partial archive's filter (binary patterns too)
// comes back from a Reader, and the document stays standard JSON.
func TestFilterRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	f := &Filter{Include: [][]byte{[]byte("user:*"), {0xff, '*'}}, Exclude: [][]byte{[]byte("cache:*")}}
	w := NewWriter(&buf, Header{Filter: f})
	w.BeginKey(KeyHeader{Key: []byte("user:1"), Type: TypeString})
	w.WriteString([]byte("v"))
	w.EndKey()
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"filter":{"include":["user:*","\u0000b64:/yo="],"exclude":["cache:*"]}`) {
		t.Fatalf("no filter member in %s", buf.String())
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	r := NewReader(bytes.NewReader(buf.Bytes()))
	h, err := r.Header()
	if err != nil {
		t.Fatal(err)
	}
	if h.Filter == nil || len(h.Filter.Include) != 2 || !bytes.Equal(h.Filter.Include[1], []byte{0xff, '*'}) || string(h.Filter.Exclude[0]) != "cache:*" {
		t.Fatalf("filter %+v", h.Filter)
	}
	for {
		c, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		r.Release(c)
	}
	// A whole backup has none.
	buf.Reset()
	w = NewWriter(&buf, Header{})
	w.Close()
	if strings.Contains(buf.String(), "filter") {
		t.Fatal("a filter member in a whole backup")
	}
}

// TestFilterBad: a malformed filter is refused, a filter after the keys
// too.
func TestFilterBad(t *testing.T) {
	for _, doc := range []string{
		`{"format":"redback","format_version":2,"filter":[],"data":{}`,
		`{"format":"redback","format_version":2,"filter":{"include":"x"},"data":{}`,
		`{"format":"redback","format_version":2,"filter":{"include":[1]},"data":{}`,
		`{"format":"redback","format_version":2,"filter":{"include":[],"include":[]},"data":{}`,
		`{"format":"redback","format_version":2,"data":{},"filter":{}`,
	} {
		r := NewReader(strings.NewReader(doc + `,"keys_count":0}`))
		_, err := r.Header()
		if err == nil {
			_, err = r.Next()
		}
		if err == nil || err == io.EOF {
			t.Errorf("%s: accepted", doc)
		}
	}
}
