package gcsjson

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// A rewrite that the server does in several calls (as GCS does for large
// objects across locations or storage classes) is followed to its end,
// each call carrying the last call's token; a lost answer is retried.
func TestCopyInSeveralCalls(t *testing.T) {
	srv := fakeGCS(t)
	target, _ := url.Parse(srv.URL())
	rp := httputil.NewSingleHostReverseProxy(target)
	var (
		mu     sync.Mutex
		tokens []string // the rewriteToken of each rewrite call
	)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.Contains(r.URL.EscapedPath(), "/rewriteTo/") {
			rp.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		tokens = append(tokens, r.URL.Query().Get("rewriteToken"))
		n := len(tokens)
		mu.Unlock()
		switch n {
		case 1:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"kind":"storage#rewriteResponse","done":false,"rewriteToken":"tok-1","totalBytesRewritten":"3"}`))
		case 2:
			http.Error(w, `{"error":{"code":503,"message":"injected"}}`, http.StatusServiceUnavailable)
		default:
			r.URL.RawQuery = "" // the fake does it all in one call
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(front.Close)
	b := open(t, front.URL, 0)
	ctx := context.Background()
	data := randomBytes(5000)
	if err := b.WriteAll(ctx, "dir/src", data, &blob.WriterOptions{ContentType: "application/x-test", Metadata: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Copy(ctx, "dir/dst", "dir/src", nil); err != nil {
		t.Fatalf("copy: %v", err)
	}
	mu.Lock()
	got := strings.Join(tokens, ",")
	mu.Unlock()
	if got != ",tok-1,tok-1" {
		t.Fatalf("rewrite calls carried tokens %q, want \",tok-1,tok-1\"", got)
	}
	back, err := b.ReadAll(ctx, "dir/dst")
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("copy read back %d bytes, err %v", len(back), err)
	}
	a, err := b.Attributes(ctx, "dir/dst")
	if err != nil || a.ContentType != "application/x-test" || a.Metadata["k"] != "v" {
		t.Fatalf("copy's attributes %+v, %v", a, err)
	}
}

// Names that cannot be put in an object URL are refused before anything is
// sent, as invalid arguments.
func TestBadKeys(t *testing.T) {
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request sent: %s %s", r.Method, r.URL)
		http.Error(w, "no", http.StatusTeapot)
	}))
	t.Cleanup(front.Close)
	b := open(t, front.URL, 0)
	ctx := context.Background()
	for _, key := range []string{".", ".."} {
		_, err := b.Attributes(ctx, key)
		if gcerrors.Code(err) != gcerrors.InvalidArgument {
			t.Errorf("Attributes(%q): %v", key, err)
		}
		if _, err := b.NewReader(ctx, key, nil); gcerrors.Code(err) != gcerrors.InvalidArgument {
			t.Errorf("NewReader(%q): %v", key, err)
		}
		if err := b.Delete(ctx, key); gcerrors.Code(err) != gcerrors.InvalidArgument {
			t.Errorf("Delete(%q): %v", key, err)
		}
		if err := b.WriteAll(ctx, key, []byte("x"), nil); gcerrors.Code(err) != gcerrors.InvalidArgument {
			t.Errorf("WriteAll(%q): %v", key, err)
		}
		if err := b.Copy(ctx, key, "src", nil); gcerrors.Code(err) != gcerrors.InvalidArgument {
			t.Errorf("Copy to %q: %v", key, err)
		}
		if err := b.Copy(ctx, "dst", key, nil); gcerrors.Code(err) != gcerrors.InvalidArgument {
			t.Errorf("Copy from %q: %v", key, err)
		}
	}
	if err := b.WriteAll(ctx, "", []byte("x"), nil); gcerrors.Code(err) != gcerrors.InvalidArgument {
		t.Errorf("WriteAll(\"\"): %v", err)
	}
}
