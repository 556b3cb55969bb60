package sinks

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseName(t *testing.T) {
	good := []struct {
		name       string
		t          time.Time
		comp, encr bool
	}{
		{"redis_backup_20231205_143022.json", time.Date(2023, 12, 5, 14, 30, 22, 0, time.UTC), false, false},
		{"redis_backup_20240229_235959.json.gz", time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC), true, false},
		{"redis_backup_19991231_000000.json.age", time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), false, true},
		{"redis_backup_20000101_000001.json.gz.age", time.Date(2000, 1, 1, 0, 0, 1, 0, time.UTC), true, true},
	}
	for _, g := range good {
		ni, err := ParseName(g.name)
		if err != nil {
			t.Fatalf("ParseName(%q): %v", g.name, err)
		}
		if !ni.Time.Equal(g.t) || ni.Time.Location() != time.UTC || ni.Compressed != g.comp || ni.Encrypted != g.encr {
			t.Errorf("ParseName(%q) = %+v", g.name, ni)
		}
		if got := NewName(g.t, g.comp, g.encr); got != g.name {
			t.Errorf("NewName = %q, want %q", got, g.name)
		}
	}
	bad := []string{
		"redis_backup_20230229_000000.json", // not a leap year
		"redis_backup_20231131_000000.json",
		"redis_backup_20231200_000000.json",
		"redis_backup_20231205_240000.json",
		"redis_backup_20231205_235960.json",
		"redis_backup_20231205_143022.json.age.gz",
	}
	for _, b := range bad {
		if _, err := ParseName(b); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ParseName(%q) = %v, want ErrInvalidName", b, err)
		}
	}
}

func TestNewNameUTC(t *testing.T) {
	loc := time.FixedZone("X", 5*3600+30*60)
	tm := time.Date(2023, 12, 6, 1, 0, 0, 999999999, loc)
	if got, want := NewName(tm, true, false), "redis_backup_20231205_193000.json.gz"; got != want {
		t.Fatalf("NewName = %q, want %q", got, want)
	}
}

func TestInvalidNameMessage(t *testing.T) {
	err := ValidateName("../\x00" + strings.Repeat("é", 100))
	msg := err.Error()
	if !strings.HasPrefix(msg, "invalid archive name \"../\\x00") || strings.ContainsRune(msg, 0) || len(msg) > 120 {
		t.Fatalf("message = %q", msg)
	}
	if !strings.HasSuffix(msg, "...") {
		t.Fatalf("long name not marked as truncated: %q", msg)
	}
}
