package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// A panic in the goroutine that reads a big key ahead of the writer is an
// error of the dump, handed to the writer, never the end of the process.
func TestPanicInReadAheadIsAnError(t *testing.T) {
	windows, stop := fetchAhead(context.Background(), 2, func(context.Context) (int, bool, error) {
		var m map[string]int
		m["boom"]++
		return 0, true, nil
	})
	defer stop()
	var got error
	for w := range windows {
		if w.err != nil {
			got = w.err
		}
	}
	if !errors.Is(got, ErrInternal) || !strings.Contains(got.Error(), "nil map") {
		t.Fatalf("err %v, want ErrInternal naming the panic", got)
	}
}
