package main

import (
	"strings"
	"testing"

	"github.com/redback-dev/redback/agent/config"
)

func TestScheduleArgs(t *testing.T) {
	cfg := config.Default()
	if err := applyScheduleArgs(&cfg, nil); err != nil {
		t.Fatal(err)
	}
	if cfg.Schedule.IntervalHours != 24 || !cfg.Backup.Compress || cfg.Retention.KeepLast != 7 || cfg.Schedule.DailyAt != "03:00" {
		t.Fatalf("defaults are not the seed's 24 true 7: %+v %+v %+v", cfg.Schedule, cfg.Backup.Compress, cfg.Retention)
	}
	if err := applyScheduleArgs(&cfg, []string{"12", "false", "14"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Schedule.IntervalHours != 12 || cfg.Backup.Compress || cfg.Retention.KeepLast != 14 {
		t.Fatalf("12 false 14 gave %+v %v %+v", cfg.Schedule, cfg.Backup.Compress, cfg.Retention)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"x"}, "INTERVAL_HOURS"},
		{[]string{"-1"}, "INTERVAL_HOURS"},
		{[]string{"NaN"}, "INTERVAL_HOURS"},
		{[]string{"0.001"}, "less than 10 seconds"},
		{[]string{"6", "maybe"}, "COMPRESS"},
		{[]string{"6", "true", "0"}, "MAX_BACKUPS"},
		{[]string{"6", "true", "7.5"}, "MAX_BACKUPS"},
	} {
		cfg := config.Default()
		err := applyScheduleArgs(&cfg, c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}
